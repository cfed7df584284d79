//! `multicluster` and `multicluster_gw` on the real binaries: clusterset.local. gathered from
//! two clusters whose DNS is gatherdns's own `file` (examples/multicluster, as shipped) or
//! Knot, and the gateway zone of examples/gateway-ip.

use std::path::Path;

use gatherdns_tests::knot::Knot;

use crate::common::*;

/// An example of `examples/NAME` with its ports 1053 and 1054 replaced by free ones and every
/// file beside its Corefile copied along.
pub(crate) fn example(binary: &str, name: &str) -> ServerBuilder {
    example_with(binary, name, &[])
}

/// [`example`] with `(from, to)` text replacements in its Corefile.
pub(crate) fn example_with(binary: &str, name: &str, edits: &[(&str, &str)]) -> ServerBuilder {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    let read = |file: &Path| {
        std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    };
    let mut corefile = read(&dir.join("Corefile"))
        .replace("1053", "@PORT0@")
        .replace("1054", "@PORT1@");
    for (from, to) in edits {
        assert!(
            corefile.contains(from),
            "examples/{name}/Corefile has no {from:?}"
        );
        corefile = corefile.replace(from, to);
    }
    let mut builder = ServerBuilder::new(binary, &corefile);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.file_name().is_some_and(|n| n != "Corefile"))
        .collect();
    files.sort();
    for path in files {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        builder = builder.file(file_name, &read(&path));
    }
    builder
}

const MCS_SOA: &str = "ns.dns.clusterset.local. hostmaster.clusterset.local. 1 7200 1800 86400 5";

fn sorted(mut rrs: Vec<(String, String, String)>) -> Vec<(String, String, String)> {
    rrs.sort();
    rrs
}

fn rr(owner: &str, rtype: &str, rdata: &str) -> (String, String, String) {
    (owner.to_string(), rtype.to_string(), rdata.to_string())
}

fn assert_negative(reply: &Reply, rcode: &str, soa_owner: &str, soa: &str) {
    assert_eq!(reply.rcode, rcode, "{reply:#?}");
    assert!(reply.aa, "AA on negative answers: {reply:#?}");
    assert!(reply.answer.is_empty(), "{reply:#?}");
    let authority = reply.authority_rrs();
    assert_eq!(authority.len(), 1, "{reply:#?}");
    assert_eq!(
        (authority[0].owner.as_str(), authority[0].rtype.as_str()),
        (soa_owner, "SOA")
    );
    assert_eq!(authority[0].rdata, soa);
}

/// The MCS checks that hold whatever DNS serves the clusters' example zones.
fn check_clusterset(server: std::net::SocketAddr) {
    for transport in Transport::BOTH {
        let ask = |name: &str, qtype: Rtype, id: u16| {
            ask(
                server,
                transport,
                &query(name, qtype, Some((1232, false)), id),
            )
        };

        // A headless service: every endpoint of every cluster, under the question name.
        let q = "Db.default.svc.clusterset.local.";
        let reply = ask(q, Rtype::A, 1);
        assert_eq!(reply.rcode, "NOERROR", "{reply:#?}");
        assert!(reply.aa && !reply.ra && !reply.tc);
        let want: Vec<_> = ["10.8.1.1", "10.8.1.2", "10.9.1.1", "10.9.1.2"]
            .iter()
            .map(|ip| rr(q, "A", ip))
            .collect();
        assert_eq!(sorted(reply.answer_triples()), want);

        // A ClusterIP service: each cluster's IP.
        let q = "web.default.svc.clusterset.local.";
        let reply = ask(q, Rtype::A, 2);
        assert_eq!(
            sorted(reply.answer_triples()),
            vec![rr(q, "A", "10.8.0.10"), rr(q, "A", "10.9.0.10")]
        );

        // Headless SRV: targets are per-endpoint names carrying the cluster ID.
        let q = "_postgres._tcp.db.default.svc.clusterset.local.";
        let reply = ask(q, Rtype::SRV, 3);
        let srv = |host: &str| {
            rr(
                q,
                "SRV",
                &format!("0 50 5432 {host}.db.default.svc.clusterset.local"),
            )
        };
        let want = vec![
            srv("db-0.cluster-a"),
            srv("db-0.cluster-b"),
            srv("db-1.cluster-a"),
            srv("db-1.cluster-b"),
        ];
        assert_eq!(sorted(normalised(reply.answer_triples())), want);
        let glue = lowercased(reply.additional_triples());
        assert!(
            glue.contains(&rr(
                "db-1.cluster-b.db.default.svc.clusterset.local.",
                "A",
                "10.9.1.2"
            )),
            "{glue:?}"
        );

        // ClusterIP SRV: the target is the service name.
        let q = "_http._tcp.web.default.svc.clusterset.local.";
        let reply = ask(q, Rtype::SRV, 4);
        assert_eq!(
            normalised(reply.answer_triples()),
            vec![rr(q, "SRV", "0 100 80 web.default.svc.clusterset.local")]
        );

        // A per-endpoint name: that cluster's endpoint only.
        let q = "db-0.cluster-b.db.default.svc.clusterset.local.";
        let reply = ask(q, Rtype::A, 5);
        assert_eq!(reply.answer_triples(), vec![rr(q, "A", "10.9.1.1")]);

        let reply = ask("dns-version.clusterset.local.", Rtype::TXT, 6);
        assert_eq!(
            reply.answer_triples(),
            vec![rr("dns-version.clusterset.local.", "TXT", "\"1.1.0\"")]
        );

        // The cluster-level name the spec forbids, and a name no cluster has.
        for (q, id) in [
            ("cluster-a.db.default.svc.clusterset.local.", 7),
            ("nope.default.svc.clusterset.local.", 8),
        ] {
            assert_negative(
                &ask(q, Rtype::A, id),
                "NXDOMAIN",
                "clusterset.local.",
                MCS_SOA,
            );
        }
        let reply = ask("clusterset.local.", Rtype::SOA, 9);
        assert_eq!(
            normalised(reply.answer_triples()),
            vec![rr(
                "clusterset.local.",
                "SOA",
                MCS_SOA.trim_end_matches('.')
            )]
        );
    }
}

