//! The demo through `dig`, the client operators actually use.

use std::process::Command;

use gatherdns_tests::tools::DIG;

use crate::common::*;

#[test]
#[cfg_attr(no_dig, ignore = "needs dig: apt-get install bind9-dnsutils")]
fn dig_sees_the_four_srv_records() {
    let dig = require_tool(DIG);
    for_each_binary(|binary| {
        let server = ServerBuilder::demo(binary).start();
        let name = "_demo._tcp.demo-service.default.svc.distributed.local.";
        let out = Command::new(&dig)
            .args([
                "@127.0.0.1",
                "-p",
                &server.port(0).to_string(),
                "+tries=1",
                "+time=5",
                "SRV",
                name,
            ])
            .output()
            .expect("run dig");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<String> = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        for host in [
            "a-demo-service-0",
            "a-demo-service-1",
            "b-demo-service-0",
            "b-demo-service-1",
        ] {
            let expected =
                format!("{name} 30 IN SRV 0 50 8080 {host}.default.svc.distributed.local.");
            assert!(
                lines.contains(&expected),
                "dig output lacks {expected:?}:\n{text}"
            );
        }
        assert!(text.contains("status: NOERROR"), "{text}");
        assert!(
            text.contains(" aa ") || text.contains("flags: qr aa"),
            "AA in dig's flags:\n{text}"
        );
    });
}
