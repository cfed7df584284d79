//! `multicluster` answered from the Kubernetes API's objects: views handed to the gateway as
//! the host's client would hand them, and the answers coredns/multicluster gives for the same
//! ServiceImports and EndpointSlices — ClusterSetIP and headless imports, dual-stack,
//! not-ready endpoints, SRV weights, the SERVFAIL before the first list, `noendpoints`,
//! `fallthrough` to a forward and to the clusters' DNS, updates and reloads.

use std::net::IpAddr;
use std::sync::Arc;

use domain::base::iana::Rtype;
use gatherdns_core::config::KubernetesSource;
use gatherdns_core::kube_view::{
    Endpoint, EndpointSlice, ImportType, KubernetesView, ServiceImport, ServicePort,
};
use gatherdns_tests::message::{QuerySpec, Reply};
use gatherdns_tests::sim::{config, Sim};

use crate::multicluster::{ZONE_A, ZONE_B};

const Z: &str = "clusterset.local.";

fn source() -> KubernetesSource {
    KubernetesSource {
        kubeconfig: Some("kubeconfig".into()),
        context: None,
    }
}

fn port(name: &str, protocol: &str, port: u16) -> ServicePort {
    ServicePort {
        name: name.into(),
        protocol: protocol.into(),
        port,
    }
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|ip| ip.parse().expect("ip")).collect()
}

fn endpoint(addresses: &[&str], hostname: Option<&str>, ready: bool) -> Endpoint {
    Endpoint {
        addresses: ips(addresses),
        hostname: hostname.map(Into::into),
        ready,
    }
}

fn slice(name: &str, service: &str, cluster: &str, endpoints: Vec<Endpoint>) -> EndpointSlice {
    EndpointSlice {
        namespace: "default".into(),
        name: name.into(),
        service: service.into(),
        cluster: cluster.into(),
        ports: vec![port("postgres", "TCP", 5432)],
        endpoints,
    }
}

fn imports() -> Vec<ServiceImport> {
    vec![
        ServiceImport {
            namespace: "default".into(),
            name: "web".into(),
            kind: ImportType::ClusterSetIp,
            ips: ips(&["10.42.0.10", "fd00:42::10"]),
            ports: vec![port("http", "TCP", 80), port("grpc", "TCP", 9090)],
        },
        ServiceImport {
            namespace: "default".into(),
            name: "db".into(),
            kind: ImportType::Headless,
            ips: Vec::new(),
            ports: vec![port("postgres", "TCP", 5432)],
        },
    ]
}

/// Slices listed out of order on purpose: answers follow (cluster, slice name).
fn slices() -> Vec<EndpointSlice> {
    vec![
        slice(
            "db-b-v6",
            "db",
            "cluster-b",
            vec![endpoint(&["fd00:9::1"], Some("db-0"), true)],
        ),
        slice(
            "db-a",
            "db",
            "cluster-a",
            vec![
                endpoint(&["10.8.1.1"], Some("db-0"), true),
                endpoint(&["10.8.1.2"], Some("db-1"), true),
                endpoint(&["10.8.1.3"], Some("db-2"), false),
                endpoint(&["10.8.1.4"], None, true),
            ],
        ),
        slice(
            "db-b-v4",
            "db",
            "cluster-b",
            vec![endpoint(&["10.9.1.1"], Some("db-0"), true)],
        ),
    ]
}

fn view(
    serial: u32,
    imports: Vec<ServiceImport>,
    slices: Option<Vec<EndpointSlice>>,
) -> Arc<KubernetesView> {
    Arc::new(KubernetesView::new(source(), serial, imports, slices))
}

fn api_sim(options: &str, extra: &str) -> Sim {
    Sim::new(
        &format!(
            "clusterset.local.:53 {{\n  multicluster {{\n    kubeconfig kubeconfig\n{options}\n  }}\n{extra}\n}}\n"
        ),
        &[],
    )
}

fn synced(options: &str) -> Sim {
    let mut sim = api_sim(options, "");
    sim.gw
        .handle_kubernetes_view(view(1700000000, imports(), Some(slices())));
    sim
}

fn ask(sim: &mut Sim, name: &str, qtype: Rtype) -> Reply {
    sim.ask(&QuerySpec::new(name, qtype).edns(1232, false))
}

fn soa(serial: u32) -> String {
    format!("{Z} 5 SOA ns.dns.{Z} hostmaster.{Z} {serial} 7200 1800 86400 5")
}

