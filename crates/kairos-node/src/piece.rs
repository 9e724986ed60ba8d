//! The binary body of a piece on the peer API, and the text form of piece hashes.
//!
//! ```text
//! offset  bytes  field
//! 0       4      magic "KRPC"
//! 4       1      version = 1
//! 5       8      release time, Unix seconds (u64 LE)
//! 13      4      block index (u32 LE)
//! 17      1      shard index (0 ..= 254)
//! 18      33     key share (first byte = shard index + 1, the Shamir x-coordinate)
//! 51      L      shard bytes, 64 <= L <= MAX_SHARD_SIZE, L % 64 == 0
//! ```
//!
//! The same body is uploaded (`PUT /v1/pieces/{hash}`) and served back (`GET`). The piece's id
//! is `kairos_seal::piece_hash(share, shard)`, written as 64 lower-case hex digits; ids are
//! parsed strictly and never used as paths.
//!
//! Invariant: [`PieceBody::decode`] accepts exactly the layout above and never panics.

use bytes::Bytes;
use kairos_seal::params::MAX_SHARD_SIZE;
use kairos_seal::{PieceHash, SHARD_ALIGN, SHARE_LEN};

const MAGIC: &[u8; 4] = b"KRPC";
const VERSION: u8 = 1;
/// Bytes before the key share.
pub const HEADER_LEN: usize = 4 + 1 + 8 + 4 + 1;
/// Largest valid piece body.
pub const MAX_BODY_LEN: usize = HEADER_LEN + SHARE_LEN + MAX_SHARD_SIZE as usize;

/// A decoded piece body. `data` is `share || shard`, what the store keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceBody {
    pub release: u64,
    pub block: u32,
    pub shard: u8,
    /// `share || shard` (a zero-copy slice of the request body).
    pub data: Bytes,
}

impl PieceBody {
    /// The key share.
    pub fn share(&self) -> &[u8] {
        &self.data[..SHARE_LEN]
    }

    /// The shard bytes.
    pub fn shard_bytes(&self) -> &[u8] {
        &self.data[SHARE_LEN..]
    }

    /// `piece_hash(share, shard)`.
    pub fn hash(&self) -> PieceHash {
        kairos_seal::piece_hash(self.share(), self.shard_bytes())
    }

    /// Parses and checks a body.
    pub fn decode(body: Bytes) -> Result<PieceBody, &'static str> {
        if body.len() < HEADER_LEN + SHARE_LEN + SHARD_ALIGN {
            return Err("piece body is too short");
        }
        if body.len() > MAX_BODY_LEN {
            return Err("piece body is larger than the largest shard allows");
        }
        if &body[..4] != MAGIC {
            return Err("piece body has the wrong magic");
        }
        if body[4] != VERSION {
            return Err("piece body has an unsupported version");
        }
        let release = u64::from_le_bytes(body[5..13].try_into().map_err(|_| "release")?);
        let block = u32::from_le_bytes(body[13..17].try_into().map_err(|_| "block")?);
        let shard = body[17];
        if shard == 255 {
            return Err("shard index 255 is out of range");
        }
        let data = body.slice(HEADER_LEN..);
        if data[0] != shard.wrapping_add(1) {
            return Err("the key share does not belong to this shard index");
        }
        if (data.len() - SHARE_LEN) % SHARD_ALIGN != 0 {
            return Err("shard length is not a multiple of 64");
        }
        Ok(PieceBody {
            release,
            block,
            shard,
            data,
        })
    }

    /// What the uploader's signature covers (as the signed request's "body"): the header
    /// fields and the piece hash — `header ‖ hash`, 50 bytes. The hash binds share and shard,
    /// so this is as strong as signing the whole body, for one hash pass instead of two.
    pub fn signed_bytes(&self, hash: &PieceHash) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 32);
        Self::encode_header(&mut out, self.release, self.block, self.shard);
        out.extend_from_slice(hash);
        out
    }

    /// The release time in the header of an encoded body (its first [`HEADER_LEN`] bytes), with
    /// the magic and version checked: what a holder checks before it reads the rest.
    pub fn release_of(head: &[u8]) -> Result<u64, &'static str> {
        if head.len() < HEADER_LEN {
            return Err("piece body is too short");
        }
        if &head[..4] != MAGIC {
            return Err("piece body has the wrong magic");
        }
        if head[4] != VERSION {
            return Err("piece body has an unsupported version");
        }
        let release = head[5..13].try_into().map_err(|_| "release")?;
        Ok(u64::from_le_bytes(release))
    }

    /// [`PieceBody::signed_bytes`] of an encoded body (its first [`HEADER_LEN`] bytes).
    pub fn signed_bytes_of(body: &[u8], hash: &PieceHash) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 32);
        out.extend_from_slice(&body[..HEADER_LEN.min(body.len())]);
        out.extend_from_slice(hash);
        out
    }

    /// The body for `share` and `shard` bytes.
    pub fn encode(
        release: u64,
        block: u32,
        shard_index: u8,
        share: &[u8],
        shard: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + share.len() + shard.len());
        OutgoingPiece::write_head(&mut out, release, block, shard_index, share);
        out.extend_from_slice(shard);
        out
    }

    /// Appends the header fields.
    pub fn encode_header(out: &mut Vec<u8>, release: u64, block: u32, shard_index: u8) {
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&release.to_le_bytes());
        out.extend_from_slice(&block.to_le_bytes());
        out.push(shard_index);
    }
}

