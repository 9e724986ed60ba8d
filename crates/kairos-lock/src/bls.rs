//! BLS12-381 as drand's `bls-unchained-g1-rfc9380` scheme uses it: public keys on G2 (96 bytes
//! compressed), signatures on G1 (48 bytes compressed), messages hashed to G1 with the RFC 9380
//! suite `BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_`, and the message of round `r` is
//! `sha256(r as u64 big-endian)`.
//!
//! Invariants: a point is accepted only if its bytes are the canonical compressed encoding of a
//! point in the prime-order subgroup that is not the identity (so a key or a signature has one
//! encoding, and the degenerate keys/signatures that make every pairing check pass are out);
//! nothing here panics on any input.

use crate::error::LockError;
use ark_bls12_381::{g1, Bls12_381, Fr, G1Affine, G1Projective, G2Affine};
use ark_ec::hashing::curve_maps::wb::WBMap;
use ark_ec::hashing::map_to_curve_hasher::MapToCurveBasedHasher;
use ark_ec::hashing::HashToCurve;
use ark_ec::pairing::Pairing;
use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::field_hashers::DefaultFieldHasher;
use ark_ff::Zero;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use sha2::{Digest, Sha256};

/// Hash-to-curve domain separation tag of the scheme (RFC 9380 suite for G1).
pub const DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_";
/// Bytes of a compressed G2 point: a chain public key.
pub const PUBLIC_KEY_LEN: usize = 96;
/// Bytes of a compressed G1 point: a beacon signature.
pub const SIGNATURE_LEN: usize = 48;

/// A validated chain public key (its canonical bytes are kept by [`crate::Chain`]).
pub fn parse_public_key(bytes: &[u8]) -> Result<G2Affine, LockError> {
    if bytes.len() != PUBLIC_KEY_LEN {
        return Err(LockError::BadPublicKey(
            "not 96 bytes (a compressed G2 point)",
        ));
    }
    // `deserialize_compressed` validates: on the curve and in the prime-order subgroup.
    let point = G2Affine::deserialize_compressed(bytes)
        .map_err(|_| LockError::BadPublicKey("not a point of the prime-order subgroup of G2"))?;
    if point.is_zero() {
        return Err(LockError::BadPublicKey("the identity point"));
    }
    if compress_g2(&point).as_slice() != bytes {
        return Err(LockError::BadPublicKey("not the canonical encoding"));
    }
    Ok(point)
}

/// A validated beacon signature.
pub fn parse_signature(bytes: &[u8; SIGNATURE_LEN]) -> Result<G1Affine, LockError> {
    let point = G1Affine::deserialize_compressed(&bytes[..])
        .map_err(|_| LockError::BadSignature("not a point of the prime-order subgroup of G1"))?;
    if point.is_zero() {
        return Err(LockError::BadSignature("the identity point"));
    }
    if compress_g1(&point) != *bytes {
        return Err(LockError::BadSignature("not the canonical encoding"));
    }
    Ok(point)
}

/// The compressed encoding of a G2 point.
pub fn compress_g2(p: &G2Affine) -> [u8; PUBLIC_KEY_LEN] {
    let mut out = [0u8; PUBLIC_KEY_LEN];
    // Writing a point into a buffer of exactly its compressed size cannot fail.
    let _ = p.serialize_compressed(&mut out[..]);
    out
}

/// The compressed encoding of a G1 point.
pub fn compress_g1(p: &G1Affine) -> [u8; SIGNATURE_LEN] {
    let mut out = [0u8; SIGNATURE_LEN];
    let _ = p.serialize_compressed(&mut out[..]);
    out
}

/// The message drand signs for `round`: `sha256(round as u64 big-endian)`.
pub fn round_message(round: u64) -> [u8; 32] {
    Sha256::digest(round.to_be_bytes()).into()
}

/// `H(m)`: the point on G1 that round `round`'s signature signs.
fn hash_round(round: u64) -> Result<G1Affine, LockError> {
    let hasher = MapToCurveBasedHasher::<
        G1Projective,
        DefaultFieldHasher<Sha256, 128>,
        WBMap<g1::Config>,
    >::new(DST)
    .map_err(|_| LockError::BadSignature("hash-to-curve set-up failed"))?;
    hasher
        .hash(&round_message(round))
        .map_err(|_| LockError::BadSignature("hash-to-curve failed"))
}

/// Whether `signature` is the BLS signature of round `round` under `public_key`:
/// `e(sig, g2) == e(H(m), pk)`, checked as one multi-pairing equal to the identity.
pub fn verify(public_key: &G2Affine, round: u64, signature: &G1Affine) -> Result<bool, LockError> {
    let h = hash_round(round)?;
    let minus_h = (-h.into_group()).into_affine();
    let out = Bls12_381::multi_pairing([*signature, minus_h], [G2Affine::generator(), *public_key]);
    Ok(out.is_zero())
}

/// The public key of secret scalar `sk`.
pub fn public_key_of(sk: &Fr) -> G2Affine {
    (G2Affine::generator() * sk).into_affine()
}

/// Round `round`'s signature under secret scalar `sk` (test chains only).
pub fn sign(sk: &Fr, round: u64) -> Result<[u8; SIGNATURE_LEN], LockError> {
    let h = hash_round(round)?;
    Ok(compress_g1(&(h * sk).into_affine()))
}
