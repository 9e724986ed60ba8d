//! `kairos info`: what the network says about a file — its release time always (a directory
//! names it even when it withholds the manifest), and the manifest's details (coding, size,
//! lock, placement) once a directory gives them: after release, or before it to the file's
//! uploader, which this node signs as when the file is in its local history.
//!
//! Invariant: read-only; the manifest and placement are verified like a get's (directory
//! client); nothing here fetches a piece or a beacon, so nothing here can open a file.

use crate::ops::OpError;
use crate::state::Node;
use crate::wire::{FileReport, LockReport, ManifestReport};
use kairos_directory_client::{ClientError, DirectoryClient};
use kairos_proto::manifest::LockSection;
use kairos_proto::{AnyManifest, FileId, Identity};
use kairos_seal::TAG_LEN;

/// The report of file `id`.
pub async fn file_report(node: &Node, id: &FileId) -> Result<FileReport, OpError> {
    let dir = node.directories()?;
    let own = crate::history::get(node.store.db(), id)
        .map_err(|e| OpError::Internal(format!("reading the upload history: {e}")))?;
    let uploader = own.as_ref().and_then(|u| uploader_key(node, &u.salt));
    let now = node.now();
    let report = |release: u64, manifest| FileReport {
        id: *id,
        own: own.is_some(),
        release,
        release_rfc3339: kairos_proto::time::rfc3339(release),
        released: now >= release,
        manifest,
    };
    match dir.fetch_any_manifest(id, uploader.as_ref()).await {
        Ok(any) => {
            let release = any_release(&any);
            let details = manifest_report(node, &dir, &any, uploader.as_ref()).await;
            Ok(report(release, Some(details)))
        }
        Err(ClientError::Locked { until }) => Ok(report(until, None)),
        Err(e) => Err(e.into()),
    }
}

/// The per-file uploader key of one of this node's uploads, from the salt (hex) its history
/// keeps.
pub fn uploader_key(node: &Node, salt_hex: &str) -> Option<Identity> {
    let salt: [u8; 32] = data_encoding::HEXLOWER
        .decode(salt_hex.as_bytes())
        .ok()?
        .try_into()
        .ok()?;
    Some(node.identity.per_file_key(&salt))
}

fn any_release(any: &AnyManifest) -> u64 {
    match any {
        AnyManifest::V1(m) => m.manifest().release,
        AnyManifest::V2(m) => m.manifest().release,
    }
}

/// What the manifest says (and, for version 2, its newest placement).
async fn manifest_report(
    node: &Node,
    dir: &DirectoryClient,
    any: &AnyManifest,
    uploader: Option<&Identity>,
) -> ManifestReport {
    let (version, created, params, cipher_lens, lock): (u8, u64, _, Vec<u32>, _) = match any {
        AnyManifest::V1(m) => {
            let m = m.manifest();
            let lens = m.blocks.iter().map(|b| b.cipher_len).collect();
            (1, m.created, m.params, lens, LockSection::None)
        }
        AnyManifest::V2(m) => {
            let c = m.manifest();
            let lens = c.blocks.iter().map(|b| b.cipher_len).collect();
            (2, c.created, c.params, lens, c.lock.clone())
        }
    };
    let (placement_seq, holders) = match any {
        AnyManifest::V2(m) => match dir.fetch_newest_placement(m, uploader).await {
            Ok(p) => (Some(p.seq()), Some(p.record().holders.len())),
            Err(_) => (None, None),
        },
        AnyManifest::V1(_) => (None, None),
    };
    ManifestReport {
        version,
        created,
        coding: format!("{}+{}", params.k(), params.m()),
        shard_size: params.shard_size,
        blocks: cipher_lens.len() as u32,
        sealed_bytes: (cipher_lens.iter())
            .map(|&l| u64::from(l).saturating_sub(TAG_LEN as u64))
            .sum(),
        lock: lock_report(node, &lock),
        placement_seq,
        holders,
    }
}

/// How a lock section is shown.
pub fn lock_report(node: &Node, lock: &LockSection) -> LockReport {
    match lock {
        LockSection::None => LockReport {
            kind: "peer".into(),
            chain: None,
            round: None,
            test_chain: false,
        },
        LockSection::DrandTlock(l) => LockReport {
            kind: "drand".into(),
            chain: Some(kairos_lock::wire::hex(&l.chain_hash)),
            round: Some(l.round),
            test_chain: node
                .cfg
                .known_chain(&l.chain_hash)
                .is_some_and(|c| c.is_test()),
        },
    }
}
