//! OS and synchronisation code: the one place besides `src/ffi/` (q's C API) that may
//! hold `unsafe`. Safe wrappers over the libc calls the store and the listener need, so
//! that `src/metric/`, `src/registry.rs`, `src/expo/` and `src/http/` never import from
//! `src/ffi/`.

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;

/// Sets the accept backlog of a socket that is already listening (Linux applies a second
/// `listen` to the live socket; the kernel caps it at `net.core.somaxconn`).
pub fn listen_backlog(l: &TcpListener, backlog: i32) -> io::Result<()> {
    // SAFETY: listen takes a descriptor by value and no pointers; `l` keeps the descriptor
    // open for the duration of the call.
    match unsafe { libc::listen(l.as_raw_fd(), backlog) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

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
