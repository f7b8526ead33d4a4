//! The event-loop lag probe's q side (logic in `crate::lag`): an eventfd on q's event
//! loop (`sd1`) whose callback only records that q's main thread got to it, and the
//! thread that sends a probe each interval. The callback calls no q code.

use super::poll::{eventfd_drain, eventfd_new, eventfd_signal};
use crate::error::{Error, Result};
use crate::lag::LagProbe;
use super::qapi::native::{r0, sd0, sd1};
use super::qapi::{I, K};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

struct Running {
    fd: i32,
    probe: Arc<LagProbe>,
    thread: std::thread::JoinHandle<()>,
}

static PROBE: Mutex<Option<Running>> = Mutex::new(None);

/// Starts probing every `interval` (q's main thread). A running probe is replaced.
pub(super) fn start(probe: LagProbe, interval: Duration) -> Result<()> {
    stop();
    let fd = eventfd_new().ok_or(Error::PollSetup)?;
    // SAFETY: sd1 puts fd on q's main loop; we are on the main thread (called from a q
    // export). On failure q closes fd and returns NULL; on success its result is ours.
    let ok = unsafe { sd1(fd, on_probe) };
    if ok.is_null() {
        return Err(Error::PollSetup);
    }
    // SAFETY: sd1's result is ours to release.
    unsafe { r0(ok) };
    let probe = Arc::new(probe);
    let p = probe.clone();
    let thread = std::thread::Builder::new()
        .name("qprom-lag".into())
        .spawn(move || p.run(interval, &|| eventfd_signal(fd)))
        .map_err(|_| {
            // SAFETY: main thread; removes the callback and closes the eventfd made above.
            unsafe { sd0(fd) };
            Error::PollSetup
        })?;
    *PROBE.lock() = Some(Running { fd, probe, thread });
    Ok(())
}

/// Stops the probe thread and takes the fd off q's loop (q's main thread).
pub(super) fn stop() {
    let Some(r) = PROBE.lock().take() else { return };
    r.probe.stop();
    let _ = r.thread.join();
    // SAFETY: main thread; sd0 removes the callback and closes the eventfd.
    unsafe { sd0(r.fd) };
}

/// q's event loop, main thread: the probe was picked up.
extern "C" fn on_probe(fd: I) -> K {
    let _ = std::panic::catch_unwind(|| {
        eventfd_drain(fd);
        if let Some(r) = PROBE.lock().as_ref() {
            if r.fd == fd {
                r.probe.answered();
            }
        }
    });
    std::ptr::null_mut()
}
