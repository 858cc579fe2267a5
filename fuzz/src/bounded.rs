//! The allocation bound of every fuzz target: a global allocator that aborts the process (a
//! crash libFuzzer records with its input) when one Rust allocation exceeds [`MAX_ALLOCATION`]
//! or the live Rust heap exceeds [`MAX_LIVE`]. libFuzzer's own `-malloc_limit_mb` needs a
//! sanitizer's allocator hooks, which a stable toolchain does not give; its `-rss_limit_mb`
//! (scripts/fuzz.sh) bounds the whole process, zstd's C heap included.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest single allocation a hostile input may cause. The protocol's own bounds are far
/// below it: a frame is at most 64 KiB, a compressed block 128 KiB.
pub const MAX_ALLOCATION: usize = 16 << 20;
/// The largest live Rust heap, all threads together.
pub const MAX_LIVE: usize = 256 << 20;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The highest live Rust heap seen so far, in bytes.
pub fn peak_live_bytes() -> usize {
    PEAK.load(Ordering::Relaxed)
}

struct Bounded;

#[global_allocator]
static ALLOCATOR: Bounded = Bounded;

fn grow(by: usize) {
    if by > MAX_ALLOCATION {
        over(b"knsock-fuzz: one allocation over the 16 MiB bound\n");
    }
    let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    if live > MAX_LIVE {
        over(b"knsock-fuzz: live heap over the 256 MiB bound\n");
    }
    PEAK.fetch_max(live, Ordering::Relaxed);
}

fn over(message: &'static [u8]) -> ! {
    // Writing a static message to the unbuffered stderr does not allocate.
    let _ = std::io::stderr().write_all(message);
    std::process::abort()
}

// SAFETY: every call forwards to `System` with the caller's arguments; the bookkeeping around it
// touches only atomics.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grow(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            if new_size > MAX_ALLOCATION {
                over(b"knsock-fuzz: one allocation over the 16 MiB bound\n");
            }
            grow(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}
