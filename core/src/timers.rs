//! Deadlines of queries and attempts, with lazy deletion: entries whose owner has gone are
//! skipped when they come up, so cancelling costs nothing on the hot path.
//!
//! Almost every deadline is "now + one of a few fixed timeouts", so deadlines arrive sorted
//! per timeout. They are kept in a few sorted queues ("lanes") rather than one binary heap:
//! adding and removing are O(1) and touch memory in order, where a heap holding every
//! deadline of the last few seconds (hundreds of thousands at full load) pays a cache miss
//! per level. What fits no lane goes to a small heap. The earliest entry overall is the
//! earliest front, so entries come out in exactly the heap's order. Lane entries are packed
//! into 16 bytes.
//!
//! Lazy deletion alone would keep every deadline of the last timeout's worth of queries
//! (at 30k queries/s and a 5 s timeout, hundreds of thousands of entries, megabytes), though
//! almost all of them finished within milliseconds. So the gateway compacts the lanes
//! ([`Timers::compact`]) once stale entries outnumber the live ones by a margin: memory
//! follows what is in flight, and each entry is looked at about twice, as the lazy skip
//! would have looked at it once.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

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

/// A lane whose capacity is this many times what it holds (and at least [`SHRINK_FROM`]) is
/// shrunk, so that a burst of load does not keep its memory for ever.
const SHRINK_RATIO: usize = 4;
const SHRINK_FROM: usize = 4096;

/// Lane entries beyond twice the live deadlines at which [`Timers::needs_compacting`] says
/// yes: a margin that makes compacting rare (at most once per this many insertions).
const COMPACT_MARGIN: usize = 1024;

/// A lane entry, 16 bytes where an [`Entry`] takes 48: the deadline as nanoseconds from the
/// first deadline the timers saw, and a query or attempt key with the kind in the top bit.
/// Field order makes the derived order (deadline, key) the same as the entries' order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Packed {
    at: i64,
    key: u64,
}

/// The top bit of a packed key: an attempt, else a query (whose variant comes first in
/// [`TimerKey`]'s order, as a clear bit does). Keys and attempt ids count up from 1 and
/// never reach it.
const ATTEMPT_BIT: u64 = 1 << 63;

#[derive(Default)]
pub(crate) struct Timers {
    /// Each sorted by (deadline, key), earliest first. Query and attempt deadlines only.
    lanes: Vec<VecDeque<Packed>>,
    /// What fits no lane, and the few deadlines of other kinds.
    heap: BinaryHeap<Reverse<Entry>>,
    /// What packed deadlines count from: the first deadline inserted.
    epoch: Option<Instant>,
}

/// The key of a lane entry.
fn key_of(packed: Packed) -> TimerKey {
    if packed.key & ATTEMPT_BIT != 0 {
        TimerKey::Attempt(AttemptId(packed.key & !ATTEMPT_BIT))
    } else {
        TimerKey::Query(packed.key)
    }
}

/// Where the earliest entry is.
#[derive(Clone, Copy)]
enum Earliest {
    Lane(usize),
    Heap,
}

