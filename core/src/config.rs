//! Validated configuration as plain data. The Corefile parser produces it; the gateway only
//! ever reads it. Every field has passed validation, so the gateway never re-checks it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::wire::{Name, Record};

/// Where a configuration item came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Location {
    /// File name as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A whole configuration: the server blocks of one Corefile.
#[derive(Clone, Debug)]
pub struct Config {
    /// Server blocks in file order.
    pub servers: Vec<ServerBlock>,
    /// Things that are accepted but probably not what the user meant.
    pub warnings: Vec<String>,
    /// Client queries one gateway keeps in flight at most; beyond it, REFUSED at once.
    pub max_inflight: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            servers: Vec::new(),
            warnings: Vec::new(),
            max_inflight: defaults::MAX_INFLIGHT,
        }
    }
}

/// One server block: zones on a port, and the directives that answer them.
#[derive(Clone, Debug)]
pub struct ServerBlock {
    /// The zones of the block key (`a.example b.example:1053 { … }` has two).
    pub zones: Vec<Name>,
    /// The port (from the key, else `-dns.port`, else 53).
    pub port: u16,
    /// Addresses from `bind`; empty means every address (0.0.0.0 and ::).
    pub bind: Vec<IpAddr>,
    /// `gathersrv` directives (at most one per block).
    pub gathers: Vec<Gather>,
    /// `forward` directives, in file order.
    pub forwards: Vec<Forward>,
    /// `file` directives.
    pub files: Vec<FileZone>,
    /// `log`: one line per query.
    pub log: bool,
    /// `errors`: log failures.
    pub errors: bool,
    /// `bufsize`: the EDNS UDP size we advertise and the cap on UDP replies.
    pub bufsize: u16,
    /// Where the block starts.
    pub location: Location,
}

/// `gathersrv DOMAIN { SUFFIX PREFIX … options }`.
#[derive(Clone, Debug)]
pub struct Gather {
    /// The distributed domain.
    pub domain: Name,
    /// Clusters in configuration order.
    pub clusters: Vec<Cluster>,
    /// Overall deadline for a gathered query.
    pub timeout: Duration,
    /// Deadline of one attempt at one cluster.
    pub cluster_timeout: Duration,
    /// TTL and SOA MINIMUM of synthesised negative answers, seconds.
    pub negative_ttl: u32,
    /// Where the directive is.
    pub location: Location,
}

/// One cluster of a `gathersrv` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// The cluster's own domain, e.g. `cluster-a.local.`.
    pub suffix: Name,
    /// The host-label prefix that stands for the cluster, e.g. `a-`.
    pub prefix: String,
}

/// Defaults of the `gathersrv` options.
pub mod defaults {
    use std::time::Duration;
    /// `timeout`.
    pub const TIMEOUT: Duration = Duration::from_secs(2);
    /// `cluster_timeout`.
    pub const CLUSTER_TIMEOUT: Duration = Duration::from_millis(500);
    /// `negative_ttl`, seconds.
    pub const NEGATIVE_TTL: u32 = 5;
    /// Port when neither the block key nor `-dns.port` gives one.
    pub const PORT: u16 = 53;
    /// Client queries in flight per gateway.
    pub const MAX_INFLIGHT: usize = 10_000;
    /// `bufsize`: DNS flag day 2020's recommendation.
    pub const BUFSIZE: u16 = 1232;
    /// `forward` `max_fails`.
    pub const MAX_FAILS: u32 = 2;
    /// `forward` `health_check` interval.
    pub const HEALTH_CHECK: Duration = Duration::from_millis(500);
    /// `forward` `expire`.
    pub const EXPIRE: Duration = Duration::from_secs(10);
}

/// How a `forward` picks among its upstreams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    /// A random healthy upstream first (CoreDNS's default).
    #[default]
    Random,
    /// Healthy upstreams in turn.
    RoundRobin,
    /// The first healthy upstream in file order.
    Sequential,
}

/// `health_check` of a `forward`: how down upstreams are probed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// Probe interval; zero disables marking upstreams down.
    pub interval: Duration,
    /// RD on probes (`no_rec` clears it).
    pub recursion_desired: bool,
    /// The name probed (`domain FQDN`; default the root).
    pub domain: Name,
}

/// `forward FROM TO… { options }`.
#[derive(Clone, Debug)]
pub struct Forward {
    /// Names at or below this are proxied.
    pub from: Name,
    /// Upstream servers, in file order.
    pub to: Vec<SocketAddr>,
    /// Always use TCP towards the upstreams.
    pub force_tcp: bool,
    /// Use UDP towards the upstreams even when the client came over TCP.
    pub prefer_udp: bool,
    /// Which upstream is tried first.
    pub policy: Policy,
    /// Consecutive failures that mark an upstream down; 0 never does.
    pub max_fails: u32,
    /// Probing of upstreams that are down.
    pub health_check: HealthCheck,
    /// Accepted for compatibility: gatherdns keeps no upstream connections to expire.
    pub expire: Duration,
    /// Sub-queries in flight through this forward at most; beyond it the cluster (or, for a
    /// proxied query, the client) gets a refusal at once.
    pub max_concurrent: Option<u32>,
    /// Where the directive is.
    pub location: Location,
}

/// `file DBFILE [ZONES…]`: an authoritative zone, already loaded.
#[derive(Clone, Debug)]
pub struct FileZone {
    /// The zone apex.
    pub origin: Name,
    /// Every record of the zone, in file order.
    pub records: Vec<Record>,
    /// The zone file's path as given.
    pub path: String,
    /// Where the directive is.
    pub location: Location,
}

impl ServerBlock {
    /// The socket addresses this block listens on.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        if self.bind.is_empty() {
            vec![SocketAddr::new(IpAddr::from([0u8; 4]), self.port)]
        } else {
            self.bind
                .iter()
                .map(|ip| SocketAddr::new(*ip, self.port))
                .collect()
        }
    }
}
