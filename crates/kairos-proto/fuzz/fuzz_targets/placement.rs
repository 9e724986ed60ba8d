//! Placement record and tombstone decoding: never a panic; a record that decodes keeps its
//! invariants, and one that verifies keeps exactly its bytes.
#![no_main]

use kairos_proto::{Identity, PlacementRecord, SignedPlacement, SignedTombstone, Tombstone};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = Identity::from_seed(&[1; 32]).public();
    if let Ok(r) = PlacementRecord::decode_unverified(data) {
        assert!(r.check().is_ok());
    }
    if let Ok(p) = SignedPlacement::from_bytes(data.to_vec(), &key) {
        assert_eq!(p.as_bytes(), data);
    }
    // The record decoder past the magic and version.
    let mut p = b"KRSP\x01".to_vec();
    p.extend_from_slice(data);
    if let Ok(r) = PlacementRecord::decode_unverified(&p) {
        assert!(r.check().is_ok());
    }
    let _ = Tombstone::decode_unverified(data);
    if let Ok(t) = SignedTombstone::from_bytes(data.to_vec(), &key) {
        assert_eq!(t.as_bytes(), data);
    }
});
