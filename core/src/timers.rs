//! Deadlines of queries and attempts, with lazy deletion: entries whose owner has gone are
//! skipped when they come up, so cancelling costs nothing on the hot path.
//!
//! Almost every deadline is "now + one of a few fixed timeouts", so deadlines arrive sorted
//! per timeout. They are kept in a few sorted queues ("lanes") rather than one binary heap:
//! adding and removing are O(1) and touch memory in order, where a heap holding every
//! deadline of the last few seconds (hundreds of thousands at full load) pays a cache miss
//! per level. What fits no lane goes to a small heap. The earliest entry overall is the
//! earliest front, so entries come out in exactly the heap's order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use crate::generation::Ref;
use crate::transmit::{AttemptId, ConnId};

/// What a deadline belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKey {
    /// The overall deadline of a client query.
    Query(u64),
    /// The deadline of one upstream attempt.
    Attempt(AttemptId),
    /// The next health probe of a down upstream (its pool, and its index in the pool).
    Probe { pool: Ref, upstream: usize },
    /// The idle, stall or query deadline of a pooled upstream TCP connection.
    Connection(ConnId),
    /// The `loop` probe of a server block: its reply is overdue, or its pause is over.
    Loop(Ref),
}

type Entry = (Instant, TimerKey);

/// Lanes kept at most: one per timeout in use is enough.
const MAX_LANES: usize = 8;

#[derive(Default)]
pub(crate) struct Timers {
    /// Each sorted by (deadline, key), earliest first.
    lanes: Vec<VecDeque<Entry>>,
    heap: BinaryHeap<Reverse<Entry>>,
}

/// Where the earliest entry is.
#[derive(Clone, Copy)]
enum Earliest {
    Lane(usize),
    Heap,
}

impl Timers {
    pub(crate) fn insert(&mut self, at: Instant, key: TimerKey) {
        let entry = (at, key);
        // The lane whose last entry is the latest one not after this entry keeps lanes
        // tight, so that the next deadline of each timeout finds its own lane.
        let fit = self
            .lanes
            .iter()
            .enumerate()
            .filter_map(|(i, lane)| match lane.back() {
                Some(last) if *last <= entry => Some((Some(*last), i)),
                None => Some((None, i)),
                Some(_) => None,
            })
            .max();
        match fit {
            Some((_, lane)) => self.lanes[lane].push_back(entry),
            None if self.lanes.len() < MAX_LANES => self.lanes.push(VecDeque::from([entry])),
            None => self.heap.push(Reverse(entry)),
        }
    }

    fn earliest(&self) -> Option<(Entry, Earliest)> {
        let lanes = self
            .lanes
            .iter()
            .enumerate()
            .filter_map(|(i, lane)| lane.front().map(|e| (*e, Earliest::Lane(i))));
        let heap = self.heap.peek().map(|Reverse(e)| (*e, Earliest::Heap));
        lanes.chain(heap).min_by(|a, b| a.0.cmp(&b.0))
    }

    fn remove(&mut self, at: Earliest) -> Option<Entry> {
        match at {
            Earliest::Lane(i) => self.lanes[i].pop_front(),
            Earliest::Heap => self.heap.pop().map(|Reverse(e)| e),
        }
    }

    /// Pops the earliest entry due at `now`. Callers check whether its owner still exists.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKey)> {
        match self.earliest()? {
            ((at, _), place) if at <= now => self.remove(place),
            _ => None,
        }
    }

    /// The earliest entry. It may be stale; an early wake-up is harmless by contract.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.earliest().map(|((at, _), _)| at)
    }

    /// Every entry, live or stale, in no particular order (for the invariant checks).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        let heap = self.heap.iter().map(|Reverse(e)| *e);
        self.lanes.iter().flatten().copied().chain(heap)
    }

    /// Drops stale entries from the front so that `next` does not report dead deadlines
    /// forever when the timers are otherwise idle.
    pub(crate) fn prune(&mut self, mut live: impl FnMut(Instant, &TimerKey) -> bool) {
        while let Some(((at, key), place)) = self.earliest() {
            if live(at, &key) {
                break;
            }
            self.remove(place);
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
        timers.prune(|_, k| *k != TimerKey::Query(2));
        assert_eq!(timers.next(), None);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // any epoch will do for a test
    fn come_out_in_deadline_then_key_order_whatever_the_lanes() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut timers = Timers::default();
        // Three timeouts interleaved, ties between kinds, and more orders than lanes.
        let mut expected = Vec::new();
        for i in 0..40u64 {
            let at = ms(i * 7 % 23 + (i % 3) * 100);
            let key = if i % 2 == 0 {
                TimerKey::Query(i)
            } else {
                TimerKey::Attempt(AttemptId(i))
            };
            timers.insert(at, key);
            expected.push((at, key));
        }
        expected.sort();
        let mut popped = Vec::new();
        while let Some(entry) = timers.pop_due(ms(1000)) {
            popped.push(entry);
        }
        assert_eq!(popped, expected);
        assert_eq!(timers.next(), None);
    }
}
