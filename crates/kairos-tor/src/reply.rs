//! Strict parser for Tor control-port replies (control-spec §2.3, §4.1) and the small value
//! grammar that replies use (`KEY=VALUE`, `KEY="quoted string"`).
//!
//! Invariants:
//! * Every line must be `3 digits` + one of `-`, ` `, `+` + text, terminated by CRLF. Anything
//!   else is a [`ControlError::Malformed`] — the parser never panics and never guesses.
//! * All lines of one reply carry the same status code; a reply ends exactly at the first line
//!   whose separator is a space.
//! * A `+` line is followed by a data block that ends with a line holding only `.`; leading
//!   dots are un-doubled. Data lines are joined with `\n` (no trailing newline).
//! * Sizes are bounded ([`MAX_LINE`], [`MAX_REPLY`]) so a broken peer cannot make us buffer
//!   without limit.

use crate::error::ControlError;

/// Longest accepted line, in bytes, including CRLF.
pub const MAX_LINE: usize = 1 << 20;
/// Largest accepted reply (all lines and data), in bytes.
pub const MAX_REPLY: usize = 64 << 20;

/// One line of a reply. For a `+` line, `text` is the part before the data block (e.g.
/// `md/all=`) and `data` holds the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    pub text: String,
    pub data: Option<String>,
}

/// A complete reply: a status code and its lines (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<ReplyLine>,
}

impl Reply {
    /// 2xx: the command succeeded.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 6xx: an asynchronous event.
    pub fn is_event(&self) -> bool {
        (600..700).contains(&self.code)
    }

    /// Text of the last line (the one that ended the reply, e.g. `OK`).
    pub fn last_text(&self) -> &str {
        self.lines.last().map(|l| l.text.as_str()).unwrap_or("")
    }

    /// Text of the first line.
    pub fn first_text(&self) -> &str {
        self.lines.first().map(|l| l.text.as_str()).unwrap_or("")
    }
}

fn malformed(reason: &'static str, line: &[u8]) -> ControlError {
    let mut shown = String::from_utf8_lossy(line).into_owned();
    if shown.len() > 200 {
        let mut cut = 200;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
        shown.push('…');
    }
    ControlError::Malformed {
        reason,
        line: shown,
    }
}

/// Incremental reply parser: feed it complete lines (with their CRLF), get replies out.
#[derive(Debug, Default)]
pub struct ReplyParser {
    code: Option<u16>,
    lines: Vec<ReplyLine>,
    /// Inside a data block: the text of the `+` line, the data so far, and whether the block
    /// has had a line yet (so that an empty first data line is kept).
    data: Option<(String, String, bool)>,
    size: usize,
}

impl ReplyParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// True when no reply is partially parsed.
    pub fn is_idle(&self) -> bool {
        self.code.is_none() && self.data.is_none()
    }

    /// Feeds one line, which must end with CRLF. Returns a reply when this line completed one.
    /// After an error the parser is reset; the connection should be considered broken.
    pub fn push_line(&mut self, raw: &[u8]) -> Result<Option<Reply>, ControlError> {
        let result = self.push_line_inner(raw);
        if result.is_err() {
            *self = Self::default();
        }
        result
    }

    fn push_line_inner(&mut self, raw: &[u8]) -> Result<Option<Reply>, ControlError> {
        if raw.len() > MAX_LINE {
            return Err(malformed("line too long", raw));
        }
        let body = raw
            .strip_suffix(b"\r\n")
            .ok_or_else(|| malformed("line does not end with CRLF", raw))?;
        if body.contains(&b'\r') || body.contains(&b'\n') {
            return Err(malformed("stray CR or LF inside a line", raw));
        }
        self.size += raw.len();
        if self.size > MAX_REPLY {
            return Err(malformed("reply too large", raw));
        }

        if self.data.is_some() {
            self.push_data_line(body);
            return Ok(None);
        }
        if body.len() < 4 {
            return Err(malformed(
                "line shorter than a status code and separator",
                raw,
            ));
        }
        let digits = &body[..3];
        if !digits.iter().all(u8::is_ascii_digit) || digits[0] == b'0' {
            return Err(malformed("bad status code", raw));
        }
        let code = digits
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
        if let Some(previous) = self.code {
            if previous != code {
                return Err(malformed("status code changed inside one reply", raw));
            }
        }
        self.code = Some(code);
        let text = String::from_utf8_lossy(&body[4..]).into_owned();
        match body[3] {
            b'-' => {
                self.lines.push(ReplyLine { text, data: None });
                Ok(None)
            }
            b'+' => {
                self.data = Some((text, String::new(), false));
                Ok(None)
            }
            b' ' => {
                self.lines.push(ReplyLine { text, data: None });
                let reply = Reply {
                    code,
                    lines: std::mem::take(&mut self.lines),
                };
                *self = Self::default();
                Ok(Some(reply))
            }
            _ => Err(malformed("bad separator after status code", raw)),
        }
    }

    /// One line inside a `+` data block: the terminating `.`, or data with a doubled leading
    /// dot un-doubled.
    fn push_data_line(&mut self, body: &[u8]) {
        let Some((text, data, started)) = self.data.as_mut() else {
            return;
        };
        if body == b"." {
            self.lines.push(ReplyLine {
                text: std::mem::take(text),
                data: Some(std::mem::take(data)),
            });
            self.data = None;
            return;
        }
        let content = body.strip_prefix(b".").unwrap_or(body);
        if *started {
            data.push('\n');
        }
        data.push_str(&String::from_utf8_lossy(content));
        *started = true;
    }
}

