//! Client-side size limits: 512 without EDNS, the client's EDNS size capped at 1232, TC=1
//! when records were dropped, and the full answer over TCP.

use domain::base::iana::Rtype;
use gatherdns_core::ClientTransport;
use gatherdns_tests::message::{QuerySpec, Reply};

use crate::fixtures::sim_with;

fn big_zone() -> String {
    let mut s = String::new();
    for i in 1..=60 {
        s.push_str(&format!("big.default.svc IN A 10.0.2.{i}\n"));
        s.push_str(&format!(
            "_http._tcp.big.default.svc IN SRV 0 10 80 big-{i}.default.svc\n"
        ));
        s.push_str(&format!("big-{i}.default.svc IN A 10.0.3.{i}\n"));
    }
    s
}

fn sim() -> gatherdns_tests::sim::Sim {
    let zone = big_zone();
    sim_with(
        &zone.replace("10.0.", "10.8."),
        &zone.replace("10.0.", "10.9."),
    )
}

#[test]
fn no_edns_reply_fits_512_bytes_with_tc() {
    let mut sim = sim();
    let reply = sim.ask(&QuerySpec::new(
        "big.default.svc.distributed.local.",
        Rtype::A,
    ));
    assert!(reply.size <= 512, "{}", reply.size);
    assert!(reply.tc);
    assert!(!reply.answer.is_empty());
}

#[test]
fn edns_reply_is_capped_at_1232_bytes_with_tc() {
    let mut sim = sim();
    let reply = sim.ask(
        &QuerySpec::new("_http._tcp.big.default.svc.distributed.local.", Rtype::SRV)
            .edns(4096, false),
    );
    assert!(reply.size <= 1232, "{}", reply.size);
    assert!(reply.tc);
    assert_eq!(reply.edns, Some((1232, false)), "OPT survives truncation");
}

#[test]
fn a_small_edns_size_below_512_still_gets_512() {
    let mut sim = sim();
    let reply =
        sim.ask(&QuerySpec::new("big.default.svc.distributed.local.", Rtype::A).edns(100, false));
    assert!(reply.size <= 512 && reply.size > 400, "{}", reply.size);
}

#[test]
fn tcp_gets_all_120_records() {
    let mut sim = sim();
    let client = sim.client(ClientTransport::Tcp(1));
    sim.send_from(
        client,
        QuerySpec::new("big.default.svc.distributed.local.", Rtype::A).build(),
    );
    sim.drive_bounded(1000);
    let reply: Reply = sim.only_reply(client).parse();
    assert!(!reply.tc);
    assert_eq!(reply.answer.len(), 120);

    let client = sim.client(ClientTransport::Tcp(2));
    sim.send_from(
        client,
        QuerySpec::new("_http._tcp.big.default.svc.distributed.local.", Rtype::SRV).build(),
    );
    sim.drive_bounded(1000);
    let reply = sim.only_reply(client).parse();
    assert_eq!(reply.answer.len(), 120);
    assert_eq!(reply.additional.len(), 120);
    assert!(reply.size <= 65535);
}

/// How many records of `rrs` hold an address of cluster A (10.8.) and of cluster B (10.9.).
fn per_cluster(rrs: &[String]) -> (usize, usize) {
    let count = |net: &str| rrs.iter().filter(|r| r.contains(net)).count();
    (count(" 10.8."), count(" 10.9."))
}

#[test]
fn a_truncated_answer_takes_the_clusters_in_turn() {
    // Plain UDP (512) and EDNS 1232: as many records as fit, half from each cluster, where
    // dropping from the end kept cluster A's only (a musl client then used cluster A only).
    for (edns, limit) in [(None, 512), (Some(1232), 1232), (Some(4096), 1232)] {
        let mut sim = sim();
        let mut spec = QuerySpec::new("big.default.svc.distributed.local.", Rtype::A);
        if let Some(size) = edns {
            spec = spec.edns(size, false);
        }
        let reply = sim.ask(&spec);
        assert!(reply.tc && reply.size <= limit, "{edns:?}: {}", reply.size);
        let (a, b) = per_cluster(&reply.answer);
        assert_eq!(a + b, reply.answer.len());
        assert!(a.abs_diff(b) <= 1, "{edns:?}: {a} from A, {b} from B");
        // As many as fit: one more 16-byte A record would not.
        assert!(reply.size + 16 > limit, "{edns:?}: {} bytes", reply.size);
        // Configuration order within the reply, as in the full answer.
        assert!(reply.answer[..a].iter().all(|r| r.contains(" 10.8.")));
    }
}

#[test]
fn truncated_srv_records_keep_their_targets_addresses() {
    for edns in [None, Some(1232)] {
        let mut sim = sim();
        let mut spec = QuerySpec::new("_http._tcp.big.default.svc.distributed.local.", Rtype::SRV);
        if let Some(size) = edns {
            spec = spec.edns(size, false);
        }
        let reply = sim.ask(&spec);
        assert!(reply.tc);
        let targets: Vec<String> = reply
            .answer
            .iter()
            .map(|r| r.rsplit(' ').next().expect("target").to_string())
            .collect();
        let owners: Vec<String> = reply
            .additional
            .iter()
            .map(|r| r.split(' ').next().expect("owner").to_string())
            .collect();
        assert_eq!(
            targets, owners,
            "{edns:?}: each SRV with its address, no more"
        );
        let a = targets.iter().filter(|t| t.starts_with("a-")).count();
        let b = targets.iter().filter(|t| t.starts_with("b-")).count();
        assert!(
            a > 0 && a.abs_diff(b) <= 1,
            "{edns:?}: {a} from A, {b} from B"
        );
        let (a_addrs, b_addrs) = per_cluster(&reply.additional);
        assert_eq!((a_addrs, b_addrs), (a, b));
    }
}

#[test]
fn uneven_clusters_are_kept_in_proportion_and_the_smallest_is_kept() {
    let few = |net: u8, n: usize| -> String {
        (1..=n)
            .map(|i| format!("big.default.svc IN A 10.{net}.2.{i}\n"))
            .collect()
    };
    for (n_a, n_b) in [(60, 6), (60, 1), (3, 60)] {
        let mut sim = sim_with(&few(8, n_a), &few(9, n_b));
        let reply = sim.ask(&QuerySpec::new(
            "big.default.svc.distributed.local.",
            Rtype::A,
        ));
        assert!(reply.tc);
        let (a, b) = per_cluster(&reply.answer);
        let kept = (a + b) as f64;
        let share_b = n_b as f64 / (n_a + n_b) as f64;
        assert!(
            a > 0 && b > 0,
            "{n_a}/{n_b}: every cluster is kept: {a}/{b}"
        );
        assert!(
            (b as f64 - kept * share_b).abs() <= 1.5,
            "{n_a}/{n_b}: {a} from A and {b} from B is not in proportion"
        );
    }
}

#[test]
fn an_edns_error_survives_a_truncated_reply() {
    let mut sim = sim();
    sim.upstreams
        .get_mut(&crate::fixtures::UPSTREAM_B.parse().expect("addr"))
        .expect("B")
        .behaviour = gatherdns_tests::sim::Behaviour::Silent;
    let reply = sim.ask(
        &QuerySpec::new("_http._tcp.big.default.svc.distributed.local.", Rtype::SRV)
            .edns(1232, false),
    );
    assert!(reply.tc && reply.size <= 1232);
    assert_eq!(reply.ede.len(), 1, "{:?}", reply.ede);
    assert_eq!(per_cluster(&reply.additional).1, 0);
}
