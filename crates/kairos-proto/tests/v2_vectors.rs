//! Known-answer vectors of the version 2 objects under `testdata/manifest/v2/`: the per-file key
//! and repair seed from a fixed node seed and salt, a content manifest without and with a drand
//! lock, a placement record and a tombstone. The test re-derives and re-encodes each one and
//! requires the committed bytes, then decodes the committed bytes. If this fails, a format
//! changed: that needs a new version, not new vectors. Generate missing vectors with
//! `KAIROS_REGENERATE_TESTDATA=1` (only when adding a vector).

mod common;

use common::*;
use data_encoding::HEXLOWER;
use kairos_proto::{
    AnyManifest, Identity, LockSection, SignedContentManifest, SignedPlacement, SignedTombstone,
    Tombstone,
};
use std::path::PathBuf;

const NODE_SEED: [u8; 32] = [42; 32];
const SALT: [u8; 32] = [7; 32];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/manifest/v2")
}

/// Compares `actual` with the committed file `name` (writing it first when regenerating).
fn pin(name: &str, actual: &str) -> String {
    let path = dir().join(name);
    if std::env::var_os("KAIROS_REGENERATE_TESTDATA").is_some() {
        std::fs::create_dir_all(dir()).unwrap();
        std::fs::write(&path, format!("{actual}\n")).unwrap();
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("testdata/manifest/v2/{name}: {e}"));
    assert_eq!(actual, committed.trim(), "{name} drifted");
    committed.trim().to_owned()
}

fn unhex(s: &str) -> Vec<u8> {
    HEXLOWER.decode(s.as_bytes()).unwrap()
}

#[test]
fn per_file_keys_match_vectors() {
    let node = Identity::from_seed(&NODE_SEED);
    let text = format!(
        "node_seed {}\nsalt {}\nper_file_public_key {}\nrepair_seed {}",
        HEXLOWER.encode(&NODE_SEED),
        HEXLOWER.encode(&SALT),
        HEXLOWER.encode(&node.per_file_key(&SALT).public().0),
        HEXLOWER.encode(node.repair_seed(&SALT).as_bytes()),
    );
    pin("per-file-keys.txt", &text);
}

#[test]
fn objects_match_vectors() {
    let uploader = Identity::from_seed(&NODE_SEED).per_file_key(&SALT);
    let mut manifests = Vec::new();
    for (name, lock) in [
        ("content-lock-none", LockSection::None),
        ("content-lock-drand", drand_lock(RELEASE, 200)),
    ] {
        let mut c = content(&uploader, 2, small_params(3, 2), lock);
        c.salt = SALT;
        let signed = c.sign(&uploader).unwrap();
        let hex = pin(&format!("{name}.hex"), &HEXLOWER.encode(signed.as_bytes()));
        let id = pin(&format!("{name}.id"), &signed.id().to_string());
        let back = AnyManifest::verify(unhex(&hex), &id.parse().unwrap()).unwrap();
        assert_eq!(back, AnyManifest::V2(signed.clone()));
        back_check_lock(&signed);
        manifests.push(signed);
    }
    let m = &manifests[0];
    let p = placement(m, 1).sign(&uploader).unwrap();
    let hex = pin("placement.hex", &HEXLOWER.encode(p.as_bytes()));
    assert_eq!(SignedPlacement::verify(unhex(&hex), m).unwrap(), p);
    let t = Tombstone {
        file_id: m.id(),
        created: CREATED + 60,
    }
    .sign(&uploader);
    let hex = pin("tombstone.hex", &HEXLOWER.encode(t.as_bytes()));
    assert_eq!(SignedTombstone::verify(unhex(&hex), m).unwrap(), t);
}

fn back_check_lock(m: &SignedContentManifest) {
    m.manifest()
        .check_lock_round(QUICKNET_GENESIS, QUICKNET_PERIOD)
        .unwrap();
}
