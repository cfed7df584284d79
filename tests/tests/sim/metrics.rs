//! Metrics and readiness of the core, exactly: CoreDNS's and gathersrv's counters with their
//! label sets after known traffic, our per-cluster series, and the readiness probes.

use std::time::Duration;

use domain::base::iana::Rtype;
use gatherdns_core::metrics::Snapshot;
use gatherdns_tests::message::QuerySpec;
use gatherdns_tests::sim::{Behaviour, Sim};

use crate::fixtures::{zone, COREFILE, UPSTREAM_A, UPSTREAM_B};

const SRV_NAME: &str = "_demo._tcp.demo-service.default.svc.distributed.local.";
const SERVER: &str = "dns://:53";
const ZONE: &str = "distributed.local.";

fn sim(prometheus: bool) -> Sim {
    let corefile = if prometheus {
        COREFILE.replace("  log\n", "  log\n  prometheus\n")
    } else {
        COREFILE.to_string()
    };
    let mut sim = Sim::new(&corefile, &[]);
    sim.upstream(UPSTREAM_A, "cluster-a.local.", &zone("a", 8, ""));
    sim.upstream(UPSTREAM_B, "cluster-b.local.", &zone("b", 9, ""));
    sim
}

fn value(s: &Snapshot, name: &str, labels: &[&str]) -> Option<f64> {
    s.value(name, labels)
}

