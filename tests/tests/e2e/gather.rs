//! The SPEC §1 example against the embedded demo, over UDP and TCP, with and without EDNS.

use crate::common::*;

#[test]
fn spec_example_against_the_demo() {
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        check_demo_answers(server.addr());
    });
}

#[test]
fn query_log_lines_on_stdout() {
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        let name = "_demo._tcp.demo-service.default.svc.distributed.local.";
        let reply = ask(
            server.addr(),
            Transport::Udp,
            &query(name, Rtype::SRV, None, 0x77),
        );
        assert_eq!(reply.rcode, "NOERROR");
        // CoreDNS's default log format: `[INFO] 127.0.0.1:PORT - ID "SRV IN NAME udp …`.
        let needle = format!("- {} \"SRV IN {name} udp", 0x77);
        assert!(
            server.wait_for_stdout(&needle, std::time::Duration::from_secs(5)),
            "no query log line containing {needle:?} in:\n{}",
            server.stdout()
        );
        assert!(server
            .stdout()
            .lines()
            .any(|l| l.starts_with("[INFO] 127.0.0.1:") && l.contains(&needle)));
    });
}
