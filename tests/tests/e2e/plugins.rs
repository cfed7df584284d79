//! The rest of a real Corefile over real processes: the MCS example of coredns/multicluster
//! with `cache`, `loop`, `reload` and `loadbalance` (its `kubernetes` line moved out, as the
//! refusal says), `-validate` naming every plugin gatherdns does not serve, and `loop`
//! stopping a server that forwards to itself.

use std::collections::BTreeSet;
use std::time::Duration;

use gatherdns_tests::knot::Knot;

use crate::common::*;

/// coredns/multicluster's README Corefile, as users copy it.
const MCS_COREFILE: &str = ".:@PORT0@ {
    bind 127.0.0.1
    errors
    health 127.0.0.1:@PORT1@
    multicluster clusterset.local {
        cluster-a.local. cluster-a
        cluster-b.local. cluster-b
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    prometheus 127.0.0.1:@PORT2@
    forward . UPSTREAM
    cache 30
    loop
    reload
    loadbalance
}
";

/// The Corefile without its kubernetes block: CoreDNS keeps cluster.local, gatherdns the
/// clusterset zone.
fn without_kubernetes(corefile: &str) -> String {
    let start = corefile.find("    kubernetes").expect("a kubernetes block");
    let end = start + corefile[start..].find("    }\n").expect("its end") + "    }\n".len();
    format!("{}{}", &corefile[..start], &corefile[end..])
}

fn mcs_knot() -> Knot {
    let dir = demo_dir().join("../multicluster");
    let zone = |name: &str| {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    Knot::start(&[
        ("cluster-a.local.", &zone("cluster-a.local.zone")),
        ("cluster-b.local.", &zone("cluster-b.local.zone")),
    ])
}

#[test]
fn validate_names_every_plugin_gatherdns_does_not_serve() {
    let corefile = MCS_COREFILE.replace("UPSTREAM", "127.0.0.1:53").replace(
        "    loop\n",
        "    loop\n    template IN A example.org {\n      answer \"x 60 IN A 127.0.0.1\"\n    }\n",
    );
    for_each_binary(|binary| {
        let run = ServerBuilder::new(binary, &corefile)
            .args(&["-validate"])
            .run_to_exit();
        assert_eq!(run.code(), Some(1), "{run:?}");
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{run:?}");
        assert!(lines[0].ends_with(
            "Corefile:9: kubernetes: gatherdns does not serve CoreDNS's kubernetes plugin: gatherdns does not answer a cluster's own names; keep CoreDNS with kubernetes for cluster.local and forward the distributed (or clusterset) zone from it to gatherdns, then remove this line here (see deploy/README.md#next-to-the-clusters-coredns)"
        ), "{}", lines[0]);
        assert!(
            lines[1].contains(
                "Corefile:17: template: gatherdns does not serve CoreDNS's template plugin"
            ),
            "{}",
            lines[1]
        );
    });
}

#[test]
#[cfg_attr(no_knotd, ignore = "needs knotd: apt-get install knot")]
fn the_mcs_corefile_starts_and_serves() {
    let knot = mcs_knot();
    let corefile = without_kubernetes(&MCS_COREFILE.replace("UPSTREAM", &knot.addr().to_string()));
    for_each_binary(|binary| {
        let server = ServerBuilder::new(binary, &corefile).start();
        let name = "db.default.svc.clusterset.local.";
        let mut orders = BTreeSet::new();
        for id in 1..12 {
            let reply = ask(
                server.addr(),
                Transport::Udp,
                &QuerySpec::new(name, Rtype::A).id(id),
            );
            assert_eq!(reply.rcode, "NOERROR", "{reply:#?}");
            let mut addresses: Vec<String> =
                reply.answer_rrs().into_iter().map(|r| r.rdata).collect();
            orders.insert(addresses.join(" "));
            addresses.sort();
            assert_eq!(addresses, ["10.8.1.1", "10.8.1.2", "10.9.1.1", "10.9.1.2"]);
        }
        assert!(orders.len() > 1, "loadbalance shuffles: {orders:?}");
        let reply = ask(
            server.addr(),
            Transport::Tcp,
            &QuerySpec::new(
                "_postgres._tcp.db.default.svc.clusterset.local.",
                Rtype::SRV,
            )
            .id(20),
        );
        assert_eq!(reply.answer.len(), 4, "{reply:#?}");
        // The loop probe went through forward . and came back: no loop, still serving.
        std::thread::sleep(Duration::from_millis(500));
        assert!(!server.stdout().contains("[FATAL]"), "{}", server.stdout());
        let reply = ask(
            server.addr(),
            Transport::Udp,
            &QuerySpec::new(name, Rtype::A).id(30),
        );
        assert_eq!(reply.answer.len(), 4);
    });
}

#[test]
fn a_forward_to_ourselves_stops_the_server_as_coredns_does() {
    let corefile =
        ".:@PORT0@ {\n    bind 127.0.0.1\n    loop\n    forward . 127.0.0.1:@PORT0@\n}\n";
    for_each_binary(|binary| {
        let run = ServerBuilder::new(binary, corefile).run_to_exit();
        assert_eq!(run.code(), Some(1), "{run:?}");
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with("[FATAL] plugin/loop: Loop (127.0.0.1:"))
            .unwrap_or_else(|| panic!("no loop line: {run:?}"));
        assert!(
            line.contains(" detected for zone \".\", see https://coredns.io/plugins/loop#troubleshooting. Query: \"HINFO "),
            "{line}"
        );
        let port = run.dir.path().join("Corefile");
        let corefile = std::fs::read_to_string(port).expect("Corefile");
        let port = corefile
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split('\n').next())
            .expect("port");
        assert!(line.contains(&format!(" -> 127.0.0.1:{port})")), "{line}");
    });
}
