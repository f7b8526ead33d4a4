//! The benches' allocator: System's, counting allocations and requested bytes while
//! `COUNTING` is on. Off except around what is being counted, so the other cases pay only
//! a relaxed load per allocation. Included by each bench with `#[path]` (a bench is its
//! own crate; cargo takes only benches/*.rs as benches, not this folder).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

pub struct CountingAlloc;

pub static COUNTING: AtomicBool = AtomicBool::new(false);
/// Allocations and reallocations (a buffer that grows is not "reused").
pub static ALLOCS: AtomicU64 = AtomicU64::new(0);
/// Bytes requested, growth of reallocations included; frees not subtracted: for sizing
/// what one thing builds.
pub static BYTES: AtomicU64 = AtomicU64::new(0);

#[inline]
fn count(bytes: usize) {
    if COUNTING.load(Relaxed) {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(bytes as u64, Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to System; the counters have no effect on memory.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size());
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count(l.size());
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count(n.saturating_sub(l.size()));
        System.realloc(p, l, n)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;
