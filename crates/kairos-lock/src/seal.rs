//! Sealing the per-file secret `T` to a drand round, and opening it with that round's beacon
//! (`tlock_age`: Boneh–Franklin IBE on BLS12-381 wrapping an age file key; binary, not
//! armoured).
//!
//! Invariants:
//! * open checks, in this order, before `tlock_age` ever sees the ciphertext: the beacon was
//!   verified for this chain, its round is the lock's round, the ciphertext is at most
//!   [`MAX_CIPHERTEXT`] bytes and its header names this chain and round. (`tlock_age::decrypt`
//!   panics when handed a valid signature of another round.)
//! * `tlock_age` still asserts internally (a ciphertext whose IBE part was not made for this
//!   round's key, which only a hostile uploader can produce, fails an `assert_eq!`), so the
//!   decryption runs under `catch_unwind` and such a panic becomes
//!   [`LockError::Undecryptable`]. This relies on `panic = "unwind"` (the workspace default;
//!   do not set `panic = "abort"` in a profile).
//! * the secret lives in [`LockSecret`] (zeroized on drop, never printed by `Debug`) and in a
//!   pre-sized zeroizing buffer while being decrypted; it is never logged.

use crate::beacon::VerifiedBeacon;
use crate::chain::Chain;
use crate::error::LockError;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use zeroize::Zeroizing;

/// Largest lock ciphertext accepted (the manifest's lock section bound). A real one is about
/// 350 bytes.
pub const MAX_CIPHERTEXT: usize = 1024;
/// Bytes of the per-file secret `T`.
pub const SECRET_LEN: usize = 32;

/// The per-file secret `T`: zeroized on drop, `Debug` prints nothing of it.
pub struct LockSecret(Zeroizing<[u8; SECRET_LEN]>);

impl LockSecret {
    /// Wraps secret bytes (the caller's copy should be zeroized by the caller).
    pub fn new(bytes: [u8; SECRET_LEN]) -> LockSecret {
        LockSecret(Zeroizing::new(bytes))
    }

    /// A fresh random secret.
    pub fn random<R: rand::RngCore + rand::CryptoRng>(rng: &mut R) -> LockSecret {
        let mut s = LockSecret(Zeroizing::new([0u8; SECRET_LEN]));
        rng.fill_bytes(&mut s.0[..]);
        s
    }

    /// The secret bytes, for key derivation. Do not copy them anywhere that is not zeroized.
    pub fn expose(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }
}

impl fmt::Debug for LockSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockSecret(<redacted>)")
    }
}

/// Seals `secret` so that it opens only with the beacon of `round` of `chain`. Randomness comes
/// from the operating system inside `tlock_age`/`age` (they take no RNG argument). About 3 ms.
pub fn seal_secret(
    chain: &Chain,
    round: u64,
    secret: &[u8; SECRET_LEN],
) -> Result<Vec<u8>, LockError> {
    chain.round_time(round)?;
    let mut out = Vec::with_capacity(512);
    tlock_age::encrypt(
        &mut out,
        &secret[..],
        chain.hash(),
        chain.public_key(),
        round,
    )
    .map_err(|e| LockError::Seal(e.to_string()))?;
    if out.len() > MAX_CIPHERTEXT {
        return Err(LockError::TooLarge {
            len: out.len(),
            max: MAX_CIPHERTEXT,
        });
    }
    check_ciphertext(chain, round, &out)?;
    Ok(out)
}

/// Checks what can be checked of a lock ciphertext without the beacon: its size, and that its
/// header names `chain` and `round`. A verifier of a manifest runs this on the lock section.
pub fn check_ciphertext(chain: &Chain, round: u64, ciphertext: &[u8]) -> Result<(), LockError> {
    if ciphertext.len() > MAX_CIPHERTEXT {
        return Err(LockError::TooLarge {
            len: ciphertext.len(),
            max: MAX_CIPHERTEXT,
        });
    }
    let header = catch_unwind(|| tlock_age::decrypt_header(ciphertext))
        .map_err(|_| LockError::Malformed("unreadable tlock header".into()))?
        .map_err(|e| LockError::Malformed(format!("unreadable tlock header: {e}")))?;
    if header.hash().as_slice() != chain.hash() {
        return Err(LockError::Malformed(format!(
            "the ciphertext is sealed to chain {}, not {}",
            crate::hex::hex(&header.hash()),
            chain.hash_hex()
        )));
    }
    if header.round() != round {
        return Err(LockError::Malformed(format!(
            "the ciphertext is sealed to round {}, not {round}",
            header.round()
        )));
    }
    Ok(())
}

/// Opens a lock ciphertext with the verified beacon of its round. Every failure is a typed
/// error (see the module invariants for the order of the checks). About 2 ms.
pub fn open_secret(
    chain: &Chain,
    beacon: &VerifiedBeacon,
    round: u64,
    ciphertext: &[u8],
) -> Result<LockSecret, LockError> {
    if beacon.chain_hash() != chain.hash() {
        return Err(LockError::WrongChain {
            beacon: crate::hex::hex(beacon.chain_hash()),
            lock: chain.hash_hex(),
        });
    }
    if beacon.round() != round {
        return Err(LockError::WrongRound {
            beacon: beacon.round(),
            lock: round,
        });
    }
    check_ciphertext(chain, round, ciphertext)?;
    decrypt(chain, beacon, ciphertext)
}

fn decrypt(
    chain: &Chain,
    beacon: &VerifiedBeacon,
    ciphertext: &[u8],
) -> Result<LockSecret, LockError> {
    // Capacity beyond any valid plaintext: the buffer never reallocates (which would leave an
    // unzeroized copy) unless the plaintext is already too long to be accepted.
    let mut plain = Zeroizing::new(Vec::with_capacity(2 * SECRET_LEN));
    let result = catch_unwind(AssertUnwindSafe(|| {
        tlock_age::decrypt(&mut *plain, ciphertext, chain.hash(), beacon.signature())
    }));
    match result {
        Err(_) => return Err(LockError::Undecryptable),
        Ok(Err(tlock_age::TLockAgeError::Decrypt(_))) => return Err(LockError::Undecryptable),
        Ok(Err(e)) => return Err(LockError::Malformed(e.to_string())),
        Ok(Ok(())) => {}
    }
    if plain.len() != SECRET_LEN {
        return Err(LockError::WrongLength(plain.len()));
    }
    let mut secret = LockSecret::new([0u8; SECRET_LEN]);
    secret.0.copy_from_slice(&plain);
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestChain;
    use rand::SeedableRng;

    #[test]
    fn a_valid_signature_of_another_round_passed_off_as_the_right_one_does_not_panic() {
        // Only reachable if verification were skipped: the guard of last resort
        // (`catch_unwind` around tlock_age's internal assertion) turns it into an error.
        let tc = TestChain::generate(&mut rand::rngs::StdRng::seed_from_u64(1), 0, 1).unwrap();
        let chain = tc.chain();
        let ct = seal_secret(chain, 10, &[9u8; 32]).unwrap();
        let mut other = tc.sign(9).unwrap();
        other.round = 10;
        let fake = VerifiedBeacon::unchecked(*chain.hash(), other);
        assert_eq!(
            open_secret(chain, &fake, 10, &ct).unwrap_err(),
            LockError::Undecryptable
        );
    }
}
