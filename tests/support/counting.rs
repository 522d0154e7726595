//! A counting global allocator for the no-allocation tests: it wraps the system allocator and
//! counts, on the measuring thread only, every allocation made while a closure runs.
//!
//! It needs `unsafe impl GlobalAlloc`, which the library forbids (`src/lib.rs`) and the crate
//! denies (`Cargo.toml` `[lints.rust]`), so it lives here, the one place that allows it. A test
//! file includes it with `#[path = "support/counting.rs"] mod counting;`, which also installs it
//! as that test binary's global allocator and adds the test that shows it counts.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

thread_local! {
    /// Whether this thread is in a measured region.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    /// Allocations (and reallocations) made by this thread in measured regions.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

fn note_allocation() {
    // `try_with`: the thread-locals may already be gone while a thread shuts down. Both have
    // `const` initializers and no destructor, so touching them never allocates.
    let _ = MEASURING.try_with(|measuring| {
        if measuring.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; counting
// touches only `const`-initialized thread-locals and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: as above; `ptr` was allocated by `System` through this wrapper.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with the number of allocations it made on this thread.
pub fn allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    ALLOCATIONS.with(|n| n.set(0));
    MEASURING.with(|m| m.set(true));
    let result = f();
    MEASURING.with(|m| m.set(false));
    (result, ALLOCATIONS.with(Cell::get))
}

/// Runs `f` and asserts that it allocated nothing.
#[allow(dead_code, reason = "not every test file that counts uses it")]
pub fn assert_no_allocation<R>(what: &str, f: impl FnOnce() -> R) -> R {
    let (result, n) = allocations(f);
    assert_eq!(n, 0, "{what}: {n} allocation(s)");
    result
}

/// The counter can fail a test: it sees a `Box::new` and a reallocation in a measured region,
/// and nothing outside one.
#[test]
fn the_counter_counts() {
    let (boxed, n) = allocations(|| black_box(Box::new(black_box(42u64))));
    assert_eq!((*boxed, n), (42, 1));
    let (v, n) = allocations(|| {
        let mut v: Vec<u8> = Vec::with_capacity(1);
        v.extend_from_slice(black_box(&[1, 2, 3, 4, 5, 6, 7, 8, 9]));
        v
    });
    assert_eq!((v.len(), n), (9, 2), "an allocation and a reallocation");
    ALLOCATIONS.with(|c| c.set(0));
    drop(black_box(Box::new(1u8)));
    assert_eq!(ALLOCATIONS.with(Cell::get), 0);
}
