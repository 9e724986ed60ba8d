//! The control connection itself: the loopback socket, sending one command and reading its
//! reply, and the queue of asynchronous events that arrive in between.
//!
//! Invariants (see also the [module overview](super)):
//! * This is the only file that touches the socket or the connection's state; every command
//!   elsewhere goes through [`Control::command`] / [`Control::command_shown`].
//! * `in_flight` is set from the first byte written until the reply is read: if a command
//!   future is dropped in between, the next call fails with
//!   [`ControlError::Desynchronized`] rather than reading the stale reply.
//! * `broken` is set once the peer closed or sent garbage; nothing is read after that.
//! * The set of enabled events is the one tor last acknowledged (SETEVENTS replaces it whole).

use super::event::Event;
use crate::error::ControlError;
use crate::reply::{self, Reply, ReplyParser};
use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tracing::{debug, trace, warn};

/// How many undelivered events are kept before the oldest are dropped.
const MAX_QUEUED_EVENTS: usize = 4096;

/// An authenticated (or not yet authenticated) control connection.
pub struct Control {
    addr: SocketAddr,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    parser: ReplyParser,
    line: Vec<u8>,
    events: VecDeque<Event>,
    enabled_events: BTreeSet<String>,
    /// Set while a command is between "started writing" and "reply read".
    in_flight: bool,
    /// Set when the peer closed or sent garbage: nothing more can be trusted.
    broken: bool,
    warned_overflow: bool,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("addr", &self.addr)
            .field("queued_events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Control {
    /// Connects to a loopback control port (no authentication yet).
    pub async fn connect(addr: SocketAddr) -> Result<Control, ControlError> {
        if !addr.ip().is_loopback() {
            return Err(ControlError::NotLoopback(addr));
        }
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ControlError::Connect { addr, source })?;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        debug!(%addr, "connected to tor control port");
        Ok(Control {
            addr,
            reader: BufReader::new(r),
            writer: w,
            parser: ReplyParser::new(),
            line: Vec::new(),
            events: VecDeque::new(),
            enabled_events: BTreeSet::new(),
            in_flight: false,
            broken: false,
            warned_overflow: false,
        })
    }

    /// The control port this connection talks to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Reads one complete reply (event or not). Cancellation-safe.
    async fn read_reply(&mut self) -> Result<Reply, ControlError> {
        if self.broken {
            return Err(ControlError::Closed);
        }
        loop {
            let Some(line) = self.read_line_part().await? else {
                continue;
            };
            trace!(line = %String::from_utf8_lossy(&line).trim_end(), "control <");
            match self.parser.push_line(&line) {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(e) => {
                    self.broken = true;
                    return Err(e);
                }
            }
        }
    }

    /// Moves what the socket has (up to the next LF) into `self.line`; returns the line once
    /// it is complete. Keeping the partial line in `self` is what makes reading
    /// cancellation-safe.
    async fn read_line_part(&mut self) -> Result<Option<Vec<u8>>, ControlError> {
        let available = match self.reader.fill_buf().await {
            Ok(b) => b,
            Err(e) => {
                self.broken = true;
                return Err(e.into());
            }
        };
        if available.is_empty() {
            self.broken = true;
            return Err(ControlError::Closed);
        }
        let (take, complete) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        self.line.extend_from_slice(&available[..take]);
        self.reader.consume(take);
        if self.line.len() > reply::MAX_LINE {
            self.broken = true;
            return Err(ControlError::Malformed {
                reason: "line too long",
                line: String::from_utf8_lossy(&self.line[..80]).into_owned(),
            });
        }
        Ok(complete.then(|| std::mem::take(&mut self.line)))
    }

    fn queue_event(&mut self, reply: Reply) -> Result<(), ControlError> {
        let event = Event::from_reply(reply)?;
        if self.events.len() >= MAX_QUEUED_EVENTS {
            if !self.warned_overflow {
                warn!("tor control events are not being read; dropping the oldest ones");
                self.warned_overflow = true;
            }
            self.events.pop_front();
        }
        self.events.push_back(event);
        Ok(())
    }

