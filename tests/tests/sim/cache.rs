//! `cache` in front of a gathering block: hits without upstream traffic, byte-for-byte the
//! reply the gateway gives anyway (TTLs aside), CoreDNS's TTL arithmetic and keys, denial and
//! SERVFAIL caching, the capacity bound, prefetch, serve_stale and the metrics.

use std::time::Duration;

use domain::base::iana::Rtype;
use gatherdns_tests::message::{QuerySpec, Reply};
use gatherdns_tests::sim::{Behaviour, Sim};

use crate::fixtures::{zone, UPSTREAM_A, UPSTREAM_B};

const SRV_NAME: &str = "_demo._tcp.demo-service.default.svc.distributed.local.";

fn corefile(cache: &str) -> String {
    format!(
        "distributed.local.:53 {{
  gathersrv distributed.local. {{
    cluster-a.local. a-
    cluster-b.local. b-
  }}
  forward cluster-a.local. {UPSTREAM_A}
  forward cluster-b.local. {UPSTREAM_B}
  {cache}
}}"
    )
}

fn sim_with(cache: &str, extra_a: &str, extra_b: &str) -> Sim {
    let mut sim = Sim::new(&corefile(cache), &[]);
    sim.upstream(UPSTREAM_A, "cluster-a.local.", &zone("a", 8, extra_a));
    sim.upstream(UPSTREAM_B, "cluster-b.local.", &zone("b", 9, extra_b));
    sim
}

fn sim(cache: &str) -> Sim {
    sim_with(cache, "", "")
}

fn asked(sim: &Sim) -> [usize; 2] {
    [UPSTREAM_A, UPSTREAM_B].map(|u| sim.upstreams[&u.parse().unwrap()].received.len())
}

/// Sends one query and returns its reply's bytes.
fn bytes(sim: &mut Sim, spec: &QuerySpec) -> Vec<u8> {
    let client = sim.send(spec);
    sim.drive_bounded(10_000);
    sim.only_reply(client).bytes.to_vec()
}

/// The TTL of every record of a reply.
fn ttls(reply: &Reply) -> Vec<u32> {
    reply
        .answer
        .iter()
        .chain(&reply.authority)
        .chain(&reply.additional)
        .map(|r| r.split(' ').nth(1).unwrap().parse().unwrap())
        .collect()
}

fn metric(sim: &Sim, name: &str, labels: &[&str]) -> Option<f64> {
    sim.gw.metrics().value(name, labels)
}

#[test]
fn a_hit_is_byte_for_byte_the_reply_without_a_cache() {
    let spec = QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false).id(1);
    let mut plain = sim("");
    let without_cache = bytes(&mut plain, &spec);

    let mut cached = sim("cache 30");
    let miss = bytes(&mut cached, &spec);
    assert_eq!(
        miss, without_cache,
        "a miss goes out as the gateway wrote it"
    );
    assert_eq!(asked(&cached), [1, 1]);
    let hit = bytes(&mut cached, &spec.clone().id(2));
    assert_eq!(asked(&cached), [1, 1], "no sub-query for a hit");
    let mut expected = without_cache.clone();
    expected[..2].copy_from_slice(&2u16.to_be_bytes());
    assert_eq!(hit, expected, "same bytes but the ID");

    // Another spelling of the question: the reply echoes it, and so do the owner names.
    let shouting = "_DEMO._tcp.Demo-Service.default.SVC.distributed.local.";
    let hit = bytes(
        &mut cached,
        &QuerySpec::new(shouting, Rtype::SRV).edns(1232, false).id(1),
    );
    assert_eq!(asked(&cached), [1, 1], "the key ignores case");
    let mut plain = sim("");
    let spelled = bytes(
        &mut plain,
        &QuerySpec::new(shouting, Rtype::SRV).edns(1232, false).id(1),
    );
    assert_eq!(hit, spelled);
    assert!(Reply::parse(&hit).answer[0].starts_with("_DEMO._tcp.Demo-Service.default.SVC."));
}

#[test]
fn ttls_count_down_and_the_entry_expires() {
    let mut sim = sim("cache 30");
    let spec = QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false);
    assert_eq!(ttls(&sim.ask(&spec)), vec![30; 8]);
    sim.advance(Duration::from_millis(10_900));
    assert_eq!(ttls(&sim.ask(&spec)), vec![20; 8], "whole seconds elapsed");
    sim.advance(Duration::from_secs(19));
    assert_eq!(ttls(&sim.ask(&spec)), vec![1; 8]);
    sim.advance(Duration::from_secs(1));
    assert_eq!(asked(&sim), [1, 1]);
    assert_eq!(ttls(&sim.ask(&spec)), vec![30; 8], "expired: asked again");
    assert_eq!(asked(&sim), [2, 2]);
}

