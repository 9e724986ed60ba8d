//! Keys a node derives per file from its secret identity seed `S` and the file's salt
//! (`docs/manifest-v2.md`, "Keys derived per file"):
//!
//! * the **per-file uploader key** ([`Identity::per_file_key`]): an Ed25519 identity with seed
//!   BLAKE3 `derive_key`([`PER_FILE_KEY_CONTEXT`], `S ‖ salt`). It signs the file's content
//!   manifest, placement records, tombstone and store requests, so uploads are unlinkable to
//!   the node and to each other, yet the node can always sign for its own files again;
//! * the **repair seed** ([`Identity::repair_seed`]): BLAKE3 `derive_key`([`REPAIR_SEED_CONTEXT`],
//!   `S ‖ salt`), from which `kairos_seal`'s v2 key schedule derives every block secret and
//!   Shamir polynomial, so the node can regenerate any share of its files.
//!
//! Invariants: both are pure functions of `(S, salt)`; distinct contexts make them independent
//! of each other and of the node key; `S`, the derived seeds and the hasher state are wiped
//! after use. With no drand lock, the repair seed alone opens the file (it regenerates every
//! block secret, and `T` is zero): it never leaves the node.

use crate::identity::Identity;
use kairos_seal::RepairSeed;
use zeroize::{Zeroize, Zeroizing};

/// BLAKE3 `derive_key` context of the per-file uploader key's seed.
pub const PER_FILE_KEY_CONTEXT: &str = "kairos per-file uploader key v1";
/// BLAKE3 `derive_key` context of the repair seed.
pub const REPAIR_SEED_CONTEXT: &str = "kairos repair seed v1";

impl Identity {
    /// The per-file uploader identity of the file with `salt` (see the module docs).
    pub fn per_file_key(&self, salt: &[u8; 32]) -> Identity {
        let seed = self.derive_per_file(PER_FILE_KEY_CONTEXT, salt);
        Identity::from_seed(&seed)
    }

    /// The repair seed of the file with `salt` (see the module docs).
    pub fn repair_seed(&self, salt: &[u8; 32]) -> RepairSeed {
        RepairSeed::from(self.derive_per_file(REPAIR_SEED_CONTEXT, salt))
    }

    /// BLAKE3 `derive_key(context, S ‖ salt)`, wiping `S`, the hasher and the hash.
    fn derive_per_file(&self, context: &str, salt: &[u8; 32]) -> Zeroizing<[u8; 32]> {
        let node_seed = self.seed();
        let mut hasher = blake3::Hasher::new_derive_key(context);
        hasher.update(&node_seed[..]);
        hasher.update(salt);
        let mut hash = hasher.finalize();
        let out = Zeroizing::new(*hash.as_bytes());
        hasher.zeroize();
        hash.zeroize();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_file_keys_are_deterministic_distinct_and_not_the_node_key() {
        let node = Identity::from_seed(&[7; 32]);
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(
            node.per_file_key(&a).public(),
            node.per_file_key(&a).public()
        );
        assert_ne!(
            node.per_file_key(&a).public(),
            node.per_file_key(&b).public()
        );
        assert_ne!(node.per_file_key(&a).public(), node.public());
        assert_eq!(node.repair_seed(&a), node.repair_seed(&a));
        assert_ne!(node.repair_seed(&a), node.repair_seed(&b));
        // Independent of each other and of the node seed.
        assert_ne!(
            node.repair_seed(&a).as_bytes(),
            &*node.per_file_key(&a).seed()
        );
        assert_ne!(node.repair_seed(&a).as_bytes(), &*node.seed());
        // Another node gets other keys for the same salt.
        let other = Identity::from_seed(&[8; 32]);
        assert_ne!(
            other.per_file_key(&a).public(),
            node.per_file_key(&a).public()
        );
        assert_ne!(other.repair_seed(&a), node.repair_seed(&a));
    }
}