/// Every sample of a family, as `labels => value` lines (label values joined with `|`).
fn samples(s: &Snapshot, name: &str) -> Vec<String> {
    s.family(name)
        .map(|f| {
            f.series
                .keys()
                .map(|labels| {
                    let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
                    format!(
                        "{} => {}",
                        labels.join("|"),
                        s.value(name, &refs).unwrap_or(-1.0)
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn known_traffic_gives_exact_coredns_and_gathersrv_counters() {
    let mut sim = sim(true);
    sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, true));
    sim.ask(&QuerySpec::new(
        "a-demo-service-0.default.svc.distributed.local.",
        Rtype::A,
    ));
    let nx = sim.ask(&QuerySpec::new("nope.distributed.local.", Rtype::A));
    assert_eq!(nx.rcode, "NXDOMAIN");
    let refused = sim.ask(&QuerySpec::new("elsewhere.example.", Rtype::MX));
    assert_eq!(refused.rcode, "REFUSED");
    let s = sim.gw.metrics();
    assert_eq!(
        samples(&s, "coredns_dns_requests_total"),
        vec![
            format!("{SERVER}|{ZONE}||udp|1|A => 2"),
            format!("{SERVER}|{ZONE}||udp|1|SRV => 1"),
            format!("{SERVER}|dropped||udp|1|MX => 1"),
        ]
    );
    assert_eq!(
        samples(&s, "coredns_dns_responses_total"),
        vec![
            format!("{SERVER}|{ZONE}||NOERROR|gathersrv => 2"),
            format!("{SERVER}|{ZONE}||NXDOMAIN|gathersrv => 1"),
            format!("{SERVER}|dropped||REFUSED| => 1"),
        ]
    );
    assert_eq!(
        samples(&s, "coredns_dns_do_requests_total"),
        vec![format!("{SERVER}|{ZONE}| => 1")]
    );
    assert_eq!(
        samples(&s, "coredns_gathersrv_request_count_total"),
        vec![
            format!("{SERVER}|true|A => 2"),
            format!("{SERVER}|true|SRV => 1"),
        ]
    );
    assert_eq!(
        samples(&s, "coredns_gathersrv_sub_request_count_total"),
        vec![
            format!("{SERVER}|a-|A|0 => 2"),
            format!("{SERVER}|a-|SRV|0 => 1"),
            format!("{SERVER}|b-|A|0 => 1"),
            format!("{SERVER}|b-|SRV|0 => 1"),
        ]
    );
    assert_eq!(
        samples(&s, "coredns_forward_responses_total"),
        vec![
            format!("NOERROR|{UPSTREAM_A} => 2"),
            format!("NOERROR|{UPSTREAM_B} => 1"),
            format!("NXDOMAIN|{UPSTREAM_A} => 1"),
            format!("NXDOMAIN|{UPSTREAM_B} => 1"),
        ]
    );
    assert_eq!(
        value(&s, "coredns_forward_requests_total", &[UPSTREAM_A]),
        Some(3.0)
    );
    // Every reply took one simulated round trip (1 ms each way): the 2 ms bucket.
    let Some(gatherdns_core::metrics::snapshot::Value::Histogram(h)) = s
        .family("coredns_dns_request_duration_seconds")
        .and_then(|f| {
            f.series
                .get(&vec![SERVER.into(), ZONE.into(), String::new()])
        })
    else {
        panic!("a duration histogram for the zone");
    };
    assert_eq!(
        (h.count(), h.cumulative(0.001), h.cumulative(0.002)),
        (3, 0, 3)
    );
    assert_eq!(
        value(
            &s,
            "coredns_dns_request_size_bytes",
            &[SERVER, ZONE, "", "udp"]
        ),
        Some(3.0)
    );
    assert_eq!(
        samples(&s, "gatherdns_cluster_sub_queries_total"),
        vec![
            format!("{ZONE}|cluster-a.local.|answered => 3"),
            format!("{ZONE}|cluster-b.local.|answered => 2"),
        ]
    );
    assert_eq!(
        value(
            &s,
            "gatherdns_cluster_request_duration_seconds",
            &[ZONE, "cluster-a.local."]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(&s, "gatherdns_cluster_up", &[ZONE, "cluster-b.local."]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &s,
            "coredns_build_info",
            &[env!("CARGO_PKG_VERSION"), "", ""]
        ),
        Some(1.0)
    );
}

#[test]
fn a_silent_cluster_shows_as_timeouts_then_down() {
    let mut sim = sim(true);
    sim.upstreams
        .get_mut(&UPSTREAM_B.parse().unwrap())
        .unwrap()
        .behaviour = Behaviour::Silent;
    sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV));
    sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV));
    let s = sim.gw.metrics();
    assert_eq!(
        samples(&s, "gatherdns_cluster_sub_queries_total"),
        vec![
            format!("{ZONE}|cluster-a.local.|answered => 2"),
            format!("{ZONE}|cluster-b.local.|down => 1"),
            format!("{ZONE}|cluster-b.local.|timeout => 1"),
        ]
    );
    assert_eq!(
        samples(&s, "coredns_gathersrv_sub_request_count_total"),
        vec![
            format!("{SERVER}|a-|SRV|0 => 2"),
            format!("{SERVER}|b-|SRV|2 => 2"),
        ]
    );
    assert_eq!(
        value(&s, "gatherdns_upstream_timeouts_total", &[]),
        Some(2.0)
    );
    assert_eq!(
        value(&s, "gatherdns_partial_responses_total", &[]),
        Some(2.0)
    );
    assert_eq!(
        value(&s, "gatherdns_cluster_up", &[ZONE, "cluster-b.local."]),
        Some(0.0)
    );
    assert_eq!(value(&s, "gatherdns_upstream_up", &[UPSTREAM_B]), Some(0.0));
    assert_eq!(value(&s, "gatherdns_upstream_up", &[UPSTREAM_A]), Some(1.0));
    // The down upstream is probed every 500 ms; each probe times out after 2 s.
    sim.advance(Duration::from_millis(2600));
    let s = sim.gw.metrics();
    assert_eq!(
        value(
            &s,
            "coredns_forward_healthcheck_failures_total",
            &[UPSTREAM_B]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "coredns_forward_requests_total", &[UPSTREAM_B]),
        None,
        "no reply, no request counted (CoreDNS counts exchanges that got a reply)"
    );
}

#[test]
fn blocks_without_prometheus_count_no_dns_requests() {
    let mut sim = sim(false);
    sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV));
    sim.ask(&QuerySpec::new("elsewhere.example.", Rtype::A));
    let s = sim.gw.metrics();
    assert_eq!(
        samples(&s, "coredns_dns_requests_total"),
        vec![format!("{SERVER}|dropped||udp|1|A => 1")],
        "only the query no block took, as CoreDNS's server reports it"
    );
    assert_eq!(
        value(
            &s,
            "coredns_gathersrv_request_count_total",
            &[SERVER, "true", "SRV"]
        ),
        Some(1.0),
        "gathersrv counts with or without prometheus"
    );
}

