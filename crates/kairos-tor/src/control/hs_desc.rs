//! `HS_DESC` events (control-spec §4.1.25) and waiting until an onion service's descriptor
//! has reached an HSDir.
//!
//! Invariants:
//! * Waiting requires `HS_DESC` to be enabled *before* the service is added; otherwise an
//!   early `UPLOADED` could be missed, so [`Control::wait_for_descriptor_upload`] refuses to
//!   start rather than wait for an event that already passed.
//! * Only events for the awaited address count; an upload `FAILED` at one HSDir is remembered
//!   (for the timeout message) but does not end the wait, since other HSDirs may accept it.

use super::connection::Control;
use super::event::Event;
use crate::error::ControlError;
use crate::reply::{arg_value, parse_args, Arg};
use std::time::Duration;
use tracing::debug;

/// An `HS_DESC` event (control-spec §4.1.25).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsDescEvent {
    /// `REQUESTED`, `UPLOAD`, `RECEIVED`, `UPLOADED`, `IGNORE`, `FAILED` or `CREATED`.
    pub action: String,
    /// The onion address without `.onion` (or `UNKNOWN`).
    pub address: String,
    pub auth_type: String,
    /// The HSDir, `$FINGERPRINT~nickname` or `UNKNOWN`.
    pub hs_dir: String,
    pub reason: Option<String>,
}

impl HsDescEvent {
    /// Parses an event if it is an `HS_DESC` event; `Ok(None)` for other events.
    pub fn parse(event: &Event) -> Result<Option<HsDescEvent>, ControlError> {
        if event.name != "HS_DESC" {
            return Ok(None);
        }
        let args = parse_args(event.body())?;
        let words: Vec<&str> = args
            .iter()
            .filter_map(|a| match a {
                Arg::Word(w) => Some(w.as_str()),
                Arg::Pair(..) => None,
            })
            .collect();
        if words.len() < 4 {
            return Err(ControlError::Malformed {
                reason: "HS_DESC event with fewer than 4 fields",
                line: event.reply.first_text().to_string(),
            });
        }
        Ok(Some(HsDescEvent {
            action: words[0].to_string(),
            address: words[1].to_string(),
            auth_type: words[2].to_string(),
            hs_dir: words[3].to_string(),
            reason: arg_value(&args, "REASON").map(str::to_string),
        }))
    }
}

impl Control {
    /// Waits until tor reports `HS_DESC UPLOADED` for `service_id` (address without
    /// `.onion`), i.e. at least one HSDir holds the descriptor. `HS_DESC` events must have been
    /// enabled *before* the service was added (see [`Control::enable_events`]).
    pub async fn wait_for_descriptor_upload(
        &mut self,
        service_id: &str,
        timeout: Duration,
    ) -> Result<(), ControlError> {
        if !self.is_event_enabled("HS_DESC") {
            return Err(ControlError::BadArgument(
                "enable HS_DESC events before adding the onion service".into(),
            ));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_failure: Option<String> = None;
        loop {
            let Ok(event) = tokio::time::timeout_at(deadline, self.next_event()).await else {
                let what = match last_failure {
                    Some(reason) => format!(
                        "the onion descriptor of {service_id} to be uploaded (last failure: {reason})"
                    ),
                    None => format!("the onion descriptor of {service_id} to be uploaded"),
                };
                return Err(ControlError::Timeout(timeout, what));
            };
            let Some(hs) = HsDescEvent::parse(&event?)? else {
                continue;
            };
            if hs.address != service_id {
                continue;
            }
            match hs.action.as_str() {
                "UPLOADED" => {
                    debug!(service_id, hs_dir = %hs.hs_dir, "onion descriptor uploaded");
                    return Ok(());
                }
                "FAILED" => {
                    debug!(service_id, hs_dir = %hs.hs_dir, reason = ?hs.reason, "descriptor upload failed");
                    last_failure = Some(format!(
                        "{} at {}",
                        hs.reason.unwrap_or_else(|| "unknown reason".into()),
                        hs.hs_dir
                    ));
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::event::test_event as event;

    #[test]
    fn hs_desc_events_parse() {
        let e = event("HS_DESC UPLOADED 6spmc5hske247sjwy275gwcnevci4cc2vicmvdx737g77zglq23joiyd UNKNOWN $E3CC9E5D9FE1A4F8B07A4F9D0DC2D0F2D6D7A8C1~test002r");
        let hs = HsDescEvent::parse(&e).unwrap().unwrap();
        assert_eq!(hs.action, "UPLOADED");
        assert_eq!(
            hs.address,
            "6spmc5hske247sjwy275gwcnevci4cc2vicmvdx737g77zglq23joiyd"
        );
        assert_eq!(hs.reason, None);
        let e = event("HS_DESC FAILED abc UNKNOWN $AA~n REASON=UPLOAD_REJECTED");
        let hs = HsDescEvent::parse(&e).unwrap().unwrap();
        assert_eq!(hs.reason.as_deref(), Some("UPLOAD_REJECTED"));
        let e = event("HS_DESC UPLOAD abc UNKNOWN $AA~n someid HSDIR_INDEX=00FF");
        assert_eq!(HsDescEvent::parse(&e).unwrap().unwrap().action, "UPLOAD");
        assert!(HsDescEvent::parse(&event("HS_DESC UPLOADED abc")).is_err());
        assert_eq!(
            HsDescEvent::parse(&event("STATUS_CLIENT NOTICE X")).unwrap(),
            None
        );
        assert_eq!(event("CIRC 1 BUILT").body(), "1 BUILT");
    }
}