/// A parsed argument of a reply line: positional words and `KEY=VALUE` pairs, with quoted
/// values un-escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Word(String),
    Pair(String, String),
}

/// Splits reply text such as `AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE="/x/y"` into
/// arguments. A quoted value must be closed; escapes follow control-spec §2.1.1.
pub fn parse_args(text: &str) -> Result<Vec<Arg>, ControlError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b' ' {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b' ' && bytes[i] != b'=' && bytes[i] != b'"' {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'"' {
            if i != start {
                return Err(malformed("quote inside a word", bytes));
            }
            let (value, next) = parse_quoted(bytes, i)?;
            out.push(Arg::Word(value));
            i = next;
            continue;
        }
        let key = &text[start..i];
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            if i < bytes.len() && bytes[i] == b'"' {
                let (value, next) = parse_quoted(bytes, i)?;
                out.push(Arg::Pair(key.to_string(), value));
                i = next;
            } else {
                let vstart = i;
                while i < bytes.len() && bytes[i] != b' ' {
                    i += 1;
                }
                out.push(Arg::Pair(key.to_string(), text[vstart..i].to_string()));
            }
        } else {
            out.push(Arg::Word(key.to_string()));
        }
        if i < bytes.len() && bytes[i] != b' ' {
            return Err(malformed("garbage after a value", bytes));
        }
    }
    Ok(out)
}

/// Parses a quoted string starting at `bytes[start] == b'"'`; returns the value and the index
/// just after the closing quote.
pub fn parse_quoted(bytes: &[u8], start: usize) -> Result<(String, usize), ControlError> {
    debug_assert_eq!(bytes.get(start), Some(&b'"'));
    let mut out = Vec::new();
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let value = String::from_utf8(out)
                    .map_err(|_| malformed("quoted string is not UTF-8", bytes))?;
                return Ok((value, i + 1));
            }
            b'\\' => {
                let Some(&c) = bytes.get(i + 1) else {
                    break;
                };
                match c {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'0'..=b'7' => {
                        let mut value: u32 = 0;
                        let mut j = i + 1;
                        while j < bytes.len() && j < i + 4 && (b'0'..=b'7').contains(&bytes[j]) {
                            value = value * 8 + u32::from(bytes[j] - b'0');
                            j += 1;
                        }
                        let byte = u8::try_from(value)
                            .map_err(|_| malformed("octal escape out of range", bytes))?;
                        out.push(byte);
                        i = j;
                        continue;
                    }
                    other => out.push(other),
                }
                i += 2;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    Err(malformed("unterminated quoted string", bytes))
}

/// Looks up `key` among parsed arguments.
pub fn arg_value<'a>(args: &'a [Arg], key: &str) -> Option<&'a str> {
    args.iter().find_map(|a| match a {
        Arg::Pair(k, v) if k == key => Some(v.as_str()),
        _ => None,
    })
}

/// Quotes a value for a command (control-spec QuotedString). Rejects CR, LF and NUL, which
/// could otherwise smuggle a second command.
pub fn quote(value: &str) -> Result<String, ControlError> {
    check_no_newline(value)?;
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

/// Rejects an unquoted command argument that is empty or holds whitespace or control bytes.
pub fn check_word(value: &str) -> Result<(), ControlError> {
    if value.is_empty() || value.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'"') {
        return Err(ControlError::BadArgument(format!(
            "{value:?} must be a non-empty word without spaces, quotes or control characters"
        )));
    }
    Ok(())
}

