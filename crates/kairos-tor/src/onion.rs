//! Publishing a kairos identity as a Tor v3 onion service.
//!
//! Invariants:
//! * The service key is the identity's own Ed25519 key (`ADD_ONION ED25519-V3:` with the
//!   expanded secret key), so the address is a pure function of the public key.
//! * The ServiceID tor reports is compared with `identity.public().onion_address()`; a
//!   mismatch is an error ([`TorError::OnionMismatch`]) and the service is removed again —
//!   kairos never advertises an address that does not match its key.
//! * Services are detached (they outlive the control connection) and forward only to loopback
//!   targets.
//! * Publishing an identity that is already published on this tor replaces the old service
//!   (tor refuses a second ADD_ONION for the same key), so a restart of the HTTP server on a new
//!   port can simply publish again.

use crate::control::{Control, OnionPort};
use crate::error::{ControlError, TorError};
use kairos_proto::Identity;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::{debug, info};

/// Publishes `identity` as an onion service whose port `virt_port` forwards to `target`
/// (a 127.0.0.1 address). Returns the onion host (`<56 chars>.onion`). Does not wait for the
/// descriptor to reach the HSDirs; see [`publish_onion_and_wait`].
pub async fn publish_onion(
    control: &mut Control,
    identity: &Identity,
    virt_port: u16,
    target: SocketAddr,
) -> Result<String, TorError> {
    publish(control, identity, virt_port, target).await
}

/// Like [`publish_onion`], then waits (up to `timeout`) until tor reports that at least one
/// HSDir accepted the descriptor (`HS_DESC UPLOADED`). Clients may still need a retry or two
/// while the other HSDirs receive it.
pub async fn publish_onion_and_wait(
    control: &mut Control,
    identity: &Identity,
    virt_port: u16,
    target: SocketAddr,
    timeout: Duration,
) -> Result<String, TorError> {
    let published = publish_onion_timed(control, identity, virt_port, target, timeout).await?;
    Ok(published.host)
}

/// What [`publish_onion_timed`] did and how long each step took.
#[derive(Clone, Debug)]
pub struct Published {
    /// The onion host (`<56 chars>.onion`).
    pub host: String,
    /// `ADD_ONION` until tor answered.
    pub add_onion: Duration,
    /// From then until the first HSDir accepted the descriptor.
    pub upload: Duration,
}

/// [`publish_onion_and_wait`], timing its two steps (a daemon prints them at start).
pub async fn publish_onion_timed(
    control: &mut Control,
    identity: &Identity,
    virt_port: u16,
    target: SocketAddr,
    timeout: Duration,
) -> Result<Published, TorError> {
    // Listen for HS_DESC only while waiting, unless the caller had it on already: an owning
    // control connection lives as long as tor, and nobody would read those events later.
    let had_hs_desc = control.is_event_enabled("HS_DESC");
    control.enable_events(&["HS_DESC"]).await?;
    let started = Instant::now();
    let result = async {
        let host = publish(control, identity, virt_port, target).await?;
        let add_onion = started.elapsed();
        control
            .wait_for_descriptor_upload(host.trim_end_matches(".onion"), timeout)
            .await?;
        Ok::<_, TorError>(Published {
            upload: started.elapsed().saturating_sub(add_onion),
            add_onion,
            host,
        })
    }
    .await;
    if !had_hs_desc {
        let cleanup = control.disable_events(&["HS_DESC"]).await;
        if result.is_ok() {
            cleanup?;
        }
    }
    let published = result?;
    info!(
        onion = %published.host,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "onion descriptor uploaded"
    );
    Ok(published)
}

/// Removes the onion service of `identity` from this tor.
pub async fn unpublish_onion(control: &mut Control, identity: &Identity) -> Result<(), TorError> {
    let host = identity.public().onion_address();
    control
        .del_onion(host.trim_end_matches(".onion"))
        .await
        .map_err(Into::into)
}

async fn publish(
    control: &mut Control,
    identity: &Identity,
    virt_port: u16,
    target: SocketAddr,
) -> Result<String, TorError> {
    if !target.ip().is_loopback() {
        return Err(TorError::NotLoopback(target));
    }
    let expected = identity.public().onion_address();
    let expected_id = expected.trim_end_matches(".onion");
    let key = identity.tor_expanded_key();
    let ports = [OnionPort { virt_port, target }];
    let service_id = match control.add_onion(&key, &ports).await {
        Err(ControlError::Rejected {
            code: 550, message, ..
        }) if message.contains("collision") => {
            debug!(onion = %expected, "onion service already published here; replacing it");
            control.del_onion(expected_id).await?;
            control.add_onion(&key, &ports).await?
        }
        other => other?,
    };
    if service_id != expected_id {
        let _ = control.del_onion(&service_id).await;
        return Err(TorError::OnionMismatch {
            published: service_id,
            expected,
        });
    }
    info!(onion = %expected, virt_port, %target, "onion service published");
    Ok(expected)
}
