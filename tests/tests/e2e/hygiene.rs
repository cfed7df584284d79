//! SPEC §5 over real sockets: negative answers, refusals, malformed queries and garbage.

use std::time::Duration;

use crate::common::*;

#[test]
fn nxdomain_carries_the_domain_soa() {
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        for transport in Transport::BOTH {
            let name = "no-such-service.default.svc.distributed.local.";
            let reply = ask(server.addr(), transport, &query(name, Rtype::A, None, 11));
            assert_eq!(reply.rcode, "NXDOMAIN", "{reply:#?}");
            assert!(reply.aa && reply.qr);
            assert!(reply.answer.is_empty());
            let soa: Vec<_> = reply
                .authority_rrs()
                .into_iter()
                .filter(|r| r.rtype == "SOA")
                .collect();
            assert_eq!(soa.len(), 1, "one SOA in authority: {reply:#?}");
            assert_eq!(soa[0].owner, DOMAIN, "the SOA is the distributed domain's");
        }
    });
}

#[test]
fn name_outside_every_zone_is_refused() {
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        for transport in Transport::BOTH {
            let reply = ask(
                server.addr(),
                transport,
                &query("www.example.com.", Rtype::A, None, 12),
            );
            assert_eq!(reply.rcode, "REFUSED", "{reply:#?}");
            assert_eq!(reply.question, vec!["www.example.com A".to_string()]);
        }
    });
}

#[test]
fn two_questions_get_formerr() {
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        for transport in Transport::BOTH {
            let msg = two_questions(&query(SRV_QNAME, Rtype::SRV, None, 13));
            let reply = Reply::parse(&exchange(server.addr(), transport, &msg).expect("a reply"));
            assert_eq!(reply.id, 13);
            assert_eq!(reply.rcode, "FORMERR", "{reply:#?}");
        }
    });
}

#[test]
fn opcode_iquery_gets_notimp() {
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        for transport in Transport::BOTH {
            let q = query(SRV_QNAME, Rtype::SRV, None, 14).opcode(Opcode::IQUERY);
            let reply =
                Reply::parse(&exchange(server.addr(), transport, &q.build()).expect("a reply"));
            assert_eq!(reply.id, 14);
            assert_eq!(reply.rcode, "NOTIMP", "{reply:#?}");
        }
    });
}

#[test]
fn garbage_gets_no_reply_and_the_server_keeps_answering() {
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        let too_short = b"garbage".to_vec();
        // Twelve bytes and more, but with QR set: a response, which a server never answers.
        let mut response = vec![0xab, 0xcd, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        response.extend_from_slice(&[0xff; 40]);
        for garbage in [too_short, response] {
            let silent =
                udp_silence(server.addr(), &garbage, Duration::from_millis(500)).expect("send");
            assert!(silent, "no reply to {garbage:02x?}");
        }
        let mut tcp = TcpClient::connect(server.addr(), REPLY_TIMEOUT).expect("connect");
        tcp.send(b"garbage").expect("send");
        let reply = ask(
            server.addr(),
            Transport::Udp,
            &query(SRV_QNAME, Rtype::SRV, None, 15),
        );
        assert_spec_srv(&reply, SRV_QNAME, None);
        let reply = ask(
            server.addr(),
            Transport::Tcp,
            &query(SRV_QNAME, Rtype::SRV, None, 16),
        );
        assert_spec_srv(&reply, SRV_QNAME, None);
    });
}
