//! Counters kept by the core as plain numbers; the runtimes expose them. Everything that is
//! dropped rather than answered is counted here, so nothing disappears silently.
//!
//! The Prometheus side (`/metrics`) lives in the submodules: the families with CoreDNS's
//! names, the per-gateway recorder updated on the query path, snapshots that add up across
//! gateways and the OpenMetrics rendering (the host adds the `process_*` families).

pub mod exposition;
pub mod families;
pub(crate) mod recorder;
pub mod snapshot;

pub use exposition::{render, CONTENT_TYPE};
pub use snapshot::Snapshot;

/// Counters since the gateway was created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Client messages received.
    pub client_messages: u64,
    /// Client messages dropped without a reply (not a DNS header, or a response).
    pub client_dropped: u64,
    /// Replies sent to clients.
    pub replies: u64,
    /// Replies sent with TC=1 because they did not fit the client's limit.
    pub truncated_replies: u64,
    /// Sub-queries sent (every attempt counts).
    pub upstream_attempts: u64,
    /// Upstream replies that matched no attempt: unknown source or ID, late, or arrived over
    /// another transport than the attempt's.
    pub upstream_unmatched: u64,
    /// Upstream replies that matched an attempt's source, ID and transport but not its
    /// question.
    pub upstream_mismatched: u64,
    /// Upstream replies that were not valid DNS.
    pub upstream_malformed: u64,
    /// Attempts that ran out of time.
    pub upstream_timeouts: u64,
    /// Attempts the driver reported as failed.
    pub upstream_failures: u64,
    /// Upstream replies with TC=1 retried over TCP.
    pub upstream_tc_retries: u64,
    /// Gathered replies sent without every cluster's answer.
    pub partial_replies: u64,
    /// Client queries refused because the gateway held `max_inflight` queries.
    pub refused_overload: u64,
    /// Sub-queries not sent because their forward was at `max_concurrent`.
    pub refused_max_concurrent: u64,
    /// Clusters skipped at once because every upstream was down.
    pub skipped_down: u64,
    /// Health probes sent to down upstreams.
    pub upstream_probes: u64,
}
