//! Liveness proofs: a node shows a directory that it answers, as its key, at the address its
//! record advertises.
//!
//! A directory lists a node only after it reached the node at that address itself and got back
//! a signature over a fresh random challenge (`docs/directory-api.md`, "Liveness"). Records at
//! dead addresses (throwaway keys listed by the thousand) are therefore never listed, and a
//! record claiming another node's address fails: that node answers with its own key.
//!
//! Invariants: the signed message starts with its own context string, so a proof can never be
//! mistaken for any other kairos signature (records, manifests, requests); the challenge is
//! chosen by the verifier, so a proof cannot be replayed to another probe.

use crate::identity::{Identity, IdentityError, PublicKey};

/// Domain separation of liveness proofs.
const CONTEXT: &[u8] = b"kairos liveness v1\0";

/// Length of a challenge, bytes.
pub const CHALLENGE_LEN: usize = 32;

fn message(challenge: &[u8; CHALLENGE_LEN], addr: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONTEXT.len() + CHALLENGE_LEN + addr.len());
    m.extend_from_slice(CONTEXT);
    m.extend_from_slice(challenge);
    m.extend_from_slice(addr.as_bytes());
    m
}

/// The node `id`'s proof that it answers at `addr` to `challenge`.
pub fn prove(id: &Identity, challenge: &[u8; CHALLENGE_LEN], addr: &str) -> [u8; 64] {
    id.sign(&message(challenge, addr))
}

/// Checks that `proof` is `key`'s answer to `challenge` at `addr`.
pub fn verify(
    key: &PublicKey,
    challenge: &[u8; CHALLENGE_LEN],
    addr: &str,
    proof: &[u8; 64],
) -> Result<(), IdentityError> {
    key.verify(&message(challenge, addr), proof)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_binds_key_challenge_and_address() {
        let id = Identity::generate();
        let challenge = [7u8; CHALLENGE_LEN];
        let proof = prove(&id, &challenge, "127.0.0.1:4000");
        verify(&id.public(), &challenge, "127.0.0.1:4000", &proof).unwrap();
        assert!(verify(&id.public(), &[8u8; 32], "127.0.0.1:4000", &proof).is_err());
        assert!(verify(&id.public(), &challenge, "127.0.0.1:4001", &proof).is_err());
        let other = Identity::generate();
        assert!(verify(&other.public(), &challenge, "127.0.0.1:4000", &proof).is_err());
    }
}
