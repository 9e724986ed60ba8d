//! The lock section of a version 2 content manifest: how, besides the holders' refusal to serve
//! pieces early, a file is kept closed until its release time.
//!
//! # Encoding
//!
//! | bytes | field |
//! |---|---|
//! | 1 | kind: 0 = none (peer lock only), 1 = drand tlock |
//! | 32 | (kind 1) drand chain hash |
//! | 8 | (kind 1) round (u64 LE, ≥ 1) |
//! | 2 + len | (kind 1) ciphertext (u16 LE length, 1..=[`MAX_TLOCK_CIPHERTEXT`] bytes): the armour-less age file of the lock secret `T`, tlock-encrypted to the round |
//!
//! This crate does not know drand chains, so two checks are the caller's, who holds the chain
//! parameters: that `chain_hash` is a chain it trusts, and [`DrandLock::check_round`] (the round
//! is the first one at or after the release time). Proto checks only the shape.

use crate::codec::{DecodeError, Reader, Writer};
use thiserror::Error;

/// Largest tlock ciphertext a lock section may carry (an age file of 32 bytes is ≈ 300 bytes).
pub const MAX_TLOCK_CIPHERTEXT: usize = 1024;

const KIND_NONE: u8 = 0;
const KIND_DRAND: u8 = 1;

/// How a file is locked beyond the holders' refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockSection {
    /// No cryptographic time lock: `T` is 32 zero bytes, holders alone keep the file closed.
    None,
    /// `T` tlock-encrypted to a drand round.
    DrandTlock(DrandLock),
}

/// A drand timelock: `T` encrypted so that the chain's signature of `round` decrypts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrandLock {
    /// Hash of the drand chain's info (identifies the chain, its genesis and period).
    pub chain_hash: [u8; 32],
    /// The round whose signature opens the ciphertext (rounds start at 1 at genesis).
    pub round: u64,
    /// The armour-less age file of `T`, 1..=[`MAX_TLOCK_CIPHERTEXT`] bytes.
    pub ciphertext: Vec<u8>,
}

/// Why a lock round does not fit the release time under a chain's parameters.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LockRoundError {
    #[error("the drand chain's period is 0 seconds; its parameters are wrong")]
    ZeroPeriod,
    #[error("round {round} of this chain lies beyond the year 584 billion; the manifest is wrong")]
    Overflow { round: u64 },
    #[error(
        "lock round {round} is not the first round at or after the release time {release} \
         (that is round {expected}): the file would open {when}"
    )]
    WrongRound {
        round: u64,
        expected: u64,
        release: u64,
        when: &'static str,
    },
}

impl DrandLock {
    /// Unix time of `round` on a chain with `genesis` (time of round 1) and `period` seconds:
    /// `genesis + (round − 1) × period`, or `None` if that overflows (or `round` is 0).
    pub fn round_time(round: u64, genesis: u64, period: u64) -> Option<u64> {
        round
            .checked_sub(1)?
            .checked_mul(period)?
            .checked_add(genesis)
    }

    /// The first round at or after `release` on a chain with `genesis` and `period`.
    pub fn first_round_at_or_after(
        release: u64,
        genesis: u64,
        period: u64,
    ) -> Result<u64, LockRoundError> {
        if period == 0 {
            return Err(LockRoundError::ZeroPeriod);
        }
        let Some(after) = release.checked_sub(genesis).filter(|&d| d > 0) else {
            return Ok(1);
        };
        // Overflows only for period 1 and release − genesis = u64::MAX.
        after
            .div_ceil(period)
            .checked_add(1)
            .ok_or(LockRoundError::Overflow { round: u64::MAX })
    }

    /// Checks the rule of the manifest format: the lock round is exactly the first round at or
    /// after `release` on the chain with `genesis` (Unix time of round 1) and `period` (seconds).
    /// An earlier round would open the file before its release time; a later one would keep it
    /// closed longer than announced. Pure, checked arithmetic; run it with the parameters of the
    /// chain named by [`DrandLock::chain_hash`].
    pub fn check_round(
        &self,
        release: u64,
        genesis: u64,
        period: u64,
    ) -> Result<(), LockRoundError> {
        let expected = Self::first_round_at_or_after(release, genesis, period)?;
        if Self::round_time(self.round, genesis, period).is_none() {
            return Err(LockRoundError::Overflow { round: self.round });
        }
        if self.round == expected {
            return Ok(());
        }
        Err(LockRoundError::WrongRound {
            round: self.round,
            expected,
            release,
            when: if self.round < expected {
                "before its release time"
            } else {
                "later than its release time"
            },
        })
    }
}

