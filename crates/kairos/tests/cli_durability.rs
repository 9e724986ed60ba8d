//! Churn on a devnet of real processes (10 nodes, coding 4+2): holders are killed one at a
//! time until m + 2 = 4 distinct original holders are gone, more than the code tolerates.
//! With scheduled audits the uploader's daemon repairs each loss and the file opens identical
//! after release; with audits off the same churn loses it.

mod common;

use common::*;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// `kairos check ID --json` on node `i` (exit 0, or 1 when a block is below k).
fn check(net: &Net, i: usize, id: &str) -> serde_json::Value {
    let o = net.kairos(i, &["check", id, "--json"]);
    serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("check --json: {e}\n{}\n{}", stdout(&o), stderr(&o)))
}

/// Node index by key.
fn indices(net: &Net) -> HashMap<String, usize> {
    (0..net.nodes)
        .map(|i| (net.info(&format!("node-{i}"))["key"].clone(), i))
        .collect()
}

/// The holders (node indices) of every piece of the file, per block.
fn holders(report: &serde_json::Value, index: &HashMap<String, usize>) -> Vec<Vec<usize>> {
    (report["blocks"].as_array().unwrap().iter())
        .map(|b| {
            (b["holders"].as_array().unwrap().iter())
                .map(|k| index[k.as_str().unwrap()])
                .collect()
        })
        .collect()
}

/// Puts a file from node 0 on a 10-node 4+2 devnet; returns the net, id, bytes, release.
fn setup(audit_interval: &str, release_in: u64) -> (Net, String, Vec<u8>, u64) {
    let net = Net::start_with(
        10,
        false,
        Some("4+2"),
        &["--audit-interval", audit_interval],
    );
    let (path, data) = random_file(net.dir.path(), "capsule.bin", 600 * 1024 + 7);
    let release = now() + release_in;
    let release_text =
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(release))
            .to_string();
    let id = put(&net, 0, &path, &release_text);
    (net, id, data, release)
}

fn get(net: &Net, i: usize, id: &str, name: &str) -> (std::process::Output, std::path::PathBuf) {
    let out = net.dir.path().join(name);
    let o = net.kairos(i, &["get", id, "--output", out.to_str().unwrap()]);
    (o, out)
}

#[test]
fn repair_keeps_a_file_through_the_loss_of_m_plus_2_holders() {
    let (net, id, data, release) = setup("2s", 90);
    let index = indices(&net);
    let first = check(&net, 0, &id);
    assert_eq!(first["weakest"], 6, "{first}");
    // Original holders other than the uploader (which does the repairs).
    let original: HashSet<usize> = holders(&first, &index).into_iter().flatten().collect();
    let mut killed = Vec::new();
    let mut seq = first["placement_seq"].as_u64().unwrap();
    while killed.len() < 4 {
        let now_holding: HashSet<usize> = holders(&check(&net, 0, &id), &index)
            .into_iter()
            .flatten()
            .collect();
        let victim = *original
            .iter()
            .filter(|&&i| i != 0 && !killed.contains(&i) && now_holding.contains(&i))
            .min()
            .expect("an original holder is left to kill");
        net.kill_node(victim);
        killed.push(victim);
        // Await the daemon's repair: every block back to n pieces under a newer placement.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = check(&net, 0, &id);
            let s = r["placement_seq"].as_u64().unwrap_or(0);
            if r["weakest"] == 6 && s > seq {
                seq = s;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no repair after killing node {victim}: {r}\n{}",
                net.logs()
            );
            // Each check signs two directory requests with the per-file key, whose rate the
            // directory limits (5/s); the daemon's own audits take some of it too.
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    assert!(
        now() < release,
        "the churn outlasted the release time; raise it"
    );
    wait_until(release);
    let (o, out) = get(&net, 0, &id, "back.bin");
    assert!(o.status.success(), "{}\n{}", stderr(&o), net.logs());
    assert_eq!(std::fs::read(out).unwrap(), data);
}

#[test]
fn without_repair_the_same_churn_loses_the_file() {
    let (net, id, _, release) = setup("0s", 12);
    let index = indices(&net);
    let first = check(&net, 0, &id);
    // m + 2 = 4 original holders of block 0 (not the uploader).
    let victims: Vec<usize> = holders(&first, &index)[0]
        .iter()
        .copied()
        .filter(|&i| i != 0)
        .take(4)
        .collect();
    assert_eq!(victims.len(), 4);
    for &v in &victims {
        net.kill_node(v);
    }
    wait_until(release);
    let (o, out) = get(&net, 0, &id, "lost.bin");
    assert!(!o.status.success(), "the file survived without repair");
    assert!(stderr(&o).contains("pieces"), "{}", stderr(&o));
    assert!(!out.exists());
}
