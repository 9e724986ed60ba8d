//! The plain request/response commands kairos uses — GETINFO, SETCONF, SIGNAL, TAKEOWNERSHIP —
//! and the values read with them (bootstrap status, SOCKS listeners).
//!
//! Invariants:
//! * Keys and option names are checked as single words and SETCONF values are quoted, so no
//!   argument can smuggle a second command (see [`crate::reply::quote`]).
//! * GETINFO replies are accepted only in their documented shape (`key=value` lines, data
//!   blocks only after an empty value, a final `OK`); anything else is
//!   [`ControlError::Unexpected`].

use super::connection::Control;
use crate::error::ControlError;
use crate::reply::{self, arg_value, parse_args, Arg};
use std::net::SocketAddr;

/// A `status/bootstrap-phase` report (control-spec §4.1.10, "BOOTSTRAP").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapStatus {
    /// 0..=100; 100 means tor is ready to build circuits.
    pub progress: u8,
    pub tag: String,
    pub summary: String,
    /// Set when tor reported a problem (`WARN BOOTSTRAP ... WARNING=...`).
    pub warning: Option<String>,
}

impl BootstrapStatus {
    /// Parses `NOTICE BOOTSTRAP PROGRESS=50 TAG=loading_descriptors SUMMARY="..."`.
    pub fn parse(text: &str) -> Result<BootstrapStatus, ControlError> {
        let bad = |reason| ControlError::Malformed {
            reason,
            line: text.to_string(),
        };
        let args = parse_args(text)?;
        if args.get(1) != Some(&Arg::Word("BOOTSTRAP".into())) {
            return Err(bad("bootstrap status without BOOTSTRAP keyword"));
        }
        let progress: u8 = arg_value(&args, "PROGRESS")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p <= 100)
            .ok_or_else(|| bad("bootstrap status without a valid PROGRESS"))?;
        Ok(BootstrapStatus {
            progress,
            tag: arg_value(&args, "TAG").unwrap_or("").to_string(),
            summary: arg_value(&args, "SUMMARY").unwrap_or("").to_string(),
            warning: arg_value(&args, "WARNING").map(str::to_string),
        })
    }
}

/// `SIGNAL` arguments that kairos uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// New circuits for new streams; also clears the client's cache of failed onion lookups.
    Newnym,
    /// Clean shutdown.
    Shutdown,
    /// Immediate shutdown.
    Halt,
    /// Reload configuration.
    Reload,
}

impl Signal {
    fn keyword(self) -> &'static str {
        match self {
            Signal::Newnym => "NEWNYM",
            Signal::Shutdown => "SHUTDOWN",
            Signal::Halt => "HALT",
            Signal::Reload => "RELOAD",
        }
    }
}

impl Control {
    /// GETINFO for several keys; returns `(key, value)` in tor's order. Data-block values come
    /// back as their (un-dot-escaped) block.
    pub async fn get_info_many(
        &mut self,
        keys: &[&str],
    ) -> Result<Vec<(String, String)>, ControlError> {
        for k in keys {
            reply::check_word(k)?;
        }
        let reply = self.command(&format!("GETINFO {}", keys.join(" "))).await?;
        let (last, values) = reply.lines.split_last().expect("replies have a line");
        if last.text != "OK" || last.data.is_some() {
            return Err(getinfo_unexpected(format!(
                "reply does not end with OK: {:?}",
                last.text
            )));
        }
        values.iter().map(getinfo_value).collect()
    }

    /// GETINFO for one key.
    pub async fn get_info(&mut self, key: &str) -> Result<String, ControlError> {
        let values = self.get_info_many(&[key]).await?;
        values
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or_else(|| getinfo_unexpected(format!("no value for {key}")))
    }

    /// SETCONF `key=value` pairs atomically (values are quoted).
    pub async fn set_conf(&mut self, pairs: &[(&str, &str)]) -> Result<(), ControlError> {
        let mut line = String::from("SETCONF");
        for (k, v) in pairs {
            reply::check_word(k)?;
            line.push(' ');
            line.push_str(k);
            line.push('=');
            line.push_str(&reply::quote(v)?);
        }
        self.command(&line).await.map(drop)
    }

