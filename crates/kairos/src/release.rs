//! Parsing the `--release-time` argument: an RFC 3339 UTC time or a duration from now.

use anyhow::{bail, Context, Result};

/// Parses `2026-12-01T15:00:00Z`, or `+30s` / `+2h` / `+7d` / `+1h30m` relative to `now`
/// (Unix seconds). Refuses times that are not in the future.
pub fn parse_release(text: &str, now: u64) -> Result<u64> {
    let t = text.trim();
    let release = if let Some(rel) = t.strip_prefix('+') {
        let d = humantime::parse_duration(rel)
            .with_context(|| format!("{t:?} is not a duration like +30s, +2h or +7d"))?;
        now.saturating_add(d.as_secs())
    } else {
        kairos_proto::time::parse_rfc3339(t).map_err(anyhow::Error::msg)?
    };
    if release <= now {
        bail!(
            "release time {} is not in the future (now is {}); give a later time or a duration such as +1h",
            kairos_proto::time::rfc3339(release),
            kairos_proto::time::rfc3339(now)
        );
    }
    Ok(release)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        let now = kairos_proto::time::parse_rfc3339("2026-11-26T00:00:00Z").unwrap();
        assert_eq!(parse_release("+30s", now).unwrap(), now + 30);
        assert_eq!(parse_release("+2h", now).unwrap(), now + 7200);
        assert_eq!(parse_release("+7d", now).unwrap(), now + 7 * 86400);
        assert_eq!(
            parse_release("2026-12-01T15:00:00Z", now).unwrap(),
            kairos_proto::time::parse_rfc3339("2026-12-01T15:00:00Z").unwrap()
        );
        assert!(parse_release("2020-01-01T00:00:00Z", now).is_err());
        assert!(parse_release("+0s", now).is_err());
        assert!(parse_release("soon", now).is_err());
    }
}