    /// Sends one command line and returns its reply, whatever its status. `shown` is what
    /// errors and logs may say about the command (never a secret).
    async fn raw_command(&mut self, line: &str, shown: &str) -> Result<Reply, ControlError> {
        if self.in_flight {
            return Err(ControlError::Desynchronized);
        }
        if self.broken {
            return Err(ControlError::Closed);
        }
        if line.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(ControlError::BadArgument(format!(
                "{shown}: a command must be a single line"
            )));
        }
        self.in_flight = true;
        debug!(command = shown, "control >");
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.writer.write_all(&bytes).await?;
        let reply = loop {
            let reply = self.read_reply().await?;
            if reply.is_event() {
                self.queue_event(reply)?;
            } else {
                break reply;
            }
        };
        self.in_flight = false;
        Ok(reply)
    }

    /// Sends a command and returns its reply if it is a success (2xx); else
    /// [`ControlError::Rejected`]. `shown` names the command in errors and logs.
    pub async fn command_shown(&mut self, line: &str, shown: &str) -> Result<Reply, ControlError> {
        let reply = self.raw_command(line, shown).await?;
        if reply.is_success() {
            Ok(reply)
        } else {
            Err(ControlError::Rejected {
                command: shown.to_string(),
                code: reply.code,
                message: reply.last_text().to_string(),
            })
        }
    }

    /// Sends a command (a single line without CRLF) and returns its successful reply. The
    /// command's first word names it in errors.
    pub async fn command(&mut self, line: &str) -> Result<Reply, ControlError> {
        let shown = line.split(' ').next().unwrap_or("").to_string();
        self.command_shown(line, &shown).await
    }

    /// SETEVENTS: replaces the set of events tor sends on this connection.
    pub async fn set_events(&mut self, events: &[&str]) -> Result<(), ControlError> {
        let set: BTreeSet<String> = events.iter().map(|e| e.to_string()).collect();
        self.apply_events(set).await
    }

    /// Adds events to those already enabled on this connection.
    pub async fn enable_events(&mut self, events: &[&str]) -> Result<(), ControlError> {
        let mut set = self.enabled_events.clone();
        set.extend(events.iter().map(|e| e.to_string()));
        if set == self.enabled_events {
            return Ok(());
        }
        self.apply_events(set).await
    }

    async fn apply_events(&mut self, set: BTreeSet<String>) -> Result<(), ControlError> {
        let mut line = String::from("SETEVENTS");
        for e in &set {
            reply::check_word(e)?;
            line.push(' ');
            line.push_str(e);
        }
        self.command(&line).await?;
        self.enabled_events = set;
        Ok(())
    }

    /// The events currently enabled on this connection.
    pub fn enabled_events(&self) -> Vec<String> {
        self.enabled_events.iter().cloned().collect()
    }

    /// True if `event` is enabled on this connection.
    pub fn is_event_enabled(&self, event: &str) -> bool {
        self.enabled_events.contains(event)
    }

    /// Disables `events` on this connection and discards any of them still queued.
    pub async fn disable_events(&mut self, events: &[&str]) -> Result<(), ControlError> {
        let mut set = self.enabled_events.clone();
        for e in events {
            set.remove(*e);
        }
        if set != self.enabled_events {
            self.apply_events(set).await?;
        }
        self.events.retain(|e| !events.contains(&e.name.as_str()));
        Ok(())
    }

    /// The next asynchronous event (queued ones first). Cancellation-safe: wrap it in
    /// `tokio::time::timeout` freely.
    pub async fn next_event(&mut self) -> Result<Event, ControlError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(e);
        }
        if self.in_flight {
            return Err(ControlError::Desynchronized);
        }
        let reply = self.read_reply().await?;
        if reply.is_event() {
            return Event::from_reply(reply);
        }
        self.broken = true;
        Err(ControlError::Unexpected {
            command: "(waiting for events)".into(),
            detail: format!("reply {} with no command pending", reply.code),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::commands::Signal;
    use crate::control::fake_tor::fake_tor;
    use std::time::Duration;

    #[tokio::test]
    async fn events_interleaved_with_replies_are_queued() {
        let addr = fake_tor(vec![(
            "GETINFO version",
            vec![
                "650 HS_DESC UPLOADED abc UNKNOWN $AA~n\r\n",
                "250-version=0.4.9.11\r\n250 OK\r\n",
            ],
        )])
        .await;
        let mut c = Control::connect(addr).await.unwrap();
        assert_eq!(c.get_info("version").await.unwrap(), "0.4.9.11");
        let e = c.next_event().await.unwrap();
        assert_eq!(e.name, "HS_DESC");
        assert_eq!(e.body(), "UPLOADED abc UNKNOWN $AA~n");
    }

    #[tokio::test]
    async fn next_event_is_cancellation_safe() {
        let addr = fake_tor(vec![(
            "",
            vec![
                "650 STATUS_CL",
                "SLEEP 300",
                "IENT NOTICE CIRCUIT_ESTABLISHED\r\n",
            ],
        )])
        .await;
        let mut c = Control::connect(addr).await.unwrap();
        let first = tokio::time::timeout(Duration::from_millis(50), c.next_event()).await;
        assert!(first.is_err(), "should time out mid-line");
        let e = c.next_event().await.unwrap();
        assert_eq!(e.name, "STATUS_CLIENT");
        assert_eq!(e.body(), "NOTICE CIRCUIT_ESTABLISHED");
    }

    #[tokio::test]
    async fn rejections_malformed_replies_and_closed_connections_are_typed() {
        let addr = fake_tor(vec![
            ("GETINFO nope", vec!["552 Unrecognized key \"nope\"\r\n"]),
            ("SIGNAL NEWNYM", vec!["250 OK\n"]),
        ])
        .await;
        let mut c = Control::connect(addr).await.unwrap();
        match c.get_info("nope").await {
            Err(ControlError::Rejected {
                code: 552, command, ..
            }) => assert_eq!(command, "GETINFO"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            c.signal(Signal::Newnym).await,
            Err(ControlError::Malformed { .. })
        ));
        // After garbage, the connection is not trusted any more.
        assert!(c.signal(Signal::Newnym).await.is_err());

        let addr = fake_tor(vec![("GETINFO version", vec!["250-version=0.4"])]).await;
        let mut c = Control::connect(addr).await.unwrap();
        let r = tokio::time::timeout(Duration::from_millis(200), c.get_info("version")).await;
        assert!(r.is_err(), "incomplete reply must not complete the command");
        // The command was cancelled half-way: the connection refuses further use.
        assert!(matches!(
            c.get_info("version").await,
            Err(ControlError::Desynchronized)
        ));
    }

    #[tokio::test]
    async fn closed_connection_is_reported() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            drop(s);
        });
        let mut c = Control::connect(addr).await.unwrap();
        let err = c.get_info("version").await.unwrap_err();
        assert!(
            matches!(err, ControlError::Closed | ControlError::Io(_)),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn non_loopback_and_injection_are_refused() {
        let err = Control::connect("192.0.2.1:9051".parse().unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, ControlError::NotLoopback(_)));
        let addr = fake_tor(vec![]).await;
        let mut c = Control::connect(addr).await.unwrap();
        assert!(matches!(
            c.get_info("version\r\nSIGNAL SHUTDOWN").await,
            Err(ControlError::BadArgument(_))
        ));
        assert!(matches!(
            c.set_conf(&[("Nickname", "x\r\nSIGNAL HALT")]).await,
            Err(ControlError::BadArgument(_))
        ));
        assert!(matches!(
            c.command("GETINFO a\nSIGNAL HALT").await,
            Err(ControlError::BadArgument(_))
        ));
    }
}
