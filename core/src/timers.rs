//! Deadlines of queries and attempts. A min-heap with lazy deletion: entries whose owner has
//! gone are skipped when they come up, so cancelling costs nothing on the hot path.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::generation::Ref;
use crate::transmit::AttemptId;

/// What a deadline belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKey {
    /// The overall deadline of a client query.
    Query(u64),
    /// The deadline of one upstream attempt.
    Attempt(AttemptId),
    /// The next health probe of a down upstream (its pool, and its index in the pool).
    Probe { pool: Ref, upstream: usize },
}

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, TimerKey)>>,
}

impl Timers {
    pub(crate) fn insert(&mut self, at: Instant, key: TimerKey) {
        self.heap.push(Reverse((at, key)));
    }

    /// Pops the earliest entry due at `now`. Callers check whether its owner still exists.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKey)> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// The earliest entry. It may be stale; an early wake-up is harmless by contract.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Drops stale entries from the top so that `next` does not report dead deadlines
    /// forever when the heap is otherwise idle.
    pub(crate) fn prune(&mut self, mut live: impl FnMut(&TimerKey) -> bool) {
        while let Some(Reverse((_, key))) = self.heap.peek() {
            if live(key) {
                break;
            }
            self.heap.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    #[allow(clippy::disallowed_methods)] // any epoch will do for a test
    fn pops_in_deadline_order_only_when_due() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.insert(t0 + Duration::from_millis(20), TimerKey::Query(2));
        timers.insert(t0 + Duration::from_millis(10), TimerKey::Query(1));
        assert_eq!(timers.next(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(timers.pop_due(t0), None);
        assert_eq!(
            timers.pop_due(t0 + Duration::from_millis(15)).map(|e| e.1),
            Some(TimerKey::Query(1))
        );
        assert_eq!(timers.pop_due(t0 + Duration::from_millis(15)), None);
        timers.prune(|k| *k != TimerKey::Query(2));
        assert_eq!(timers.next(), None);
    }
}
