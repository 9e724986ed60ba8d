//! An asynchronous event (`650` reply) as the connection queues it, before any parsing of its
//! body (specific events are parsed where they are used, e.g. [`super::hs_desc`]).
//!
//! Invariant: an [`Event`] always has a non-empty name, the first word of its first line.

use crate::error::ControlError;
use crate::reply::Reply;

/// An asynchronous event (`650` reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event name, e.g. `HS_DESC` or `STATUS_CLIENT`.
    pub name: String,
    /// The full reply, whose first line starts with the name.
    pub reply: Reply,
}

impl Event {
    pub(crate) fn from_reply(reply: Reply) -> Result<Event, ControlError> {
        let first = reply.first_text();
        let name = first.split(' ').next().unwrap_or("");
        if name.is_empty() {
            return Err(ControlError::Malformed {
                reason: "event without a name",
                line: first.to_string(),
            });
        }
        Ok(Event {
            name: name.to_string(),
            reply,
        })
    }

    /// The first line's text after the event name.
    pub fn body(&self) -> &str {
        let first = self.reply.first_text();
        first
            .strip_prefix(self.name.as_str())
            .unwrap_or(first)
            .trim_start()
    }
}

/// Builds an event from the text of a `650` line, for tests of event parsers.
#[cfg(test)]
pub(crate) fn test_event(text: &str) -> Event {
    let mut p = crate::reply::ReplyParser::new();
    let r = p
        .push_line(format!("650 {text}\r\n").as_bytes())
        .unwrap()
        .unwrap();
    Event::from_reply(r).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_follows_the_name() {
        assert_eq!(test_event("CIRC 1 BUILT").body(), "1 BUILT");
        assert_eq!(test_event("CIRC 1 BUILT").name, "CIRC");
    }
}
