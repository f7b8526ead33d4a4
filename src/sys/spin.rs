//! A tiny spin lock for critical sections of a few nanoseconds (a histogram's counts).
//!
//! `parking_lot::Mutex` costs two locked instructions per use because its unlock must
//! check for parked waiters; here unlock is a plain release store. Waiters spin briefly,
//! then yield, so a preempted holder costs a scheduling slice, never a deadlock.
//! It lives in src/ffi/ because it needs `unsafe` (the project keeps all of it here).

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: access to `value` is serialised by `locked` (acquire on lock, release on
// unlock), so sharing the lock between threads is sound whenever T can be sent.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: moving the lock moves the T it owns.
unsafe impl<T: Send> Send for SpinLock<T> {}

pub struct Guard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> SpinLock<T> {
    pub const fn new(v: T) -> Self {
        SpinLock { locked: AtomicBool::new(false), value: UnsafeCell::new(v) }
    }

    #[inline]
    pub fn lock(&self) -> Guard<'_, T> {
        let mut spins = 0u32;
        while self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            while self.locked.load(Ordering::Relaxed) {
                spins += 1;
                if spins < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
        }
        Guard { lock: self }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpinLock")
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this thread holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in deref; the &mut guard makes this the only reference.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.locked_release();
    }
}

impl<T> Guard<'_, T> {
    #[inline]
    fn locked_release(&self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn exclusive_under_contention() {
        let l = std::sync::Arc::new(SpinLock::new((0u64, 0u64)));
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        let mut g = l.lock();
                        g.0 += 1;
                        g.1 += 2;
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        let g = l.lock();
        assert_eq!((g.0, g.1), (400_000, 800_000));
    }
}
