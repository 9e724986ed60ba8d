//! Manifest decoding of either version (the v2 content manifest and the version dispatch):
//! arbitrary bytes must give a typed error or a manifest that keeps exactly its bytes.
#![no_main]

use kairos_proto::{AnyManifest, SignedContentManifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = AnyManifest::from_bytes(data.to_vec()) {
        assert_eq!(m.as_bytes(), data);
        assert_eq!(m.file_id(), kairos_proto::FileId::of(data));
        if let AnyManifest::V2(c) = m {
            assert!(c.manifest().check().is_ok());
            let _ = c.manifest().check_lock_round(1_692_803_367, 3);
        }
    }
    // The v2 decoder on its own, past the magic and version most inputs fail on.
    let mut v2 = b"KRSM\x02".to_vec();
    v2.extend_from_slice(data);
    if let Ok(m) = SignedContentManifest::from_bytes(v2.clone()) {
        assert_eq!(m.as_bytes(), &v2[..]);
    }
});
