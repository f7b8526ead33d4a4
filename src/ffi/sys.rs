//! Safe wrappers over the libc calls the store needs.

/// Monotonic time in nanoseconds from the coarse clock (a few ns to read, ~1-4 ms
/// resolution): plenty for rotating summary windows measured in seconds.
#[inline]
pub fn monotonic_coarse_nanos() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes only into the timespec we own and pass by pointer;
    // CLOCK_MONOTONIC_COARSE exists on every Linux since 2.6.32.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}
