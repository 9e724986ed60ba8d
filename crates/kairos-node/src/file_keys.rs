//! What a put derives before it seals a byte: the file's fresh salt, its per-file uploader key,
//! its key schedule (repair seed and lock secret `T`) and the manifest's lock section.
//! Design: `docs/manifest-v2.md`.
//!
//! Invariants:
//! * every file gets a fresh salt, so its per-file key and repair seed are new too: uploads are
//!   unlinkable to the node key and to each other, and v2 sealing (deterministic given salt and
//!   seed) never reuses a block key;
//! * with the drand lock, `T` exists only inside the key schedule (zeroized on drop) and, in
//!   the manifest, tlock-encrypted to the first round at or after the release time; it is never
//!   logged or stored in clear, so nothing this node keeps opens the file before that round;
//! * a drand lock is asked for only with a chain this node knows (`NodeConfig::lock_chain`).

use crate::ops::OpError;
use crate::state::Node;
use crate::wire::{LockChoice, LockReport};
use kairos_lock::Chain;
use kairos_proto::manifest::{DrandLock, LockSection};
use kairos_proto::Identity;
use kairos_seal::{FileSalt, KeySchedule, LockSecret};

/// The keys and lock of one upload.
pub struct FileKeys {
    pub salt: FileSalt,
    /// Signs the manifest, the placement and every store request of this file.
    pub uploader: Identity,
    pub schedule: KeySchedule,
    pub lock: LockSection,
    pub report: LockReport,
}

/// Derives the keys of a new upload opening at `release`, locked as `choice` asks (`None`:
/// drand when the node has a chain, else peer).
pub fn for_upload(
    node: &Node,
    release: u64,
    choice: Option<LockChoice>,
) -> Result<FileKeys, OpError> {
    let salt = kairos_seal::new_salt();
    let uploader = node.identity.per_file_key(&salt);
    let repair_seed = node.identity.repair_seed(&salt);
    let choice = choice.unwrap_or(if node.cfg.lock_chain.is_some() {
        LockChoice::Drand
    } else {
        LockChoice::Peer
    });
    let (lock_secret, lock, report) = match choice {
        LockChoice::Peer => (
            LockSecret::none(),
            LockSection::None,
            LockReport {
                kind: "peer".into(),
                chain: None,
                round: None,
                test_chain: false,
            },
        ),
        LockChoice::Drand => {
            let chain = node.cfg.lock_chain.as_ref().ok_or_else(|| {
                OpError::BadInput(
                    "this node has no drand chain configured, so it cannot seal with the drand lock; upload with --lock peer, or run the daemon over Tor (drand quicknet) or on a devnet (its test chain)".into(),
                )
            })?;
            drand_lock(chain, release)?
        }
    };
    Ok(FileKeys {
        salt,
        uploader,
        schedule: KeySchedule::V2 {
            lock_secret,
            repair_seed,
        },
        lock,
        report,
    })
}

/// A fresh `T` sealed to the first round of `chain` at or after `release`.
fn drand_lock(
    chain: &Chain,
    release: u64,
) -> Result<(LockSecret, LockSection, LockReport), OpError> {
    let lock_err = |e: kairos_lock::LockError| {
        OpError::Internal(format!("sealing the drand lock failed: {e}"))
    };
    let round = chain.round_at_or_after(release).map_err(lock_err)?;
    let secret = LockSecret::random();
    let ciphertext = kairos_lock::seal_secret(chain, round, secret.as_bytes()).map_err(lock_err)?;
    let section = LockSection::DrandTlock(DrandLock {
        chain_hash: *chain.hash(),
        round,
        ciphertext,
    });
    let report = LockReport {
        kind: "drand".into(),
        chain: Some(chain.hash_hex()),
        round: Some(round),
        test_chain: chain.is_test(),
    };
    Ok((secret, section, report))
}
