//! The plaintext framing parser: arbitrary bytes sealed as the only block of a file, then
//! opened with `Opener`. Must never panic; any `FileInfo` it reports must describe what it wrote.
#![no_main]

use kairos_seal::{seal_block, BlockPos, Opener, Params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let params = Params {
        data_shards: 2,
        parity_shards: 1,
        shard_size: 4096,
    };
    let data = &data[..data.len().min(params.block_plaintext_size())];
    let salt = [1u8; 32];
    let block = seal_block(&params, BlockPos::new(salt, 0, true), data).unwrap();
    let mut opener = Opener::new(Vec::new(), params, salt, 1);
    if opener
        .push_block(0, block.cipher_len, &block.hashes(), &block.piece_refs())
        .is_err()
    {
        return;
    }
    if let Ok((info, out)) = opener.finish_with_writer() {
        assert_eq!(info.size, out.len() as u64);
        assert!(info.name.len() <= 255);
        assert!(data.ends_with(&info.hash));
    }
});
