//! Time as it appears on the wire: whole Unix seconds (u64), shown to people as RFC 3339 UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The system clock in Unix seconds. Only the edges (servers, CLI) call this; logic takes `now`.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The last second RFC 3339 can write: 9999-12-31T23:59:59Z.
pub const MAX_RFC3339: u64 = 253_402_300_799;

/// `2026-12-01T15:00:00Z`. Total: a time past year 9999 (which a peer may send) is shown as
/// its Unix seconds instead of panicking, as the formatter would.
pub fn rfc3339(secs: u64) -> String {
    if secs > MAX_RFC3339 {
        return format!("{secs} (Unix seconds, after the year 9999)");
    }
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// Parses an RFC 3339 UTC time (`2026-12-01T15:00:00Z`) to Unix seconds.
pub fn parse_rfc3339(s: &str) -> Result<u64, String> {
    let t = humantime::parse_rfc3339_weak(s.trim())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time like 2026-12-01T15:00:00Z: {e}"))?;
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| format!("{s:?} is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let t = parse_rfc3339("2026-12-01T15:00:00Z").unwrap();
        assert_eq!(rfc3339(t), "2026-12-01T15:00:00Z");
        assert!(parse_rfc3339("tomorrow").is_err());
        assert_eq!(rfc3339(MAX_RFC3339), "9999-12-31T23:59:59Z");
    }

    proptest::proptest! {
        /// No value a peer can send makes the formatter panic.
        #[test]
        fn formats_every_u64(secs: u64) {
            let text = rfc3339(secs);
            proptest::prop_assert!(!text.is_empty());
        }
    }
}
