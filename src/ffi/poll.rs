//! The poll bridge: a scrape on the HTTP thread asks q's main thread to run
//! `.prom.on_poll`, and waits for it up to a timeout.
//!
//! The HTTP thread never touches q: it bumps a request counter and writes to an eventfd
//! that q's event loop watches (`sd1`). q's main thread, when free, runs the callback,
//! which applies the q function given at start and marks the request done. If q is
//! busy, the scrape stops waiting at the timeout and serves the last values. Requests
//! that arrive while one is pending share the next run. An eventfd cannot raise SIGPIPE.

use crate::error::{Error, Result};
use super::qapi::native::{dot, ee, r0, r1, sd0, sd1};
use super::qapi::{I, K};
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What became of one poll request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polled {
    Done,
    TimedOut,
    /// The bridge is shutting down or the eventfd failed.
    Unavailable,
}

#[derive(Debug, Default)]
struct State {
    requested: u64,
    done: u64,
    closed: bool,
}

/// Shared between the HTTP threads (request) and q's main thread (callback, stop).
#[derive(Debug)]
pub struct Bridge {
    fd: i32,
    state: Mutex<State>,
    cv: Condvar,
}

impl Bridge {
    /// Asks q's main thread to poll; waits up to `timeout`.
    pub fn request(&self, timeout: Duration) -> Polled {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock();
        if st.closed {
            return Polled::Unavailable;
        }
        st.requested += 1;
        let target = st.requested;
        if !eventfd_signal(self.fd) {
            return Polled::Unavailable;
        }
        while st.done < target {
            if st.closed {
                return Polled::Unavailable;
            }
            if self.cv.wait_until(&mut st, deadline).timed_out() {
                return if st.done >= target { Polled::Done } else { Polled::TimedOut };
            }
        }
        Polled::Done
    }

    /// Wakes every waiter for good; later requests return at once.
    fn close(&self) {
        self.state.lock().closed = true;
        self.cv.notify_all();
    }
}

/// Main-thread state: the q function to call and the bridge. Only q's main thread
/// touches the K inside (start, callback, stop), so sending it between threads never happens.
struct Main {
    poll_fn: K,
    bridge: Arc<Bridge>,
}
// SAFETY: see `Main`: the K is used on q's main thread only; the Mutex just gives the
// static a home.
unsafe impl Send for Main {}

static MAIN: Mutex<Option<Main>> = Mutex::new(None);

/// Starts the bridge (q's main thread): keeps `poll_fn` (a unary q function, r1'd) and
/// puts the eventfd on q's event loop.
pub fn start(poll_fn: K) -> Result<Arc<Bridge>> {
    let mut main = MAIN.lock();
    if let Some(m) = main.as_ref() {
        return Ok(m.bridge.clone());
    }
    let fd = eventfd_new().ok_or(Error::PollSetup)?;
    // SAFETY: sd1 is q's API for putting an fd on its main loop; we are on the main
    // thread (called from a q export). On failure q closes fd and returns NULL.
    let ok = unsafe { sd1(fd, on_readable) };
    if ok.is_null() {
        return Err(Error::PollSetup);
    }
    // SAFETY: sd1's result is ours to release; poll_fn is borrowed from q and we keep it,
    // so we take a reference (released in stop).
    unsafe {
        r0(ok);
        r1(poll_fn);
    }
    let bridge = Arc::new(Bridge { fd, state: Mutex::new(State::default()), cv: Condvar::new() });
    *main = Some(Main { poll_fn, bridge: bridge.clone() });
    Ok(bridge)
}

/// Stops the bridge (q's main thread): waiters are released first, so HTTP threads
/// waiting on q can finish while the caller joins them.
pub fn stop() {
    let Some(m) = MAIN.lock().take() else { return };
    m.bridge.close();
    // SAFETY: main thread; sd0 removes the callback and closes the eventfd; the function
    // reference we took in start is released exactly once.
    unsafe {
        sd0(m.bridge.fd);
        r0(m.poll_fn);
    }
}

/// Called by q's event loop on its main thread when the eventfd is readable.
extern "C" fn on_readable(fd: I) -> K {
    let _ = std::panic::catch_unwind(|| {
        eventfd_drain(fd);
        let (f, bridge) = match MAIN.lock().as_ref() {
            Some(m) if m.bridge.fd == fd => (m.poll_fn, m.bridge.clone()),
            _ => return,
        };
        let target = bridge.state.lock().requested;
        // SAFETY: main thread (q's event loop). dot borrows f and the args list; the
        // args list and the result (or the error object ee gives) are ours to free.
        // The q function traps errors of the user's hook itself (prom.q).
        unsafe {
            // One argument, q's (::) object: never a null pointer, which q code cannot hold.
            let args = super::k::list(vec![super::k::identity()]);
            let res = ee(dot(f, args));
            r0(args);
            if !res.is_null() {
                r0(res);
            }
        }
        let mut st = bridge.state.lock();
        st.done = st.done.max(target);
        drop(st);
        bridge.cv.notify_all();
    });
    std::ptr::null_mut()
}

pub(super) fn eventfd_new() -> Option<i32> {
    // SAFETY: eventfd creates a new descriptor; no pointers involved.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    (fd >= 0).then_some(fd)
}

pub(super) fn eventfd_signal(fd: i32) -> bool {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a local to an eventfd we own; EAGAIN (counter full)
    // still leaves it readable, which is all we need.
    let n = unsafe { libc::write(fd, &one as *const u64 as *const libc::c_void, 8) };
    n == 8 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN)
}

pub(super) fn eventfd_drain(fd: i32) {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a local from a non-blocking eventfd.
    let _ = unsafe { libc::read(fd, &mut v as *mut u64 as *mut libc::c_void, 8) };
}

impl crate::http::PollHook for Bridge {
    fn poll(&self, timeout: Duration) -> crate::http::PollOutcome {
        use crate::http::PollOutcome;
        match self.request(timeout) {
            Polled::Done => PollOutcome::Done,
            Polled::TimedOut => PollOutcome::TimedOut,
            Polled::Unavailable => PollOutcome::Failed,
        }
    }
    fn cancel(&self) {
        self.close();
    }
}