/// A piece body to upload, kept as two parts so the shard (nearly all of it) is sent without
/// being copied next to its header: `header ‖ share`, then the shard. Cloning is cheap (a
/// retry sends the same bytes again).
#[derive(Clone, Debug)]
pub struct OutgoingPiece {
    /// The header and the key share.
    pub head: Bytes,
    pub shard: Bytes,
}

impl OutgoingPiece {
    pub fn new(release: u64, block: u32, shard_index: u8, share: &[u8], shard: Bytes) -> Self {
        let mut head = Vec::with_capacity(HEADER_LEN + share.len());
        Self::write_head(&mut head, release, block, shard_index, share);
        OutgoingPiece {
            head: Bytes::from(head),
            shard,
        }
    }

    /// Appends `header ‖ share`, everything before the shard.
    fn write_head(out: &mut Vec<u8>, release: u64, block: u32, shard_index: u8, share: &[u8]) {
        PieceBody::encode_header(out, release, block, shard_index);
        out.extend_from_slice(share);
    }

    /// Length of the whole body.
    pub fn len(&self) -> usize {
        self.head.len() + self.shard.len()
    }

    /// Whether the body is empty (never, for a piece built by [`OutgoingPiece::new`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What a store request signs ([`PieceBody::signed_bytes`]).
    pub fn signed_bytes(&self, hash: &PieceHash) -> Vec<u8> {
        PieceBody::signed_bytes_of(&self.head, hash)
    }
}

/// 64 lower-case hex digits.
pub fn hash_to_text(hash: &PieceHash) -> String {
    data_encoding::HEXLOWER.encode(hash)
}

/// Parses [`hash_to_text`] output (upper-case accepted).
pub fn hash_from_text(s: &str) -> Option<PieceHash> {
    if s.len() != 64 {
        return None;
    }
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(s.as_bytes())
        .ok()?
        .try_into()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut share = [7u8; SHARE_LEN];
        share[0] = 3;
        PieceBody::encode(1234, 9, 2, &share, &[5u8; 128])
    }

    #[test]
    fn round_trip() {
        let p = PieceBody::decode(Bytes::from(sample())).unwrap();
        assert_eq!((p.release, p.block, p.shard), (1234, 9, 2));
        assert_eq!(p.shard_bytes(), &[5u8; 128][..]);
        assert_eq!(p.share()[0], 3);
        let h = p.hash();
        assert_eq!(hash_from_text(&hash_to_text(&h)), Some(h));
        assert_eq!(
            p.signed_bytes(&h),
            PieceBody::signed_bytes_of(&sample(), &h)
        );
        assert_eq!(hash_from_text("../../etc/passwd"), None);
        assert_eq!(hash_from_text(&"g".repeat(64)), None);
    }

    #[test]
    fn an_outgoing_piece_is_the_encoded_body_in_two_parts() {
        let mut share = [7u8; SHARE_LEN];
        share[0] = 3;
        let out = OutgoingPiece::new(1234, 9, 2, &share, Bytes::from(vec![5u8; 128]));
        let joined = [&out.head[..], &out.shard[..]].concat();
        assert_eq!(joined, sample());
        assert_eq!(out.len(), sample().len());
        let h = PieceBody::decode(Bytes::from(joined)).unwrap().hash();
        assert_eq!(
            out.signed_bytes(&h),
            PieceBody::signed_bytes_of(&sample(), &h)
        );
    }

    #[test]
    fn rejects_malformed() {
        let good = sample();
        for cut in [0, 10, HEADER_LEN + SHARE_LEN, good.len() - 1] {
            assert!(PieceBody::decode(Bytes::from(good[..cut].to_vec())).is_err());
        }
        let mut b = good.clone();
        b[0] = b'X';
        assert!(PieceBody::decode(Bytes::from(b)).is_err());
        let mut b = good.clone();
        b[17] = 5; // share x-coordinate says shard 2
        assert!(PieceBody::decode(Bytes::from(b)).is_err());
        // Every prefix and every byte flip decodes or fails without panicking.
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0xff;
            let _ = PieceBody::decode(Bytes::from(b));
        }
    }
}
