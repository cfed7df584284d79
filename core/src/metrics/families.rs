//! The metric families /metrics exposes: CoreDNS's names, help texts, labels and buckets as
//! its Go code defines them (`plugin/metrics/vars/vars.go`, `plugin/pkg/proxy/metrics.go`
//! with the `forward` subsystem, `plugin/reload/metrics.go`), gathersrv's (`metrics.go`), and
//! ours, prefixed `gatherdns_`.

/// How a family's samples behave, and how the samples of several gateways add up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// Only goes up; gateways' values are summed.
    Counter,
    /// A level; gateways' values are summed (queries in flight).
    GaugeSum,
    /// A level that every gateway knows by itself (up/down): the highest wins.
    GaugeMax,
    /// Observations in buckets with these upper bounds (`+Inf` is implied).
    Histogram(&'static [f64]),
}

/// One metric family.
#[derive(Debug, PartialEq)]
pub struct Def {
    /// The full name, as a sample of it is named (counters end in `_total`).
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Label names, in the order the values are given.
    pub labels: &'static [&'static str],
}

/// CoreDNS's `plugin.TimeBuckets`: `prometheus.ExponentialBuckets(0.00025, 2, 16)`.
pub const TIME_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
    2.048, 4.096, 8.192,
];

/// CoreDNS's request and response size buckets.
pub const SIZE_BUCKETS: &[f64] = &[
    0.0, 100.0, 200.0, 300.0, 400.0, 511.0, 1023.0, 2047.0, 4095.0, 8291.0, 16e3, 32e3, 48e3, 64e3,
];

macro_rules! def {
    ($id:ident, $name:literal, $kind:expr, [$($label:literal),*], $help:literal) => {
        #[doc = concat!("`", $name, "`.")]
        pub const $id: Def = Def {
            name: $name,
            help: $help,
            kind: $kind,
            labels: &[$($label),*],
        };
    };
}

// CoreDNS's server-wide metrics (recorded for server blocks with `prometheus`).
def!(BUILD_INFO, "coredns_build_info", Kind::GaugeMax, ["version", "revision", "goversion"],
    "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.");
def!(
    PANICS,
    "coredns_panics_total",
    Kind::Counter,
    [],
    "A metrics that counts the number of panics."
);
def!(
    DNS_REQUESTS,
    "coredns_dns_requests_total",
    Kind::Counter,
    ["server", "zone", "view", "proto", "family", "type"],
    "Counter of DNS requests made per zone, protocol and family."
);
def!(
    DNS_DURATION,
    "coredns_dns_request_duration_seconds",
    Kind::Histogram(TIME_BUCKETS),
    ["server", "zone", "view"],
    "Histogram of the time (in seconds) each request took per zone."
);
def!(
    DNS_REQUEST_SIZE,
    "coredns_dns_request_size_bytes",
    Kind::Histogram(SIZE_BUCKETS),
    ["server", "zone", "view", "proto"],
    "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol."
);
def!(
    DNS_DO_REQUESTS,
    "coredns_dns_do_requests_total",
    Kind::Counter,
    ["server", "zone", "view"],
    "Counter of DNS requests with DO bit set per zone."
);
def!(
    DNS_RESPONSE_SIZE,
    "coredns_dns_response_size_bytes",
    Kind::Histogram(SIZE_BUCKETS),
    ["server", "zone", "view", "proto"],
    "Size of the returned response in bytes."
);
def!(
    DNS_RESPONSES,
    "coredns_dns_responses_total",
    Kind::Counter,
    ["server", "zone", "view", "rcode", "plugin"],
    "Counter of response status codes."
);
def!(
    RELOAD_FAILED,
    "coredns_reload_failed_total",
    Kind::Counter,
    [],
    "Counter of the number of failed reload attempts."
);

