//! Cooperation for loops that could run forever on a busy socket: every item asks the runtime
//! whether it wants the thread back, and every few items the task steps aside for the others
//! of its executor in any case.

use std::marker::PhantomData;

use crate::runtime::Runtime;

/// Items handled before a loop yields to the other tasks unconditionally.
pub(crate) const ITEMS_PER_YIELD: usize = 32;

/// The work a loop may do before it lets the others run.
pub(crate) struct Budget<R> {
    left: usize,
    per_yield: usize,
    runtime: PhantomData<R>,
}

impl<R: Runtime> Budget<R> {
    pub(crate) fn new() -> Budget<R> {
        Budget::with(ITEMS_PER_YIELD)
    }

    /// A budget of `per_yield` items between unconditional yields.
    pub(crate) fn with(per_yield: usize) -> Budget<R> {
        Budget {
            left: per_yield,
            per_yield,
            runtime: PhantomData,
        }
    }

    /// Counts `items`, yielding when the slice is used up or the runtime needs the thread.
    pub(crate) async fn spend(&mut self, items: usize) {
        if items >= self.left {
            self.left = self.per_yield;
            R::yield_now().await;
        } else {
            self.left -= items;
            R::yield_if_needed().await;
        }
    }
}
