//! The live counters of one gateway, updated on the query path: plain numbers and fixed
//! bucket arrays in maps keyed by small copyable values (listener address, zone name, qtype
//! number, rcode number), so that counting allocates nothing once a series exists and needs
//! no lock (a gateway is single-threaded). Label strings are made only at scrape time.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use super::families::{self, SIZE_BUCKETS, TIME_BUCKETS};
use super::snapshot::{Histogram, Snapshot, Value};
use crate::transmit::{ClientAddr, ClientTransport};
use crate::wire::{Name, Rtype};

/// The plugin that wrote a reply (`plugin` label of `coredns_dns_responses_total`): the
/// CoreDNS package whose code calls WriteMsg, or "" when the server itself answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Plugin {
    Server,
    Gathersrv,
    Hosts,
    MulticlusterGw,
    Multicluster,
    File,
    Forward,
    Cache,
}

impl Plugin {
    fn label(self) -> &'static str {
        match self {
            Plugin::Server => "",
            Plugin::Gathersrv => "gathersrv",
            Plugin::Hosts => "hosts",
            Plugin::MulticlusterGw => "multicluster_gw",
            Plugin::Multicluster => "multicluster",
            Plugin::File => "file",
            Plugin::Forward => "forward",
            Plugin::Cache => "cache",
        }
    }
}

/// How one cluster's part of a gathered query ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PartResult {
    Answered,
    Timeout,
    Down,
    Refused,
    Failed,
    /// The cluster did not answer and its kept earlier part stood in (gathersrv's
    /// `serve_stale`).
    Stale,
}

const PART_RESULTS: [&str; 6] = ["answered", "timeout", "down", "refused", "failed", "stale"];

/// CoreDNS's `monitorType`: the qtypes with a `type` label of their own; the rest is `other`.
const MONITORED_TYPES: [u16; 18] = [
    1, 28, 5, 48, 43, 15, 50, 47, 2, 12, 46, 6, 33, 16, 65, 251, 252, 255,
];
const TYPE_SLOTS: usize = MONITORED_TYPES.len() + 1;

/// One reply to a client, as the metrics see it.
pub(crate) struct Reply<'a> {
    /// The listening address it came in on.
    pub(crate) server: SocketAddr,
    /// The zone of its server block; `None` when no block took it (`zone="dropped"`).
    pub(crate) zone: Option<&'a Name>,
    pub(crate) client: &'a ClientAddr,
    pub(crate) qtype: u16,
    pub(crate) dnssec_ok: bool,
    pub(crate) request_size: usize,
    pub(crate) response_size: usize,
    pub(crate) rcode: u16,
    pub(crate) duration: Duration,
}

struct ZoneSeries {
    /// By proto (udp, tcp), family (1, 2) and type slot.
    requests: [u64; 2 * 2 * TYPE_SLOTS],
    do_requests: u64,
    duration: Histogram,
    request_size: [Option<Histogram>; 2],
    response_size: [Option<Histogram>; 2],
    responses: BTreeMap<(u16, Plugin), u64>,
}

impl ZoneSeries {
    fn new() -> ZoneSeries {
        ZoneSeries {
            requests: [0; 2 * 2 * TYPE_SLOTS],
            do_requests: 0,
            duration: Histogram::new(TIME_BUCKETS),
            request_size: [None, None],
            response_size: [None, None],
            responses: BTreeMap::new(),
        }
    }
}

struct ClusterSeries {
    latency: Histogram,
    results: [u64; PART_RESULTS.len()],
}

#[derive(Default)]
struct ForwardSeries {
    requests: u64,
    responses: BTreeMap<u16, u64>,
    durations: BTreeMap<u16, Histogram>,
    healthcheck_failures: u64,
}

/// gathersrv's sub-requests of one prefix, by (server, qtype, code).
type SubRequests = BTreeMap<(SocketAddr, u16, u8), u64>;