#[test]
fn one_ttl_for_every_record_clamped_to_the_bounds() {
    // Records of 2 s and 3600 s: CoreDNS's minimum is 5 s, and every record gets it.
    let short = "short.default.svc 2 IN A 10.0.0.1\nshort.default.svc 3600 IN A 10.0.0.2";
    let mut sim = sim_with("cache", short, "");
    let reply = sim.ask(&QuerySpec::new(
        "short.default.svc.distributed.local.",
        Rtype::A,
    ));
    assert_eq!(ttls(&reply), vec![5, 5]);
    // `cache 10` caps a 3600 s record.
    let long = "long.default.svc 3600 IN A 10.0.0.3";
    let mut sim = sim_with("cache 10", long, "");
    let reply = sim.ask(&QuerySpec::new(
        "long.default.svc.distributed.local.",
        Rtype::A,
    ));
    assert_eq!(ttls(&reply), vec![10]);
    // `success CAPACITY TTL MINTTL` raises the minimum.
    let mut sim = sim_with("cache {\n success 1024 600 60\n }", short, "");
    let reply = sim.ask(&QuerySpec::new(
        "short.default.svc.distributed.local.",
        Rtype::A,
    ));
    assert_eq!(ttls(&reply), vec![60, 60]);
}

#[test]
fn keyed_on_do_and_cd() {
    let mut sim = sim("cache");
    let spec = QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false);
    sim.ask(&spec);
    sim.ask(&spec.clone().edns(1232, true));
    assert_eq!(asked(&sim), [2, 2], "DO is part of the key");
    sim.ask(&spec.clone().cd(true));
    assert_eq!(asked(&sim), [3, 3], "so is CD");
    sim.ask(&spec.clone().edns(4096, false));
    sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV));
    assert_eq!(asked(&sim), [3, 3], "the UDP size and EDNS itself are not");
    sim.ask(&QuerySpec::new(SRV_NAME, Rtype::TXT));
    assert_eq!(asked(&sim), [4, 4], "the type is");
}

#[test]
fn denials_are_cached_with_their_soa_and_servfail_briefly() {
    let mut sim = sim("cache");
    let nx = QuerySpec::new("nothing.default.svc.distributed.local.", Rtype::A);
    let first = sim.ask(&nx);
    assert_eq!(
        (first.rcode.as_str(), first.authority.len()),
        ("NXDOMAIN", 1)
    );
    let again = sim.ask(&nx);
    assert_eq!(again.authority, first.authority);
    assert_eq!(asked(&sim), [1, 1]);
    let nodata = QuerySpec::new("demo-service.default.svc.distributed.local.", Rtype::MX);
    sim.ask(&nodata);
    assert_eq!(sim.ask(&nodata).rcode, "NOERROR");
    assert_eq!(asked(&sim), [2, 2], "NODATA from the cache");
    assert_eq!(
        metric(
            &sim,
            "coredns_cache_entries",
            &["dns://:53", "denial", "distributed.local.", ""]
        ),
        Some(2.0)
    );

    // Every cluster failing: SERVFAIL, cached for `servfail` (5 s by default).
    for up in [UPSTREAM_A, UPSTREAM_B] {
        sim.upstreams
            .get_mut(&up.parse().unwrap())
            .unwrap()
            .behaviour = Behaviour::Unreachable;
    }
    let srv = QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false);
    assert_eq!(sim.ask(&srv).rcode, "SERVFAIL");
    let base = ["dns://:53", "distributed.local.", ""];
    let denial = ["dns://:53", "denial", "distributed.local.", ""];
    let hits = metric(&sim, "coredns_cache_hits_total", &denial).unwrap();
    let misses = metric(&sim, "coredns_cache_misses_total", &base).unwrap();
    assert_eq!(sim.ask(&srv).rcode, "SERVFAIL");
    assert_eq!(
        metric(&sim, "coredns_cache_hits_total", &denial),
        Some(hits + 1.0),
        "the SERVFAIL came from the cache"
    );
    sim.advance(Duration::from_secs(6));
    sim.ask(&srv);
    assert_eq!(
        metric(&sim, "coredns_cache_misses_total", &base),
        Some(misses + 1.0),
        "after 5 s it is a miss"
    );
}

