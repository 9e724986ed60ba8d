//! [`LockError`]: every way the lock can refuse, as a typed error.
//!
//! Invariant: no variant carries secret material (the per-file secret `T`, a test chain's key);
//! only public values (rounds, chain hashes, lengths) appear in messages.

use thiserror::Error;

/// Why a chain, a beacon or a lock ciphertext was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum LockError {
    #[error(
        "unsupported drand scheme {0:?}: only bls-unchained-g1-rfc9380 (quicknet's) can time-lock"
    )]
    UnsupportedScheme(String),
    #[error("invalid chain public key: {0}")]
    BadPublicKey(&'static str),
    #[error("invalid chain parameters: {0}")]
    BadChain(String),
    #[error(
        "chain {got} claims to be quicknet ({want}) but its parameters differ from the pinned ones"
    )]
    NotPinnedQuicknet { got: String, want: String },
    #[error("round {0} does not exist on this chain (rounds start at 1 and their time must fit in 64 bits)")]
    BadRound(u64),
    #[error("malformed beacon signature: {0}")]
    BadSignature(&'static str),
    #[error(
        "beacon round {round} does not verify against chain {chain}: forged, or from another chain"
    )]
    Forged { round: u64, chain: String },
    #[error("the beacon is for round {beacon} but the lock needs round {lock}")]
    WrongRound { beacon: u64, lock: u64 },
    #[error("the beacon is from chain {beacon} but the lock is on chain {lock}")]
    WrongChain { beacon: String, lock: String },
    #[error("lock ciphertext is {len} bytes, over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("malformed lock ciphertext: {0}")]
    Malformed(String),
    #[error("the lock ciphertext does not open with the beacon of its round: it was not sealed to this chain and round")]
    Undecryptable,
    #[error("the lock opened to {0} bytes, not a 32-byte secret")]
    WrongLength(usize),
    #[error("sealing failed: {0}")]
    Seal(String),
    #[error("malformed test chain secret: {0}")]
    BadTestSecret(&'static str),
    #[error("malformed drand JSON: {0}")]
    Wire(String),
}
