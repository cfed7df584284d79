//! Queries in flight and their upstream attempts: ID allocation from the seeded CSPRNG and
//! strict matching of replies (source address, ID, transport, socket and question must all
//! agree).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Instant;

use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::distributed_domain::GatherSet;
use crate::gather::Outcome;
use crate::generation::Ref;
use crate::seeded::Seeded;
use crate::timers::TimerKey;
use crate::transmit::{AttemptId, ClientAddr, SocketIndex, UpstreamTransport, UPSTREAM_SOCKETS};
use crate::vec_pool::VecPool;
use crate::wire::{ClientQuery, Name, NameArena, Record, Rtype};

/// Bytes of names per block: the names of about fifty gathered queries (a SPEC §1 query
/// builds about 320), so that a new block is allocated once in that many queries.
const NAMES_CHUNK: usize = 16 * 1024;

/// What a client query is waiting for.
pub(crate) enum Kind {
    /// A gathered query: parts are clusters of the gathering `set`.
    Gather { prefixed: bool, set: GatherSet },
    /// A plain `forward`: one part.
    Proxy { forward: usize },
}

/// One cluster (or the one upstream set) of a query.
pub(crate) struct Part {
    /// Index of the cluster in the gather configuration (0 for proxies).
    pub(crate) cluster: usize,
    /// The name asked of the upstream.
    pub(crate) subname: Name,
    /// `None` while waiting.
    pub(crate) outcome: Option<Outcome>,
    /// The attempt in flight, if any.
    pub(crate) attempt: Option<AttemptId>,
    /// Attempts made so far (a TC retry over TCP does not count).
    pub(crate) tries: u8,
    /// The upstream (index in its pool) of the latest attempt.
    pub(crate) upstream: usize,
    /// AA and RA of the upstream reply (proxies copy them).
    pub(crate) flags: (bool, bool),
}

pub(crate) struct Query {
    pub(crate) client: ClientAddr,
    pub(crate) query: ClientQuery,
    /// The server block (of the configuration generation the query started under).
    pub(crate) block: Ref,
    pub(crate) started: Instant,
    pub(crate) kind: Kind,
    pub(crate) parts: Vec<Part>,
    pub(crate) waiting: usize,
}

/// Who waits for an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A part of a client query.
    Part { query: u64, part: usize },
    /// A health probe of a down upstream.
    Probe,
}

pub(crate) struct Attempt {
    pub(crate) owner: Owner,
    pub(crate) addr: SocketAddr,
    pub(crate) transport: UpstreamTransport,
    pub(crate) dns_id: u16,
    /// The pool and the upstream within it, for health accounting.
    pub(crate) pool: Ref,
    pub(crate) upstream: usize,
    /// The question the reply must carry.
    pub(crate) qname: Name,
    pub(crate) qtype: Rtype,
    /// When it was sent (upstream latency metrics).
    pub(crate) sent: Instant,
}

/// Where an attempt goes.
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) transport: UpstreamTransport,
    pub(crate) pool: Ref,
    pub(crate) upstream: usize,
    /// When the attempt is sent.
    pub(crate) sent: Instant,
}

/// The tables of queries and attempts.
pub(crate) struct Pending {
    pub(crate) queries: HashMap<u64, Query, Seeded>,
    pub(crate) attempts: HashMap<AttemptId, Attempt, Seeded>,
    by_wire: HashMap<(SocketAddr, u16), AttemptId, Seeded>,
    /// Where the names of queries in flight are built (sub-query names, renamed records):
    /// one buffer, reused once the names of finished queries are gone, else replaced by a
    /// new block of `NAMES_CHUNK` bytes.
    pub(crate) names: NameArena,
    /// Where the record sections of queries in flight are taken from and go back to.
    pub(crate) vecs: VecPool<Record>,
    /// The same for the parts of gathered queries.
    pub(crate) part_vecs: VecPool<Part>,
    /// Keys the hashes of records when merging clusters' answers.
    pub(crate) hash_seed: u64,
    /// Queries and attempts per configuration generation: a retired generation is dropped
    /// once it holds none.
    per_gen: BTreeMap<u32, usize>,
    rng: ChaCha20Rng,
    next_query: u64,
    next_attempt: u64,
}

impl Pending {
    pub(crate) fn new(seed: [u8; 32]) -> Pending {
        // Hash keys come from the seed itself, so the RNG's stream (IDs, upstream choice)
        // stays what it always was for a given seed.
        let word = |i: usize| {
            let mut w = [0; 8];
            w.copy_from_slice(&seed[i..i + 8]);
            u64::from_le_bytes(w)
        };
        let seeded = Seeded::new(word(0) ^ word(16).rotate_left(17));
        Pending {
            queries: HashMap::with_hasher(seeded.clone()),
            attempts: HashMap::with_hasher(seeded.clone()),
            by_wire: HashMap::with_hasher(seeded),
            names: NameArena::with_chunk(NAMES_CHUNK),
            vecs: VecPool::default(),
            part_vecs: VecPool::default(),
            hash_seed: word(8) ^ word(24).rotate_left(29),
            per_gen: BTreeMap::new(),
            rng: ChaCha20Rng::from_seed(seed),
            next_query: 0,
            next_attempt: 0,
        }
    }