#[test]
fn clusterset_ip_import_answers_its_ips_dual_stack() {
    let mut sim = synced("");
    let q = "Web.Default.svc.clusterset.local.";
    let reply = ask(&mut sim, q, Rtype::A);
    assert_eq!((reply.rcode.as_str(), reply.aa), ("NOERROR", true));
    assert_eq!(reply.answer, vec![format!("{q} 5 A 10.42.0.10")]);
    let reply = ask(&mut sim, q, Rtype::AAAA);
    assert_eq!(reply.answer, vec![format!("{q} 5 AAAA fd00:42::10")]);
    // Other types of an existing name: NODATA with the SOA, whose serial is the view's.
    for qtype in [Rtype::TXT, Rtype::MX] {
        let reply = ask(&mut sim, q, qtype);
        assert_eq!((reply.rcode.as_str(), reply.answer.len()), ("NOERROR", 0));
        assert_eq!(reply.authority, vec![soa(1700000000)]);
    }
}

#[test]
fn clusterset_ip_srv_targets_the_service_with_coredns_weights() {
    let mut sim = synced("");
    let target = "web.default.svc.clusterset.local.";
    // One port, two IPs behind it: CoreDNS's weight is 100 / 2.
    let q = "_http._tcp.web.default.svc.clusterset.local.";
    let reply = ask(&mut sim, q, Rtype::SRV);
    assert_eq!(reply.answer, vec![format!("{q} 5 SRV 0 50 80 {target}")]);
    assert_eq!(
        reply.additional,
        vec![
            format!("{target} 5 A 10.42.0.10"),
            format!("{target} 5 AAAA fd00:42::10")
        ]
    );
    // No port labels: every port (2 ports x 2 IPs: weight 25).
    let q = target;
    let reply = ask(&mut sim, q, Rtype::SRV);
    assert_eq!(
        reply.answer,
        vec![
            format!("{q} 5 SRV 0 25 80 {target}"),
            format!("{q} 5 SRV 0 25 9090 {target}")
        ]
    );
    // A port it does not have, or a protocol: NXDOMAIN.
    for q in [
        "_https._tcp.web.default.svc.clusterset.local.",
        "_http._udp.web.default.svc.clusterset.local.",
    ] {
        let reply = ask(&mut sim, q, Rtype::SRV);
        assert_eq!(reply.rcode, "NXDOMAIN", "{q}");
        assert_eq!(reply.authority, vec![soa(1700000000)]);
    }
}

#[test]
fn headless_import_answers_ready_endpoints_of_every_cluster() {
    let mut sim = synced("");
    let q = "db.default.svc.clusterset.local.";
    let reply = ask(&mut sim, q, Rtype::A);
    // Not-ready 10.8.1.3 is left out; cluster-a's slices before cluster-b's.
    let a = |ip: &str| format!("{q} 5 A {ip}");
    assert_eq!(
        reply.answer,
        vec![a("10.8.1.1"), a("10.8.1.2"), a("10.8.1.4"), a("10.9.1.1")]
    );
    let reply = ask(&mut sim, q, Rtype::AAAA);
    assert_eq!(reply.answer, vec![format!("{q} 5 AAAA fd00:9::1")]);
}

#[test]
fn headless_srv_targets_name_each_endpoint_with_its_cluster() {
    let mut sim = synced("");
    let q = "_postgres._tcp.db.default.svc.clusterset.local.";
    let reply = ask(&mut sim, q, Rtype::SRV);
    let name = |host: &str| format!("{host}.db.default.svc.clusterset.local.");
    // Five addresses (db-0 of cluster-b is dual-stack): weight 100 / 5; one SRV per name.
    let srv = |host: &str| format!("{q} 5 SRV 0 20 5432 {}", name(host));
    assert_eq!(
        reply.answer,
        vec![
            srv("db-0.cluster-a"),
            srv("db-1.cluster-a"),
            srv("10-8-1-4.cluster-a"),
            srv("db-0.cluster-b")
        ]
    );
    assert_eq!(
        reply.additional,
        vec![
            format!("{} 5 A 10.8.1.1", name("db-0.cluster-a")),
            format!("{} 5 A 10.8.1.2", name("db-1.cluster-a")),
            format!("{} 5 A 10.8.1.4", name("10-8-1-4.cluster-a")),
            format!("{} 5 A 10.9.1.1", name("db-0.cluster-b")),
            format!("{} 5 AAAA fd00:9::1", name("db-0.cluster-b")),
        ]
    );
}

