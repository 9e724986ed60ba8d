//! A small, strict client for Tor's control protocol over a loopback TCP control port.
//!
//! One file per concern, each adding its commands to the one [`Control`] type:
//! * [`connection`] — the socket, command/reply plumbing, the event queue and subscriptions;
//! * [`event`] — an asynchronous `650` event as received;
//! * [`auth`] — PROTOCOLINFO and authentication (SAFECOOKIE, COOKIE, password, none);
//! * [`commands`] — GETINFO, SETCONF, SIGNAL, TAKEOWNERSHIP and the values read with them
//!   (bootstrap status, SOCKS listeners);
//! * [`hs_desc`] — `HS_DESC` events and waiting for an onion descriptor upload;
//! * [`onion_service`] — ADD_ONION / DEL_ONION.
//!
//! Only [`connection`] touches the socket and the connection's private state; the other files
//! are written purely on its public command API, so they import it and never the other way.
//!
//! Invariants:
//! * Only loopback control ports are accepted ([`Control::connect`] refuses anything else).
//! * Commands are sent one at a time (`&mut self`); each waits for its complete reply. Replies
//!   are parsed strictly by [`crate::reply::ReplyParser`]; a malformed reply is an error, never
//!   a panic or a guess.
//! * Asynchronous events (`650` replies) that arrive while a command waits are queued (bounded,
//!   oldest dropped with a warning) and handed out by [`Control::next_event`].
//! * Reading is cancellation-safe: the partial line and the parser state live in the struct, so
//!   dropping a [`Control::next_event`] future (e.g. on timeout) loses nothing. Dropping a
//!   command future half-way leaves the connection unusable; later calls then return
//!   [`ControlError::Desynchronized`] instead of mismatching replies.
//! * Command arguments are checked for CR/LF so a value can never inject a second command;
//!   secrets (cookies, passwords, onion keys) never appear in errors or logs.

pub mod auth;
pub mod commands;
pub mod connection;
pub mod event;
#[cfg(test)]
mod fake_tor;
pub mod hs_desc;
pub mod onion_service;

pub use crate::error::ControlError;
pub use auth::{ControlAuth, ProtocolInfo};
pub use commands::{parse_listeners, BootstrapStatus, Signal};
pub use connection::Control;
pub use event::Event;
pub use hs_desc::HsDescEvent;
pub use onion_service::OnionPort;
