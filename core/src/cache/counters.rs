//! The cache's Prometheus counters, as CoreDNS's cache plugin names and labels them. They
//! belong to the gateway, not to a configuration: a reload empties the cache but the counters
//! go on counting.

use std::net::SocketAddr;

use crate::metrics::families;
use crate::metrics::recorder::server_label;
use crate::metrics::Snapshot;

use super::response::Kind;

/// The counters of one (server, zones) pair.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) requests: u64,
    pub(crate) misses: u64,
    pub(crate) prefetches: u64,
    pub(crate) drops: u64,
    pub(crate) served_stale: u64,
    /// By kind: success, denial.
    pub(crate) hits: [u64; 2],
    pub(crate) evictions: [u64; 2],
    /// Entries as last stored (a gauge CoreDNS sets when it stores).
    pub(crate) entries: [Option<usize>; 2],
}

/// Every cache's counters, by server address and `zones` label: a handful, searched
/// directly, so that counting a query allocates nothing.
#[derive(Default)]
pub(crate) struct CacheCounters {
    by: Vec<((SocketAddr, String), Counters)>,
}

pub(crate) fn slot(kind: Kind) -> usize {
    match kind {
        Kind::Success => 0,
        Kind::Denial => 1,
    }
}

impl CacheCounters {
    /// The counters of `server` and `zones` (created on first use).
    pub(crate) fn of(&mut self, server: SocketAddr, zones: &str) -> &mut Counters {
        let found = self
            .by
            .iter()
            .position(|((s, z), _)| *s == server && z == zones);
        let index = found.unwrap_or_else(|| {
            self.by
                .push(((server, zones.to_string()), Counters::default()));
            self.by.len() - 1
        });
        &mut self.by[index].1
    }

    /// Adds every series to `out`.
    pub(crate) fn snapshot(&self, out: &mut Snapshot) {
        for ((server, zones), c) in &self.by {
            let server = server_label(*server);
            let base = [server.as_str(), zones.as_str(), ""];
            out.counter(&families::CACHE_REQUESTS, &base, c.requests);
            out.counter(&families::CACHE_MISSES, &base, c.misses);
            out.counter(&families::CACHE_PREFETCH, &base, c.prefetches);
            out.counter(&families::CACHE_DROPS, &base, c.drops);
            out.counter(&families::CACHE_SERVED_STALE, &base, c.served_stale);
            for (i, kind) in ["success", "denial"].iter().enumerate() {
                let labels = [server.as_str(), kind, zones.as_str(), ""];
                out.counter(&families::CACHE_HITS, &labels, c.hits[i]);
                out.counter(&families::CACHE_EVICTIONS, &labels, c.evictions[i]);
                if let Some(n) = c.entries[i] {
                    out.gauge(&families::CACHE_ENTRIES, &labels, n as f64);
                }
            }
        }
    }
}
