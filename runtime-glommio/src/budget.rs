//! Cooperation for loops that could run forever on a busy socket: every item asks glommio
//! whether the time slice is over (then the reactor reaps completions), and every few items
//! the task steps aside for the others of its executor in any case.

use futures_lite::future;

/// Items handled before a loop yields to the other tasks unconditionally.
pub(crate) const ITEMS_PER_YIELD: usize = 32;

/// The work a loop may do before it lets the others run.
pub(crate) struct Budget {
    left: usize,
    per_yield: usize,
}

impl Budget {
    pub(crate) fn new() -> Budget {
        Budget::with(ITEMS_PER_YIELD)
    }

    /// A budget of `per_yield` items between unconditional yields.
    pub(crate) fn with(per_yield: usize) -> Budget {
        Budget {
            left: per_yield,
            per_yield,
        }
    }

    /// Counts one item, yielding when the slice is used up or the executor needs the thread
    /// back (glommio's preemption: pending I/O or timers).
    pub(crate) async fn spend(&mut self) {
        self.left -= 1;
        if self.left == 0 {
            self.left = self.per_yield;
            future::yield_now().await;
        } else {
            glommio::executor().yield_if_needed().await;
        }
    }
}
