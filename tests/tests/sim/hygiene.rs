//! Wire hygiene (SPEC §5): malformed and unusual queries get the right error or are counted
//! and dropped, never a panic and never a second reply.

use bytes::Bytes;
use domain::base::iana::{Opcode, Rtype};
use gatherdns_core::ClientTransport;
use gatherdns_tests::message::{QuerySpec, Reply};

use crate::fixtures::sim;

fn one_reply(raw: Vec<u8>) -> Option<Reply> {
    let mut sim = sim();
    let client = sim.client(ClientTransport::Udp);
    sim.send_from(client, Bytes::from(raw));
    sim.drive_bounded(100);
    let replies: Vec<_> = sim.replies.iter().filter(|r| r.client == client).collect();
    assert!(replies.len() <= 1);
    replies.first().map(|r| r.parse())
}

fn query(name: &str) -> Vec<u8> {
    QuerySpec::new(name, Rtype::A).id(0xabcd).build().to_vec()
}

#[test]
fn two_questions_is_formerr() {
    let mut q = query("demo-service.default.svc.distributed.local.");
    q[5] = 2;
    let question = q[12..].to_vec();
    q.extend_from_slice(&question);
    let reply = one_reply(q).expect("a reply");
    assert_eq!((reply.id, reply.rcode.as_str()), (0xabcd, "FORMERR"));
    assert!(reply.question.is_empty());
}

#[test]
fn no_question_is_formerr() {
    let mut q = query("x.distributed.local.");
    q[5] = 0;
    q.truncate(12);
    assert_eq!(one_reply(q).expect("a reply").rcode, "FORMERR");
}

#[test]
fn other_opcodes_are_notimp() {
    let q = QuerySpec::new("demo-service.default.svc.distributed.local.", Rtype::A)
        .opcode(Opcode::NOTIFY)
        .build()
        .to_vec();
    let reply = one_reply(q).expect("a reply");
    assert_eq!(reply.rcode, "NOTIMP");
}

#[test]
fn class_other_than_in_is_refused() {
    let mut q = query("demo-service.default.svc.distributed.local.");
    let len = q.len();
    q[len - 1] = 3; // CH
    assert_eq!(one_reply(q).expect("a reply").rcode, "REFUSED");
}

#[test]
fn names_in_no_served_zone_are_refused() {
    let reply = one_reply(query("example.com.")).expect("a reply");
    assert_eq!(reply.rcode, "REFUSED");
    assert_eq!(reply.question, vec!["example.com A"]);
}

#[test]
fn short_messages_and_responses_are_dropped_and_counted() {
    let mut s = sim();
    let client = s.client(ClientTransport::Udp);
    s.send_from(client, Bytes::from_static(&[1, 2, 3]));
    let mut response = query("demo-service.default.svc.distributed.local.");
    response[2] |= 0x80;
    s.send_from(client, Bytes::from(response));
    s.drive_bounded(100);
    assert!(s.replies.is_empty());
    assert_eq!(s.gw.stats().client_dropped, 2);
    // And it still answers.
    assert_eq!(
        s.ask(&QuerySpec::new(
            "demo-service.default.svc.distributed.local.",
            Rtype::A
        ))
        .answer
        .len(),
        2
    );
}

#[test]
fn truncated_question_is_formerr() {
    let mut q = query("demo-service.default.svc.distributed.local.");
    q.truncate(20);
    assert_eq!(one_reply(q).expect("a reply").rcode, "FORMERR");
}

#[test]
fn two_opt_records_is_formerr() {
    let mut q = QuerySpec::new("demo-service.default.svc.distributed.local.", Rtype::A)
        .edns(1232, false)
        .build()
        .to_vec();
    let opt = q[q.len() - 11..].to_vec();
    q.extend_from_slice(&opt);
    q[11] = 2;
    assert_eq!(one_reply(q).expect("a reply").rcode, "FORMERR");
}

#[test]
fn edns_version_above_zero_is_badvers() {
    let mut q = QuerySpec::new("demo-service.default.svc.distributed.local.", Rtype::A)
        .edns(1232, false)
        .build()
        .to_vec();
    let len = q.len();
    q[len - 5] = 1; // OPT TTL: version byte
    let reply = one_reply(q).expect("a reply");
    assert_eq!(reply.rcode, "BADVERS");
    assert!(reply.edns.is_some());
}

#[test]
fn ad_is_cleared_and_cd_copied() {
    let mut q = QuerySpec::new("demo-service.default.svc.distributed.local.", Rtype::A)
        .cd(true)
        .build()
        .to_vec();
    q[3] |= 0x20; // AD
    let reply = one_reply(q).expect("a reply");
    assert!(!reply.ad && reply.cd);
}

#[test]
fn random_bytes_never_panic_and_get_at_most_one_reply() {
    let mut s = sim();
    let mut x: u32 = 12345;
    for len in 0..400usize {
        let bytes: Vec<u8> = (0..len % 97)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let client = s.client(ClientTransport::Udp);
        s.send_from(client, Bytes::from(bytes));
        s.drive_bounded(100);
        assert!(s.replies.iter().filter(|r| r.client == client).count() <= 1);
    }
}
