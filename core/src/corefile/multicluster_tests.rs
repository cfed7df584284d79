//! Corefile tests of the neighbours of gathersrv: `hosts`, `multicluster`, `multicluster_gw`
//! and their shared `fallthrough` — what they accept and the exact `file:line: message`
//! of what they refuse.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::{Config, Fallthrough, HostEntry, KubernetesSource, McsCluster};
use crate::loader::MemLoader;

fn parse_with(loader: &MemLoader, text: &str) -> Result<Config, String> {
    let options = ParseOptions::default();
    parse_corefile_text(Path::new("Corefile"), text, loader, &options).map_err(|e| e.to_string())
}

fn error(text: &str) -> String {
    parse_with(&MemLoader::new(), text).expect_err("the Corefile must be rejected")
}

fn name(text: &str) -> Name {
    Name::parse(text).expect("valid name")
}

fn entry(n: &str, ip: &str) -> HostEntry {
    HostEntry {
        name: name(n),
        addr: ip.parse::<IpAddr>().expect("ip"),
    }
}

const MCS: &str = "clusterset.local. {
  multicluster clusterset.local. {
    cluster-a.local. cluster-a
    cluster-b.local. cluster-b
    noendpoints
    fallthrough clusterset.local.
  }
  forward cluster-a.local. 10.8.0.1
  forward cluster-b.local. 10.9.0.1
}";

#[test]
fn multicluster_is_read() {
    let config = parse_with(&MemLoader::new(), MCS).expect("valid");
    let m = config.servers[0]
        .multicluster
        .as_ref()
        .expect("multicluster");
    assert_eq!(m.zones, vec![name("clusterset.local.")]);
    assert_eq!(
        m.clusters,
        vec![
            McsCluster {
                suffix: name("cluster-a.local."),
                id: "cluster-a".into()
            },
            McsCluster {
                suffix: name("cluster-b.local."),
                id: "cluster-b".into()
            },
        ]
    );
    assert!(m.noendpoints);
    assert_eq!(
        m.fallthrough,
        Some(Fallthrough {
            zones: vec![name("clusterset.local.")]
        })
    );
}

#[test]
fn multicluster_zones_default_to_the_block_and_clusters_may_be_files() {
    let text = "clusterset.local {\n  multicluster {\n    cluster-a.local. a\n  }\n  file a.zone cluster-a.local.\n}";
    let zone = "$ORIGIN cluster-a.local.\n@ 30 IN SOA ns hostmaster 1 7200 1800 86400 30\n";
    let config = parse_with(&MemLoader::new().file("a.zone", zone), text).expect("valid");
    let m = config.servers[0]
        .multicluster
        .as_ref()
        .expect("multicluster");
    assert_eq!(m.zones, vec![name("clusterset.local.")]);
    assert!(!m.noendpoints && m.fallthrough.is_none());
}

#[test]
fn multicluster_reads_the_kubernetes_api_without_clusters_or_with_kubeconfig() {
    // The plugin's README: no block, no cluster: the API of the cluster it runs in.
    let config =
        parse_with(&MemLoader::new(), ". {\n  multicluster clusterset.local\n}").expect("valid");
    let m = config.servers[0]
        .multicluster
        .as_ref()
        .expect("multicluster");
    assert_eq!(m.zones, vec![name("clusterset.local.")]);
    assert!(m.clusters.is_empty());
    assert_eq!(
        m.kubernetes,
        Some(KubernetesSource {
            kubeconfig: None,
            context: None
        })
    );
    // kubeconfig, relative to the Corefile, with a context; clusters behind fallthrough.
    let text = "clusterset.local {\n  multicluster {\n    kubeconfig kube/config east\n    noendpoints\n    \
                cluster-a.local. a\n    fallthrough\n  }\n  forward cluster-a.local. 10.8.0.1\n}";
    let config = parse_with(&MemLoader::new(), text).expect("valid");
    let m = config.servers[0]
        .multicluster
        .as_ref()
        .expect("multicluster");
    assert_eq!(
        m.kubernetes,
        Some(KubernetesSource {
            kubeconfig: Some("kube/config".into()),
            context: Some("east".into())
        })
    );
    assert_eq!(m.clusters.len(), 1);
    assert!(m.noendpoints && m.fallthrough.is_some());
    // Cluster lines alone: gathered, no API.
    let config = parse_with(&MemLoader::new(), MCS).expect("valid");
    assert_eq!(
        config.servers[0]
            .multicluster
            .as_ref()
            .expect("mc")
            .kubernetes,
        None
    );
}

