//! The drand lock of kairos: the cryptographic layer under the peer lock. A file sealed with it
//! cannot be opened before the drand round of its release time, even if every holder and every
//! directory serves everything early.
//!
//! Per file, the uploader draws a random 32-byte secret `T` ([`LockSecret`]), seals it with
//! tlock (Boneh–Franklin IBE over BLS12-381, via `tlock_age`) to round `R` of a drand chain —
//! the first round whose time is at or after the release time ([`Chain::round_at_or_after`]) —
//! and puts the ciphertext in the signed manifest; block keys derive from both the Shamir
//! secret of the block and `T`. Nobody can decrypt `T` before the chain publishes round `R`'s
//! BLS signature (the beacon). Any relay may carry beacons: each verifies itself against the
//! chain's public key.
//!
//! This crate is pure: no network, no files, no clock (callers pass `now`). Modules:
//! * [`chain`] — [`Chain`] (hash, key, genesis, period, scheme, `is_test`), pinned
//!   [`Chain::quicknet`], validated [`Chain::from_info`], round arithmetic;
//! * `beacon` — [`Beacon`] (unverified) and [`VerifiedBeacon`] (only from [`Chain::verify`]);
//! * `seal` — [`seal_secret`], [`open_secret`], [`check_ciphertext`], [`LockSecret`];
//! * `test_chain` — [`TestChain`], a local chain for the devnet, the demo and tests;
//! * [`wire`] — drand's HTTP JSON (chain info, beacon), [`Chain::from_info`]; `hex` — hex;
//! * `bls` — the BLS12-381 operations of the scheme; `error` — [`LockError`].
//!
//! Module graph (`a → b`: `a` imports `b`; no cycles):
//! `seal → beacon, chain, error, hex`; `wire → beacon, bls, chain, error, hex`;
//! `test_chain → beacon, bls, chain, error`; `beacon → bls, chain, error, hex`;
//! `chain → bls, error, hex`; `bls, hex → error`. ([`Chain::from_info`] is implemented in
//! `wire`, next to the JSON it reads, so `chain` needs nothing of `wire`.)
//!
//! Invariants, kept by the modules named:
//! * `T` is never stored in clear, never logged, and zeroized after use: [`LockSecret`] has a
//!   redacted `Debug` and zeroizes on drop; decryption writes into a zeroizing buffer (`seal`).
//! * Verify before decrypt: [`open_secret`] takes only a [`VerifiedBeacon`], which only
//!   [`Chain::verify`] makes, bound to the chain it verified against (`beacon`).
//! * Round check: [`open_secret`] refuses a beacon of another round or chain, and a ciphertext
//!   whose header names another round or chain, before `tlock_age` sees it (it panics on a
//!   valid beacon of the wrong round); the remaining internal assertion of `tlock_age` is
//!   caught and reported as [`LockError::Undecryptable`] (`seal`).
//! * Chain keys are validated at construction (`tlock_age::encrypt` returns `Ok` with an
//!   invalid key and a ciphertext nobody can open): canonical, non-identity, prime-order
//!   subgroup of G2 (`chain`, `bls`).
//! * Never raw `tlock` (16-byte payloads, trailing zeros stripped): always `tlock_age`.
//! * Nothing panics on network input: decoders are total, round arithmetic is checked.

pub mod chain;
pub mod wire;

mod beacon;
mod bls;
mod error;
mod hex;
mod seal;
mod test_chain;

pub use beacon::{Beacon, VerifiedBeacon};
pub use bls::{PUBLIC_KEY_LEN, SIGNATURE_LEN};
pub use chain::{test_chain_hash, Chain, Scheme};
pub use error::LockError;
pub use seal::{
    check_ciphertext, open_secret, seal_secret, LockSecret, MAX_CIPHERTEXT, SECRET_LEN,
};
pub use test_chain::{TestChain, TEST_SECRET_LEN};
pub use wire::{BeaconJson, ChainInfo};
