//! Configuration generations: a reload installs new server blocks and upstream pools while
//! queries started under the old ones finish with them. Every reference to a block or pool
//! names its generation, so the old tables stay reachable until nothing refers to them.

use std::ops::{Index, IndexMut};

/// An item (a server block or an upstream pool) of one generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Ref {
    /// The generation: 1 for the configuration the gateway started with, +1 per reload.
    pub(crate) gen: u32,
    /// The index in that generation's table.
    pub(crate) index: usize,
}

impl Ref {
    /// Another item of the same generation.
    pub(crate) fn sibling(self, index: usize) -> Ref {
        Ref {
            gen: self.gen,
            index,
        }
    }
}

/// The current table of items and the retired ones that queries in flight still use.
pub(crate) struct Generations<T> {
    gen: u32,
    current: Vec<T>,
    /// Oldest first; a reload retires the current table here.
    retired: Vec<(u32, Vec<T>)>,
}

impl<T> Generations<T> {
    /// The first generation.
    pub(crate) fn new(items: Vec<T>) -> Generations<T> {
        Generations {
            gen: 1,
            current: items,
            retired: Vec::new(),
        }
    }

    /// The generation new work uses.
    pub(crate) fn current_gen(&self) -> u32 {
        self.gen
    }

    /// The current table.
    pub(crate) fn current(&self) -> &[T] {
        &self.current
    }

    pub(crate) fn current_mut(&mut self) -> &mut [T] {
        &mut self.current
    }

    /// A reference to item `index` of the current generation.
    pub(crate) fn at(&self, index: usize) -> Ref {
        Ref {
            gen: self.gen,
            index,
        }
    }

    /// Makes `items` the current table (as the next generation) and retires the old one.
    pub(crate) fn install(&mut self, items: Vec<T>) {
        let old = std::mem::replace(&mut self.current, items);
        self.retired.push((self.gen, old));
        self.gen += 1;
    }

    /// Drops every retired table for which `held` says no query or attempt refers to it.
    pub(crate) fn release(&mut self, mut held: impl FnMut(u32) -> bool) {
        self.retired.retain(|(gen, _)| held(*gen));
    }

    /// Generations still kept besides the current one.
    pub(crate) fn retired(&self) -> usize {
        self.retired.len()
    }

    /// Every table kept, retired ones first, with its generation (for the invariant checks).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn tables(&self) -> impl Iterator<Item = (u32, &[T])> {
        let retired = self
            .retired
            .iter()
            .map(|(gen, items)| (*gen, items.as_slice()));
        retired.chain(std::iter::once((self.gen, self.current.as_slice())))
    }

    pub(crate) fn get(&self, at: Ref) -> Option<&T> {
        if at.gen == self.gen {
            return self.current.get(at.index);
        }
        self.retired
            .iter()
            .find(|(gen, _)| *gen == at.gen)
            .and_then(|(_, items)| items.get(at.index))
    }

    pub(crate) fn get_mut(&mut self, at: Ref) -> Option<&mut T> {
        if at.gen == self.gen {
            return self.current.get_mut(at.index);
        }
        self.retired
            .iter_mut()
            .find(|(gen, _)| *gen == at.gen)
            .and_then(|(_, items)| items.get_mut(at.index))
    }
}

/// Indexing by a reference the gateway handed out itself: its generation is kept until no
/// query or attempt holds the reference, so a miss is a bug in that bookkeeping.
impl<T> Index<Ref> for Generations<T> {
    type Output = T;

    fn index(&self, at: Ref) -> &T {
        self.get(at)
            .unwrap_or_else(|| panic!("{at:?} outlived its generation"))
    }
}

impl<T> IndexMut<Ref> for Generations<T> {
    fn index_mut(&mut self, at: Ref) -> &mut T {
        self.get_mut(at)
            .unwrap_or_else(|| panic!("{at:?} outlived its generation"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retired_tables_stay_until_released() {
        let mut g = Generations::new(vec!["a0", "a1"]);
        let old = g.at(1);
        g.install(vec!["b0"]);
        assert_eq!((g.current_gen(), g[old], g[g.at(0)]), (2, "a1", "b0"));
        g.release(|gen| gen == 1);
        assert_eq!(g.retired(), 1);
        g.release(|_| false);
        assert_eq!((g.retired(), g.get(old)), (0, None));
    }
}
