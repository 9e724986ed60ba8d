//! The peer API's inputs: a piece body (`PUT /v1/pieces/{hash}` and the answer to `GET`) and the
//! piece id in the path. Never a panic; an accepted body has the documented layout and
//! re-encodes to exactly the same bytes (one encoding per meaning); an accepted id is 64 hex
//! digits that print back the same up to case.
#![no_main]

use bytes::Bytes;
use kairos_node::piece::{hash_from_text, hash_to_text, PieceBody, MAX_BODY_LEN};
use kairos_seal::{SHARD_ALIGN, SHARE_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = PieceBody::decode(Bytes::copy_from_slice(data)) {
        assert!(data.len() <= MAX_BODY_LEN);
        assert!(p.shard < 255);
        assert_eq!(p.share().len(), SHARE_LEN);
        assert_eq!(p.share()[0], p.shard + 1);
        let shard = p.shard_bytes();
        assert!(!shard.is_empty() && shard.len() % SHARD_ALIGN == 0);
        let again = PieceBody::encode(p.release, p.block, p.shard, p.share(), shard);
        assert_eq!(again, data);
        let hash = p.hash();
        assert_eq!(
            p.signed_bytes(&hash),
            PieceBody::signed_bytes_of(data, &hash)
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(hash) = hash_from_text(text) {
            assert_eq!(hash_to_text(&hash), text.to_ascii_lowercase());
        }
    }
});
