//! Signed manifest decoding: arbitrary bytes must give a typed error or a manifest that
//! re-encodes to exactly the same bytes (one encoding per meaning).
#![no_main]

use kairos_proto::SignedManifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = SignedManifest::from_bytes(data.to_vec()) {
        assert_eq!(m.as_bytes(), data);
        assert!(m.manifest().check().is_ok());
    }
});
