//! Heap allocations per gathered query in steady state (the SPEC §1 SRV query, two clusters
//! of two endpoints), counted by a global allocator. The goal is none; the bound below is
//! what the core does today, so that a change adding allocations to the query path fails
//! here.

// A global allocator can only be written with `unsafe`; it adds a counter and nothing else.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use gatherdns_benches::Driver;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Allocations the bench driver itself makes per query: it copies the two clusters' replies
/// into one buffer of its own, as a runtime receives a batch (`gatherdns_host::batch`): the
/// buffer and its shared count.
const DRIVER_ALLOCATIONS: u64 = 2;

/// Allocations per query by the core in steady state (goal: none). The sections, parts and
/// short lists of a query come from reused vectors (`vec_pool.rs`) or inline ones; what is left
/// is amortised: the name arena takes a 16 kB block about once in fifty queries, the message
/// buffer a 64 kB one about once in a hundred.
const CORE_ALLOCATIONS: f64 = 0.05;

#[test]
fn allocations_per_gathered_query_stay_within_the_bound() {
    const QUERIES: u64 = 2000;
    let mut driver = Driver::with_endpoints(2);
    // Warm up: metric series, tables and buffers reach their steady size.
    for _ in 0..500 {
        driver.gathered_queries(1);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut bytes = 0;
    for _ in 0..QUERIES {
        bytes += driver.gathered_queries(1);
    }
    let made = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(driver.in_flight(), 0);
    assert!(bytes > 0);
    let per_query = made as f64 / QUERIES as f64 - DRIVER_ALLOCATIONS as f64;
    eprintln!("core allocations per gathered query: {per_query:.2}");
    assert!(
        per_query <= CORE_ALLOCATIONS,
        "{per_query:.2} allocations per query, more than the {CORE_ALLOCATIONS} of today"
    );
}