// The forward plugin (CoreDNS's proxy metrics under the `forward` subsystem).
def!(
    FORWARD_REQUESTS,
    "coredns_forward_requests_total",
    Kind::Counter,
    ["to"],
    "Counter of requests made per upstream."
);
def!(
    FORWARD_RESPONSES,
    "coredns_forward_responses_total",
    Kind::Counter,
    ["rcode", "to"],
    "Counter of responses received per upstream."
);
def!(
    FORWARD_DURATION,
    "coredns_forward_request_duration_seconds",
    Kind::Histogram(TIME_BUCKETS),
    ["to", "rcode"],
    "Histogram of the time each request took."
);
def!(
    FORWARD_HEALTHCHECK_FAILURES,
    "coredns_forward_healthcheck_failures_total",
    Kind::Counter,
    ["to"],
    "Counter of the number of failed healthchecks."
);
def!(
    FORWARD_MAX_CONCURRENT_REJECTS,
    "coredns_forward_max_concurrent_rejects_total",
    Kind::Counter,
    [],
    "Counter of the number of queries rejected because the concurrent queries were at maximum."
);

// The cache plugin (`plugin/cache/metrics.go`).
def!(
    CACHE_ENTRIES,
    "coredns_cache_entries",
    Kind::GaugeSum,
    ["server", "type", "zones", "view"],
    "The number of elements in the cache."
);
def!(
    CACHE_REQUESTS,
    "coredns_cache_requests_total",
    Kind::Counter,
    ["server", "zones", "view"],
    "The count of cache requests."
);
def!(
    CACHE_HITS,
    "coredns_cache_hits_total",
    Kind::Counter,
    ["server", "type", "zones", "view"],
    "The count of cache hits."
);
def!(
    CACHE_MISSES,
    "coredns_cache_misses_total",
    Kind::Counter,
    ["server", "zones", "view"],
    "The count of cache misses. Deprecated, derive misses from cache hits/requests counters."
);
def!(
    CACHE_PREFETCH,
    "coredns_cache_prefetch_total",
    Kind::Counter,
    ["server", "zones", "view"],
    "The number of times the cache has prefetched a cached item."
);
def!(
    CACHE_DROPS,
    "coredns_cache_drops_total",
    Kind::Counter,
    ["server", "zones", "view"],
    "The number responses that are not cached, because the reply is malformed."
);
def!(
    CACHE_SERVED_STALE,
    "coredns_cache_served_stale_total",
    Kind::Counter,
    ["server", "zones", "view"],
    "The number of requests served from stale cache entries."
);
def!(
    CACHE_EVICTIONS,
    "coredns_cache_evictions_total",
    Kind::Counter,
    ["server", "type", "zones", "view"],
    "The count of cache evictions."
);

// gathersrv.
def!(
    GATHERSRV_REQUESTS,
    "coredns_gathersrv_request_count_total",
    Kind::Counter,
    ["server", "qualified", "type"],
    "Counter of requests processed via plugin"
);
def!(
    GATHERSRV_SUB_REQUESTS,
    "coredns_gathersrv_sub_request_count_total",
    Kind::Counter,
    ["server", "prefix", "type", "code"],
    "Counter of sub requests."
);

// Ours.
def!(CLUSTER_DURATION, "gatherdns_cluster_request_duration_seconds",
    Kind::Histogram(TIME_BUCKETS), ["domain", "cluster"],
    "Time from the start of a gathered query until a cluster's upstream answered it (retries included).");
def!(CLUSTER_SUB_QUERIES, "gatherdns_cluster_sub_queries_total", Kind::Counter,
    ["domain", "cluster", "result"],
    "Parts of gathered queries per cluster and how they ended: answered, timeout, down (skipped at once), refused (max_concurrent), failed, or stale (a kept earlier answer stood in).");
def!(CLUSTER_UP, "gatherdns_cluster_up", Kind::GaugeMax, ["domain", "cluster"],
    "1 while a cluster has an upstream that is not marked down (or is answered from a zone), else 0.");