impl LockSection {
    pub(crate) fn encode(&self, w: &mut Writer) {
        match self {
            LockSection::None => w.u8(KIND_NONE),
            LockSection::DrandTlock(d) => {
                w.u8(KIND_DRAND);
                w.bytes(&d.chain_hash);
                w.u64(d.round);
                w.u16(d.ciphertext.len() as u16);
                w.bytes(&d.ciphertext);
            }
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("lock kind")? {
            KIND_NONE => Ok(LockSection::None),
            KIND_DRAND => {
                let chain_hash = r.array("drand chain hash")?;
                let round = r.u64("drand round")?;
                let len = usize::from(r.u16("tlock ciphertext length")?);
                let ciphertext = r.take(len, "tlock ciphertext")?.to_vec();
                let lock = LockSection::DrandTlock(DrandLock {
                    chain_hash,
                    round,
                    ciphertext,
                });
                lock.check()?;
                Ok(lock)
            }
            _ => Err(DecodeError::Invalid {
                field: "lock kind",
                reason: "unknown lock kind (0 = none, 1 = drand tlock)",
            }),
        }
    }

    /// The shape rules: a drand round ≥ 1, a ciphertext of 1..=[`MAX_TLOCK_CIPHERTEXT`] bytes.
    pub fn check(&self) -> Result<(), DecodeError> {
        let LockSection::DrandTlock(d) = self else {
            return Ok(());
        };
        if d.round == 0 {
            return Err(DecodeError::Invalid {
                field: "drand round",
                reason: "drand rounds start at 1",
            });
        }
        if d.ciphertext.is_empty() || d.ciphertext.len() > MAX_TLOCK_CIPHERTEXT {
            return Err(DecodeError::Invalid {
                field: "tlock ciphertext",
                reason: "must be 1 to 1024 bytes",
            });
        }
        Ok(())
    }

    /// The drand lock, if any.
    pub fn drand(&self) -> Option<&DrandLock> {
        match self {
            LockSection::None => None,
            LockSection::DrandTlock(d) => Some(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // drand quicknet: genesis 1692803367, period 3 s.
    const GENESIS: u64 = 1_692_803_367;

    fn lock(round: u64) -> DrandLock {
        DrandLock {
            chain_hash: [1; 32],
            round,
            ciphertext: vec![1],
        }
    }

    #[test]
    fn first_round_at_or_after_release() {
        let f = |release| DrandLock::first_round_at_or_after(release, GENESIS, 3).unwrap();
        assert_eq!(f(0), 1);
        assert_eq!(f(GENESIS), 1);
        assert_eq!(f(GENESIS + 1), 2);
        assert_eq!(f(GENESIS + 3), 2);
        assert_eq!(f(GENESIS + 4), 3);
        for release in GENESIS..GENESIS + 20 {
            let r = f(release);
            let t = DrandLock::round_time(r, GENESIS, 3).unwrap();
            assert!(t >= release, "round {r} at {t} before {release}");
            assert!(r == 1 || DrandLock::round_time(r - 1, GENESIS, 3).unwrap() < release);
        }
    }

    #[test]
    fn check_round_refuses_early_late_and_nonsense() {
        let release = GENESIS + 100;
        let expected = DrandLock::first_round_at_or_after(release, GENESIS, 3).unwrap();
        lock(expected).check_round(release, GENESIS, 3).unwrap();
        assert!(matches!(
            lock(expected - 1).check_round(release, GENESIS, 3),
            Err(LockRoundError::WrongRound {
                when: "before its release time",
                ..
            })
        ));
        assert!(lock(expected + 1).check_round(release, GENESIS, 3).is_err());
        assert_eq!(
            lock(expected).check_round(release, GENESIS, 0),
            Err(LockRoundError::ZeroPeriod)
        );
        assert!(lock(u64::MAX).check_round(u64::MAX, 0, 1).is_err());
        assert!(lock(u64::MAX)
            .check_round(release, GENESIS, u64::MAX)
            .is_err());
        assert_eq!(DrandLock::round_time(0, GENESIS, 3), None);
    }
}
