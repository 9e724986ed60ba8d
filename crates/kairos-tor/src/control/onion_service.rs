//! ADD_ONION / DEL_ONION: onion services keyed by a caller-supplied Ed25519 key.
//!
//! Invariants:
//! * The key only ever appears in a [`Zeroizing`] buffer and in the command line sent to tor;
//!   logs and errors show `ADD_ONION <key>`.
//! * Services are added `Detach`ed (they outlive this control connection) and with non-zero
//!   ports only.
//! * The ServiceID tor returns is checked to be a well-formed v3 address before it is handed
//!   out; comparing it with the address the key should give is the caller's job
//!   ([`crate::onion`]).

use super::connection::Control;
use crate::error::ControlError;
use crate::reply::{self, Reply};
use data_encoding::BASE64;
use std::net::SocketAddr;
use zeroize::Zeroizing;

/// One `Port=` mapping of `ADD_ONION`: connections to `virt_port` of the onion service go to
/// `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnionPort {
    pub virt_port: u16,
    pub target: SocketAddr,
}

impl Control {
    /// `ADD_ONION ED25519-V3:<key> Flags=Detach PoWDefensesEnabled=1 Port=...`: publishes an
    /// onion service with the given 64-byte expanded Ed25519 secret key. Returns the ServiceID
    /// (address without `.onion`). Detached: the service outlives this connection (until
    /// DEL_ONION or exit).
    ///
    /// Tor's proof-of-work defence (hspow-spec) is always on: while the service is not under
    /// pressure its suggested effort stays 0 and clients pay nothing; under an introduction
    /// flood, tor raises the effort, so each new connection costs a flooder CPU time instead
    /// of costing the service its slots.
    pub async fn add_onion(
        &mut self,
        expanded_key: &[u8; 64],
        ports: &[OnionPort],
    ) -> Result<String, ControlError> {
        if ports.is_empty() {
            return Err(ControlError::BadArgument(
                "ADD_ONION needs at least one port".into(),
            ));
        }
        let key = Zeroizing::new(BASE64.encode(expanded_key));
        let mut line = Zeroizing::new(format!(
            "ADD_ONION ED25519-V3:{} Flags=Detach PoWDefensesEnabled=1",
            *key
        ));
        for p in ports {
            if p.virt_port == 0 || p.target.port() == 0 {
                return Err(ControlError::BadArgument(
                    "onion service ports must be non-zero".into(),
                ));
            }
            line.push_str(&format!(" Port={},{}", p.virt_port, p.target));
        }
        let reply = self.command_shown(&line, "ADD_ONION <key>").await?;
        service_id(&reply)
    }

    /// DEL_ONION.
    pub async fn del_onion(&mut self, service_id: &str) -> Result<(), ControlError> {
        reply::check_word(service_id)?;
        self.command(&format!("DEL_ONION {service_id}"))
            .await
            .map(drop)
    }
}

/// The (last) `ServiceID=` of an ADD_ONION reply, checked to be a v3 onion address.
fn service_id(reply: &Reply) -> Result<String, ControlError> {
    let unexpected = |detail: String| ControlError::Unexpected {
        command: "ADD_ONION".into(),
        detail,
    };
    let id = reply
        .lines
        .iter()
        .filter_map(|l| l.text.strip_prefix("ServiceID="))
        .next_back()
        .ok_or_else(|| unexpected("reply has no ServiceID".into()))?;
    if id.len() != kairos_proto::identity::ONION_HOST_LEN
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
    {
        return Err(unexpected(format!(
            "ServiceID {id:?} is not a v3 onion address"
        )));
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::ReplyLine;

    fn reply(lines: &[&str]) -> Reply {
        Reply {
            code: 250,
            lines: lines
                .iter()
                .map(|t| ReplyLine {
                    text: t.to_string(),
                    data: None,
                })
                .collect(),
        }
    }

    #[test]
    fn service_id_must_be_a_v3_address() {
        let id = "6spmc5hske247sjwy275gwcnevci4cc2vicmvdx737g77zglq23joiyd";
        assert_eq!(
            service_id(&reply(&[&format!("ServiceID={id}"), "OK"])).unwrap(),
            id
        );
        assert!(service_id(&reply(&["OK"])).is_err());
        assert!(service_id(&reply(&["ServiceID=abc", "OK"])).is_err());
        assert!(service_id(&reply(&[&format!("ServiceID={}", id.to_uppercase()), "OK"])).is_err());
    }
}
