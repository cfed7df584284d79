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