#[test]
fn a_partial_answer_is_kept_no_longer_than_a_servfail() {
    let mut sim = sim("cache 30");
    sim.upstreams
        .get_mut(&UPSTREAM_B.parse().unwrap())
        .unwrap()
        .behaviour = Behaviour::Silent;
    let srv = QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false);
    let partial = sim.ask(&srv);
    assert_eq!(partial.ede[0].0, 22);
    assert_eq!(
        ttls(&partial),
        vec![5; 4],
        "cached (and sent) with SERVFAIL's 5 s"
    );
    let hit = sim.ask(&srv);
    assert_eq!(hit.ede, partial.ede, "the EDE is part of the cached reply");
    sim.upstreams
        .get_mut(&UPSTREAM_B.parse().unwrap())
        .unwrap()
        .behaviour = Behaviour::Answer;
    sim.advance(Duration::from_secs(6));
    let whole = sim.ask(&srv);
    assert!(whole.ede.is_empty() && whole.answer.len() == 4, "{whole:?}");
}

#[test]
fn memory_is_bounded_by_the_capacity() {
    let mut sim = sim("cache {\n denial 1024\n }");
    for i in 0..1100 {
        sim.ask(&QuerySpec::new(
            &format!("n{i}.default.svc.distributed.local."),
            Rtype::A,
        ));
    }
    let labels = ["dns://:53", "denial", "distributed.local.", ""];
    assert_eq!(metric(&sim, "coredns_cache_entries", &labels), Some(1024.0));
    assert_eq!(
        metric(&sim, "coredns_cache_evictions_total", &labels),
        Some(76.0)
    );
    // The least recently used went: the first names are asked again, the last are not.
    let before = asked(&sim);
    sim.ask(&QuerySpec::new(
        "n1099.default.svc.distributed.local.",
        Rtype::A,
    ));
    assert_eq!(asked(&sim), before);
    sim.ask(&QuerySpec::new(
        "n0.default.svc.distributed.local.",
        Rtype::A,
    ));
    assert_eq!(asked(&sim), [before[0] + 1, before[1] + 1]);
}

#[test]
fn popular_entries_are_prefetched_before_they_expire() {
    // Three queries without a gap of a minute make it popular; at 10 s or less of its 30 s
    // left (a third, rounded up) it is fetched again in the background.
    let mut sim = sim("cache 30 {\n prefetch 3 1m 34%\n }");
    let srv = QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false);
    sim.ask(&srv);
    sim.advance(Duration::from_secs(5));
    sim.ask(&srv);
    sim.advance(Duration::from_secs(5));
    sim.ask(&srv);
    assert_eq!(asked(&sim), [1, 1], "popular, but 20 s are left");
    sim.advance(Duration::from_secs(11));
    let reply = sim.ask(&srv);
    assert_eq!(ttls(&reply), vec![9; 8], "answered from the cache at once");
    assert_eq!(asked(&sim), [2, 2], "and fetched again behind it");
    let labels = ["dns://:53", "distributed.local.", ""];
    assert_eq!(
        metric(&sim, "coredns_cache_prefetch_total", &labels),
        Some(1.0)
    );
    sim.advance(Duration::from_secs(1));
    assert_eq!(ttls(&sim.ask(&srv)), vec![29; 8], "the refreshed entry");
    assert_eq!(asked(&sim), [2, 2]);
}

fn kill_both(sim: &mut Sim) {
    for up in [UPSTREAM_A, UPSTREAM_B] {
        sim.upstreams
            .get_mut(&up.parse().unwrap())
            .unwrap()
            .behaviour = Behaviour::Silent;
    }
}

#[test]
fn serve_stale_immediate_answers_at_once_and_refreshes_behind() {
    let mut sim = sim("cache 30 {\n serve_stale 1h\n }");
    let srv = QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false);
    sim.ask(&srv);
    kill_both(&mut sim);
    sim.advance(Duration::from_secs(40));
    let sent = sim.now;
    let client = sim.send(&srv);
    sim.drive_bounded(10_000);
    let reply = sim.only_reply(client);
    assert_eq!(reply.at, sent, "served before anything is asked");
    let reply = reply.parse();
    assert_eq!(reply.answer.len(), 4);
    assert_eq!(
        ttls(&reply),
        vec![0; 8],
        "CoreDNS's TTL for an expired entry"
    );
    assert_eq!(
        asked(&sim),
        [3, 3],
        "one refresh went out (two attempts per cluster)"
    );
    let labels = ["dns://:53", "distributed.local.", ""];
    assert_eq!(
        metric(&sim, "coredns_cache_served_stale_total", &labels),
        Some(1.0)
    );
    // The refresh failed: the entry stays, and is served again.
    assert_eq!(sim.ask(&srv).answer.len(), 4);
    // Past the serve_stale duration it is gone.
    sim.advance(Duration::from_secs(3600));
    assert_eq!(sim.ask(&srv).rcode, "SERVFAIL");
}