#[test]
fn multicluster_example_with_file_clusters() {
    for_each_binary(|binary| {
        let server = example(binary, "multicluster").start();
        check_clusterset(server.addr());
    });
}

#[test]
#[cfg_attr(no_knotd, ignore = "needs knotd: apt-get install knot")]
fn multicluster_against_knot() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/multicluster");
    let zone = |name: &str| {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let (a, b) = (zone("cluster-a.local.zone"), zone("cluster-b.local.zone"));
    let knot = Knot::start(&[("cluster-a.local.", &a), ("cluster-b.local.", &b)]);
    let upstream = knot.addr();
    let corefile = format!(
        "clusterset.local.:@PORT0@ {{\n    bind 127.0.0.1\n    multicluster clusterset.local. {{\n        \
         cluster-a.local. cluster-a\n        cluster-b.local. cluster-b\n    }}\n    \
         forward cluster-a.local. {upstream}\n    forward cluster-b.local. {upstream}\n    errors\n}}\n"
    );
    for_each_binary(|binary| {
        let server = ServerBuilder::new(binary, &corefile).start();
        check_clusterset(server.addr());
    });
}

const GW_SOA: &str =
    "ns.dns.svc.clusterset.local. hostmaster.svc.clusterset.local. 1 7200 1800 86400 5";

#[test]
fn gateway_ip_example() {
    for_each_binary(|binary| {
        let server = example(binary, "gateway-ip").start();
        for transport in Transport::BOTH {
            let ask = |name: &str, qtype: Rtype, id: u16| {
                ask(server.addr(), transport, &query(name, qtype, None, id))
            };
            let q = "web.default.svc.clusterset.local.";
            let reply = ask(q, Rtype::A, 1);
            assert_eq!(
                (reply.rcode.as_str(), reply.aa),
                ("NOERROR", true),
                "{reply:#?}"
            );
            assert_eq!(
                reply.answer_rrs().iter().map(|r| r.ttl).collect::<Vec<_>>(),
                vec![5]
            );
            assert_eq!(reply.answer_triples(), vec![rr(q, "A", "10.1.0.1")]);
            let reply = ask(q, Rtype::AAAA, 2);
            assert_eq!(reply.answer_triples(), vec![rr(q, "AAAA", "fd00::1")]);
            // The original sends no reply at all here (it returns NXDOMAIN without writing).
            let reply = ask(
                "_http._tcp.web.default.svc.clusterset.local.",
                Rtype::SRV,
                3,
            );
            assert_negative(&reply, "NXDOMAIN", "svc.clusterset.local.", GW_SOA);
            // The original panics on the apex.
            assert_negative(
                &ask("svc.clusterset.local.", Rtype::A, 4),
                "NOERROR",
                "svc.clusterset.local.",
                GW_SOA,
            );
            let reply = ask("svc.clusterset.local.", Rtype::SOA, 5);
            assert_eq!(
                normalised(reply.answer_triples()),
                vec![rr("svc.clusterset.local.", "SOA", GW_SOA)]
            );
            // A service's other types: NODATA with the SOA.
            assert_negative(
                &ask(q, Rtype::TXT, 6),
                "NOERROR",
                "svc.clusterset.local.",
                GW_SOA,
            );
        }
    });
}
