//! A map that holds at most `capacity` entries and drops the least recently used one to make
//! room: a hash index into a slab of entries chained in use order. Lookups, inserts and
//! evictions are O(1) and nothing depends on hash iteration order (the chain decides).

use std::collections::HashMap;
use std::hash::Hash;

use crate::seeded::Seeded;

/// No slot (end of the chain).
const NIL: u32 = u32::MAX;

struct Slot<K, V> {
    key: K,
    value: V,
    /// Towards the most recently used end.
    newer: u32,
    /// Towards the least recently used end.
    older: u32,
}

pub(crate) struct Lru<K, V> {
    index: HashMap<K, u32, Seeded>,
    slots: Vec<Option<Slot<K, V>>>,
    free: Vec<u32>,
    /// Most recently used.
    newest: u32,
    /// Least recently used, the next to go.
    oldest: u32,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    /// An empty map of at most `capacity` (at least 1) entries, hashed with `hasher`.
    pub(crate) fn new(capacity: usize, hasher: Seeded) -> Lru<K, V> {
        Lru {
            index: HashMap::with_hasher(hasher),
            slots: Vec::new(),
            free: Vec::new(),
            newest: NIL,
            oldest: NIL,
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    fn slot(&self, at: u32) -> &Slot<K, V> {
        self.slots[at as usize]
            .as_ref()
            .expect("chained slots are occupied")
    }

    fn slot_mut(&mut self, at: u32) -> &mut Slot<K, V> {
        self.slots[at as usize]
            .as_mut()
            .expect("chained slots are occupied")
    }

    fn unlink(&mut self, at: u32) {
        let (newer, older) = {
            let s = self.slot(at);
            (s.newer, s.older)
        };
        match newer {
            NIL => self.newest = older,
            n => self.slot_mut(n).older = older,
        }
        match older {
            NIL => self.oldest = newer,
            o => self.slot_mut(o).newer = newer,
        }
    }

    fn push_newest(&mut self, at: u32) {
        let previous = self.newest;
        {
            let s = self.slot_mut(at);
            s.newer = NIL;
            s.older = previous;
        }
        match previous {
            NIL => self.oldest = at,
            p => self.slot_mut(p).newer = at,
        }
        self.newest = at;
    }

    /// The value for `key`, which becomes the most recently used.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let at = *self.index.get(key)?;
        if self.newest != at {
            self.unlink(at);
            self.push_newest(at);
        }
        Some(&mut self.slot_mut(at).value)
    }

    /// The value for `key`, without touching the use order.
    pub(crate) fn peek_mut(&mut self, key: &K) -> Option<&mut V> {
        let at = *self.index.get(key)?;
        Some(&mut self.slot_mut(at).value)
    }

    /// Sets the value for `key` (the most recently used now). Returns the entry dropped to
    /// make room, if one was.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        if let Some(&at) = self.index.get(&key) {
            self.slot_mut(at).value = value;
            if self.newest != at {
                self.unlink(at);
                self.push_newest(at);
            }
            return None;
        }
        let evicted = if self.index.len() >= self.capacity {
            self.pop_oldest()
        } else {
            None
        };
        let slot = Slot {
            key: key.clone(),
            value,
            newer: NIL,
            older: NIL,
        };
        let at = match self.free.pop() {
            Some(at) => {
                self.slots[at as usize] = Some(slot);
                at
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(key, at);
        self.push_newest(at);
        evicted
    }

    /// Changes the capacity, dropping the least recently used entries beyond it.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        while self.index.len() > self.capacity {
            self.pop_oldest();
        }
    }

    /// Drops the least recently used entry.
    fn pop_oldest(&mut self) -> Option<(K, V)> {
        let at = self.oldest;
        if at == NIL {
            return None;
        }
        self.unlink(at);
        let slot = self.slots[at as usize].take().expect("chained");
        self.free.push(at);
        self.index.remove(&slot.key);
        Some((slot.key, slot.value))
    }

    /// Removes `key`.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let at = self.index.remove(key)?;
        self.unlink(at);
        let slot = self.slots[at as usize].take().expect("indexed");
        self.free.push(at);
        Some(slot.value)
    }

    /// Keys from the most to the least recently used (tests and invariants).
    #[cfg(test)]
    pub(crate) fn keys_newest_first(&self) -> Vec<K> {
        let mut out = Vec::new();
        let mut at = self.newest;
        while at != NIL {
            let s = self.slot(at);
            out.push(s.key.clone());
            at = s.older;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lru(capacity: usize) -> Lru<u32, u32> {
        Lru::new(capacity, Seeded::new(7))
    }

    #[test]
    fn the_least_recently_used_goes_first() {
        let mut l = lru(2);
        assert_eq!(l.insert(1, 10), None);
        assert_eq!(l.insert(2, 20), None);
        assert_eq!(l.get_mut(&1).copied(), Some(10), "1 is now the newest");
        assert_eq!(l.insert(3, 30), Some((2, 20)));
        assert_eq!(l.keys_newest_first(), vec![3, 1]);
        assert_eq!(l.peek_mut(&1).copied(), Some(10));
        assert_eq!(l.keys_newest_first(), vec![3, 1], "peek keeps the order");
        assert_eq!(l.remove(&3), Some(30));
        assert_eq!(l.insert(4, 40), None, "room again");
        assert_eq!(l.insert(4, 41), None, "replacing is no eviction");
        assert_eq!(l.len(), 2);
        l.set_capacity(1);
        assert_eq!(l.keys_newest_first(), vec![4], "the older one went");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8),
        Get(u8),
        Remove(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..24).prop_map(Op::Insert),
            (0u8..24).prop_map(Op::Get),
            (0u8..24).prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Against a plain list in use order: same contents, same evictions, never more
        /// than the capacity.
        #[test]
        fn behaves_like_a_list_in_use_order(capacity in 1usize..8, ops in prop::collection::vec(op(), 0..200)) {
            let mut l = lru(capacity);
            let mut model: Vec<(u32, u32)> = Vec::new(); // newest first
            for (step, op) in ops.into_iter().enumerate() {
                let value = step as u32;
                match op {
                    Op::Insert(k) => {
                        let k = u32::from(k);
                        let evicted = l.insert(k, value);
                        let expected = if let Some(i) = model.iter().position(|(mk, _)| *mk == k) {
                            model.remove(i);
                            None
                        } else if model.len() >= capacity {
                            model.pop()
                        } else {
                            None
                        };
                        model.insert(0, (k, value));
                        prop_assert_eq!(evicted, expected);
                    }
                    Op::Get(k) => {
                        let k = u32::from(k);
                        let got = l.get_mut(&k).copied();
                        let expected = model.iter().position(|(mk, _)| *mk == k).map(|i| {
                            let e = model.remove(i);
                            model.insert(0, e);
                            e.1
                        });
                        prop_assert_eq!(got, expected);
                    }
                    Op::Remove(k) => {
                        let k = u32::from(k);
                        let expected = model.iter().position(|(mk, _)| *mk == k).map(|i| model.remove(i).1);
                        prop_assert_eq!(l.remove(&k), expected);
                    }
                }
                prop_assert!(l.len() <= capacity);
                let keys: Vec<u32> = model.iter().map(|(k, _)| *k).collect();
                prop_assert_eq!(l.keys_newest_first(), keys);
            }
        }
    }
}
