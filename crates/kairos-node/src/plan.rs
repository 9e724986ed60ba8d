//! What a get needs to know about a file, whatever its manifest version: coding, salt, how its
//! block keys are derived, and per block the piece hashes and who holds each piece.
//!
//! * Version 1: the manifest names every holder by key and address.
//! * Version 2 (`docs/manifest-v2.md`): the content manifest names no holder; the newest valid
//!   placement record over every directory names them by identity, and each address is resolved
//!   now: over Tor the onion service of the key itself, direct the holder's current signed
//!   record from the directories — so a holder that moved (a restart on a new port) serves its
//!   pieces again.
//!
//! Invariants: every holder address is either derived from the holder's key (Tor) or taken from
//! a record the holder signed (direct); a holder whose address cannot be resolved stays in the
//! plan with the reason, and its pieces count as missing, never as an error of the whole get.

use crate::ops::OpError;
use crate::state::Node;
use futures::future::join_all;
use kairos_directory_client::DirectoryClient;
use kairos_net::Transport;
use kairos_proto::{
    BlockEntry, Manifest, PieceEntry, PublicKey, SignedContentManifest, SignedPlacement,
};
use kairos_seal::{FileSalt, OpenSchedule, Params};

/// One holder of pieces of the file.
#[derive(Clone, Debug)]
pub struct Holder {
    pub key: PublicKey,
    /// Where to reach it, or why that is not known.
    pub addr: Result<String, String>,
}

impl Holder {
    /// The address, or the key when the address is unknown (for messages).
    pub fn label(&self) -> String {
        match &self.addr {
            Ok(a) => a.clone(),
            Err(_) => format!("holder {}", self.key),
        }
    }
}

/// Everything a download fetches and opens by.
pub struct Plan {
    pub params: Params,
    pub salt: FileSalt,
    pub holders: Vec<Holder>,
    /// Per block: its ciphertext length and, in shard order, each piece's hash and holder
    /// (an index into `holders`).
    pub blocks: Vec<BlockEntry>,
    pub schedule: OpenSchedule,
}

impl Plan {
    /// The plan of a version 1 file: holders and addresses as its manifest lists them.
    pub fn from_v1(m: Manifest) -> Plan {
        Plan {
            params: m.params,
            salt: m.salt,
            holders: (m.peers.into_iter())
                .map(|p| Holder {
                    key: p.key,
                    addr: Ok(p.addr),
                })
                .collect(),
            blocks: m.blocks,
            schedule: OpenSchedule::V1,
        }
    }

    /// The plan of a version 2 file under `placement` (verified against `manifest`), holder
    /// addresses resolved for this node's transport.
    pub async fn from_v2(
        node: &Node,
        dir: &DirectoryClient,
        manifest: &SignedContentManifest,
        placement: &SignedPlacement,
        schedule: OpenSchedule,
    ) -> Result<Plan, OpError> {
        let m = manifest.manifest();
        let record = placement.record();
        let holders = resolve(node, dir, &record.holders).await;
        let blocks = (m.blocks.iter().zip(&record.blocks))
            .map(|(block, indices)| BlockEntry {
                cipher_len: block.cipher_len,
                pieces: (block.hashes.iter().zip(indices))
                    .map(|(hash, &peer)| PieceEntry { peer, hash: *hash })
                    .collect(),
            })
            .collect::<Vec<_>>();
        if blocks.len() != m.blocks.len() {
            return Err(OpError::Integrity(
                "the placement record does not cover every block of the manifest".into(),
            ));
        }
        Ok(Plan {
            params: m.params,
            salt: m.salt,
            holders,
            blocks,
            schedule,
        })
    }
}

/// The address of every holder: the onion of its key over Tor; its current signed record
/// from the directories when direct (asked for all holders at once).
async fn resolve(node: &Node, dir: &DirectoryClient, keys: &[PublicKey]) -> Vec<Holder> {
    match node.cfg.transport {
        Transport::Tor { .. } => (keys.iter())
            .map(|key| Holder {
                key: *key,
                addr: Ok(kairos_proto::addr::onion_peer_addr(key)),
            })
            .collect(),
        Transport::Direct => {
            join_all(keys.iter().map(|key| async move {
                let addr = match dir.node_record(key).await {
                    Ok(rec) => Ok(rec.record().addr.clone()),
                    Err(e) => Err(e.to_string()),
                };
                Holder { key: *key, addr }
            }))
            .await
        }
    }
}