#[test]
fn serve_stale_verify_asks_first() {
    let mut sim = sim("cache 30 {\n serve_stale 1h verify 0 30s\n }");
    let srv = QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false);
    sim.ask(&srv);
    sim.advance(Duration::from_secs(40));
    let fresh = sim.ask(&srv);
    assert_eq!(
        ttls(&fresh),
        vec![30; 8],
        "the source answered: a fresh answer"
    );
    assert_eq!(asked(&sim), [2, 2]);
    sim.advance(Duration::from_secs(40));
    kill_both(&mut sim);
    let sent = sim.now;
    let client = sim.send(&srv);
    sim.drive_bounded(10_000);
    let reply = sim.only_reply(client);
    assert_eq!(
        reply.at.duration_since(sent),
        Duration::from_secs(1),
        "once both clusters failed (two attempts of 500 ms)"
    );
    let reply = reply.parse();
    assert_eq!(reply.rcode, "NOERROR");
    assert_eq!(ttls(&reply), vec![30; 8], "RESPONSE_TTL");
    assert_eq!(reply.answer.len(), 4);
}

#[test]
fn loadbalance_shuffles_addresses_from_the_cache_too() {
    let four = "many.default.svc IN A 10.0.0.1\nmany.default.svc IN A 10.0.0.2\nmany.default.svc IN A 10.0.0.3\nmany.default.svc IN A 10.0.0.4";
    let mut sim = sim_with("cache\n  loadbalance", four, "");
    let spec = QuerySpec::new("many.default.svc.distributed.local.", Rtype::A);
    let mut orders = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let mut answer = sim.ask(&spec).answer;
        orders.insert(answer.join("|"));
        answer.sort();
        assert_eq!(answer.len(), 4);
    }
    assert_eq!(asked(&sim), [1, 1], "all but the first from the cache");
    assert!(orders.len() > 3, "shuffled: {orders:?}");
    // SRV records keep their order (only A, AAAA and MX are shuffled); their additional
    // addresses are shuffled.
    let srv = sim.ask(&QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false));
    assert!(
        srv.answer[0].contains("a-demo-service-0") && srv.answer[3].contains("b-demo-service-1")
    );
}

#[test]
fn metrics_with_coredns_names_and_labels() {
    let mut sim = sim("cache 30 distributed.local.");
    let srv = QuerySpec::new(SRV_NAME, Rtype::SRV).edns(1232, false);
    sim.ask(&srv);
    sim.ask(&srv);
    sim.ask(&srv);
    sim.ask(&QuerySpec::new(
        "nothing.default.svc.distributed.local.",
        Rtype::A,
    ));
    let base = ["dns://:53", "distributed.local.", ""];
    let kind = |k: &'static str| ["dns://:53", k, "distributed.local.", ""];
    assert_eq!(
        metric(&sim, "coredns_cache_requests_total", &base),
        Some(4.0)
    );
    assert_eq!(metric(&sim, "coredns_cache_misses_total", &base), Some(2.0));
    assert_eq!(
        metric(&sim, "coredns_cache_hits_total", &kind("success")),
        Some(2.0)
    );
    assert_eq!(
        metric(&sim, "coredns_cache_hits_total", &kind("denial")),
        Some(0.0)
    );
    assert_eq!(
        metric(&sim, "coredns_cache_entries", &kind("success")),
        Some(1.0)
    );
    assert_eq!(
        metric(&sim, "coredns_cache_entries", &kind("denial")),
        Some(1.0)
    );
    assert_eq!(metric(&sim, "coredns_cache_drops_total", &base), Some(0.0));
    let text = gatherdns_core::metrics::render(sim.gw.metrics());
    for family in [
        "coredns_cache_entries",
        "coredns_cache_requests_total",
        "coredns_cache_hits_total",
        "coredns_cache_misses_total",
        "coredns_cache_prefetch_total",
        "coredns_cache_drops_total",
        "coredns_cache_served_stale_total",
        "coredns_cache_evictions_total",
    ] {
        assert!(
            text.contains(&format!("\n{family}{{")),
            "{family} in\n{text}"
        );
    }
}