#[test]
fn endpoint_names_resolve_to_that_endpoint_only() {
    let mut sim = synced("");
    let cases = [
        ("db-0.cluster-a", Rtype::A, vec!["5 A 10.8.1.1"]),
        ("DB-0.Cluster-B", Rtype::A, vec!["5 A 10.9.1.1"]),
        ("db-0.cluster-b", Rtype::AAAA, vec!["5 AAAA fd00:9::1"]),
        ("10-8-1-4.cluster-a", Rtype::A, vec!["5 A 10.8.1.4"]),
        (
            "db-0.cluster-b",
            Rtype::SRV,
            vec!["5 SRV 0 50 5432 db-0.cluster-b.db.default.svc.clusterset.local."],
        ),
    ];
    for (host, qtype, want) in cases {
        let q = format!("{host}.db.default.svc.clusterset.local.");
        let reply = ask(&mut sim, &q, qtype);
        let want: Vec<String> = want.iter().map(|r| format!("{q} {r}")).collect();
        assert_eq!(reply.answer, want, "{q} {qtype}");
    }
    // Not ready, unknown host, unknown cluster, the forbidden cluster-level name, too deep,
    // a service not imported, a namespace without imports, the pod tree.
    for q in [
        "db-2.cluster-a.db.default.svc",
        "db-9.cluster-a.db.default.svc",
        "db-0.cluster-c.db.default.svc",
        "cluster-a.db.default.svc",
        "x.db-0.cluster-a.db.default.svc",
        "nope.default.svc",
        "db.other.svc",
        "other.svc",
        "db.default.pod",
    ] {
        let reply = ask(&mut sim, &format!("{q}.{Z}"), Rtype::A);
        assert_eq!(reply.rcode, "NXDOMAIN", "{q}");
        assert_eq!(reply.authority, vec![soa(1700000000)], "{q}");
    }
    // A namespace with imports, `svc`, and the apex exist (NODATA).
    for q in ["default.svc.clusterset.local.", "svc.clusterset.local.", Z] {
        let reply = ask(&mut sim, q, Rtype::A);
        assert_eq!(
            (reply.rcode.as_str(), reply.answer.len()),
            ("NOERROR", 0),
            "{q}"
        );
    }
}

#[test]
fn apex_and_dns_version_carry_the_views_serial() {
    let mut sim = synced("");
    let reply = ask(&mut sim, Z, Rtype::SOA);
    assert_eq!(reply.answer, vec![soa(1700000000)]);
    let reply = ask(&mut sim, &format!("dns-version.{Z}"), Rtype::TXT);
    assert_eq!(
        reply.answer,
        vec![format!("dns-version.{Z} 28800 TXT \"1.1.0\"")]
    );
}