/// The counters of one gateway.
#[derive(Default)]
pub(crate) struct Recorder {
    dns: BTreeMap<(SocketAddr, Option<Name>), ZoneSeries>,
    gathersrv: BTreeMap<(SocketAddr, bool, u16), u64>,
    /// By prefix, then (server, qtype, code).
    gathersrv_sub: BTreeMap<Vec<u8>, SubRequests>,
    /// By (distributed domain, cluster suffix): a handful, searched directly, since a
    /// lookup happens twice per cluster of every gathered query.
    clusters: Vec<((Name, Name), ClusterSeries)>,
    forward: BTreeMap<SocketAddr, ForwardSeries>,
    /// Upstreams that have answered or failed at least once (readiness).
    tried: BTreeSet<SocketAddr>,
    /// Readiness probes in flight, by (upstream, DNS ID): their failures are no health
    /// check failures.
    readiness_probes: BTreeSet<(SocketAddr, u16)>,
    /// The plugin of the reply about to be sent (set just before it, taken by `reply`).
    next_plugin: Option<Plugin>,
}

impl Recorder {
    /// Says which plugin answers the next reply.
    pub(crate) fn answered_by(&mut self, plugin: Plugin) {
        self.next_plugin = Some(plugin);
    }

    /// Forgets the plugin of a reply that is not counted.
    pub(crate) fn forget_plugin(&mut self) {
        self.next_plugin = None;
    }

    /// A reply to a client: `coredns_dns_*`, as CoreDNS's `vars.Report`.
    pub(crate) fn reply(&mut self, r: &Reply<'_>) {
        let plugin = self.next_plugin.take().unwrap_or(Plugin::Server);
        let key = (r.server, r.zone.cloned());
        let series = self.dns.entry(key).or_insert_with(ZoneSeries::new);
        let proto = usize::from(matches!(r.client.transport, ClientTransport::Tcp(_)));
        let family = match r.client.remote {
            SocketAddr::V4(_) => 0,
            SocketAddr::V6(a) => usize::from(a.ip().to_ipv4_mapped().is_none()),
        };
        let slot = MONITORED_TYPES
            .iter()
            .position(|t| *t == r.qtype)
            .unwrap_or(MONITORED_TYPES.len());
        series.requests[(proto * 2 + family) * TYPE_SLOTS + slot] += 1;
        if r.dnssec_ok {
            series.do_requests += 1;
        }
        series.duration.observe(r.duration.as_secs_f64());
        series.request_size[proto]
            .get_or_insert_with(|| Histogram::new(SIZE_BUCKETS))
            .observe(r.request_size as f64);
        series.response_size[proto]
            .get_or_insert_with(|| Histogram::new(SIZE_BUCKETS))
            .observe(r.response_size as f64);
        *series.responses.entry((r.rcode, plugin)).or_insert(0) += 1;
    }

    /// A query entering a block with `gathersrv`.
    pub(crate) fn gathersrv_request(&mut self, server: SocketAddr, qualified: bool, qtype: u16) {
        *self
            .gathersrv
            .entry((server, qualified, qtype))
            .or_insert(0) += 1;
    }

    /// One sub-request of gathersrv ended with `code`: 0 when the cluster's DNS answered
    /// (whatever its RCODE), 2 (SERVFAIL) when it did not, 5 (REFUSED) at `max_concurrent` —
    /// the return codes CoreDNS's forward gives gathersrv.
    pub(crate) fn gathersrv_sub_request(
        &mut self,
        server: SocketAddr,
        prefix: &[u8],
        qtype: u16,
        code: u8,
    ) {
        let by_prefix = match self.gathersrv_sub.get_mut(prefix) {
            Some(map) => map,
            None => self.gathersrv_sub.entry(prefix.to_vec()).or_default(),
        };
        *by_prefix.entry((server, qtype, code)).or_insert(0) += 1;
    }

    fn cluster(&mut self, domain: &Name, cluster: &Name) -> &mut ClusterSeries {
        let found = self
            .clusters
            .iter()
            .position(|((d, c), _)| c == cluster && d == domain);
        let index = found.unwrap_or_else(|| {
            let series = ClusterSeries {
                latency: Histogram::new(TIME_BUCKETS),
                results: [0; PART_RESULTS.len()],
            };
            self.clusters
                .push(((domain.clone(), cluster.clone()), series));
            self.clusters.len() - 1
        });
        &mut self.clusters[index].1
    }

    /// How a cluster's part of a gathered query ended.
    pub(crate) fn cluster_part(&mut self, domain: &Name, cluster: &Name, result: PartResult) {
        self.cluster(domain, cluster).results[result as usize] += 1;
    }

    /// A cluster's upstream answered a part, `latency` after the query started.
    pub(crate) fn cluster_latency(&mut self, domain: &Name, cluster: &Name, latency: Duration) {
        self.cluster(domain, cluster)
            .latency
            .observe(latency.as_secs_f64());
    }