    /// SIGNAL.
    pub async fn signal(&mut self, signal: Signal) -> Result<(), ControlError> {
        self.command(&format!("SIGNAL {}", signal.keyword()))
            .await
            .map(drop)
    }

    /// TAKEOWNERSHIP: tor exits when this connection closes.
    pub async fn take_ownership(&mut self) -> Result<(), ControlError> {
        self.command("TAKEOWNERSHIP").await.map(drop)
    }

    /// `status/bootstrap-phase`.
    pub async fn bootstrap_status(&mut self) -> Result<BootstrapStatus, ControlError> {
        BootstrapStatus::parse(&self.get_info("status/bootstrap-phase").await?)
    }

    /// The first loopback SOCKS listener tor has open (`net/listeners/socks`).
    pub async fn socks_listener(&mut self) -> Result<Option<SocketAddr>, ControlError> {
        let value = self.get_info("net/listeners/socks").await?;
        Ok(parse_listeners(&value)?
            .into_iter()
            .find(|a| a.ip().is_loopback()))
    }
}

/// One `key=value` line of a GETINFO reply; a data block stands for an empty inline value.
fn getinfo_value(line: &reply::ReplyLine) -> Result<(String, String), ControlError> {
    let Some((key, value)) = line.text.split_once('=') else {
        return Err(getinfo_unexpected(format!(
            "line without '=': {:?}",
            line.text
        )));
    };
    let value = match &line.data {
        Some(data) if value.is_empty() => data.clone(),
        Some(_) => {
            return Err(getinfo_unexpected(
                "data block after a non-empty value".into(),
            ))
        }
        None => value.to_string(),
    };
    Ok((key.to_string(), value))
}

fn getinfo_unexpected(detail: String) -> ControlError {
    ControlError::Unexpected {
        command: "GETINFO".into(),
        detail,
    }
}

/// Parses `net/listeners/*` values: space-separated quoted `"ip:port"` entries (unix sockets,
/// `"unix:..."`, are skipped).
pub fn parse_listeners(value: &str) -> Result<Vec<SocketAddr>, ControlError> {
    let mut out = Vec::new();
    for arg in parse_args(value)? {
        let Arg::Word(w) = arg else {
            return Err(ControlError::Malformed {
                reason: "listener entry is not an address",
                line: value.to_string(),
            });
        };
        if w.starts_with("unix:") {
            continue;
        }
        let addr = w.parse().map_err(|_| ControlError::Malformed {
            reason: "listener entry is not ip:port",
            line: value.to_string(),
        })?;
        out.push(addr);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_status_parses_captured_lines() {
        let s = BootstrapStatus::parse("NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY=\"Done\"")
            .unwrap();
        assert_eq!(s.progress, 100);
        assert_eq!(s.tag, "done");
        assert_eq!(s.summary, "Done");
        assert_eq!(s.warning, None);
        let s = BootstrapStatus::parse("WARN BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY=\"Connecting to a relay\" WARNING=\"Connection refused\" REASON=CONNECTREFUSED COUNT=3 RECOMMENDATION=ignore HOSTID=\"AAAA\" HOSTADDR=\"127.0.0.1:1\"").unwrap();
        assert_eq!(s.progress, 5);
        assert_eq!(s.warning.as_deref(), Some("Connection refused"));
        assert!(BootstrapStatus::parse("NOTICE BOOTSTRAP PROGRESS=101").is_err());
        assert!(BootstrapStatus::parse("NOTICE CIRCUIT_ESTABLISHED").is_err());
        assert!(BootstrapStatus::parse("NOTICE BOOTSTRAP TAG=x").is_err());
    }

    #[test]
    fn listeners_parse() {
        assert_eq!(
            parse_listeners("\"127.0.0.1:9050\" \"[::1]:9050\" \"unix:/x y\"").unwrap(),
            vec![
                "127.0.0.1:9050".parse().unwrap(),
                "[::1]:9050".parse().unwrap()
            ]
        );
        assert_eq!(parse_listeners("").unwrap(), vec![]);
        assert!(parse_listeners("\"nonsense\"").is_err());
        assert!(parse_listeners("A=B").is_err());
    }
}
