//! Setting values written as text: byte sizes (`10GiB`), durations (`5m`), coding (`4+2`) and
//! sibling directories (`KEY@host:port`).
//!
//! Each type parses from text once, at the edge of its layer: clap parses flags and `KAIROS_*`
//! variables with [`std::str::FromStr`] (a bad value is a usage error naming the flag), serde
//! parses the config file from the same text (a bad value names the key and line). `Display`
//! writes text that parses back to the same value, so a layer can be re-serialised when the
//! layers are merged (see [`crate::settings::layers`]).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A byte count written like `10GiB`, `500MB` or `4096`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let num: f64 = num
            .parse()
            .map_err(|_| format!("{text:?} is not a size like 10GiB or 500MB"))?;
        let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "kb" => 1e3,
            "mb" => 1e6,
            "gb" => 1e9,
            "tb" => 1e12,
            "k" | "kib" => 1024.0,
            "m" | "mib" => 1024.0 * 1024.0,
            "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
            "t" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
            _ => {
                return Err(format!(
                    "unknown unit in {text:?}; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
                ))
            }
        };
        Ok(ByteSize((num * mult) as u64))
    }
}

/// A duration written like `30s`, `5m`, `2h` or `7d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        humantime::parse_duration(text.trim())
            .map(Span)
            .map_err(|_| format!("{text:?} is not a duration like 30s, 5m, 2h or 7d"))
    }
}

/// Coding parameters written `K+M` (e.g. `4+2`), with the default shard size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Coding(pub kairos_seal::Params);

impl FromStr for Coding {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (k, m) = text
            .split_once('+')
            .ok_or_else(|| format!("{text:?}: expected K+M such as 4+2"))?;
        let params = kairos_seal::Params {
            data_shards: k
                .trim()
                .parse()
                .map_err(|_| format!("{text:?}: K is not a number"))?,
            parity_shards: m
                .trim()
                .parse()
                .map_err(|_| format!("{text:?}: M is not a number"))?,
            ..kairos_seal::Params::default()
        };
        params.validate().map_err(|e| format!("{text:?}: {e}"))?;
        Ok(Coding(params))
    }
}

/// A sibling directory `KEY@host:port`, checked and kept as text: the directory library parses
/// it again from the merged settings.
pub fn sibling(text: &str) -> Result<String, String> {
    text.parse::<kairos_directory::Sibling>()?;
    Ok(text.to_owned())
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl fmt::Display for Coding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.0.k(), self.0.m())
    }
}

/// The serde side of each type goes through its text form, so a file holds what a flag takes.
macro_rules! via_text {
    ($($t:ty),*) => {$(
        impl TryFrom<String> for $t {
            type Error = String;
            fn try_from(text: String) -> Result<Self, String> {
                text.parse()
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.to_string()
            }
        }
    )*};
}
via_text!(ByteSize, Span, Coding);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_durations_and_codings() {
        let size = |t: &str| t.parse::<ByteSize>().map(|b| b.0);
        assert_eq!(size("10GiB").unwrap(), 10 << 30);
        assert_eq!(size("500MB").unwrap(), 500_000_000);
        assert_eq!(size("4096").unwrap(), 4096);
        assert!(size("ten").is_err());
        assert!(size("3 parsecs").is_err());
        assert_eq!("5m".parse::<Span>().unwrap().0, Duration::from_secs(300));
        assert!("soon".parse::<Span>().is_err());
        assert_eq!("3+1".parse::<Coding>().unwrap().0.total_shards(), 4);
        assert!("1+1".parse::<Coding>().is_err());
        assert!("4".parse::<Coding>().is_err());
    }

    #[test]
    fn text_forms_parse_back() {
        for t in ["10GiB", "1", "0"] {
            let v: ByteSize = t.parse().unwrap();
            assert_eq!(v.to_string().parse::<ByteSize>().unwrap(), v);
        }
        for t in ["5m", "1d 2h", "90s", "250ms"] {
            let v: Span = t.parse().unwrap();
            assert_eq!(v.to_string().parse::<Span>().unwrap(), v);
            // The directory library's file parser reads the same text.
            assert_eq!(humantime::parse_duration(&v.to_string()).unwrap(), v.0);
        }
        let c: Coding = "3+2".parse().unwrap();
        assert_eq!(c.to_string(), "3+2");
    }
}
