//! Audits and repair against a real directory and real nodes: a holder that kept half a piece
//! fails its audit, one that deleted it is reported missing, the uploader rebuilds both pieces
//! bit for bit on other nodes (placement seq + 1), and no audit or shard answer ever carries a
//! key share.

mod common;

use common::*;
use kairos_directory::DirectoryClient;
use kairos_net::Transport;
use kairos_node::piece::hash_to_text;
use kairos_proto::{AnyManifest, FileId, Identity, PublicKey};
use kairos_seal::{regenerate_share, PieceHash};
use redb::{Database, ReadableTable, TableDefinition};
use std::time::Duration;

const PIECES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("pieces");
/// A stored piece's row in the node's `info` table (see `kairos_node::store`).
type InfoRow = (u64, u64, [u8; 32], u32, u8, u64);
const INFO: TableDefinition<[u8; 32], InfoRow> = TableDefinition::new("info");

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A signed `GET path` to the holder `key` at `addr`.
async fn signed_get(
    who: &Identity,
    key: &PublicKey,
    addr: &str,
    path: &str,
    now: u64,
) -> reqwest::Response {
    let req = reqwest::Client::new().get(Transport::url(addr, path));
    kairos_net::signed::sign(req, who, key, "GET", path, b"", now)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audits_find_partial_and_deleted_pieces_and_repair_rebuilds_them() {
    let clock = manual_clock();
    let mut net = Net::start(8, small_params(), clock.clock()).await;
    let work = tempfile::tempdir().unwrap();
    let bytes = data(500_000, 11);
    let path = write_file(work.path(), "kept.bin", &bytes);
    let release = clock.now() + 600;
    let client = net.client(0);
    let put = client.put(&path, release, |_| {}).await.unwrap();
    let id: FileId = put.id;

    // The uploader's per-file key and repair seed, as its node derives them.
    let node_identity = kairos_net::home::load_or_create_identity(&net.configs[0].home).unwrap();
    let upload = client.uploads().await.unwrap().uploads[0].clone();
    let salt: [u8; 32] = data_encoding::HEXLOWER
        .decode(upload.salt.as_bytes())
        .unwrap()
        .try_into()
        .unwrap();
    let uploader = node_identity.per_file_key(&salt);
    let seed = node_identity.repair_seed(&salt);
    let dir = DirectoryClient::new(Transport::Direct, vec![net.dir_addr()])
        .unwrap()
        .with_clock(clock.clock());
    let AnyManifest::V2(m) = dir.fetch_any_manifest(&id, Some(&uploader)).await.unwrap() else {
        panic!("not a v2 manifest");
    };
    let placement = dir
        .fetch_newest_placement(&m, Some(&uploader))
        .await
        .unwrap();
    let params = m.manifest().params;
    assert!(
        m.manifest().blocks.len() >= 2,
        "the test wants several blocks"
    );

    // Healthy at first: every piece proven.
    let report = client.check(&id).await.unwrap();
    assert_eq!(report.weakest, 6, "{report:?}");

    // No answer to the uploader carries a key share, and a stranger gets nothing.
    let holder_key = *placement.record().holder_of(0, 0).unwrap();
    let holder = net.index_of(&holder_key).unwrap();
    let addr = net.node(holder).peer_addr().to_string();
    let hash: PieceHash = m.manifest().blocks[0].hashes[0];
    let share = regenerate_share(&seed, 0, 0, &params).unwrap();
    let shard_path = format!("/v1/pieces/{}/shard", hash_to_text(&hash));
    let audit_path = format!("/v1/pieces/{}/audit?chunks=0,1,2", hash_to_text(&hash));
    for p in [&shard_path, &audit_path] {
        let resp = signed_get(&uploader, &holder_key, &addr, p, clock.now()).await;
        assert_eq!(resp.status(), 200, "{p}");
        let body = resp.bytes().await.unwrap();
        assert!(body.len() > 1000, "{p}");
        assert!(!find(&body, &share[..]), "{p} answered with the key share");
        // Nor any 8-byte window of it (the share's x-coordinate byte aside).
        assert!(share[1..].windows(8).all(|w| !find(&body, w)), "{p}");
        let stranger = Identity::generate();
        let resp = signed_get(&stranger, &holder_key, &addr, p, clock.now()).await;
        assert_eq!(resp.status(), 403, "{p}");
    }
    // Anonymous: the piece itself stays locked.
    let plain = reqwest::get(Transport::url(
        &addr,
        &format!("/v1/pieces/{}", hash_to_text(&hash)),
    ))
    .await
    .unwrap();
    assert_eq!(plain.status(), 403);

    // Damage two holders of block 1 on disk: one keeps only the first half of its piece, the
    // other deleted it.
    let half_key = *placement.record().holder_of(1, 1).unwrap();
    let gone_key = *placement.record().holder_of(1, 4).unwrap();
    let (half, gone) = (
        net.index_of(&half_key).unwrap(),
        net.index_of(&gone_key).unwrap(),
    );
    let (half_hash, gone_hash) = (
        m.manifest().blocks[1].hashes[1],
        m.manifest().blocks[1].hashes[4],
    );
    for (i, hash, keep_half) in [(half, half_hash, true), (gone, gone_hash, false)] {
        net.stop_node(i).await;
        let db = Database::open(net.configs[i].home.join(kairos_node::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut pieces = txn.open_table(PIECES).unwrap();
            if keep_half {
                let mut data = pieces.get(&hash).unwrap().unwrap().value().to_vec();
                let cut = data.len() / 2;
                data[cut..].fill(0);
                pieces.insert(&hash, data.as_slice()).unwrap();
            } else {
                pieces.remove(&hash).unwrap();
                txn.open_table(INFO).unwrap().remove(&hash).unwrap();
            }
        }
        txn.commit().unwrap();
        drop(db);
        net.restart_node(i).await;
    }

    // Several audits: one with half a piece passes an 8-chunk audit with odds 1/256.
    let report = client.check(&id).await.unwrap();
    let b1 = &report.blocks[1];
    assert_eq!(b1.held, 4, "{report:?}");
    assert_eq!(b1.missing, vec![(4, gone_key.to_text())], "{report:?}");
    assert_eq!(b1.corrupt.len(), 1, "{report:?}");
    assert_eq!(
        (b1.corrupt[0].0, &b1.corrupt[0].1),
        (1, &half_key.to_text())
    );
    assert_eq!(report.weakest, 4);
    assert_eq!(b1.holders[1], half_key.to_text());

    // Repair: both pieces rebuilt on nodes holding nothing of block 1, placement seq + 1.
    let repaired = client.repair(&id).await.unwrap();
    eprintln!(
        "repair: {} pieces rebuilt in {} ms, {} bytes fetched, {} bytes stored",
        repaired.rebuilt.len(),
        repaired.elapsed_ms,
        repaired.bytes_fetched,
        repaired.bytes_stored
    );
    assert_eq!(repaired.rebuilt.len(), 2, "{repaired:?}");
    assert!(repaired.lost_blocks.is_empty() && repaired.failed.is_empty());
    assert_eq!(repaired.placement_seq, placement.seq() + 1);
    assert!(repaired.bytes_fetched > 0 && repaired.bytes_stored > 0);
    let newer = dir
        .fetch_newest_placement(&m, Some(&uploader))
        .await
        .unwrap();
    assert_eq!(newer.seq(), placement.seq() + 1);
    let block1: Vec<PublicKey> = (0..6)
        .map(|s| *newer.record().holder_of(1, s).unwrap())
        .collect();
    for moved in [1, 4] {
        assert!(![half_key, gone_key].contains(&block1[moved]));
    }
    let distinct: std::collections::HashSet<_> = block1.iter().collect();
    assert_eq!(distinct.len(), 6, "two pieces of one block on one node");
    let report = client.check(&id).await.unwrap();
    assert_eq!(report.weakest, 6, "{report:?}");
    assert_eq!(report.placement_seq, newer.seq());
    assert!(client.uploads().await.unwrap().uploads[0]
        .last_audit
        .is_some());

    // A node that did not upload the file cannot check or repair it.
    let err = net.client(3).repair(&id).await.unwrap_err();
    assert!(
        err.to_string().contains("not an upload of this node"),
        "{err}"
    );

    // After release the file comes back identical, the repaired pieces included.
    clock.advance(Duration::from_secs(601));
    let out = work.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let got = net
        .client(5)
        .get(&id, &out.join("kept.bin"), |_| {})
        .await
        .unwrap();
    assert!(got.bad_pieces.is_empty(), "{got:?}");
    assert_eq!(std::fs::read(out.join("kept.bin")).unwrap(), bytes);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoke_deletes_every_piece_and_the_directory_says_revoked() {
    let clock = manual_clock();
    let net = Net::start(6, small_params(), clock.clock()).await;
    let work = tempfile::tempdir().unwrap();
    let path = write_file(work.path(), "secret.bin", &data(300_000, 5));
    let release = clock.now() + 600;
    let client = net.client(0);
    let id = client.put(&path, release, |_| {}).await.unwrap().id;
    let kept = client.put(&path, release, |_| {}).await.unwrap().id;
    let dir = DirectoryClient::new(Transport::Direct, vec![net.dir_addr()])
        .unwrap()
        .with_clock(clock.clock());
    // The manifest bytes, as the uploader sees them before release (to re-publish below).
    let node_identity = kairos_net::home::load_or_create_identity(&net.configs[0].home).unwrap();
    let upload = (client.uploads().await.unwrap().uploads)
        .into_iter()
        .find(|u| u.id == id)
        .unwrap();
    let salt: [u8; 32] = data_encoding::HEXLOWER
        .decode(upload.salt.as_bytes())
        .unwrap()
        .try_into()
        .unwrap();
    let uploader = node_identity.per_file_key(&salt);
    let AnyManifest::V2(m) = dir.fetch_any_manifest(&id, Some(&uploader)).await.unwrap() else {
        panic!("not a v2 manifest");
    };
    let hashes: Vec<PieceHash> = m
        .manifest()
        .blocks
        .iter()
        .flat_map(|b| b.hashes.clone())
        .collect();

    // Only the uploader's node can revoke.
    let err = net.client(2).revoke(&id).await.unwrap_err();
    assert!(
        err.to_string().contains("not an upload of this node"),
        "{err}"
    );
    // A tombstone signed by another key is refused by the directory.
    let forged = kairos_proto::Tombstone {
        file_id: id,
        created: clock.now(),
    }
    .sign(&Identity::generate());
    let e = dir.publish_tombstone(&forged).await.unwrap_err();
    assert!(e.to_string().contains("403"), "{e}");

    let report = client.revoke(&id).await.unwrap();
    assert_eq!(report.pieces, hashes.len());
    assert_eq!(report.deleted, hashes.len(), "{report:?}");
    assert!(report.failed.is_empty());
    // Gone from every holder's store: nobody holds any piece of it any more.
    for i in 0..6 {
        let addr = net.node(i).peer_addr().to_string();
        for h in &hashes {
            let url = Transport::url(&addr, &format!("/v1/pieces/{}", hash_to_text(h)));
            assert_eq!(reqwest::get(&url).await.unwrap().status(), 404);
        }
    }
    // The directory answers 410 for manifest and placement, even to the uploader, and does
    // not take the manifest back.
    let url = Transport::url(&net.dir_addr(), &format!("/v1/manifests/{id}"));
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), 410);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("revoked by its uploader"));
    let again = reqwest::Client::new()
        .put(&url)
        .body(m.as_bytes().to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 410);
    assert!(matches!(
        dir.fetch_any_manifest(&id, Some(&uploader)).await,
        Err(kairos_directory::ClientError::Revoked)
    ));
    assert!(client
        .uploads()
        .await
        .unwrap()
        .uploads
        .iter()
        .any(|u| u.id == id && u.revoked.is_some()));

    // After release: get says revoked; the other file is untouched; a late revoke is refused.
    clock.advance(Duration::from_secs(601));
    let out = work.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let err = net
        .client(4)
        .get(&id, &out.join("x"), |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("revoked by its uploader"), "{err}");
    assert!(!out.join("x").exists());
    net.client(4)
        .get(&kept, &out.join("kept"), |_| {})
        .await
        .unwrap();
    let late = client.revoke(&kept).await.unwrap_err();
    assert!(late.to_string().contains("cannot be revoked"), "{late}");
    net.shutdown().await;
}
