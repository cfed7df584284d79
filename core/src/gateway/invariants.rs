//! What must hold of the gateway's state between any two inputs, checked by the model-based
//! property test and the `gateway_ops` fuzz target: bookkeeping that agrees with itself, a
//! deadline for everything that waits, and memory within the caps. Built with `fuzzing` only.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::Gateway;
use crate::pending::Owner;
use crate::timers::TimerKey;
use crate::transmit::AttemptId;

/// No timer is set further ahead than this: the longest deadline is a pooled TCP connection's
/// stall limit (30 s); probe intervals of the test configurations are far shorter. So stale
/// entries (lazy deletion) are gone within this long of the work that left them.
pub const TIMER_HORIZON: Duration = Duration::from_secs(60);

/// How much the gateway holds, for bounds a test checks against its own model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Census {
    /// The generation of the configuration in force (1, then +1 per reload).
    pub generation: u32,
    /// Client queries in flight.
    pub queries: usize,
    /// Upstream attempts in flight, probes included.
    pub attempts: usize,
    /// The cap on client queries in flight.
    pub max_inflight: usize,
    /// Every upstream pool kept, of every generation.
    pub pools: Vec<PoolLoad>,
    /// Pooled upstream TCP connections, open or opening.
    pub connections: usize,
    /// Sub-queries the TCP pool holds (outstanding or waiting for a connection).
    pub tcp_held: usize,
    /// Timer entries, live and stale.
    pub timers: usize,
    /// Configurations kept besides the one in force.
    pub retired: usize,
}

/// The attempts in flight through one upstream pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolLoad {
    /// Its configuration generation.
    pub generation: u32,
    /// Its index among that configuration's `forward`s, in file order over all blocks.
    pub index: usize,
    /// Its attempts in flight, probes included.
    pub in_flight: u32,
}

impl Gateway {
    /// How much the gateway holds now.
    pub fn census(&self) -> Census {
        let pools = self
            .pools
            .tables()
            .flat_map(|(generation, pools)| {
                pools.iter().enumerate().map(move |(index, p)| PoolLoad {
                    generation,
                    index,
                    in_flight: p.in_flight,
                })
            })
            .collect();
        let (connections, tcp_held) = self.tcp.check().unwrap_or_default();
        Census {
            generation: self.blocks.current_gen(),
            queries: self.pending.queries.len(),
            attempts: self.pending.attempts.len(),
            max_inflight: self.max_inflight,
            pools,
            connections,
            tcp_held,
            timers: self.timers.entries().count(),
            retired: self.blocks.retired().max(self.pools.retired()),
        }
    }

