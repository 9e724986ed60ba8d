//! Creating every node's keys before any node starts: the authorities' v3 identities
//! (`tor-gencert`) and every relay's fingerprint (`tor --list-fingerprint`), because each
//! node's torrc must name all the authorities by those keys.
//!
//! Invariants:
//! * Keys are created in each node's own DataDirectory, where its tor will find them.
//! * A fingerprint or v3 identity is accepted only as 40 hex digits; a helper that exits
//!   non-zero is an error carrying the tail of its output.

use crate::error::TestNetError;
use crate::plan::NodePlan;
use kairos_tor::launch::prepare_dir;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// The helper programs and the empty torrc they run with.
#[derive(Clone)]
pub(crate) struct KeyTools {
    pub tor: PathBuf,
    pub gencert: PathBuf,
    pub empty_torrc: PathBuf,
}

/// Creates the keys of every planned node (in parallel) and records them in the plans.
pub(crate) async fn generate_all(
    tools: &KeyTools,
    plans: &mut [NodePlan],
) -> Result<(), TestNetError> {
    let jobs: Vec<_> = plans
        .iter()
        .map(|plan| {
            let tools = tools.clone();
            let (dir, name) = (plan.dir.clone(), plan.name.clone());
            let (or_port, dir_port) = (plan.or_port, plan.dir_port);
            tokio::spawn(async move {
                let v3ident = match dir_port {
                    Some(dir_port) => Some(authority_identity(&tools, &dir, dir_port).await?),
                    None => None,
                };
                let fingerprint = relay_fingerprint(&tools, &dir, &name, or_port).await?;
                Ok::<_, TestNetError>((fingerprint, v3ident))
            })
        })
        .collect();
    for (plan, job) in plans.iter_mut().zip(jobs) {
        let (fingerprint, v3ident) = job.await.map_err(|e| TestNetError::Tool {
            tool: "key generation".into(),
            detail: e.to_string(),
        })??;
        plan.fingerprint = fingerprint;
        plan.v3ident = v3ident;
    }
    Ok(())
}

/// Creates an authority's identity, signing key and certificate in `dir/keys`; returns its v3
/// identity (the certificate's fingerprint).
async fn authority_identity(
    tools: &KeyTools,
    dir: &Path,
    dir_port: u16,
) -> Result<String, TestNetError> {
    let keys = dir.join("keys");
    prepare_dir(&keys)?;
    // tor-gencert reads the (empty) passphrase from stdin with --passphrase-fd 0.
    run_tool(
        Command::new(&tools.gencert)
            .current_dir(&keys)
            .arg("--create-identity-key")
            .args(["-m", "12"])
            .args(["-a", &format!("127.0.0.1:{dir_port}")])
            .args(["-i", "authority_identity_key"])
            .args(["-s", "authority_signing_key"])
            .args(["-c", "authority_certificate"])
            .args(["--passphrase-fd", "0"]),
        "tor-gencert",
    )
    .await?;
    let cert = keys.join("authority_certificate");
    let text = std::fs::read_to_string(&cert).map_err(TestNetError::io(&cert))?;
    text.lines()
        .find_map(|l| l.strip_prefix("fingerprint "))
        .map(|s| s.trim().to_string())
        .filter(|s| is_fingerprint(s))
        .ok_or_else(|| TestNetError::Tool {
            tool: "tor-gencert".into(),
            detail: "certificate has no fingerprint line".into(),
        })
}

/// Creates a relay's identity keys in `dir`; returns its fingerprint.
async fn relay_fingerprint(
    tools: &KeyTools,
    dir: &Path,
    name: &str,
    or_port: u16,
) -> Result<String, TestNetError> {
    run_tool(
        Command::new(&tools.tor)
            .arg("--list-fingerprint")
            .arg("-f")
            .arg(&tools.empty_torrc)
            .arg("--defaults-torrc")
            .arg(&tools.empty_torrc)
            .arg("--DataDirectory")
            .arg(dir)
            .args(["--ORPort", &format!("127.0.0.1:{or_port}")])
            .args(["--Nickname", name])
            .args(["--Address", "127.0.0.1"])
            .args(["--ContactInfo", "kairos-testnet@localhost"])
            .args(["--ExitRelay", "0"])
            .args(["--Log", "err stderr"]),
        "tor --list-fingerprint",
    )
    .await?;
    let fp_file = dir.join("fingerprint");
    let text = std::fs::read_to_string(&fp_file).map_err(TestNetError::io(&fp_file))?;
    text.split_whitespace()
        .nth(1)
        .map(str::to_string)
        .filter(|s| is_fingerprint(s))
        .ok_or_else(|| TestNetError::Tool {
            tool: "tor --list-fingerprint".into(),
            detail: format!("unexpected fingerprint file: {text:?}"),
        })
}

async fn run_tool(cmd: &mut Command, tool: &str) -> Result<std::process::Output, TestNetError> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| TestNetError::Tool {
            tool: tool.to_string(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        return Err(TestNetError::Tool {
            tool: tool.to_string(),
            detail: format!(
                "exited with {}:\n{}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ),
        });
    }
    Ok(out)
}

fn is_fingerprint(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_40_hex_digits() {
        assert!(is_fingerprint("0123456789ABCDEF0123456789abcdef01234567"));
        assert!(!is_fingerprint("0123456789ABCDEF0123456789ABCDEF0123456"));
        assert!(!is_fingerprint("0123456789ABCDEF0123456789ABCDEF0123456G"));
    }
}
