//! Live-heap accounting for the memory benchmarks, built only with the `heap-stats` feature:
//! a global allocator over the system one that counts the bytes allocated and not yet freed,
//! and their peak. Resident memory (RSS) also holds what the allocator keeps after it is
//! freed; this is what the program itself holds, sampled at every allocation, so it does
//! not depend on when a sampler happens to look.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

struct Counting;

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

// SAFETY: every call is passed to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Prints the peak live heap to stderr when `ECIR_HEAP_STATS` is set.
pub fn report() {
    if std::env::var_os("ECIR_HEAP_STATS").is_some() {
        let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
        eprintln!(
            "heap-stats: peak live heap {:.1} MiB, live at exit {:.1} MiB",
            mib(PEAK.load(Relaxed)),
            mib(LIVE.load(Relaxed))
        );
    }
}
