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
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Server blocks in file order.
    pub servers: Vec<ServerBlock>,
    /// Things that are accepted but probably not what the user meant.
    pub warnings: Vec<String>,
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