    /// An upstream answered a sub-query attempt sent `took` ago (not a probe).
    pub(crate) fn upstream_reply(&mut self, upstream: SocketAddr, rcode: u16, took: Duration) {
        self.tried.insert(upstream);
        let f = self.forward.entry(upstream).or_default();
        f.requests += 1;
        *f.responses.entry(rcode).or_insert(0) += 1;
        f.durations
            .entry(rcode)
            .or_insert_with(|| Histogram::new(TIME_BUCKETS))
            .observe(took.as_secs_f64());
    }

    /// A probe (health check or readiness) got a reply.
    pub(crate) fn probe_reply(&mut self, upstream: SocketAddr, dns_id: u16) {
        self.tried.insert(upstream);
        self.readiness_probes.remove(&(upstream, dns_id));
    }

    /// An attempt failed, timed out or got a malformed reply.
    pub(crate) fn attempt_failed(&mut self, upstream: SocketAddr, dns_id: u16, probe: bool) {
        self.tried.insert(upstream);
        let readiness = self.readiness_probes.remove(&(upstream, dns_id));
        if probe && !readiness {
            self.forward
                .entry(upstream)
                .or_default()
                .healthcheck_failures += 1;
        }
    }

    /// A readiness probe was sent.
    pub(crate) fn readiness_probe(&mut self, upstream: SocketAddr, dns_id: u16) {
        self.readiness_probes.insert((upstream, dns_id));
    }

    /// True once `upstream` answered or failed an attempt or probe.
    pub(crate) fn tried(&self, upstream: &SocketAddr) -> bool {
        self.tried.contains(upstream)
    }

    /// Adds every series to `out`.
    pub(crate) fn snapshot(&self, out: &mut Snapshot) {
        for ((server, zone), s) in &self.dns {
            let server = server_label(*server);
            let zone = zone
                .as_ref()
                .map_or_else(|| "dropped".to_string(), Name::to_string);
            let base = vec![server.clone(), zone.clone(), String::new()];
            for (index, count) in s.requests.iter().enumerate().filter(|(_, c)| **c > 0) {
                let (pf, slot) = (index / TYPE_SLOTS, index % TYPE_SLOTS);
                let mut labels = base.clone();
                labels.push(["udp", "tcp"][pf / 2].to_string());
                labels.push(["1", "2"][pf % 2].to_string());
                labels.push(type_label(slot));
                out.put(&families::DNS_REQUESTS, labels, Value::Counter(*count));
            }
            if s.do_requests > 0 {
                out.put(
                    &families::DNS_DO_REQUESTS,
                    base.clone(),
                    Value::Counter(s.do_requests),
                );
            }
            out.put(
                &families::DNS_DURATION,
                base.clone(),
                Value::Histogram(s.duration.clone()),
            );
            for (proto, name) in ["udp", "tcp"].iter().enumerate() {
                let mut labels = base.clone();
                labels.push((*name).to_string());
                if let Some(h) = &s.request_size[proto] {
                    out.put(
                        &families::DNS_REQUEST_SIZE,
                        labels.clone(),
                        Value::Histogram(h.clone()),
                    );
                }
                if let Some(h) = &s.response_size[proto] {
                    out.put(
                        &families::DNS_RESPONSE_SIZE,
                        labels,
                        Value::Histogram(h.clone()),
                    );
                }
            }
            for ((rcode, plugin), count) in &s.responses {
                let mut labels = base.clone();
                labels.push(rcode_name(*rcode));
                labels.push(plugin.label().to_string());
                out.put(&families::DNS_RESPONSES, labels, Value::Counter(*count));
            }
        }
        for ((server, qualified, qtype), count) in &self.gathersrv {
            let labels = vec![
                server_label(*server),
                qualified.to_string(),
                Rtype::from_int(*qtype).to_string(),
            ];
            out.put(
                &families::GATHERSRV_REQUESTS,
                labels,
                Value::Counter(*count),
            );
        }
        for (prefix, by_key) in &self.gathersrv_sub {
            for ((server, qtype, code), count) in by_key {
                let labels = vec![
                    server_label(*server),
                    String::from_utf8_lossy(prefix).into_owned(),
                    Rtype::from_int(*qtype).to_string(),
                    code.to_string(),
                ];
                out.put(
                    &families::GATHERSRV_SUB_REQUESTS,
                    labels,
                    Value::Counter(*count),
                );
            }
        }
        for ((domain, cluster), s) in &self.clusters {
            let base = vec![domain.to_string(), cluster.to_string()];
            if s.latency.count() > 0 {
                out.put(
                    &families::CLUSTER_DURATION,
                    base.clone(),
                    Value::Histogram(s.latency.clone()),
                );
            }
            for (result, count) in PART_RESULTS.iter().zip(s.results) {
                if count > 0 {
                    let mut labels = base.clone();
                    labels.push((*result).to_string());
                    out.put(
                        &families::CLUSTER_SUB_QUERIES,
                        labels,
                        Value::Counter(count),
                    );
                }
            }
        }
        for (to, f) in &self.forward {
            let to_label = to.to_string();
            if f.requests > 0 {
                out.counter(&families::FORWARD_REQUESTS, &[&to_label], f.requests);
            }
            for (rcode, count) in &f.responses {
                let rc = forward_rcode(*rcode);
                out.counter(&families::FORWARD_RESPONSES, &[&rc, &to_label], *count);
            }
            for (rcode, h) in &f.durations {
                let labels = vec![to_label.clone(), forward_rcode(*rcode)];
                out.put(
                    &families::FORWARD_DURATION,
                    labels,
                    Value::Histogram(h.clone()),
                );
            }
            if f.healthcheck_failures > 0 {
                out.counter(
                    &families::FORWARD_HEALTHCHECK_FAILURES,
                    &[&to_label],
                    f.healthcheck_failures,
                );
            }
        }
    }
}

