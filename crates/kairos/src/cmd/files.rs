//! `kairos info ID`, `kairos check ID` and `kairos ls`: what the network says about a file,
//! where the pieces of one of this node's uploads stand, and this node's own uploads.
//! Read-only: none of them fetches a piece or a beacon.

use crate::cli::{InfoArgs, LsArgs};
use crate::cmd::client::{client, describe_lock, shown};
use crate::exit::{Exit, EXIT_USAGE};
use crate::pipe::outln;
use crate::release;
use anyhow::Result;
use kairos_proto::FileId;

pub async fn info(args: InfoArgs) -> Result<()> {
    let id: FileId = (args.file_id.parse())
        .map_err(|e| Exit(EXIT_USAGE, format!("{e} (see `kairos info --help`)")))?;
    let report = client(&args.client)?.file_info(&id).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let now = kairos_proto::time::now_unix();
    outln!("file id:      {}", report.id);
    outln!(
        "release:      {}{}",
        release::describe(report.release, now),
        if report.released { "" } else { "  — locked" }
    );
    if report.own {
        outln!("uploaded by:  this node");
    }
    let Some(m) = &report.manifest else {
        outln!("details:      withheld by the directories until the release time");
        return Ok(());
    };
    outln!("lock:         {}", describe_lock(&m.lock));
    if let (Some(chain), Some(round)) = (&m.lock.chain, m.lock.round) {
        outln!("drand chain:  {chain}, round {round}");
    }
    outln!(
        "coding:       {} ({} blocks, shards of {} bytes)",
        m.coding,
        m.blocks,
        m.shard_size
    );
    outln!("sealed size:  {}", indicatif::HumanBytes(m.sealed_bytes));
    outln!(
        "manifest:     version {}, created {}",
        m.version,
        release::describe(m.created, now)
    );
    if let (Some(seq), Some(holders)) = (m.placement_seq, m.holders) {
        outln!("placement:    {holders} holders (record {seq})");
    }
    Ok(())
}

pub async fn check(args: InfoArgs) -> Result<()> {
    let id: FileId = (args.file_id.parse())
        .map_err(|e| Exit(EXIT_USAGE, format!("{e} (see `kairos check --help`)")))?;
    let report = client(&args.client)?.check(&id).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let whole = report.blocks.iter().filter(|b| b.held == report.n).count();
        outln!(
            "{}: {} of {} blocks have all {} pieces proven held (audit); the weakest has {} (it needs {})",
            report.id,
            whole,
            report.blocks.len(),
            report.n,
            report.weakest,
            report.k
        );
        for b in report.blocks.iter().filter(|b| b.held < report.n) {
            let mut gaps: Vec<String> = (b.missing.iter())
                .map(|(shard, key)| format!("piece {shard} missing on {key}"))
                .collect();
            gaps.extend((b.corrupt.iter()).map(|(shard, key, why)| {
                format!("piece {shard} on {key} failed its audit ({why})")
            }));
            gaps.extend(
                (b.unreachable.iter())
                    .map(|(shard, key, why)| format!("piece {shard} on {key} unreachable ({why})")),
            );
            outln!(
                "  block {}: {}/{} held; {}",
                b.block,
                b.held,
                report.n,
                gaps.join("; ")
            );
        }
    }
    if report.weakest < report.k {
        return Err(Exit(
            1,
            format!(
                "some block has only {} of the {} pieces it needs: the file cannot be rebuilt unless holders come back",
                report.weakest, report.k
            ),
        )
        .into());
    }
    Ok(())
}

pub async fn repair(args: InfoArgs) -> Result<()> {
    let id: FileId = (args.file_id.parse())
        .map_err(|e| Exit(EXIT_USAGE, format!("{e} (see `kairos repair --help`)")))?;
    let report = client(&args.client)?.repair(&id).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        outln!(
            "{}: audited {} pieces, rebuilt {} ({} fetched, {} stored) in {} ms; placement record {}",
            report.id,
            report.audited,
            report.rebuilt.len(),
            indicatif::HumanBytes(report.bytes_fetched),
            indicatif::HumanBytes(report.bytes_stored),
            report.elapsed_ms,
            report.placement_seq
        );
        for r in &report.rebuilt {
            outln!(
                "  block {} piece {}: was {}; now on {}",
                r.block,
                r.shard,
                r.was,
                r.holder
            );
        }
        for (block, shard, why) in &report.failed {
            match shard {
                Some(s) => outln!("  block {block} piece {s}: not repaired: {why}"),
                None => outln!("  block {block}: not repaired: {why}"),
            }
        }
    }
    if !report.lost_blocks.is_empty() {
        return Err(Exit(
            1,
            format!(
                "blocks {:?} have fewer than k healthy pieces: they cannot be rebuilt unless holders come back",
                report.lost_blocks
            ),
        )
        .into());
    }
    Ok(())
}

pub async fn revoke(args: InfoArgs) -> Result<()> {
    let id: FileId = (args.file_id.parse())
        .map_err(|e| Exit(EXIT_USAGE, format!("{e} (see `kairos revoke --help`)")))?;
    let report = client(&args.client)?.revoke(&id).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    outln!(
        "{}: revoked; {} of {} pieces deleted by their holders ({} already gone)",
        report.id,
        report.deleted,
        report.pieces,
        report.already_gone
    );
    for why in &report.failed {
        outln!("  not deleted (expires with the holder's retention): {why}");
    }
    Ok(())
}

pub async fn ls(args: LsArgs) -> Result<()> {
    let list = client(&args.client)?.uploads().await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.uploads.is_empty() {
        eprintln!("this node has uploaded nothing yet (kairos put FILE --release-time +1h)");
        return Ok(());
    }
    let now = kairos_proto::time::now_unix();
    for u in &list.uploads {
        let health = match (u.revoked, u.weakest) {
            (Some(_), _) => "revoked".to_owned(),
            (None, Some(w)) => format!("{w} pieces in weakest block"),
            (None, None) => "not audited".to_owned(),
        };
        outln!(
            "{}  {:>10}  {}  {}  {}  {}",
            u.id,
            indicatif::HumanBytes(u.size).to_string(),
            release::describe(u.release, now),
            if u.lock.kind == "drand" {
                "drand"
            } else {
                "peer "
            },
            health,
            shown(&u.name)
        );
    }
    Ok(())
}
