//! The torrc a launched tor runs on, and the control-port file tor writes back.
//!
//! Invariants:
//! * The torrc is complete on its own: tor is started with `--defaults-torrc` pointing at an
//!   empty file next to it, so no system-wide torrc changes the behaviour.
//! * Our base lines come first (DataDirectory, `ControlPort auto` written to a file, cookie
//!   authentication, `__OwningControllerProcess`); the caller's lines follow and may add to
//!   them but cannot span lines: a line with CR or LF is refused.
//! * Only a loopback address is accepted from the control-port file.

use crate::error::TorError;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where tor writes the address of its `ControlPort auto`.
pub(crate) const CONTROL_PORT_FILE: &str = "control_port";
const TORRC_FILE: &str = "torrc";
const DEFAULTS_FILE: &str = "torrc-defaults";

/// Quotes a torrc value (torrc accepts C-style escapes inside double quotes).
pub fn torrc_quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The files tor is started on.
pub(crate) struct TorrcFiles {
    pub torrc: PathBuf,
    pub defaults: PathBuf,
}

/// Writes our base lines plus `lines` as the torrc in `data_dir` (an absolute path), and an
/// empty defaults file; tor will write its control port to `port_file`.
pub(crate) fn write_torrc(
    data_dir: &Path,
    port_file: &Path,
    lines: &[String],
) -> Result<TorrcFiles, TorError> {
    let mut torrc = vec![
        format!("DataDirectory {}", torrc_quote(&data_dir.to_string_lossy())),
        "ControlPort auto".to_string(),
        format!(
            "ControlPortWriteToFile {}",
            torrc_quote(&port_file.to_string_lossy())
        ),
        "CookieAuthentication 1".to_string(),
        format!("__OwningControllerProcess {}", std::process::id()),
        "Log notice stdout".to_string(),
        "ClientUseIPv6 0".to_string(),
    ];
    torrc.extend(lines.iter().cloned());
    if let Some(line) = torrc.iter().find(|l| l.contains('\n') || l.contains('\r')) {
        return Err(TorError::Tool {
            tool: "torrc".into(),
            detail: format!("torrc line contains a newline: {line:?}"),
        });
    }
    let files = TorrcFiles {
        torrc: data_dir.join(TORRC_FILE),
        defaults: data_dir.join(DEFAULTS_FILE),
    };
    write(&files.torrc, torrc.join("\n") + "\n")?;
    write(&files.defaults, String::new())?;
    Ok(files)
}

fn write(path: &Path, content: String) -> Result<(), TorError> {
    std::fs::write(path, content).map_err(|source| TorError::DataDir {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses tor's `ControlPortWriteToFile` content: `PORT=127.0.0.1:1234`.
pub(crate) fn parse_port_file(text: &str) -> Option<SocketAddr> {
    let line = text.lines().find(|l| l.starts_with("PORT="))?;
    let addr: SocketAddr = line.strip_prefix("PORT=")?.trim().parse().ok()?;
    addr.ip().is_loopback().then_some(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_file() {
        assert_eq!(
            parse_port_file("PORT=127.0.0.1:44415\n"),
            Some("127.0.0.1:44415".parse().unwrap())
        );
        assert_eq!(parse_port_file("PORT=10.0.0.1:1\n"), None);
        assert_eq!(parse_port_file("garbage"), None);
    }

    #[test]
    fn quoting() {
        assert_eq!(torrc_quote("/a b/\"c\\"), "\"/a b/\\\"c\\\\\"");
    }

    #[test]
    fn lines_with_newlines_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_torrc(
            dir.path(),
            &dir.path().join(CONTROL_PORT_FILE),
            &["Nickname a\nControlPort 9051".to_string()],
        )
        .err()
        .unwrap();
        assert!(matches!(err, TorError::Tool { .. }), "{err:?}");
    }
}