#[test]
fn readiness_waits_for_every_upstream_to_be_tried() {
    let mut sim = sim(true);
    sim.upstreams
        .get_mut(&UPSTREAM_B.parse().unwrap())
        .unwrap()
        .behaviour = Behaviour::Silent;
    assert_eq!(
        sim.gw.not_ready(),
        vec![
            format!("forward: upstream {UPSTREAM_A} not tried yet"),
            format!("forward: upstream {UPSTREAM_B} not tried yet"),
        ]
    );
    sim.gw.probe_upstreams(sim.now);
    // The first advance sends what the gateway queued, the second delivers the replies.
    sim.advance(Duration::ZERO);
    sim.advance(Duration::from_millis(10));
    assert_eq!(
        sim.gw.not_ready(),
        vec![format!("forward: upstream {UPSTREAM_B} not tried yet")]
    );
    sim.advance(Duration::from_secs(2));
    assert!(sim.gw.not_ready().is_empty());
    let s = sim.gw.metrics();
    assert_eq!(
        value(
            &s,
            "coredns_forward_healthcheck_failures_total",
            &[UPSTREAM_B]
        ),
        None,
        "a readiness probe is no health check"
    );
    assert_eq!(value(&s, "gatherdns_upstream_up", &[UPSTREAM_B]), Some(1.0));
}

#[test]
fn query_log_lines_are_coredns_byte_for_byte() {
    let mut sim = sim(true);
    let name = "a-demo-service-0.default.svc.distributed.local.";
    let spec = QuerySpec::new(name, Rtype::A)
        .id(4242)
        .edns(4096, true)
        .cd(true);
    let client = sim.send(&spec);
    sim.drive_bounded(1000);
    let size = sim.only_reply(client).bytes.len();
    let line = sim
        .events
        .iter()
        .find_map(|e| match e {
            gatherdns_core::Event::QueryLogged(log) => Some(log.line()),
            _ => None,
        })
        .expect("log is on");
    // {remote}:{port} - {>id} "{type} {class} {name} {proto} {size} {>do} {>bufsize}"
    // {rcode} {>rflags} {rsize} {duration}, the duration as Go prints a float: 2 ms → 0.002s.
    assert_eq!(
        line,
        format!(
            "{} - 4242 \"A IN {name} udp {} true 4096\" NOERROR qr,aa,rd,cd {size} 0.002s",
            client.remote,
            spec.build().len()
        )
    );
}

#[test]
fn stopping_drops_new_queries_and_finishes_those_in_flight() {
    let mut sim = sim(true);
    let first = sim.send(&QuerySpec::new(SRV_NAME, Rtype::SRV));
    assert_eq!(sim.gw.queries_in_flight(), 1);
    sim.gw.stop_accepting();
    let second = sim.send(&QuerySpec::new(SRV_NAME, Rtype::SRV));
    sim.drive_bounded(1000);
    assert_eq!(sim.only_reply(first).parse().answer.len(), 4);
    assert!(sim.replies.iter().all(|r| r.client != second), "dropped");
    assert_eq!(sim.gw.queries_in_flight(), 0);
    let s = sim.gw.metrics();
    assert_eq!(
        value(&s, "gatherdns_client_messages_dropped_total", &[]),
        Some(1.0)
    );
}
