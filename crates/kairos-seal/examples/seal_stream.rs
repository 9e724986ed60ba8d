//! Seals a generated stream of `MIB` MiB (default 1024) and discards the pieces, for measuring
//! peak memory: `/usr/bin/time -v cargo run --release -p kairos-seal --example seal_stream -- 1024 1`.
//! Arguments: size in MiB, threads, and `mem` to generate the input into memory first (then
//! the timing covers sealing from a slice only, and RSS includes the input).

use std::io::{self, Read};
use std::time::Instant;

use kairos_seal::{Params, Sealer};

/// An endless-looking source of pseudo-random bytes, `left` bytes long; never held in memory.
struct Source {
    x: u64,
    left: u64,
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for chunk in buf[..n].chunks_mut(8) {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            chunk.copy_from_slice(&self.x.to_le_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mib: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1024);
    let threads: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let source = Source {
        x: 0x9E37_79B9_7F4A_7C15,
        left: mib << 20,
    };
    let in_memory = args.next().as_deref() == Some("mem");
    let mut data = Vec::new();
    let reader: Box<dyn Read> = if in_memory {
        let mut source = source;
        source.read_to_end(&mut data).expect("generate");
        Box::new(&data[..])
    } else {
        Box::new(source)
    };
    let start = Instant::now();
    let mut sealer = Sealer::new(reader, Params::default(), "stream.bin", threads).expect("sealer");
    let (mut blocks, mut bytes) = (0u64, 0u64);
    while let Some(block) = sealer.next() {
        let block = block.expect("seal");
        blocks += 1;
        bytes += block
            .pieces
            .iter()
            .map(|p| p.shard.len() as u64)
            .sum::<u64>();
        sealer.recycle(block);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sealed {mib} MiB into {blocks} blocks ({bytes} shard bytes) in {secs:.2} s ({:.0} MB/s{})",
        (mib << 20) as f64 / secs / 1e6,
        if in_memory {
            ""
        } else {
            ", incl. generating the input"
        }
    );
}