impl Timers {
    pub(crate) fn insert(&mut self, at: Instant, key: TimerKey) {
        let Some(entry) = self.pack(at, key) else {
            self.heap.push(Reverse((at, key)));
            return;
        };
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
            None => self.heap.push(Reverse((at, key))),
        }
    }

    /// `None` for a key that does not pack, or a deadline too far from the epoch (centuries).
    fn pack(&mut self, at: Instant, key: TimerKey) -> Option<Packed> {
        let key = match key {
            TimerKey::Query(q) if q < ATTEMPT_BIT => q,
            TimerKey::Attempt(AttemptId(a)) if a < ATTEMPT_BIT => a | ATTEMPT_BIT,
            _ => return None,
        };
        let epoch = *self.epoch.get_or_insert(at);
        let at = match at.checked_duration_since(epoch) {
            Some(after) => i64::try_from(after.as_nanos()).ok()?,
            None => -i64::try_from(epoch.duration_since(at).as_nanos()).ok()?,
        };
        Some(Packed { at, key })
    }

    fn unpack(&self, packed: Packed) -> Entry {
        let epoch = self.epoch.expect("set by the first packed entry");
        let offset = Duration::from_nanos(packed.at.unsigned_abs());
        let at = if packed.at >= 0 {
            epoch + offset
        } else {
            epoch - offset
        };
        (at, key_of(packed))
    }

    fn earliest(&self) -> Option<(Entry, Earliest)> {
        let lanes = self
            .lanes
            .iter()
            .enumerate()
            .filter_map(|(i, lane)| lane.front().map(|p| (self.unpack(*p), Earliest::Lane(i))));
        let heap = self.heap.peek().map(|Reverse(e)| (*e, Earliest::Heap));
        lanes.chain(heap).min_by(|a, b| a.0.cmp(&b.0))
    }

    fn remove(&mut self, at: Earliest) -> Option<Entry> {
        match at {
            Earliest::Lane(i) => {
                let packed = self.lanes[i].pop_front()?;
                Some(self.unpack(packed))
            }
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
        let lanes = self.lanes.iter().flatten().map(|p| self.unpack(*p));
        lanes.chain(heap)
    }

    /// Whether the lanes hold so many more entries than the `live` query and attempt
    /// deadlines (the owners in flight) that [`Timers::compact`] should run.
    pub(crate) fn needs_compacting(&self, live: usize) -> bool {
        let held: usize = self.lanes.iter().map(VecDeque::len).sum();
        held > 2 * live + COMPACT_MARGIN
    }

    /// Drops the lane entries whose owner is gone (`live` says whether a query or attempt
    /// deadline still has one), keeping the lanes' order, and gives back room as `prune`
    /// does.
    pub(crate) fn compact(&mut self, mut live: impl FnMut(TimerKey) -> bool) {
        for lane in &mut self.lanes {
            lane.retain(|p| live(key_of(*p)));
        }
        self.shrink();
    }

    /// Drops stale entries from the front so that `next` does not report dead deadlines
    /// forever when the timers are otherwise idle, and gives back the room of lanes that a
    /// burst grew.
    pub(crate) fn prune(&mut self, mut live: impl FnMut(Instant, &TimerKey) -> bool) {
        while let Some(((at, key), place)) = self.earliest() {
            if live(at, &key) {
                break;
            }
            self.remove(place);
        }
        self.shrink();
    }

    /// Gives back the room of lanes that a burst grew.
    fn shrink(&mut self) {
        for lane in &mut self.lanes {
            if lane.capacity() >= SHRINK_FROM && lane.len() * SHRINK_RATIO < lane.capacity() {
                lane.shrink_to(lane.len() * 2);
            }
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

    #[test]
    #[allow(clippy::disallowed_methods)] // any epoch will do for a test
    fn packed_and_heap_entries_keep_one_order_even_before_the_epoch() {
        assert_eq!(std::mem::size_of::<Packed>(), 16);
        let t0 = Instant::now() + Duration::from_secs(10);
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut timers = Timers::default();
        let pool = Ref { gen: 1, index: 0 };
        let entries = [
            (ms(500), TimerKey::Query(3)),
            (ms(5), TimerKey::Attempt(AttemptId(7))),
            (t0 - Duration::from_millis(300), TimerKey::Query(9)),
            (ms(5), TimerKey::Probe { pool, upstream: 1 }),
            (ms(5), TimerKey::Query(u64::MAX)),
            (ms(5), TimerKey::Query(4)),
            (ms(500), TimerKey::Connection(ConnId(2))),
            (ms(7), TimerKey::Loop(pool)),
        ];
        for (at, key) in entries {
            timers.insert(at, key);
        }
        let mut expected = entries.to_vec();
        expected.sort();
        let mut popped = Vec::new();
        while let Some(entry) = timers.pop_due(ms(1000)) {
            popped.push(entry);
        }
        assert_eq!(popped, expected);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // any epoch will do for a test
    fn compacting_keeps_the_live_deadlines_in_order_and_gives_back_the_room() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        // Queries of one timeout, of which one in a hundred is still in flight, and their
        // attempts of another.
        let live = |key: TimerKey| match key {
            TimerKey::Query(q) | TimerKey::Attempt(AttemptId(q)) => q % 100 == 0,
            _ => true,
        };
        for i in 1..=20_000u64 {
            timers.insert(t0 + Duration::from_millis(5000 + i), TimerKey::Query(i));
            timers.insert(
                t0 + Duration::from_millis(2000 + i),
                TimerKey::Attempt(AttemptId(i)),
            );
        }
        assert!(!timers.needs_compacting(40_000 / 2));
        assert!(timers.needs_compacting(400));
        let grown: usize = timers.lanes.iter().map(VecDeque::capacity).sum();
        timers.compact(live);
        assert!(!timers.needs_compacting(400));
        let room: usize = timers.lanes.iter().map(VecDeque::capacity).sum();
        assert!(room < grown / 10, "{room} of {grown} kept");
        let mut popped = Vec::new();
        while let Some(entry) = timers.pop_due(t0 + Duration::from_secs(60)) {
            popped.push(entry);
        }
        let mut expected = Vec::new();
        for i in (100..=20_000u64).step_by(100) {
            expected.push((t0 + Duration::from_millis(5000 + i), TimerKey::Query(i)));
            let attempt = TimerKey::Attempt(AttemptId(i));
            expected.push((t0 + Duration::from_millis(2000 + i), attempt));
        }
        expected.sort();
        assert_eq!(popped, expected);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // any epoch will do for a test
    fn a_lane_gives_back_what_a_burst_grew_once_it_drains() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        for i in 1..=100_000 {
            timers.insert(t0 + Duration::from_micros(i), TimerKey::Query(i));
        }
        let grown = timers.lanes[0].capacity();
        assert!(grown >= 100_000);
        timers.prune(|at, _| at > t0 + Duration::from_micros(99_000));
        assert!(
            timers.lanes[0].capacity() < grown / 10,
            "shrunk to what it holds"
        );
        assert_eq!(timers.next(), Some(t0 + Duration::from_micros(99_001)));
    }
}