    /// Checks the invariants that hold between any two inputs; `Err` says which failed.
    /// Call it after draining the outputs of an input.
    // Counting over the hash maps: the order does not matter.
    #[allow(clippy::disallowed_methods)]
    pub fn check_invariants(&self, now: Instant) -> Result<(), String> {
        let pending = &self.pending;

        // Attempts of client queries in flight are what the pools count, pool by pool
        // (health probes take no place).
        let mut per_pool = BTreeMap::new();
        for a in pending.attempts.values() {
            if self.pools.get(a.pool).is_none() {
                return Err(format!("an attempt of {:?}, a pool not kept", a.pool));
            }
            if a.owner != Owner::Probe {
                *per_pool.entry((a.pool.gen, a.pool.index)).or_insert(0u32) += 1;
            }
        }
        for (gen, pools) in self.pools.tables() {
            for (index, pool) in pools.iter().enumerate() {
                let counted = per_pool.get(&(gen, index)).copied().unwrap_or(0);
                if pool.in_flight != counted {
                    return Err(format!(
                        "pool {index} of generation {gen} counts {} in flight, has {counted}",
                        pool.in_flight
                    ));
                }
            }
        }

        // Queries and attempts point at each other.
        for (key, q) in pending.queries.iter() {
            if self.blocks.get(q.block).is_none() {
                return Err(format!("query {key} of {:?}, a block not kept", q.block));
            }
            let waiting = q.parts.iter().filter(|p| p.outcome.is_none()).count();
            if waiting != q.waiting {
                return Err(format!(
                    "query {key} waits for {} parts of {waiting}",
                    q.waiting
                ));
            }
            for (index, part) in q.parts.iter().enumerate() {
                let Some(id) = part.attempt else { continue };
                let owner = pending.attempts.get(&id).map(|a| a.owner);
                if owner
                    != Some(Owner::Part {
                        query: *key,
                        part: index,
                    })
                {
                    return Err(format!(
                        "part {index} of query {key} waits for {id:?}: {owner:?}"
                    ));
                }
            }
        }
        for (id, a) in pending.attempts.iter() {
            if let Owner::Part { query, part } = a.owner {
                let waited = pending
                    .queries
                    .get(&query)
                    .map(|q| q.parts.get(part).and_then(|p| p.attempt));
                if waited.is_some_and(|w| w != Some(*id)) {
                    return Err(format!(
                        "{id:?} of query {query} part {part}, which waits for {waited:?}"
                    ));
                }
            }
        }

        // Replies are matched through an index that agrees with the attempts.
        let (by_wire, per_gen) = (pending.wire_index(), pending.per_gen());
        if by_wire.len() != pending.attempts.len() {
            return Err(format!(
                "{} wire keys for {} attempts",
                by_wire.len(),
                pending.attempts.len()
            ));
        }
        for (id, a) in pending.attempts.iter() {
            if by_wire.get(&(a.addr, a.dns_id)) != Some(id) {
                return Err(format!("{id:?} is not found by its address and ID"));
            }
        }

        // A generation is held exactly while a query or attempt of it is in flight, and a
        // retired configuration is kept only while held.
        let mut recount: BTreeMap<u32, usize> = BTreeMap::new();
        for q in pending.queries.values() {
            *recount.entry(q.block.gen).or_default() += 1;
        }
        for a in pending.attempts.values() {
            *recount.entry(a.pool.gen).or_default() += 1;
        }
        if &recount != per_gen {
            return Err(format!(
                "generations held {per_gen:?}, in flight {recount:?}"
            ));
        }
        let current = self.blocks.current_gen();
        let kept = self.blocks.tables().map(|(gen, _)| gen);
        for gen in kept.chain(self.pools.tables().map(|(gen, _)| gen)) {
            if gen != current && !per_gen.contains_key(&gen) {
                return Err(format!("retired configuration {gen} kept, though unused"));
            }
        }

        // Memory within the caps.
        if pending.queries.len() > self.max_inflight {
            return Err(format!(
                "{} queries in flight, max_inflight {}",
                pending.queries.len(),
                self.max_inflight
            ));
        }
        self.tcp.check()?;
        for conn in self.conn_deadlines.keys() {
            if self.tcp.addr(*conn).is_none() {
                return Err(format!(
                    "a deadline for {conn:?}, which the pool has forgotten"
                ));
            }
        }

        // Everything that waits has a deadline, set once, and nothing is set far ahead.
        let mut queries = BTreeMap::new();
        let mut attempts: BTreeMap<AttemptId, usize> = BTreeMap::new();
        for (at, key) in self.timers.entries() {
            if at > now + TIMER_HORIZON {
                return Err(format!("{key:?} set for {:?} ahead", at - now));
            }
            match key {
                TimerKey::Query(q) => *queries.entry(q).or_insert(0) += 1,
                TimerKey::Attempt(a) => *attempts.entry(a).or_insert(0) += 1,
                _ => {}
            }
        }
        if let Some((key, _)) = queries.iter().find(|(_, n)| **n > 1) {
            return Err(format!("query {key} has more than one deadline"));
        }
        if let Some((id, _)) = attempts.iter().find(|(_, n)| **n > 1) {
            return Err(format!("{id:?} has more than one deadline"));
        }
        if let Some(key) = pending.queries.keys().find(|k| !queries.contains_key(k)) {
            return Err(format!("query {key} has no deadline"));
        }
        if let Some(id) = pending.attempts.keys().find(|a| !attempts.contains_key(a)) {
            return Err(format!("{id:?} has no deadline"));
        }
        Ok(())
    }
}
