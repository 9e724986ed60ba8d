//! One of this node's own version 2 uploads, loaded for its uploader's work before release:
//! check, audit, repair, revoke. The per-file key and repair seed are re-derived from the node
//! seed and the salt the local history keeps ([`crate::history`]); the manifest and the newest
//! placement come from the directories, fetched as the file's uploader.
//!
//! Invariant: nothing here can open the file: with the drand lock, the lock secret `T` is in no
//! table and is not derivable from what is loaded here.

use crate::ops::OpError;
use crate::plan::Plan;
use crate::state::Node;
use crate::wire::Upload;
use kairos_directory_client::DirectoryClient;
use kairos_proto::{AnyManifest, FileId, Identity, SignedContentManifest, SignedPlacement};
use kairos_seal::{OpenSchedule, RepairSeed, SHARE_LEN};

/// What the uploader knows of one of its files.
pub struct OwnFile {
    pub upload: Upload,
    pub uploader: Identity,
    pub repair_seed: RepairSeed,
    pub manifest: SignedContentManifest,
    pub placement: SignedPlacement,
    /// Holders resolved to addresses; the schedule is unused (nothing is opened).
    pub plan: Plan,
    pub dir: DirectoryClient,
}

impl OwnFile {
    /// Loads `id`, which this node must have uploaded.
    pub async fn load(node: &Node, id: &FileId) -> Result<OwnFile, OpError> {
        let dir = node.directories()?;
        let upload = crate::history::get(node.store.db(), id)
            .map_err(|e| OpError::Internal(format!("reading the upload history: {e}")))?
            .ok_or_else(|| not_own(id))?;
        let salt: [u8; 32] = data_encoding::HEXLOWER
            .decode(upload.salt.as_bytes())
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| OpError::Internal("the upload history holds a malformed salt".into()))?;
        let uploader = node.identity.per_file_key(&salt);
        let repair_seed = node.identity.repair_seed(&salt);
        let AnyManifest::V2(manifest) = dir.fetch_any_manifest(id, Some(&uploader)).await? else {
            return Err(OpError::Integrity(
                "the directories hold a version 1 manifest under this id".into(),
            ));
        };
        let placement = dir
            .fetch_newest_placement(&manifest, Some(&uploader))
            .await?;
        let plan = Plan::from_v2(node, &dir, &manifest, &placement, OpenSchedule::V1).await?;
        Ok(OwnFile {
            upload,
            uploader,
            repair_seed,
            manifest,
            placement,
            plan,
            dir,
        })
    }

    pub fn id(&self) -> FileId {
        self.manifest.id()
    }

    pub fn release(&self) -> u64 {
        self.manifest.manifest().release
    }

    /// Bytes of `share ‖ shard` of a piece of `block`.
    pub fn piece_len(&self, block: usize) -> u64 {
        let cipher = self.plan.blocks[block].cipher_len as usize;
        (SHARE_LEN + self.plan.params.shard_len_for(cipher)) as u64
    }
}

/// The error for a file this node did not upload.
pub fn not_own(id: &FileId) -> OpError {
    OpError::BadInput(format!(
        "{id} is not an upload of this node (see `kairos ls`); only its uploader's node can check, repair or revoke a file"
    ))
}

/// Replaces the row of `upload` through the writer; a failure is logged (the history is a
/// convenience, the file itself is not affected).
pub(crate) async fn update(node: &Node, upload: Upload) {
    let id = upload.id;
    if let Err(e) = node
        .writer
        .submit(crate::writer::Op::RecordUpload(Box::new(upload)))
        .await
    {
        tracing::warn!("could not update the upload history of {id}: {e}");
    }
}

/// Notes an audit of `upload` at `at` whose weakest block had `weakest` healthy pieces.
pub(crate) async fn note_audit(node: &Node, upload: &Upload, at: u64, weakest: usize) {
    let mut u = upload.clone();
    u.last_audit = Some(at);
    u.weakest = Some(weakest);
    update(node, u).await;
}