    pub(crate) fn insert_query(&mut self, query: Query) -> u64 {
        self.hold(query.block.gen);
        self.next_query += 1;
        self.queries.insert(self.next_query, query);
        self.next_query
    }

    /// Registers an attempt with a DNS ID that is unpredictable and not in use towards
    /// its address. Returns the attempt and the ID to put on the wire.
    pub(crate) fn insert_attempt(
        &mut self,
        owner: Owner,
        target: Target,
        qname: Name,
        qtype: Rtype,
    ) -> (AttemptId, u16) {
        let mut dns_id = self.rng.next_u32() as u16;
        while self.by_wire.contains_key(&(target.addr, dns_id)) {
            dns_id = self.rng.next_u32() as u16;
        }
        self.next_attempt += 1;
        let id = AttemptId(self.next_attempt);
        self.by_wire.insert((target.addr, dns_id), id);
        self.hold(target.pool.gen);
        let attempt = Attempt {
            owner,
            addr: target.addr,
            transport: target.transport,
            dns_id,
            pool: target.pool,
            upstream: target.upstream,
            qname,
            qtype,
            sent: target.sent,
        };
        self.attempts.insert(id, attempt);
        (id, dns_id)
    }

    /// The socket a UDP attempt leaves from, at random: an off-path spoofer must guess it.
    pub(crate) fn udp_socket(&mut self) -> SocketIndex {
        SocketIndex(self.rng.next_u32() as usize % UPSTREAM_SOCKETS)
    }

    /// An attempt id for a datagram that is no sub-query (the `loop` probe), never used by
    /// an attempt.
    pub(crate) fn fresh_attempt_id(&mut self) -> AttemptId {
        self.next_attempt += 1;
        AttemptId(self.next_attempt)
    }

    /// Lets the parts of query `key` still waiting go on without it: their attempts are no
    /// longer the query's (they finish for their upstreams' health alone).
    pub(crate) fn detach_waiting(&mut self, key: u64) {
        if let Some(q) = self.queries.get_mut(&key) {
            for part in q.parts.iter_mut().filter(|p| p.outcome.is_none()) {
                part.attempt = None;
            }
        }
    }

    /// A fresh random number for upstream selection.
    pub(crate) fn random(&mut self) -> u32 {
        self.rng.next_u32()
    }

    /// The attempt a reply from `addr` with `dns_id` belongs to.
    pub(crate) fn match_reply(&self, addr: SocketAddr, dns_id: u16) -> Option<AttemptId> {
        self.by_wire.get(&(addr, dns_id)).copied()
    }

    /// Whether the owner of a query or attempt deadline is still in flight; `None` for the
    /// other kinds of deadline, which are not ours.
    pub(crate) fn owns(&self, key: &TimerKey) -> Option<bool> {
        match key {
            TimerKey::Query(q) => Some(self.queries.contains_key(q)),
            TimerKey::Attempt(a) => Some(self.attempts.contains_key(a)),
            _ => None,
        }
    }

    pub(crate) fn remove_attempt(&mut self, id: AttemptId) -> Option<Attempt> {
        let attempt = self.attempts.remove(&id)?;
        self.by_wire.remove(&(attempt.addr, attempt.dns_id));
        self.unhold(attempt.pool.gen);
        Some(attempt)
    }

    /// Removes a query and every attempt still in flight for it; returns those attempts.
    pub(crate) fn remove_query(&mut self, key: u64) -> Option<(Query, Vec<Attempt>)> {
        let query = self.queries.remove(&key)?;
        self.unhold(query.block.gen);
        let attempts = query
            .parts
            .iter()
            .filter_map(|p| p.attempt)
            .filter_map(|a| self.remove_attempt(a))
            .collect();
        Some((query, attempts))
    }

    /// True while a query or attempt of generation `gen` is in flight.
    pub(crate) fn holds(&self, gen: u32) -> bool {
        self.per_gen.contains_key(&gen)
    }

    /// Attempts by wire key, for the invariant checks.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn wire_index(&self) -> &HashMap<(SocketAddr, u16), AttemptId, Seeded> {
        &self.by_wire
    }

    /// Queries and attempts in flight by generation, for the invariant checks.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn per_gen(&self) -> &BTreeMap<u32, usize> {
        &self.per_gen
    }

    fn hold(&mut self, gen: u32) {
        *self.per_gen.entry(gen).or_insert(0) += 1;
    }

    fn unhold(&mut self, gen: u32) {
        if let Some(count) = self.per_gen.get_mut(&gen) {
            *count -= 1;
            if *count == 0 {
                self.per_gen.remove(&gen);
            }
        }
    }
}
