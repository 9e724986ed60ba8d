//! Release times as people write and read them.
//!
//! Accepted forms (the `--release-time` help says the same):
//! * RFC 3339 with any offset: `2026-12-25T10:00:00Z`, `2026-12-25T10:00:00+01:00`;
//! * a date-time without an offset (`2026-12-25T10:00`, `2026-12-25 10:00:00`): taken in the
//!   zone given by `--tz` (`+01:00`, `-05:30`, `UTC`), and refused without it — never silently
//!   UTC;
//! * a date (`2026-12-25`): midnight UTC of that day;
//! * from now: `+90m`, `+2h`, `+7d`, `+1h30m`.
//!
//! Invariants: every answer is in `(now, MAX_RFC3339]` (after now, no later than year 9999), or
//! an error that says what to write instead; parsing and formatting are total (no panic).

use anyhow::{anyhow, bail, Result};
use kairos_proto::time::{rfc3339, MAX_RFC3339};

const FORMS: &str = "an RFC 3339 time (2026-12-25T10:00:00Z or 2026-12-25T10:00:00+01:00), a date (2026-12-25, midnight UTC), a date-time with --tz, or a duration from now (+90m, +2h, +7d)";

/// Parses a `--tz` value: `UTC`, `Z`, or an offset `±HH:MM` / `±HHMM`, to seconds east of UTC.
pub fn parse_tz(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" {
        return Ok(0);
    }
    parse_offset(t).ok_or_else(|| format!("{t:?} is not a UTC offset like +01:00, -05:30 or UTC"))
}

fn parse_offset(t: &str) -> Option<i64> {
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i64, i64) = (digits[..2].parse().ok()?, digits[2..].parse().ok()?);
    (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian), or `None` if invalid.