#[test]
fn before_the_first_list_the_zone_is_servfail_and_not_ready() {
    let mut sim = api_sim("", "");
    assert_eq!(
        sim.gw.not_ready(),
        vec!["multicluster: ServiceImports and EndpointSlices of kubeconfig kubeconfig not synced yet"]
    );
    let reply = ask(&mut sim, "web.default.svc.clusterset.local.", Rtype::A);
    assert_eq!((reply.rcode.as_str(), reply.aa), ("SERVFAIL", true));
    assert_eq!(reply.authority, vec![soa(1)]);
    // What needs no object is answered already.
    let reply = ask(&mut sim, &format!("dns-version.{Z}"), Rtype::TXT);
    assert_eq!(reply.rcode, "NOERROR");
    sim.gw
        .handle_kubernetes_view(view(7, imports(), Some(slices())));
    assert!(sim.gw.not_ready().is_empty());
    let reply = ask(&mut sim, "web.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(reply.answer.len(), 1);
}

#[test]
fn noendpoints_leaves_headless_and_endpoint_names_nxdomain() {
    let mut sim = api_sim("    noendpoints", "");
    sim.gw.handle_kubernetes_view(view(3, imports(), None));
    for q in [
        "db.default.svc",
        "db-0.cluster-a.db.default.svc",
        "_postgres._tcp.db.default.svc",
    ] {
        let reply = ask(&mut sim, &format!("{q}.{Z}"), Rtype::A);
        assert_eq!(reply.rcode, "NXDOMAIN", "{q}");
    }
    let reply = ask(&mut sim, "web.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(reply.answer.len(), 1);
    // The same with slices in the view (another directive of the source wants them).
    let mut sim = api_sim("    noendpoints", "");
    sim.gw
        .handle_kubernetes_view(view(3, imports(), Some(slices())));
    let reply = ask(&mut sim, "db.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(reply.rcode, "NXDOMAIN");
}

#[test]
fn an_update_replaces_the_answers_at_once() {
    let mut sim = synced("");
    let q = "web.default.svc.clusterset.local.";
    let mut changed = imports();
    changed[0].ips = ips(&["10.42.0.99"]);
    changed.push(ServiceImport {
        namespace: "shop".into(),
        name: "cart".into(),
        kind: ImportType::ClusterSetIp,
        ips: ips(&["10.42.1.1"]),
        ports: vec![port("http", "TCP", 80)],
    });
    sim.gw
        .handle_kubernetes_view(view(1700000100, changed, Some(slices())));
    assert_eq!(
        ask(&mut sim, q, Rtype::A).answer,
        vec![format!("{q} 5 A 10.42.0.99")]
    );
    let reply = ask(&mut sim, "cart.shop.svc.clusterset.local.", Rtype::A);
    assert_eq!(reply.answer.len(), 1);
    assert_eq!(ask(&mut sim, Z, Rtype::SOA).answer, vec![soa(1700000100)]);
    // Deleted: NXDOMAIN.
    sim.gw
        .handle_kubernetes_view(view(1700000200, Vec::new(), Some(Vec::new())));
    assert_eq!(ask(&mut sim, q, Rtype::A).rcode, "NXDOMAIN");
}

#[test]
fn a_reload_keeps_the_view_of_a_source_it_still_reads() {
    let mut sim = synced("");
    let text =
        "clusterset.local.:53 {\n  multicluster {\n    kubeconfig kubeconfig\n  }\n  log\n}\n";
    sim.gw
        .reconfigure(sim.now, config(text, &[]))
        .expect("reload");
    let reply = ask(&mut sim, "web.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(reply.answer.len(), 1, "{reply:?}");
    // Another source: not synced until its own view comes.
    let text = "clusterset.local.:53 {\n  multicluster {\n    kubeconfig other\n  }\n}\n";
    sim.gw
        .reconfigure(sim.now, config(text, &[]))
        .expect("reload");
    let reply = ask(&mut sim, "web.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(reply.rcode, "SERVFAIL");
}

#[test]
fn fallthrough_hands_nxdomain_and_the_unsynced_zone_to_a_forward() {
    let forward = "  forward . 10.0.0.53:53";
    let mut sim = api_sim("    fallthrough", forward);
    sim.upstream("10.0.0.53:53", Z, &format!("$ORIGIN {Z}\n@ 30 IN SOA ns hm 9 7200 1800 86400 30\nweb.default.svc 30 IN A 192.0.2.1\nlegacy.default.svc 30 IN A 192.0.2.2\n"));
    // Not synced: falls through instead of SERVFAIL.
    let reply = ask(&mut sim, "web.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(
        reply.answer,
        vec!["web.default.svc.clusterset.local. 30 A 192.0.2.1".to_string()]
    );
    sim.gw
        .handle_kubernetes_view(view(5, imports(), Some(slices())));
    let reply = ask(&mut sim, "web.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(
        reply.answer,
        vec!["web.default.svc.clusterset.local. 5 A 10.42.0.10".to_string()]
    );
    let reply = ask(&mut sim, "legacy.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(
        reply.answer,
        vec!["legacy.default.svc.clusterset.local. 30 A 192.0.2.2".to_string()]
    );
}

#[test]
fn with_clusters_listed_fallthrough_gathers_what_the_api_does_not_know() {
    let corefile = "clusterset.local.:53 {
  multicluster {
    kubeconfig kubeconfig
    cluster-a.local. cluster-a
    cluster-b.local. cluster-b
    fallthrough
  }
  forward cluster-a.local. 10.8.0.1:53
  forward cluster-b.local. 10.9.0.1:53
}
";
    let mut sim = Sim::new(corefile, &[]);
    sim.upstream("10.8.0.1:53", "cluster-a.local.", ZONE_A);
    sim.upstream("10.9.0.1:53", "cluster-b.local.", ZONE_B);
    // Before the API's first list, the clusters answer.
    let q = "web.default.svc.clusterset.local.";
    let reply = ask(&mut sim, q, Rtype::A);
    assert_eq!(
        reply.answer,
        vec![format!("{q} 30 A 10.8.0.10"), format!("{q} 30 A 10.9.0.10")]
    );
    sim.gw
        .handle_kubernetes_view(view(5, imports(), Some(slices())));
    // The API knows web: its ClusterSetIP. It does not know cache: gathered (cluster B's).
    assert_eq!(
        ask(&mut sim, q, Rtype::A).answer,
        vec![format!("{q} 5 A 10.42.0.10")]
    );
    let q = "cache.default.svc.clusterset.local.";
    assert_eq!(
        ask(&mut sim, q, Rtype::A).answer,
        vec![format!("{q} 30 A 10.9.0.20")]
    );
    // Known to neither: NXDOMAIN with the clusters' SOA.
    let reply = ask(&mut sim, "nope.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(reply.rcode, "NXDOMAIN");
}