fn check_no_newline(value: &str) -> Result<(), ControlError> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(ControlError::BadArgument(
            "value must not contain CR, LF or NUL".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &str) -> Result<Vec<Reply>, ControlError> {
        let mut p = ReplyParser::new();
        let mut out = Vec::new();
        for line in input.split_inclusive("\r\n") {
            if let Some(r) = p.push_line(line.as_bytes())? {
                out.push(r);
            }
        }
        assert!(p.is_idle(), "input ended inside a reply");
        Ok(out)
    }

    #[test]
    fn protocolinfo_reply() {
        let captured = "250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE COOKIEFILE=\"/tmp/d/control_auth_cookie\"\r\n250-VERSION Tor=\"0.4.9.11\"\r\n250 OK\r\n";
        let replies = parse_all(captured).unwrap();
        assert_eq!(replies.len(), 1);
        let r = &replies[0];
        assert_eq!(r.code, 250);
        assert_eq!(r.lines.len(), 4);
        assert_eq!(r.last_text(), "OK");
        let args = parse_args(&r.lines[1].text).unwrap();
        assert_eq!(args[0], Arg::Word("AUTH".into()));
        assert_eq!(arg_value(&args, "METHODS"), Some("COOKIE,SAFECOOKIE"));
        assert_eq!(
            arg_value(&args, "COOKIEFILE"),
            Some("/tmp/d/control_auth_cookie")
        );
    }

    #[test]
    fn getinfo_with_data_block_and_dot_unescaping() {
        let captured = "250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY=\"Starting\"\r\n250+config-text=\r\nControlPort auto\r\n..hidden dot\r\n\r\nSocksPort auto\r\n.\r\n250 OK\r\n";
        let r = parse_all(captured).unwrap().remove(0);
        assert_eq!(r.lines.len(), 3);
        assert_eq!(r.lines[1].text, "config-text=");
        assert_eq!(
            r.lines[1].data.as_deref(),
            Some("ControlPort auto\n.hidden dot\n\nSocksPort auto")
        );
        assert_eq!(r.lines[0].data, None);
    }

    #[test]
    fn empty_data_block_and_empty_first_line() {
        let r = parse_all("250+k=\r\n.\r\n250 OK\r\n").unwrap().remove(0);
        assert_eq!(r.lines[0].data.as_deref(), Some(""));
        let r = parse_all("250+k=\r\n\r\nx\r\n.\r\n250 OK\r\n")
            .unwrap()
            .remove(0);
        assert_eq!(r.lines[0].data.as_deref(), Some("\nx"));
    }

    #[test]
    fn error_and_event_replies() {
        let replies = parse_all(
            "552 Unrecognized key \"nope\"\r\n650 HS_DESC UPLOADED abc UNKNOWN $AA~n\r\n",
        )
        .unwrap();
        assert_eq!(replies[0].code, 552);
        assert!(!replies[0].is_success());
        assert!(replies[1].is_event());
        assert_eq!(
            replies[1].first_text(),
            "HS_DESC UPLOADED abc UNKNOWN $AA~n"
        );
    }

    #[test]
    fn add_onion_reply() {
        let r = parse_all(
            "250-ServiceID=6spmc5hske247sjwy275gwcnevci4cc2vicmvdx737g77zglq23joiyd\r\n250 OK\r\n",
        )
        .unwrap()
        .remove(0);
        let args = parse_args(&r.lines[0].text).unwrap();
        assert_eq!(
            arg_value(&args, "ServiceID"),
            Some("6spmc5hske247sjwy275gwcnevci4cc2vicmvdx737g77zglq23joiyd")
        );
    }

    #[test]
    fn malformed_lines_are_errors_not_panics() {
        for bad in [
            "250 OK\n",
            "25 OK\r\n",
            "2x0 OK\r\n",
            "250*OK\r\n",
            "250\r\n",
            "\r\n",
            "050 OK\r\n",
            "250 O\rK\r\n",
        ] {
            let mut p = ReplyParser::new();
            assert!(
                matches!(
                    p.push_line(bad.as_bytes()),
                    Err(ControlError::Malformed { .. })
                ),
                "{bad:?}"
            );
            assert!(p.is_idle());
        }
        let mut p = ReplyParser::new();
        assert!(p.push_line(b"250-a\r\n").unwrap().is_none());
        assert!(p.push_line(b"251 b\r\n").is_err());
    }

    #[test]
    fn parser_survives_arbitrary_bytes() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let alphabet = b"0123456789 -+.=\"\\\r\nabcAB";
        for _ in 0..20_000 {
            let len = rng.gen_range(0..40);
            let mut line: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            if rng.gen_bool(0.7) {
                line.extend_from_slice(b"\r\n");
            }
            let mut p = ReplyParser::new();
            let _ = p.push_line(&line);
            let _ = p.push_line(&line);
            if let Ok(s) = std::str::from_utf8(&line) {
                let _ = parse_args(s);
            }
        }
    }

    #[test]
    fn args_with_escapes() {
        let args = parse_args(r#"A=1 B="x \"y\" \\ \n\101" C "word""#).unwrap();
        assert_eq!(
            args,
            vec![
                Arg::Pair("A".into(), "1".into()),
                Arg::Pair("B".into(), "x \"y\" \\ \nA".into()),
                Arg::Word("C".into()),
                Arg::Word("word".into()),
            ]
        );
        assert!(parse_args(r#"A="unterminated"#).is_err());
        assert!(parse_args(r#"A="x"y"#).is_err());
        assert!(parse_args(r#"ab"c""#).is_err());
        assert!(parse_args(r#"A="\777""#).is_err());
    }

    #[test]
    fn quoting_round_trips_and_rejects_newlines() {
        let q = quote("pa ss\"w\\d").unwrap();
        let (back, end) = parse_quoted(q.as_bytes(), 0).unwrap();
        assert_eq!(back, "pa ss\"w\\d");
        assert_eq!(end, q.len());
        assert!(quote("a\r\nSIGNAL SHUTDOWN").is_err());
        assert!(check_word("ok").is_ok());
        assert!(check_word("a b").is_err());
        assert!(check_word("").is_err());
    }
}