#[test]
fn multicluster_errors() {
    let block = |body: &str| {
        format!("clusterset.local. {{\n  multicluster {{\n{body}\n  }}\n  forward . 10.0.0.1\n}}")
    };
    let cases = [
        (
            block("    cluster-a.local. a\n    noendpoint"),
            "Corefile:4: multicluster: \"noendpoint\" is neither an option (kubeconfig, noendpoints, fallthrough, ns_ip) nor a cluster \
             domain (a cluster line is \"SUFFIX CLUSTER_ID\" and SUFFIX must end with a dot, e.g. \"noendpoint.\")",
        ),
        (
            block("    cluster-a.local."),
            "Corefile:3: multicluster: cluster \"cluster-a.local.\" has no cluster ID; a cluster line is \
             \"SUFFIX CLUSTER_ID\", e.g. \"cluster-a.local. cluster-a\"",
        ),
        (
            block("    cluster-a.local. a_b"),
            "Corefile:3: multicluster: cluster ID \"a_b\" is not a DNS label (letters, digits and '-', at most 63, \
             not starting or ending with '-'), e.g. \"cluster-a\"",
        ),
        (
            block("    cluster-a.local. a\n    cluster-b.local. A"),
            "Corefile:4: multicluster: cluster ID \"A\" is already used by cluster-a.local. (at Corefile:3); IDs are \
             compared without regard to case",
        ),
        (
            block("    cluster-a.local. a\n    x.cluster-a.local. b"),
            "Corefile:4: multicluster: cluster domains x.cluster-a.local. and cluster-a.local. (at Corefile:3) are \
             the same or nested; each cluster needs a domain of its own",
        ),
        (
            block("    a.clusterset.local. a"),
            "Corefile:3: multicluster: cluster domain a.clusterset.local. and the clusterset zone clusterset.local. \
             overlap; cluster domains must lie outside it",
        ),
        (
            block("    cluster-a.local. a\n    noendpoints\n    noendpoints"),
            "Corefile:5: multicluster: noendpoints is set twice (first at Corefile:4)",
        ),
        (
            block("    cluster-a.local. a\n    noendpoints yes"),
            "Corefile:4: multicluster: noendpoints takes no value, but \"yes\" follows it",
        ),
        (
            "clusterset.local. {\n  multicluster other.local. {\n    c.local. c\n  }\n}".into(),
            "Corefile:2: multicluster: other.local. is not inside this server block's zones (clusterset.local.), \
             so no query for it would reach multicluster; use the block's zone or a name below it",
        ),
        (
            "clusterset.local. {\n  multicluster {\n    c.local. c\n  }\n}".into(),
            "Corefile:2: multicluster: nothing in this server block answers for cluster c.local.; add \
             \"forward c.local. IP[:PORT]\" (the cluster's DNS) or a file zone for it",
        ),
        (
            block("    kubeconfig"),
            "Corefile:3: multicluster: kubeconfig expects KUBECONFIG [CONTEXT], e.g. \"kubeconfig \
             /etc/gatherdns/kubeconfig\" (without it, the API of the cluster gatherdns runs in is used)",
        ),
        (
            block("    kubeconfig a.conf ctx extra"),
            "Corefile:3: multicluster: kubeconfig expects KUBECONFIG [CONTEXT], but \"extra\" follows the context",
        ),
        (
            block("    kubeconfig a.conf\n    kubeconfig b.conf"),
            "Corefile:4: multicluster: kubeconfig is set twice (first at Corefile:3)",
        ),
        (
            block("    kubeconfig a.conf\n    cluster-a.local. a"),
            "Corefile:4: multicluster: with kubeconfig a.conf the answers come from the Kubernetes API, and \
             the cluster lines are asked only for names the API does not know: add \"fallthrough\" to the \
             block to hand those on to the clusters, or remove the cluster lines",
        ),
        (
            block("    kubeconf a.conf"),
            "Corefile:3: multicluster: \"kubeconf\" is neither an option (kubeconfig, noendpoints, fallthrough, ns_ip) \
             nor a cluster domain (a cluster line is \"SUFFIX CLUSTER_ID\" and SUFFIX must end with a dot, e.g. \
             \"kubeconf.\")",
        ),
        (
            format!("{}\n", MCS.replace("  forward cluster-b", "  multicluster {\n    c.local. c\n  }\n  forward cluster-b")),
            "Corefile:9: multicluster can be used only once per server block (first at Corefile:2)",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(error(&text), want, "{text}");
    }
}

#[test]
fn multicluster_gw_is_read() {
    let text = "svc.clusterset.local {\n  multicluster_gw {\n    gateway_ip 10.1.0.1 fd00::1 10.1.0.1\n    fallthrough\n  }\n}";
    let config = parse_with(&MemLoader::new(), text).expect("valid");
    let g = config.servers[0]
        .multicluster_gw
        .as_ref()
        .expect("multicluster_gw");
    assert_eq!(g.zones, vec![name("svc.clusterset.local.")]);
    let ips: Vec<IpAddr> = ["10.1.0.1", "fd00::1"]
        .iter()
        .map(|ip| ip.parse().expect("ip"))
        .collect();
    assert_eq!(g.ips, ips);
    assert_eq!(g.fallthrough, Some(Fallthrough::default()));
}

#[test]
fn multicluster_gw_errors() {
    let gw =
        |body: &str| format!("svc.clusterset.local. {{\n  multicluster_gw {{\n{body}\n  }}\n}}");
    let cases = [
        (
            "svc.clusterset.local. {\n  multicluster_gw\n}".to_string(),
            "Corefile:2: multicluster_gw: gateway_ip is required: add a block with a line like \"gateway_ip 10.0.0.1\" \
             (the original plugin's default, 1.2.3.4, is a placeholder)",
        ),
        (gw("    gateway_ip"), "Corefile:3: multicluster_gw: gateway_ip expects at least one IP address, e.g. \"gateway_ip 10.0.0.1 fd00::1\""),
        (gw("    gateway_ip gw.example"), "Corefile:3: multicluster_gw: gateway_ip \"gw.example\" is not an IP address"),
        (gw("    gateway_ip 10.0.0.1\n    gatewayip 10.0.0.2"), "Corefile:4: multicluster_gw: unknown option \"gatewayip\" (supported: gateway_ip, fallthrough)"),
        (
            gw("    kubeconfig kube.conf\n    gateway_ip 10.0.0.1"),
            "Corefile:3: multicluster_gw: kubeconfig is not supported: gatherdns answers every <svc>.<ns> name of \
             the zone with the gateway_ip addresses, without a ServiceImport list; remove the kubeconfig line \
             (ServiceImports from the Kubernetes API are multicluster's source)",
        ),
        (gw("    gateway_ip 10.0.0.1\n    fallthrough\n    fallthrough"), "Corefile:5: multicluster_gw: fallthrough is set twice (first at Corefile:4)"),
        (gw("    gateway_ip 10.0.0.1\n    fallthrough not..valid"), "Corefile:4: multicluster_gw: \"not..valid\" is not a valid zone: `not..valid` is not a valid domain name: empty label"),
    ];
    for (text, want) in cases {
        assert_eq!(error(&text), want, "{text}");
    }
}

#[test]
fn hosts_is_read_with_file_inline_and_options() {
    let text = "example.org {\n  hosts db.hosts {\n    10.0.0.5 inline.example.org\n    ttl 60\n    reload 1m\n    no_reverse\n    fallthrough\n  }\n}";
    let file = "127.0.0.1 localhost\n10.0.0.1 web.example.org www.example.org\n";
    let config = parse_with(&MemLoader::new().file("db.hosts", file), text).expect("valid");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let h = config.servers[0].hosts.as_ref().expect("hosts");
    assert_eq!(h.path, Path::new("db.hosts"));
    assert_eq!(
        h.file_entries,
        vec![
            entry("web.example.org.", "10.0.0.1"),
            entry("www.example.org.", "10.0.0.1")
        ]
    );
    assert_eq!(h.inline, vec![entry("inline.example.org.", "10.0.0.5")]);
    assert_eq!(h.origins, vec![name("example.org.")]);
    assert_eq!(
        (h.ttl, h.reload, h.no_reverse),
        (60, Duration::from_secs(60), true)
    );
    assert_eq!(h.fallthrough, Some(Fallthrough::default()));
}

#[test]
fn hosts_defaults_and_a_missing_file_is_a_warning() {
    let config = parse_with(&MemLoader::new(), ". {\n  hosts\n}").expect("valid");
    let h = config.servers[0].hosts.as_ref().expect("hosts");
    assert_eq!(h.path, Path::new("/etc/hosts"));
    assert_eq!(
        (h.ttl, h.reload, h.no_reverse),
        (3600, Duration::from_secs(5), false)
    );
    assert!(h.fallthrough.is_none() && h.file_entries.is_empty());
    assert_eq!(
        config.warnings,
        vec!["Corefile:2: hosts: /etc/hosts does not exist; answering from the inline entries until it does"]
    );
}

#[test]
fn hosts_errors() {
    let hosts = |body: &str| format!("example.org {{\n  hosts db.hosts {{\n{body}\n  }}\n}}");
    let loader = MemLoader::new().file(
        "db.hosts",
        "10.0.0.1 a.example.org\n\n10.0.0.256 b.example.org\n",
    );
    assert_eq!(
        parse_with(&loader, "example.org {\n  hosts db.hosts\n}").expect_err("bad file"),
        "Corefile:2: hosts: db.hosts:3: \"10.0.0.256\" is not an IP address (a hosts line is \"IP NAME…\", e.g. \
         \"10.0.0.1 web.example.org\")"
    );
    let cases = [
        (hosts("    10.0.0.1"), "Corefile:3: hosts: \"10.0.0.1\" has no name after it (a hosts line is \"IP NAME…\", e.g. \"10.0.0.1 web.example.org\")"),
        (hosts("    tll 5"), "Corefile:3: hosts: \"tll\" is neither an option (ttl, reload, no_reverse, fallthrough) nor an IP address starting a hosts line (\"IP NAME…\", e.g. \"10.0.0.1 web.example.org\")"),
        (hosts("    ttl 0"), "Corefile:3: hosts: ttl \"0\" is not a number of seconds from 1 to 65535"),
        (hosts("    ttl 5s"), "Corefile:3: hosts: ttl \"5s\" is not a number of seconds from 1 to 65535"),
        (hosts("    ttl"), "Corefile:3: hosts: ttl expects one value, seconds from 1 to 65535, e.g. \"ttl 60\""),
        (hosts("    reload soon"), "Corefile:3: hosts: reload \"soon\" is not a duration (e.g. 5s, 1m; 0 turns reloading off)"),
        (hosts("    ttl 5\n    ttl 6"), "Corefile:4: hosts: ttl is set twice (first at Corefile:3)"),
        (hosts("    no_reverse 1"), "Corefile:3: hosts: no_reverse takes no value, but \"1\" follows it"),
        ("example.org {\n  hosts db.hosts other.org\n}".into(), "Corefile:2: hosts: other.org. is not inside this server block's zones (example.org.), so no query for it would reach hosts; use the block's zone or a name below it"),
        ("example.org {\n  hosts db.hosts\n  hosts db.hosts\n}".into(), "Corefile:3: hosts can be used only once per server block (first at Corefile:2)"),
    ];
    let loader = MemLoader::new().file("db.hosts", "");
    for (text, want) in cases {
        assert_eq!(
            parse_with(&loader, &text).expect_err("rejected"),
            want,
            "{text}"
        );
    }
}

#[test]
fn hosts_inline_names_outside_the_zones_are_warned_about() {
    let text = "example.org {\n  hosts db.hosts {\n    10.0.0.5 web.example.com\n  }\n}";
    let config = parse_with(&MemLoader::new().file("db.hosts", ""), text).expect("valid");
    assert_eq!(
        config.warnings,
        vec!["Corefile:3: hosts: web.example.com. is outside the plugin's zones and is never answered"]
    );
    assert!(config.servers[0]
        .hosts
        .as_ref()
        .expect("hosts")
        .inline
        .is_empty());
}

#[test]
fn reload_zero_turns_watching_off() {
    let text = "example.org {\n  hosts db.hosts {\n    reload 0\n  }\n}";
    let config = parse_with(&MemLoader::new().file("db.hosts", ""), text).expect("valid");
    assert_eq!(
        config.servers[0].hosts.as_ref().expect("hosts").reload,
        Duration::ZERO
    );
}
