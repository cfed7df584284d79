//! Validated configuration as plain data. The Corefile parser produces it; the gateway only
//! ever reads it. Every field has passed validation, so the gateway never re-checks it.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::concurrency::SharedCount;
use crate::wire::{Name, Record};

mod cache;
pub use self::cache::{
    cache_defaults, stale_defaults, AnswerOptions, AnswerPolicy, Cache, CacheKind, Prefetch,
    ServeStale, StaleParts,
};

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
    /// What the configuration was read from, when it was read from files
    /// (the host's reload): a reload compares it to tell a changed Corefile.
    pub fingerprint: Option<Fingerprint>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            servers: Vec::new(),
            warnings: Vec::new(),
            max_inflight: defaults::MAX_INFLIGHT,
            fingerprint: None,
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
    /// Addresses from `bind`; empty means every IPv4 address (0.0.0.0), as the README says:
    /// CoreDNS would listen on both families there.
    pub bind: Vec<IpAddr>,
    /// `gathersrv` directives (at most one per block).
    pub gathers: Vec<Gather>,
    /// `forward` directives, in file order.
    pub forwards: Vec<Forward>,
    /// `file` directives.
    pub files: Vec<FileZone>,
    /// `hosts` (at most one per block).
    pub hosts: Option<Hosts>,
    /// `multicluster` (at most one per block).
    pub multicluster: Option<Multicluster>,
    /// `multicluster_gw` (at most one per block).
    pub multicluster_gw: Option<MulticlusterGw>,
    /// `log`: one line per query.
    pub log: bool,
    /// `errors`: log failures.
    pub errors: bool,
    /// `bufsize`: the EDNS UDP size we advertise and the cap on UDP replies.
    pub bufsize: u16,
    /// `reload`: check the Corefile for changes (the process follows the shortest interval
    /// of any block, see the host's reload).
    pub reload: Option<Reload>,
    /// `prometheus`, `health` and `ready`: the HTTP endpoints this block asks for.
    pub ops: Ops,
    /// `cache`, if given.
    pub cache: Option<Cache>,
    /// `loadbalance`: A, AAAA and MX records are shuffled in every positive reply.
    pub loadbalance: bool,
    /// `loop`: a probe sent to ourselves at startup stops the server if it comes back.
    pub loop_check: bool,
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
    /// `ns_ip`: the addresses of the domain's name server, `ns.dns.DOMAIN` (empty: the
    /// block's specific `bind` addresses).
    pub ns_ip: Vec<IpAddr>,
    /// `policy`, `srv_priority` and `serve_stale`.
    pub answers: AnswerOptions,
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
    /// `hosts` `ttl`, seconds (CoreDNS's).
    pub const HOSTS_TTL: u32 = 3600;
    /// `hosts` `reload` (CoreDNS's).
    pub const HOSTS_RELOAD: Duration = Duration::from_secs(5);
    /// `hosts` file when none is given.
    pub const HOSTS_FILE: &str = "/etc/hosts";
    /// `reload` interval (CoreDNS's).
    pub const RELOAD_INTERVAL: Duration = Duration::from_secs(30);
    /// `reload` jitter (CoreDNS's).
    pub const RELOAD_JITTER: Duration = Duration::from_secs(15);
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
    /// Accepted for compatibility and not read: pooled upstream TCP connections close after
    /// 10 s idle, CoreDNS's default, whatever it says. The parser warns when it is given.
    pub expire: Duration,
    /// Sub-queries in flight through this forward at most; beyond it the cluster (or, for a
    /// proxied query, the client) gets a refusal at once.
    pub max_concurrent: Option<u32>,
    /// The count `max_concurrent` limits, shared by the gateways built from clones of this
    /// configuration (one per executor), so that the limit holds for the process.
    pub in_flight: SharedCount,
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

/// `reload [INTERVAL [JITTER]]`: how often the Corefile is checked for changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reload {
    /// The check interval (at least 2 s).
    pub interval: Duration,
    /// Up to half of it is added or taken off the interval, once, at random (at least 1 s,
    /// at most half the interval).
    pub jitter: Duration,
    /// Where the directive is.
    pub location: Location,
}

/// `fallthrough [ZONES…]`: which of a plugin's NXDOMAIN answers go on to the next plugin.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Fallthrough {
    /// Names at or below these fall through; empty means every name of the plugin.
    pub zones: Vec<Name>,
}

impl Fallthrough {
    /// True if an NXDOMAIN for `name` goes on to the next plugin.
    pub fn covers(&self, name: &Name) -> bool {
        self.zones.is_empty() || self.zones.iter().any(|z| name.is_at_or_below(z))
    }
}

/// One `IP NAME` pair of a hosts table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostEntry {
    /// The name, lower-cased.
    pub name: Name,
    /// Its address (an IPv4-mapped IPv6 address is taken as IPv4, as CoreDNS does).
    pub addr: IpAddr,
}

