//! Signed node record decoding: never a panic; an accepted record keeps its exact bytes.
#![no_main]

use kairos_proto::SignedNodeRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = SignedNodeRecord::from_bytes(data.to_vec()) {
        assert_eq!(r.as_bytes(), data);
        let _ = r.address_is_bound(true);
    }
});