fn days_from_civil(y: i64, m: i64, d: i64) -> Option<i64> {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_len = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > month_len[(m - 1) as usize] {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn num(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD` → days since the epoch.
fn parse_date(s: &str) -> Option<i64> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    days_from_civil(num(y)?, num(m)?, num(d)?)
}

/// `HH:MM[:SS]` → seconds into the day.
fn parse_clock(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let (h, m) = (num(parts[0])?, num(parts[1])?);
    let sec = parts.get(2).map_or(Some(0), |p| num(p))?;
    (h <= 23 && m <= 59 && sec <= 60).then_some(h * 3600 + m * 60 + sec.min(59))
}

/// An absolute time: `Some(Ok(unix))`, `Some(Err(why))` for a form that is close but not
/// usable, `None` for a text that is not a date at all.
fn parse_absolute(t: &str, tz: Option<i64>) -> Option<Result<i64>> {
    if let Some(days) = parse_date(t) {
        return Some(Ok(days * 86_400));
    }
    let (date, rest) = t.split_at_checked(10)?;
    let days = parse_date(date)?;
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let (clock, offset) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, Some(0))
    } else if let Some(i) = rest.rfind(['+', '-']) {
        (&rest[..i], Some(parse_offset(&rest[i..])?))
    } else {
        (rest, None)
    };
    let clock = clock.split('.').next().unwrap_or(clock); // fractions of a second are dropped
    let secs = days * 86_400 + parse_clock(clock)?;
    Some(match offset.or(tz) {
        Some(off) => Ok(secs - off),
        None => Err(anyhow!(
            "{t:?} has no UTC offset; write it with one ({t}Z or {t}+01:00) or pass --tz (e.g. --tz +01:00, --tz UTC)"
        )),
    })
}

/// Parses a release time relative to `now` (Unix seconds); `tz` is `--tz` in seconds east
/// of UTC. Refuses times that are not in the future or beyond year 9999.
pub fn parse_release(text: &str, tz: Option<i64>, now: u64) -> Result<u64> {
    let t = text.trim();
    let release: i128 = if let Some(rel) = t.strip_prefix('+') {
        let d = humantime::parse_duration(rel)
            .map_err(|e| anyhow!("{t:?} is not a duration like +90m, +2h or +7d: {e}"))?;
        i128::from(now) + d.as_secs() as i128
    } else if let Some(abs) = parse_absolute(t, tz) {
        i128::from(abs?)
    } else if humantime::parse_duration(t).is_ok() {
        bail!("{t:?} is not a release time; did you mean +{t} (that long from now)?");
    } else {
        bail!("{t:?} is not a release time; give {FORMS}");
    };
    if release > i128::from(MAX_RFC3339) {
        bail!(
            "release time {t:?} is after the year 9999; give a time before {}",
            rfc3339(MAX_RFC3339)
        );
    }
    if release <= i128::from(now) {
        let shown = u64::try_from(release).map_or_else(|_| "before 1970".into(), rfc3339);
        bail!(
            "release time {shown} is not in the future (now is {}); give a later time or a duration such as +1h",
            rfc3339(now)
        );
    }
    Ok(release as u64)
}

/// `2026-12-25T09:00:00Z (in 2 h 3 min)`: the absolute UTC time and how far it is from `now`.
pub fn describe(t: u64, now: u64) -> String {
    if t >= now {
        format!("{} (in {})", rfc3339(t), span(t - now))
    } else {
        format!("{} ({} ago)", rfc3339(t), span(now - t))
    }
}

/// A span in its two largest units: `45 s`, `2 h 3 min`, `3 d 4 h`, `12 y 40 d`.
fn span(secs: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (365 * 86_400, "y"),
        (86_400, "d"),
        (3600, "h"),
        (60, "min"),
        (1, "s"),
    ];
    let Some(i) = UNITS.iter().position(|(u, _)| secs >= *u) else {
        return "0 s".into();
    };
    let (u, name) = UNITS[i];
    let mut out = format!("{} {name}", secs / u);
    if let Some((v, next)) = UNITS.get(i + 1) {
        let rest = (secs % u) / v;
        if rest > 0 {
            out += &format!(" {rest} {next}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_proto::time::parse_rfc3339;
    use proptest::prelude::*;

    fn at(s: &str) -> u64 {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn parses_every_documented_form() {
        let now = at("2026-11-26T00:00:00Z");
        assert_eq!(parse_release("+30s", None, now).unwrap(), now + 30);
        assert_eq!(parse_release("+90m", None, now).unwrap(), now + 5400);
        assert_eq!(parse_release("+7d", None, now).unwrap(), now + 7 * 86400);
        let noon_utc = at("2026-12-25T09:00:00Z");
        assert_eq!(
            parse_release("2026-12-25T09:00:00Z", None, now).unwrap(),
            noon_utc
        );
        assert_eq!(
            parse_release("2026-12-25T10:00:00+01:00", None, now).unwrap(),
            noon_utc
        );
        assert_eq!(
            parse_release("2026-12-25T04:30:00-04:30", None, now).unwrap(),
            noon_utc
        );
        assert_eq!(
            parse_release("2026-12-25T10:00:00", Some(3600), now).unwrap(),
            noon_utc
        );
        assert_eq!(
            parse_release("2026-12-25 10:00", Some(3600), now).unwrap(),
            noon_utc
        );
        assert_eq!(
            parse_release("2026-12-25", None, now).unwrap(),
            at("2026-12-25T00:00:00Z")
        );
        assert_eq!(parse_tz("+01:00"), Ok(3600));
        assert_eq!(parse_tz("UTC"), Ok(0));
        assert!(parse_tz("CET").is_err());
    }

    #[test]
    fn refusals_say_what_to_write() {
        let now = at("2026-11-26T00:00:00Z");
        let err = |t: &str| parse_release(t, None, now).unwrap_err().to_string();
        assert!(err("2026-12-25T10:00:00").contains("--tz"));
        assert!(err("2h").contains("did you mean +2h"));
        assert!(err("soon").contains("+2h"));
        assert!(err("2020-01-01T00:00:00Z").contains("not in the future"));
        assert!(err("+0s").contains("not in the future"));
        assert!(err("+10000y").contains("year 9999"));
        assert!(err("10000-01-01").contains("+2h"));
        assert!(err("2026-02-30").contains("+2h"));
    }

    #[test]
    fn times_are_shown_absolute_and_relative() {
        let now = at("2026-11-26T00:00:00Z");
        assert_eq!(
            describe(now + 7380, now),
            "2026-11-26T02:03:00Z (in 2 h 3 min)"
        );
        assert_eq!(describe(now - 45, now), "2026-11-25T23:59:15Z (45 s ago)");
        assert_eq!(span(3 * 86400 + 4 * 3600 + 5), "3 d 4 h");
    }

    proptest! {
        /// Any text and any clock: an answer in (now, year 9999] or an error, never a panic;
        /// and every answer can be shown.
        #[test]
        fn parsing_and_showing_are_total(text in ".{0,40}", now in any::<u64>(), tz in proptest::option::of(-86_399i64..86_399)) {
            if let Ok(t) = parse_release(&text, tz, now) {
                prop_assert!(t > now && t <= MAX_RFC3339);
            }
            let _ = describe(now, now / 2);
            let _ = describe(now / 2, now);
        }

        #[test]
        fn dates_agree_with_the_rfc3339_parser(secs in 0u64..=MAX_RFC3339) {
            let text = rfc3339(secs);
            prop_assert_eq!(parse_absolute(&text, None).unwrap().unwrap(), i64::try_from(secs).unwrap());
        }
    }
}
