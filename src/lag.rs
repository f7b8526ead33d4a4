//! Event-loop lag, a synthetic probe: at a fixed interval a thread asks q's main thread
//! for a no-op (through an fd on q's event loop, src/ffi/probe.rs) and records how long
//! q took to pick it up. At most one probe is outstanding; while it is, the thread keeps
//! a gauge of how long it has waited, so a q stuck in a 40-second query shows it while
//! it is stuck, not only when it returns. The no-op never calls q code.

use crate::error::Result;
use crate::metric::{MetricType, Params};
use crate::registry::{FamilyDesc, Registry, Series};
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const LAG: &str = "kdb_event_loop_lag_seconds";
pub const LAG_OUTSTANDING: &str = "kdb_event_loop_lag_outstanding_seconds";
/// From a free loop (tens of µs) to a long query.
pub const LAG_BUCKETS: [f64; 15] = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];
/// The `lagProbe` init key's default interval, seconds.
pub const DEFAULT_INTERVAL: f64 = 1.0;

pub struct LagProbe {
    sent: Mutex<Option<Instant>>,
    hist: Arc<Series>,
    outstanding: Arc<Series>,
    stopped: Mutex<bool>,
    cv: Condvar,
    probes: std::sync::atomic::AtomicU64,
}

impl LagProbe {
    pub fn register(reg: &Registry) -> Result<LagProbe> {
        let mut h = FamilyDesc::new(LAG, MetricType::Histogram, "Time q's main thread took to pick up a no-op probe (event-loop lag).", &[]);
        h.params = Some(Params::Buckets(LAG_BUCKETS.as_slice().into()));
        let hist = reg.get_or_create_in(&*reg.register(&h)?, &[] as &[&str], None)?;
        let g = FamilyDesc::new(LAG_OUTSTANDING, MetricType::Gauge, "How long the probe now waiting for q's main thread has waited (0: none waiting).", &[]);
        let outstanding = reg.get_or_create_in(&*reg.register(&g)?, &[] as &[&str], None)?;
        Ok(LagProbe {
            sent: Mutex::new(None),
            hist,
            outstanding,
            stopped: Mutex::new(false),
            cv: Condvar::new(),
            probes: Default::default(),
        })
    }

    /// On the probe thread: sends a probe (`signal`) unless one is outstanding, in which
    /// case the waiting time so far is published.
    pub fn tick(&self, signal: &dyn Fn() -> bool) {
        let mut sent = self.sent.lock();
        match *sent {
            Some(t) => {
                let _ = self.outstanding.set(t.elapsed().as_secs_f64());
            }
            None => {
                let now = Instant::now();
                if signal() {
                    *sent = Some(now);
                    self.probes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }

    /// On q's main thread, when the probe is picked up.
    pub fn answered(&self) {
        if let Some(t) = self.sent.lock().take() {
            let _ = self.hist.observe(t.elapsed().as_secs_f64());
            let _ = self.outstanding.set(0.0);
        }
    }

    /// Probes sent so far.
    pub fn probes(&self) -> u64 {
        self.probes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The probe thread's loop: a tick per interval until [`LagProbe::stop`].
    pub fn run(&self, interval: Duration, signal: &dyn Fn() -> bool) {
        let mut stopped = self.stopped.lock();
        while !*stopped {
            drop(stopped);
            self.tick(signal);
            stopped = self.stopped.lock();
            if !*stopped {
                self.cv.wait_for(&mut stopped, interval);
            }
        }
    }

    /// Ends the loop; a probe still outstanding is dropped, and the gauge goes to 0.
    pub fn stop(&self) {
        *self.stopped.lock() = true;
        self.cv.notify_all();
        self.sent.lock().take();
        let _ = self.outstanding.set(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn one_outstanding_probe_and_its_wait() {
        let r = Registry::new();
        let p = LagProbe::register(&r).unwrap();
        let sent = AtomicUsize::new(0);
        let signal = || {
            sent.fetch_add(1, Ordering::Relaxed);
            true
        };
        p.tick(&signal);
        std::thread::sleep(Duration::from_millis(5)); // the wait being measured
        p.tick(&signal);
        p.tick(&signal);
        assert_eq!(sent.load(Ordering::Relaxed), 1, "never more than one outstanding");
        assert!(p.outstanding.get() >= 0.005, "the wait so far is published: {}", p.outstanding.get());
        p.answered();
        assert_eq!(p.outstanding.get(), 0.0);
        p.tick(&signal);
        assert_eq!(sent.load(Ordering::Relaxed), 2);
        p.answered();
        p.answered(); // a stray wake-up records nothing
        let crate::metric::Value::Histogram(h) = &p.hist.value else { panic!("not a histogram") };
        let (count, sum) = h.count_sum();
        assert_eq!(count, 2, "one observation per answered probe");
        assert!(sum >= 0.005, "the first probe waited 5 ms: {sum}");
        assert_eq!(p.probes(), 2);
    }

    #[test]
    fn a_failed_signal_is_not_outstanding() {
        let r = Registry::new();
        let p = LagProbe::register(&r).unwrap();
        p.tick(&|| false);
        assert!(p.sent.lock().is_none());
    }

    #[test]
    fn stop_ends_the_loop() {
        let r = Registry::new();
        let p = Arc::new(LagProbe::register(&r).unwrap());
        let q = p.clone();
        let t = std::thread::spawn(move || q.run(Duration::from_secs(3600), &|| true));
        p.stop();
        t.join().unwrap();
    }
}