/// CoreDNS's `server` label: `dns://` and the listening address, without the host when it
/// listens on every address (`dns://:53`).
pub(crate) fn server_label(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("dns://:{}", addr.port())
    } else {
        format!("dns://{addr}")
    }
}

fn type_label(slot: usize) -> String {
    MONITORED_TYPES
        .get(slot)
        .map_or_else(|| "other".to_string(), |t| Rtype::from_int(*t).to_string())
}

/// miekg/dns's `RcodeToString`.
fn rcode_text(rcode: u16) -> Option<&'static str> {
    Some(match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADSIG",
        17 => "BADKEY",
        18 => "BADTIME",
        19 => "BADMODE",
        20 => "BADNAME",
        21 => "BADALG",
        22 => "BADTRUNC",
        23 => "BADCOOKIE",
        _ => return None,
    })
}

/// CoreDNS's `rcode.ToString`.
fn rcode_name(rcode: u16) -> String {
    rcode_text(rcode).map_or_else(|| format!("RCODE{rcode}"), str::to_string)
}

/// The forward plugin's `rc`: the name, else the number.
fn forward_rcode(rcode: u16) -> String {
    rcode_text(rcode).map_or_else(|| rcode.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transmit::ListenerId;

    fn client(remote: &str, tcp: bool) -> ClientAddr {
        ClientAddr {
            listener: ListenerId(0),
            remote: remote.parse().expect("addr"),
            transport: if tcp {
                ClientTransport::Tcp(1)
            } else {
                ClientTransport::Udp
            },
        }
    }

    #[test]
    fn replies_are_counted_with_coredns_labels() {
        let mut r = Recorder::default();
        let server: SocketAddr = "0.0.0.0:53".parse().expect("addr");
        let zone = Name::parse("example.org.").expect("name");
        let udp = client("127.0.0.1:5000", false);
        let tcp6 = client("[::1]:5000", true);
        let reply = |client, qtype, plugin| {
            (
                Reply {
                    server,
                    zone: Some(&zone),
                    client,
                    qtype,
                    dnssec_ok: qtype == 1,
                    request_size: 41,
                    response_size: 120,
                    rcode: 0,
                    duration: Duration::from_millis(3),
                },
                plugin,
            )
        };
        for (rep, plugin) in [
            reply(&udp, 1, Plugin::File),
            reply(&udp, 1, Plugin::File),
            reply(&tcp6, 99, Plugin::Forward),
        ] {
            r.answered_by(plugin);
            r.reply(&rep);
        }
        let dropped = Reply {
            zone: None,
            ..reply(&udp, 6, Plugin::Server).0
        };
        r.reply(&dropped);
        let mut s = Snapshot::default();
        r.snapshot(&mut s);
        let v = |name, labels: &[&str]| s.value(name, labels);
        let base = ["dns://:53", "example.org.", ""];
        let req = |proto, fam, t| {
            let mut l = base.to_vec();
            l.extend([proto, fam, t]);
            v("coredns_dns_requests_total", &l)
        };
        assert_eq!(req("udp", "1", "A"), Some(2.0));
        assert_eq!(req("tcp", "2", "other"), Some(1.0));
        assert_eq!(req("udp", "2", "A"), None);
        let resp = |plugin| {
            let mut l = base.to_vec();
            l.extend(["NOERROR", plugin]);
            v("coredns_dns_responses_total", &l)
        };
        assert_eq!(resp("file"), Some(2.0));
        assert_eq!(resp("forward"), Some(1.0));
        assert_eq!(v("coredns_dns_do_requests_total", &base), Some(2.0));
        assert_eq!(v("coredns_dns_request_duration_seconds", &base), Some(3.0));
        let dropped = ["dns://:53", "dropped", "", "udp", "1", "SOA"];
        assert_eq!(v("coredns_dns_requests_total", &dropped), Some(1.0));
        assert_eq!(
            v(
                "coredns_dns_responses_total",
                &["dns://:53", "dropped", "", "NOERROR", ""]
            ),
            Some(1.0)
        );
    }

    #[test]
    fn upstreams_gathersrv_and_clusters() {
        let mut r = Recorder::default();
        let to: SocketAddr = "10.0.0.1:53".parse().expect("addr");
        let server: SocketAddr = "127.0.0.1:1053".parse().expect("addr");
        r.upstream_reply(to, 0, Duration::from_millis(1));
        r.upstream_reply(to, 3, Duration::from_millis(1));
        r.upstream_reply(to, 3, Duration::from_millis(1));
        r.readiness_probe(to, 7);
        r.attempt_failed(to, 7, true);
        r.attempt_failed(to, 8, true);
        r.gathersrv_request(server, true, 33);
        r.gathersrv_sub_request(server, b"a-", 33, 0);
        r.gathersrv_sub_request(server, b"a-", 33, 0);
        r.gathersrv_sub_request(server, b"b-", 33, 2);
        let d = Name::parse("distributed.local.").expect("name");
        let c = Name::parse("cluster-a.local.").expect("name");
        r.cluster_part(&d, &c, PartResult::Timeout);
        r.cluster_latency(&d, &c, Duration::from_millis(2));
        let mut s = Snapshot::default();
        r.snapshot(&mut s);
        let t = "10.0.0.1:53";
        assert_eq!(s.value("coredns_forward_requests_total", &[t]), Some(3.0));
        assert_eq!(
            s.value("coredns_forward_responses_total", &["NXDOMAIN", t]),
            Some(2.0)
        );
        assert_eq!(
            s.value("coredns_forward_request_duration_seconds", &[t, "NOERROR"]),
            Some(1.0)
        );
        assert_eq!(
            s.value("coredns_forward_healthcheck_failures_total", &[t]),
            Some(1.0),
            "the readiness probe's failure is no health check failure"
        );
        let srv = "dns://127.0.0.1:1053";
        assert_eq!(
            s.value(
                "coredns_gathersrv_request_count_total",
                &[srv, "true", "SRV"]
            ),
            Some(1.0)
        );
        assert_eq!(
            s.value(
                "coredns_gathersrv_sub_request_count_total",
                &[srv, "a-", "SRV", "0"]
            ),
            Some(2.0)
        );
        assert_eq!(
            s.value(
                "gatherdns_cluster_sub_queries_total",
                &["distributed.local.", "cluster-a.local.", "timeout"]
            ),
            Some(1.0)
        );
        assert!(r.tried(&to));
    }

    #[test]
    fn labels_as_coredns_prints_them() {
        assert_eq!(server_label("0.0.0.0:53".parse().expect("a")), "dns://:53");
        assert_eq!(
            server_label("[::1]:53".parse().expect("a")),
            "dns://[::1]:53"
        );
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(12), "RCODE12");
        assert_eq!(forward_rcode(12), "12");
        assert_eq!(type_label(0), "A");
        assert_eq!(type_label(MONITORED_TYPES.len()), "other");
        assert_eq!(Rtype::from_int(65534).to_string(), "TYPE65534");
    }
}
