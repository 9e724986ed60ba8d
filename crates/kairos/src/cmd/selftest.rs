//! `kairos selftest`: seal a sample file, lose `m` pieces of every block, corrupt one more
//! byte somewhere, open it again and check every byte — the sealing pipeline end to end, with
//! no network.

use anyhow::{ensure, Context, Result};
use kairos_seal::{Opener, Params, SealedBlock, Sealer};
use rand::{Rng, RngCore, SeedableRng};
use std::time::Instant;

/// The sample's file name, which must survive the round trip.
const NAME: &str = "selftest-sample.bin";

pub fn run(size_mib: usize) -> Result<()> {
    let params = Params::default();
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut data = vec![0u8; size_mib * 1024 * 1024 + 12345];
    rng.fill_bytes(&mut data);
    println!(
        "selftest: sealing a {:.1} MiB sample with k = {}, m = {}, shards of {} bytes",
        data.len() as f64 / (1 << 20) as f64,
        params.k(),
        params.m(),
        params.shard_size
    );

    let t = Instant::now();
    let mut sealer = Sealer::new(&data[..], params, NAME, 2).context("starting the sealer")?;
    let salt = sealer.salt();
    let blocks: Vec<_> = sealer
        .by_ref()
        .collect::<Result<_, _>>()
        .context("sealing")?;
    let seal_time = t.elapsed();

    let t = Instant::now();
    let mut opener = Opener::new(
        Vec::with_capacity(data.len()),
        params,
        salt,
        blocks.len() as u32,
    );
    let mut corrupted = false;
    for block in &blocks {
        let shards = damage(block, params, &mut rng, &mut corrupted);
        let refs: Vec<_> = shards
            .iter()
            .map(|s| s.as_ref().map(|(a, b)| (&a[..], &b[..])))
            .collect();
        opener
            .push_block(block.index, block.cipher_len, &block.hashes(), &refs)
            .with_context(|| format!("opening block {}", block.index))?;
    }
    let (info, out) = opener
        .finish_with_writer()
        .context("checking the opened file")?;
    let open_time = t.elapsed();
    ensure!(out == data, "opened bytes differ from the original");
    ensure!(
        info.name == NAME && info.size == data.len() as u64,
        "file name or size did not survive"
    );
    let mbps = |d: std::time::Duration| data.len() as f64 / d.as_secs_f64() / 1e6;
    println!(
        "selftest: {} blocks sealed in {:.2?} ({:.0} MB/s), opened with {} of {} pieces lost or corrupt per block in {:.2?} ({:.0} MB/s)",
        blocks.len(),
        seal_time,
        mbps(seal_time),
        params.m(),
        params.total_shards(),
        open_time,
        mbps(open_time)
    );
    println!(
        "selftest: OK — {} bytes, name {:?}, BLAKE3 {}",
        info.size,
        info.name,
        blake3::Hash::from(info.hash).to_hex()
    );
    Ok(())
}

/// A block's `(share, shard)` pieces with `m` of them made unusable: the first time (while
/// `corrupted` is false) one of them gets a flipped byte, which the piece hash must catch,
/// rather than being dropped.
fn damage(
    block: &SealedBlock,
    params: Params,
    rng: &mut impl Rng,
    corrupted: &mut bool,
) -> Vec<Option<(Vec<u8>, Vec<u8>)>> {
    let mut shards: Vec<Option<(Vec<u8>, Vec<u8>)>> = block
        .pieces
        .iter()
        .map(|p| Some((p.share.to_vec(), p.shard.clone())))
        .collect();
    let mut lost = 0;
    while lost < params.m() {
        let i = rng.gen_range(0..params.total_shards());
        if shards[i].is_some() {
            if !*corrupted {
                let (_, shard) = shards[i].as_mut().expect("checked");
                let at = rng.gen_range(0..shard.len());
                shard[at] ^= 0x40;
                *corrupted = true;
            } else {
                shards[i] = None;
            }
            lost += 1;
        }
    }
    shards
}
