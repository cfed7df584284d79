//! `loop`: the startup probe through the server's own path, a forwarding loop reported as a
//! fatal event with CoreDNS's message, and a probe that comes back answered turning the
//! check off.

use std::time::Duration;

use domain::base::iana::Rtype;
use gatherdns_core::wire::ClientQuery;
use gatherdns_core::Event;
use gatherdns_tests::message::QuerySpec;
use gatherdns_tests::sim::Sim;

fn fatal(sim: &Sim) -> Vec<(String, String)> {
    sim.events
        .iter()
        .filter_map(|e| match e {
            Event::Fatal { plugin, message } => Some((plugin.to_string(), message.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_forward_to_ourselves_is_a_loop() {
    let mut sim = Sim::new(".:53 {\n  loop\n  forward . 127.0.0.1:53\n}", &[]);
    sim.own_address = Some("127.0.0.1:53".parse().unwrap());
    sim.start();
    for _ in 0..100 {
        if !fatal(&sim).is_empty() {
            break;
        }
        assert!(sim.step(), "the probe keeps going round");
    }
    let fatal = fatal(&sim);
    assert_eq!(fatal.len(), 1, "{:?}", sim.events);
    let (plugin, message) = &fatal[0];
    assert_eq!(plugin, "loop");
    assert!(message.starts_with("Loop (127.0.0.9:"), "{message}");
    assert!(
        message.contains(" -> :53) detected for zone \".\", see https://coredns.io/plugins/loop#troubleshooting. Query: \"HINFO "),
        "{message}"
    );
    let name = message
        .rsplit("HINFO ")
        .next()
        .unwrap()
        .trim_end_matches('"');
    let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
    assert_eq!(labels.len(), 2, "<random>.<random>.: {name}");
    assert!(labels
        .iter()
        .all(|l| l.parse::<u64>().is_ok_and(|n| n < 1 << 62)));
}

#[test]
fn an_answered_probe_turns_the_check_off() {
    let mut sim = Sim::new(".:53 {\n  loop\n  forward . 10.0.0.53\n}", &[]);
    sim.own_address = Some("127.0.0.1:53".parse().unwrap());
    sim.upstream("10.0.0.53:53", ".", ". 3600 IN SOA a. b. 1 2 3 4 5\n");
    sim.start();
    sim.drive_bounded(1000);
    let up = &sim.upstreams[&"10.0.0.53:53".parse().unwrap()];
    assert_eq!(up.received.len(), 1, "the probe was forwarded once");
    let probe = ClientQuery::parse(up.received[0].1.clone()).unwrap();
    assert_eq!(probe.qtype, Rtype::HINFO);
    // Seen once, answered: asking the probe's name again is no loop any more.
    for _ in 0..3 {
        sim.ask(&QuerySpec::new(&probe.qname.to_string(), Rtype::HINFO));
    }
    assert!(fatal(&sim).is_empty());
    sim.advance(Duration::from_secs(3));
    assert_eq!(sim.gw.poll_timeout(), None, "no probe again");
}

#[test]
fn an_unanswered_probe_is_tried_for_thirty_seconds() {
    let mut sim = Sim::new(".:53 {\n  loop\n  forward . 10.0.0.53\n}", &[]);
    // Nothing listens on the probe's address: every probe fails, a second apart.
    sim.start();
    sim.advance(Duration::from_secs(29));
    assert!(sim.gw.poll_timeout().is_some(), "still trying");
    sim.advance(Duration::from_secs(2));
    assert_eq!(sim.gw.poll_timeout(), None, "given up after 30 s");
    assert!(fatal(&sim).is_empty());
}
