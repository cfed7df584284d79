//! `max_concurrent`'s count of sub-queries in flight through one `forward`, shared by every
//! gateway built from the same configuration. gatherdns-glommio runs a gateway per executor;
//! CoreDNS's limit is per process, so the executors must count together. Forwards without
//! `max_concurrent` never touch it: the per-query path shares nothing between executors.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// A count of sub-queries in flight, shared by the clones of one configuration.
#[derive(Clone, Default)]
pub struct SharedCount(Arc<AtomicU32>);

impl SharedCount {
    /// Takes a place if fewer than `max` are taken; false (and nothing taken) otherwise.
    pub(crate) fn try_acquire(&self, max: u32) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives back a place taken by [`SharedCount::try_acquire`].
    pub(crate) fn release(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Places taken now, by every gateway sharing the count.
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }
}

impl fmt::Debug for SharedCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedCount({})", self.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_count_together_up_to_the_limit() {
        let a = SharedCount::default();
        let b = a.clone();
        assert!(a.try_acquire(2));
        assert!(b.try_acquire(2));
        assert!(!a.try_acquire(2), "a third place beyond max 2");
        assert_eq!(b.get(), 2);
        b.release();
        assert!(a.try_acquire(2));
        assert_eq!(SharedCount::default().get(), 0, "a new count is its own");
    }

    #[test]
    fn release_never_goes_below_zero() {
        let a = SharedCount::default();
        a.release();
        assert_eq!(a.get(), 0);
    }
}
