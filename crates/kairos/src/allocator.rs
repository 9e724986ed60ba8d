//! The one tunable kairos sets on the C allocator, and the only `unsafe` in the workspace.
//!
//! Why: a daemon's large buffers — 1 MiB pieces, 4 MiB blocks — are allocated and freed on
//! many threads. glibc maps large allocations on their own only until the first is freed; after
//! that it raises its threshold (up to 32 MiB) and serves them from its heaps, where freed ones
//! stay. A daemon's RSS then grew with the file size: after a 1 GiB put the uploading daemon
//! held 125 MiB and after a 4 GiB put 135 MiB, the downloading one 108 and 133 MiB, for heap
//! peaks of about 90 and 77 MiB (`scripts/bench-devnet.sh`, heaptrack). A fixed threshold maps
//! every allocation of 256 KiB or more on its own, so freeing it returns the memory: 105 / 111
//! and 72 / 71 MiB in the same runs, flat with the file size, for about 20 % of put and get
//! throughput on loopback (page faults on fresh mappings). Tor, not the allocator, bounds a real
//! network's rate.

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
