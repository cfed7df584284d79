//! Vectors reused from query to query. A gathered query keeps its parts, its cluster replies'
//! sections and the merged answer's in vectors; once the reply is written they are empty and
//! go back to a pool, so that in steady state the query path takes them without allocating.

use crate::answer::Answer;
use crate::wire::Record;

/// Vectors kept at most: more than the sections of the queries finishing in one drain.
const KEEP: usize = 64;

/// A vector that grew past this many items (a large answer's records) is freed rather than
/// kept, so that one large answer does not hold its memory for the small ones.
const MAX_CAPACITY: usize = 128;

/// Empty vectors, ready to be filled.
#[derive(Debug)]
pub(crate) struct VecPool<T> {
    free: Vec<Vec<T>>,
}

impl<T> Default for VecPool<T> {
    fn default() -> Self {
        VecPool { free: Vec::new() }
    }
}

impl<T> VecPool<T> {
    /// An empty vector with room for `capacity` items (none taken when `capacity` is 0: an
    /// empty section needs no allocation).
    pub(crate) fn take(&mut self, capacity: usize) -> Vec<T> {
        if capacity == 0 {
            return Vec::new();
        }
        match self.free.pop() {
            Some(mut v) => {
                v.reserve(capacity);
                v
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// Takes back a vector whose items are no longer needed.
    pub(crate) fn give(&mut self, mut v: Vec<T>) {
        if v.capacity() == 0 || v.capacity() > MAX_CAPACITY || self.free.len() >= KEEP {
            return;
        }
        v.clear();
        self.free.push(v);
    }
}

impl VecPool<Record> {
    /// Takes back the sections of an answer that has been written.
    pub(crate) fn give_answer(&mut self, answer: Answer) {
        self.give(answer.answer);
        self.give(answer.authority);
        self.give(answer.additional);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Name;

    #[test]
    fn vectors_come_back_empty_and_large_ones_are_freed() {
        let mut vecs = VecPool::default();
        let mut v = vecs.take(4);
        v.push(Record::a(Name::root(), 30, [10, 0, 0, 1].into()));
        let kept = v.as_ptr();
        vecs.give(v);
        let again = vecs.take(2);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), kept, "the same allocation, reused");
        assert!(vecs.take(0).capacity() == 0);
        vecs.give(Vec::with_capacity(MAX_CAPACITY + 1));
        assert!(vecs.free.is_empty(), "a large vector is not kept");
    }
}
