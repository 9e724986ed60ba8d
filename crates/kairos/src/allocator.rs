//! The one tunable kairos sets on the C allocator, and the only `unsafe` in the workspace.
//!
//! Why: a daemon's large buffers — 1 MiB pieces, 4 MiB blocks — are allocated and freed on
//! many threads. glibc maps large allocations on their own only until the first is freed; after
//! that it raises its threshold (up to 32 MiB) and serves them from its heaps, where freed ones
//! stay. A daemon's RSS then grew with the file size: the downloading daemon peaked at 108 MiB
//! in a 1 GiB get and 133 MiB in a 4 GiB get, for a heap peak of about 77 MiB
//! (`scripts/bench-devnet.sh`, heaptrack). A fixed threshold maps every allocation of 256 KiB
//! or more on its own, so freeing it returns the memory: 72 and 71 MiB in the same runs, flat
//! with the file size. The price is page faults on fresh mappings: on a loopback devnet, where
//! nothing else limits, put and get ran 20–45 % slower; over Tor the network is the limit.
//! (mimalloc and jemalloc were tried instead: both held more.)

/// Allocations from this size are mapped on their own and unmapped when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MAPPED_FROM: nix::libc::c_int = 256 * 1024;

/// Makes glibc return large buffers to the system when they are freed. Does nothing on other
/// C libraries.
pub fn return_large_buffers_when_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only sets an allocator parameter; glibc allows it at any time from any
    // thread. A refusal (it returns 0) leaves the default, which costs only memory.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, MAPPED_FROM);
    }
}