/// `hosts [FILE] [ZONES…] { inline lines; ttl; reload; no_reverse; fallthrough }`.
#[derive(Clone, Debug)]
pub struct Hosts {
    /// The hosts file, resolved against the Corefile's directory.
    pub path: PathBuf,
    /// The file's entries as read at startup (empty if it did not exist).
    pub file_entries: Vec<HostEntry>,
    /// Entries written in the Corefile.
    pub inline: Vec<HostEntry>,
    /// Names at or below these are answered.
    pub origins: Vec<Name>,
    /// TTL of the answers, seconds.
    pub ttl: u32,
    /// How often the file is checked for changes; zero never.
    pub reload: Duration,
    /// No PTR answers from the table.
    pub no_reverse: bool,
    /// `fallthrough`, if given.
    pub fallthrough: Option<Fallthrough>,
    /// Where the directive is.
    pub location: Location,
}

/// One cluster of a `multicluster` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McsCluster {
    /// The cluster's own domain, e.g. `cluster-a.local.`.
    pub suffix: Name,
    /// The cluster ID label in clusterset names, e.g. `cluster-a`.
    pub id: String,
}

/// Where a `multicluster` directive reads ServiceImports and EndpointSlices: the Kubernetes
/// API of the cluster a kubeconfig names, or of the cluster the server runs in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubernetesSource {
    /// `kubeconfig KUBECONFIG`, resolved against the Corefile's directory; `None` is
    /// in-cluster (`KUBERNETES_SERVICE_HOST`/`_PORT` and the service account's token and CA).
    pub kubeconfig: Option<PathBuf>,
    /// `kubeconfig KUBECONFIG CONTEXT`: the context to use instead of the current one.
    pub context: Option<String>,
}

impl std::fmt::Display for KubernetesSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.kubeconfig, &self.context) {
            (None, _) => f.write_str("in-cluster"),
            (Some(path), None) => write!(f, "kubeconfig {}", path.display()),
            (Some(path), Some(context)) => {
                write!(f, "kubeconfig {} context {context}", path.display())
            }
        }
    }
}

/// `multicluster ZONE… { SUFFIX CLUSTER_ID …; kubeconfig KUBECONFIG [CONTEXT]; noendpoints;
/// fallthrough; ns_ip }`: answered from the Kubernetes API (`kubernetes`), gathered from the
/// clusters' DNS (`clusters`), or both, the API first.
#[derive(Clone, Debug)]
pub struct Multicluster {
    /// The clusterset zones (e.g. `clusterset.local.`).
    pub zones: Vec<Name>,
    /// Clusters in configuration order; empty when the answers come from the API alone.
    pub clusters: Vec<McsCluster>,
    /// The Kubernetes API source: `kubeconfig`, or in-cluster when no cluster is listed.
    pub kubernetes: Option<KubernetesSource>,
    /// No endpoint-level names or SRV targets.
    pub noendpoints: bool,
    /// `fallthrough`, if given.
    pub fallthrough: Option<Fallthrough>,
    /// `ns_ip`: the addresses of each zone's name server, `ns.dns.ZONE` (empty: the block's
    /// specific `bind` addresses).
    pub ns_ip: Vec<IpAddr>,
    /// Where the directive is.
    pub location: Location,
}

/// `multicluster_gw ZONE… { gateway_ip IP…; fallthrough }`.
#[derive(Clone, Debug)]
pub struct MulticlusterGw {
    /// The zones answered.
    pub zones: Vec<Name>,
    /// The gateway addresses, in file order.
    pub ips: Vec<IpAddr>,
    /// `fallthrough`, if given.
    pub fallthrough: Option<Fallthrough>,
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

/// `prometheus`, `health` and `ready` of a server block. CoreDNS serves them per process: one
/// HTTP listener per distinct address, whatever the blocks that name it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ops {
    /// `prometheus [ADDR]`: `/metrics`; the block's queries are counted in `coredns_dns_*`.
    pub prometheus: Option<HttpEndpoint>,
    /// `health [ADDR] { lameduck DUR }`: `/health`.
    pub health: Option<HttpEndpoint>,
    /// `lameduck` of `health`: how long a SIGTERM keeps the server answering first.
    pub lameduck: Duration,
    /// `ready [ADDR]`: `/ready`.
    pub ready: Option<HttpEndpoint>,
}

/// Where one of the HTTP endpoints listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpEndpoint {
    /// The TCP address (`:8080` is every IPv4 address, `localhost` is 127.0.0.1).
    pub addr: SocketAddr,
    /// Where the directive is.
    pub location: Location,
}

/// Defaults of the HTTP endpoints (CoreDNS's).
pub mod ops_defaults {
    /// `prometheus`.
    pub const PROMETHEUS: &str = "localhost:9153";
    /// `health`.
    pub const HEALTH: &str = ":8080";
    /// `ready`.
    pub const READY: &str = ":8181";
}

/// What a configuration was read from: the SHA-512 of the Corefile's text, which CoreDNS
/// logs, and a SHA-512 over every file the parser read (path and contents, in reading order),
/// which tells whether anything changed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    corefile: [u8; 64],
    sources: [u8; 64],
}

impl Fingerprint {
    /// From the SHA-512 of the Corefile's text and the one over every file read.
    pub fn new(corefile: [u8; 64], sources: [u8; 64]) -> Fingerprint {
        Fingerprint { corefile, sources }
    }

    /// The Corefile's SHA-512 in hex, as `sha512sum` prints it and CoreDNS logs it.
    pub fn sha512(&self) -> String {
        self.corefile
            .iter()
            .fold(String::with_capacity(128), |mut hex, byte| {
                let _ = write!(hex, "{byte:02x}");
                hex
            })
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({}…)", &self.sha512()[..16])
    }
}