def!(
    UPSTREAM_UP,
    "gatherdns_upstream_up",
    Kind::GaugeMax,
    ["to"],
    "1 while an upstream is not marked down by max_fails, else 0."
);
def!(
    UPSTREAM_TIMEOUTS,
    "gatherdns_upstream_timeouts_total",
    Kind::Counter,
    [],
    "Upstream attempts (sub-queries and probes) that got no reply in time."
);
def!(
    UPSTREAM_FAILURES,
    "gatherdns_upstream_failures_total",
    Kind::Counter,
    [],
    "Sub-query attempts that failed at the transport (unreachable, connection lost)."
);
def!(
    UPSTREAM_TC_RETRIES,
    "gatherdns_upstream_tc_retries_total",
    Kind::Counter,
    [],
    "Truncated upstream replies retried over TCP."
);
def!(UPSTREAM_DROPPED, "gatherdns_upstream_replies_dropped_total", Kind::Counter, ["reason"],
    "Upstream replies dropped: unmatched (unknown source or ID, late, or over another transport), mismatched (right source and ID, wrong question: spoofed) or malformed.");
def!(
    TRUNCATED,
    "gatherdns_truncated_responses_total",
    Kind::Counter,
    [],
    "Replies sent with TC=1 because they did not fit the client's UDP limit."
);
def!(
    PARTIAL,
    "gatherdns_partial_responses_total",
    Kind::Counter,
    [],
    "Gathered replies sent without every cluster's answer (with an Extended DNS Error)."
);
def!(
    REFUSED_INFLIGHT,
    "gatherdns_refused_inflight_total",
    Kind::Counter,
    [],
    "Client queries refused because the in-flight cap (-max-inflight) was reached."
);
def!(
    CLIENT_DROPPED,
    "gatherdns_client_messages_dropped_total",
    Kind::Counter,
    [],
    "Client messages dropped without a reply (not a DNS header, or a response)."
);
def!(
    UDP_REPLIES_WAITED,
    "gatherdns_udp_replies_waited_total",
    Kind::Counter,
    [],
    "Replies to UDP clients that waited for room in a full socket send buffer (the executor stops reading queries while many wait)."
);
def!(
    UDP_REPLIES_DROPPED,
    "gatherdns_udp_replies_dropped_total",
    Kind::Counter,
    [],
    "Replies to UDP clients given up after the gateway made them: the socket's send buffer stayed full (too many replies waiting, or none of its room freed within 1 s)."
);
def!(
    INFLIGHT,
    "gatherdns_queries_in_flight",
    Kind::GaugeSum,
    [],
    "Client queries waiting for upstreams."
);

// The process, as Prometheus's Go client exports it (dashboards use these).
def!(
    PROCESS_CPU,
    "process_cpu_seconds_total",
    Kind::Counter,
    [],
    "Total user and system CPU time spent in seconds."
);
def!(
    PROCESS_OPEN_FDS,
    "process_open_fds",
    Kind::GaugeMax,
    [],
    "Number of open file descriptors."
);
def!(
    PROCESS_MAX_FDS,
    "process_max_fds",
    Kind::GaugeMax,
    [],
    "Maximum number of open file descriptors."
);
def!(
    PROCESS_VIRTUAL_MEMORY,
    "process_virtual_memory_bytes",
    Kind::GaugeMax,
    [],
    "Virtual memory size in bytes."
);
def!(
    PROCESS_RESIDENT_MEMORY,
    "process_resident_memory_bytes",
    Kind::GaugeMax,
    [],
    "Resident memory size in bytes."
);
def!(
    PROCESS_START_TIME,
    "process_start_time_seconds",
    Kind::GaugeMax,
    [],
    "Start time of the process since unix epoch in seconds."
);
def!(
    PROCESS_THREADS,
    "process_threads",
    Kind::GaugeMax,
    [],
    "Number of OS threads in the process."
);

// The Kubernetes API source of `multicluster`, per source (`in-cluster`, `kubeconfig PATH`)
// and resource (`serviceimports`, `endpointslices`); added once per process by the host.
def!(
    KUBERNETES_SYNCED,
    "gatherdns_kubernetes_synced",
    Kind::GaugeMax,
    ["source", "resource"],
    "1 while the watch of a resource is established and the answers follow it; 0 before its first list and while the API cannot be reached (the last list still answers)."
);
def!(
    KUBERNETES_ERRORS,
    "gatherdns_kubernetes_errors_total",
    Kind::Counter,
    ["source", "resource"],
    "Failed lists and watches of a resource, and watches that ended in an error."
);
