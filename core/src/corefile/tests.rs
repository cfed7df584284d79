//! Whole-Corefile tests: text in, `Config` or the exact `file:line: message` out.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::{Cluster, Config, ServerBlock};
use crate::loader::MemLoader;

fn parse_with(loader: &MemLoader, text: &str) -> Result<Config, String> {
    parse_corefile_text(
        Path::new("Corefile"),
        text,
        loader,
        &ParseOptions::default(),
    )
    .map_err(|e| e.to_string())
}

fn parse(text: &str) -> Result<Config, String> {
    parse_with(&MemLoader::new(), text)
}

fn error(text: &str) -> String {
    parse(text).expect_err("the Corefile must be rejected")
}

fn name(text: &str) -> Name {
    Name::parse(text).expect("valid name")
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("valid socket address")
}

fn only_block(config: &Config) -> &ServerBlock {
    assert_eq!(config.servers.len(), 1, "{config:?}");
    &config.servers[0]
}

fn loc(line: usize) -> Location {
    Location {
        file: "Corefile".into(),
        line,
    }
}

/// The Corefile of SPEC §1, which every user starts from.
const SPEC_EXAMPLE: &str = "distributed.local. {
  gathersrv distributed.local. {
    cluster-a.local. a-
    cluster-b.local. b-
  }
  forward cluster-a.local. 10.8.0.1:53
  forward cluster-b.local. 10.9.0.1:53
}
";

#[test]
fn the_spec_example() {
    let config = parse(SPEC_EXAMPLE).expect("valid");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let block = only_block(&config);
    assert_eq!(block.zones, vec![name("distributed.local.")]);
    assert_eq!(block.port, 53);
    assert_eq!(block.location, loc(1));
    assert!(block.bind.is_empty() && block.files.is_empty() && !block.log && !block.errors);
    assert_eq!(block.gathers.len(), 1);
    let gather = &block.gathers[0];
    assert_eq!(gather.domain, name("distributed.local."));
    assert_eq!(
        gather.clusters,
        vec![
            Cluster {
                suffix: name("cluster-a.local."),
                prefix: "a-".into()
            },
            Cluster {
                suffix: name("cluster-b.local."),
                prefix: "b-".into()
            },
        ]
    );
    assert_eq!(gather.timeout, Duration::from_secs(2));
    assert_eq!(gather.cluster_timeout, Duration::from_millis(500));
    assert_eq!(gather.negative_ttl, 5);
    assert_eq!(gather.location, loc(2));
    let forwards: Vec<(String, Vec<SocketAddr>, bool, bool, usize)> = block
        .forwards
        .iter()
        .map(|f| {
            (
                f.from.to_string(),
                f.to.clone(),
                f.force_tcp,
                f.prefer_udp,
                f.location.line,
            )
        })
        .collect();
    assert_eq!(
        forwards,
        vec![
            (
                "cluster-a.local.".into(),
                vec![addr("10.8.0.1:53")],
                false,
                false,
                6
            ),
            (
                "cluster-b.local.".into(),
                vec![addr("10.9.0.1:53")],
                false,
                false,
                7
            ),
        ]
    );
}

#[test]
fn the_gathersrv_readme_form_with_loopback_blocks() {
    let text = "distributed.local. {
    prometheus
    log
    errors
    gathersrv distributed.local. {
        cluster-a.local. a-
        cluster-b.local. b-
    }
    forward . 127.0.0.1:5300
}

cluster-a.local.:5300 {
    forward . 10.8.0.1:53
}

cluster-b.local.:5300 {
    forward . 10.9.0.1:53
}
";
    let config = parse(text).expect("valid");
    let summary: Vec<(String, u16, String)> = config
        .servers
        .iter()
        .map(|s| {
            (
                s.zones[0].to_string(),
                s.port,
                s.forwards[0].to[0].to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("distributed.local.".into(), 53, "127.0.0.1:5300".into()),
            ("cluster-a.local.".into(), 5300, "10.8.0.1:53".into()),
            ("cluster-b.local.".into(), 5300, "10.9.0.1:53".into()),
        ]
    );
    assert!(config.servers[0].log && config.servers[0].errors);
    assert!(config.servers[0].ops.prometheus.is_some());
    assert_eq!(config.servers[0].forwards[0].from, Name::root());
    // The README's typo: the domain is outside the block, so no query would reach gathersrv.
    let typo = text.replace(
        "gathersrv distributed.local.",
        "gathersrv distribiuted.local.",
    );
    assert_eq!(
        error(&typo),
        "Corefile:5: gathersrv: distribiuted.local. is not inside this server block's zones \
         (distributed.local.), so no query for it would reach gathersrv; use the block's zone or a name below it"
    );
}

#[test]
fn directive_order_does_not_matter() {
    let text = "distributed.local {
  forward cluster-b.local. 10.9.0.1
  bind 127.0.0.1
  forward cluster-a.local. 10.8.0.1
  gathersrv distributed.local. {
    cluster-a.local. a-
    cluster-b.local. b-
  }
}";
    let config = parse(text).expect("valid");
    let block = only_block(&config);
    assert_eq!(block.gathers[0].clusters.len(), 2);
    assert_eq!(block.forwards[0].from, name("cluster-b.local."));
    assert_eq!(block.listen_addrs(), vec![addr("127.0.0.1:53")]);
}

#[test]
fn gathersrv_options() {
    let text = "d.local. {
  gathersrv d.local. {
    a.local. a-
    timeout 3s
    cluster_timeout 1.5s
    negative_ttl 30
  }
  forward . 10.0.0.1
}";
    let gather = &parse(text).expect("valid").servers[0].gathers[0];
    assert_eq!(gather.timeout, Duration::from_secs(3));
    assert_eq!(gather.cluster_timeout, Duration::from_millis(1500));
    assert_eq!(gather.negative_ttl, 30);
    let ttl = |value: &str| {
        let text = format!(
            "d. {{\n gathersrv d. {{\n a. a-\n negative_ttl {value}\n }}\n forward . 10.0.0.1\n}}"
        );
        parse(&text).map(|c| c.servers[0].gathers[0].negative_ttl)
    };
    assert_eq!(ttl("1m"), Ok(60));
    assert_eq!(ttl("0"), Ok(0));
    assert_eq!(ttl("2147483647"), Ok(2_147_483_647));
    assert_eq!(
        ttl("1500ms"),
        Err(
            "Corefile:4: gathersrv: negative_ttl \"1500ms\" is not a whole number of seconds"
                .into()
        )
    );
    assert_eq!(
        ttl("2147483648"),
        Err("Corefile:4: gathersrv: negative_ttl \"2147483648\" is too long (at most 2147483647 seconds)".into())
    );
    assert_eq!(
        ttl("soon"),
        Err("Corefile:4: gathersrv: negative_ttl \"soon\" is neither seconds nor a duration (e.g. 5, 5s, 1m)".into())
    );
}

/// A one-cluster gathersrv block with `body` inside, on lines 3 and following.
fn gathersrv_error(body: &str) -> String {
    error(&format!(
        "d.local. {{\n  gathersrv d.local. {{\n{body}\n  }}\n  forward . 10.0.0.1\n}}"
    ))
}

#[test]
fn gathersrv_errors() {
    let cases: &[(&str, &str)] = &[
        ("distro", "Corefile:2: gathersrv: \"distro\" is not a fully qualified domain (it must end with a dot, e.g. \"distro.\")"),
        ("", "Corefile:2: gathersrv: expected one argument, the distributed domain, e.g. \"gathersrv distributed.local. {\""),
        ("d.local. e.local.", "Corefile:2: gathersrv: expected one argument, the distributed domain, but \"e.local.\" follows it"),
    ];
    for (args, expected) in cases {
        let text = format!(
            "d.local. {{\n  gathersrv {args} {{\n    a.local. a-\n  }}\n  forward . 10.0.0.1\n}}"
        );
        assert_eq!(&error(&text), expected, "{args}");
    }
    assert_eq!(
        error("d. {\n  gathersrv d.\n  forward . 10.0.0.1\n}"),
        "Corefile:2: gathersrv: the cluster list must follow in a block opened on this line, e.g. \
         \"gathersrv distributed.local. {\" then lines like \"cluster-a.local. a-\""
    );
    assert_eq!(
        error("d. {\n  gathersrv d. {\n  }\n}"),
        "Corefile:2: gathersrv: at least one cluster line \"SUFFIX PREFIX\" is required, e.g. \"cluster-a.local. a-\""
    );
    let cases: &[(&str, &str)] = &[
        ("a.local.", "Corefile:3: gathersrv: cluster \"a.local.\" has no prefix; a cluster line is \"SUFFIX PREFIX\", e.g. \"cluster-a.local. a-\""),
        ("a.local. a- b-", "Corefile:3: gathersrv: a cluster line is \"SUFFIX PREFIX\", e.g. \"cluster-a.local. a-\", but \"b-\" follows the prefix"),
        ("cluster-a a-", "Corefile:3: gathersrv: \"cluster-a\" is neither an option (timeout, cluster_timeout, negative_ttl, ns_ip, policy, srv_priority, serve_stale) nor a cluster domain (a cluster line is \"SUFFIX PREFIX\" and SUFFIX must end with a dot, e.g. \"cluster-a.\")"),
        ("a.local. \"\"", "Corefile:3: gathersrv: prefix \"\" is empty; each cluster needs a prefix such as \"a-\""),
        ("a.local. a.b", "Corefile:3: gathersrv: prefix \"a.b\" contains a dot; a prefix is the start of one host label, e.g. \"a-\""),
        ("a.local. a*", "Corefile:3: gathersrv: prefix \"a*\" has a character that cannot be in a host label (use letters, digits, '-' and '_')"),
        ("d.local. a-", "Corefile:3: gathersrv: cluster domain d.local. is the distributed domain itself; a cluster needs its own domain"),
        ("x.d.local. a-", "Corefile:3: gathersrv: cluster domain x.d.local. is inside the distributed domain d.local.; cluster domains must lie outside it"),
        ("local. a-", "Corefile:3: gathersrv: cluster domain local. contains the distributed domain d.local.; cluster domains must lie outside it"),
        ("a.local. a-\n b.local. A-", "Corefile:4: gathersrv: prefix \"A-\" is already used by a.local. (at Corefile:3); prefixes are compared without regard to case"),
        ("a.local. a-\n A.LOCAL b-", "Corefile:4: gathersrv: \"A.LOCAL\" is neither an option (timeout, cluster_timeout, negative_ttl, ns_ip, policy, srv_priority, serve_stale) nor a cluster domain (a cluster line is \"SUFFIX PREFIX\" and SUFFIX must end with a dot, e.g. \"A.LOCAL.\")"),
        ("a.local. a-\n A.LOCAL. b-", "Corefile:4: gathersrv: cluster domain a.local. is listed twice (first at Corefile:3)"),
        ("a.local. a-\n x.a.local. b-", "Corefile:4: gathersrv: cluster domains x.a.local. and a.local. (at Corefile:3) are nested; each cluster needs a domain of its own"),
        ("a.local. a-\n timeout 0s", "Corefile:4: gathersrv: timeout must be greater than 0"),
        ("a.local. a-\n timeout", "Corefile:4: gathersrv: timeout expects one value, e.g. \"timeout 2s\""),
        ("a.local. a-\n timeout 2", "Corefile:4: gathersrv: timeout \"2\" is not a duration (e.g. 500ms, 2s, 1m30s)"),
        ("a.local. a-\n timeout 1s\n timeout 2s", "Corefile:5: gathersrv: timeout is set twice (first at Corefile:4)"),
        ("a.local. a-\n cluster_timeout 3s", "Corefile:4: gathersrv: cluster_timeout (3s) must not exceed timeout (2s)"),
        ("a.local. a-\n timeout 100ms", "Corefile:4: gathersrv: cluster_timeout (500ms) must not exceed timeout (100ms)"),
        ("a.local. a-\n ns_ip", "Corefile:4: gathersrv: ns_ip expects at least one IP address, the address a delegation's glue points at, e.g. \"ns_ip 192.0.2.53 2001:db8::53\""),
        ("a.local. a-\n ns_ip 192.0.2.1 ns.example.", "Corefile:4: gathersrv: ns_ip \"ns.example.\" is not an IP address (e.g. \"192.0.2.53\" or \"2001:db8::53\")"),
        ("a.local. a-\n ns_ip 0.0.0.0", "Corefile:4: gathersrv: ns_ip 0.0.0.0 cannot receive queries; give the unicast address clients reach this server at"),
        ("a.local. a-\n ns_ip ::1\n ns_ip ::2", "Corefile:5: gathersrv: ns_ip is set twice (first at Corefile:4)"),
        ("a.local. a-\n retries 3", "Corefile:4: gathersrv: \"retries\" is neither an option (timeout, cluster_timeout, negative_ttl, ns_ip, policy, srv_priority, serve_stale) nor a cluster domain (a cluster line is \"SUFFIX PREFIX\" and SUFFIX must end with a dot, e.g. \"retries.\")"),
    ];
    for (body, expected) in cases {
        assert_eq!(&gathersrv_error(body), expected, "{body}");
    }
    let long = "p".repeat(63);
    assert_eq!(
        gathersrv_error(&format!("a.local. {long}")),
        format!("Corefile:3: gathersrv: prefix \"{long}\" is too long: it must be shorter than 63 bytes so that a host label fits after it")
    );
    assert!(parse(&format!(
        "d. {{\n gathersrv d. {{\n a. {}\n }}\n forward . 10.0.0.1\n}}",
        "p".repeat(62)
    ))
    .is_ok());
}

#[test]
fn only_one_gathersrv_per_block() {
    let text = "d. e. {
  gathersrv d. {
    a. a-
  }
  gathersrv e. {
    b. b-
  }
  forward . 10.0.0.1
}";
    assert_eq!(
        error(text),
        "Corefile:5: gathersrv can be used only once per server block (first at Corefile:2); \
         put the clusters of one domain in one gathersrv block"
    );
}

#[test]
fn every_cluster_needs_a_source() {
    let text = "d.local. {
  gathersrv d.local. {
    a.local. a-
    b.local. b-
  }
  forward a.local. 10.8.0.1
}";
    assert_eq!(
        error(text),
        "Corefile:2: gathersrv: nothing in this server block answers for cluster b.local.; add \
         \"forward b.local. IP[:PORT]\" (the cluster's DNS) or a file zone for it"
    );
    // A forward for a parent domain, or for the root, covers the cluster.
    assert!(parse(&text.replace("forward a.local.", "forward local.")).is_ok());
    assert!(parse(&text.replace("forward a.local.", "forward .")).is_ok());
}

#[test]
fn overlapping_prefixes_are_a_warning() {
    let text = "d. {
  gathersrv d. {
    a. a-
    ab. A-B-
    c. c-
  }
  forward . 10.0.0.1
}";
    let config = parse(text).expect("valid");
    assert_eq!(
        config.warnings,
        vec!["Corefile:4: gathersrv: prefix \"A-B-\" (ab.) starts with prefix \"a-\" (a.); the longest \
              prefix wins, so a host of a. whose name starts with \"B-\" cannot be addressed"
            .to_string()]
    );
}

#[test]
fn forward_upstreams() {
    let loader = MemLoader::new()
        .file(
            "/etc/resolv.conf",
            "# comment\nsearch svc\nnameserver 10.0.0.10\nnameserver fd00::10 \n",
        )
        .file("conf/resolv.conf", "nameserver 192.0.2.1\n");
    let text = ". {
  forward . 10.0.0.1 10.0.0.2:5353 dns://10.0.0.3 DNS://10.0.0.4:54 ::1 [::2] [::3]:5300 dns://[::4]:53 /etc/resolv.conf conf/resolv.conf
}";
    let config = parse_with(&loader, text).expect("valid");
    let to: Vec<String> = config.servers[0].forwards[0]
        .to
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        to,
        [
            "10.0.0.1:53",
            "10.0.0.2:5353",
            "10.0.0.3:53",
            "10.0.0.4:54",
            "[::1]:53",
            "[::2]:53",
            "[::3]:5300",
            "[::4]:53",
            "10.0.0.10:53",
            "[fd00::10]:53",
            "192.0.2.1:53",
        ]
    );
}

#[test]
fn forward_options_and_warnings() {
    let both = ". {\n  forward . 10.0.0.1 {\n    prefer_udp\n    force_tcp\n  }\n}";
    let config = parse(both).expect("valid");
    let forward = &config.servers[0].forwards[0];
    assert!(forward.force_tcp && !forward.prefer_udp);
    assert_eq!(
        config.warnings,
        vec!["Corefile:2: forward: force_tcp and prefer_udp are both set; force_tcp wins, as in CoreDNS".to_string()]
    );
    let config = parse(". {\n  forward . 10.0.0.1 { prefer_udp }\n}").expect("valid");
    assert!(config.servers[0].forwards[0].prefer_udp);
    assert!(config.warnings.is_empty());
}

#[test]
fn forward_expire_is_accepted_with_a_warning() {
    let text = ". {\n  forward . 10.0.0.1 {\n    max_fails 3\n    expire 30s\n  }\n}";
    let config = parse(text).expect("valid");
    assert_eq!(
        config.warnings,
        vec![
            "Corefile:4: forward: expire 30s is ignored: pooled upstream TCP connections close \
             after 10s idle (CoreDNS's default)"
                .to_string()
        ]
    );
}

#[test]
fn forward_errors() {
    let cases: &[(&str, &str)] = &[
        ("forward .", "Corefile:2: forward: expected FROM and at least one TO, e.g. \"forward . 10.0.0.1:53\""),
        ("forward", "Corefile:2: forward: expected FROM and at least one TO, e.g. \"forward . 10.0.0.1:53\""),
        ("forward . tls://1.1.1.1", "Corefile:2: forward: \"tls://1.1.1.1\": TLS and HTTPS upstreams are not supported (use IP[:PORT] or dns://IP[:PORT])"),
        ("forward . https://dns.google/dns-query", "Corefile:2: forward: \"https://dns.google/dns-query\": TLS and HTTPS upstreams are not supported (use IP[:PORT] or dns://IP[:PORT])"),
        ("forward . grpc://1.1.1.1", "Corefile:2: forward: \"grpc://1.1.1.1\": unknown scheme (use IP[:PORT] or dns://IP[:PORT])"),
        ("forward . dns.google", "Corefile:2: forward: \"dns.google\" is not an IP address, IP:PORT, [IPv6]:PORT or a resolv.conf path (host names are not supported)"),
        ("forward . 1.1.1.1:0", "Corefile:2: forward: \"1.1.1.1:0\": port 0 is not a valid upstream port"),
        ("forward . /etc/resolv.conf", "Corefile:2: forward: cannot read \"/etc/resolv.conf\": No such file or directory (os error 2)"),
        ("forward . 1.1.1.1 {\n    max_fails three\n  }", "Corefile:3: forward: max_fails: \"three\" is not a whole number (0 never marks an upstream down)"),
        ("forward . 1.1.1.1 {\n    policy fastest\n  }", "Corefile:3: forward: unknown policy \"fastest\" (accepted: random, round_robin, sequential)"),
        ("forward . 1.1.1.1 {\n    policy\n  }", "Corefile:3: forward: policy takes one argument (random, round_robin or sequential)"),
        ("forward . 1.1.1.1 {\n    health_check\n  }", "Corefile:3: forward: health_check takes DURATION [no_rec] [domain FQDN], e.g. \"health_check 0.5s\""),
        ("forward . 1.1.1.1 {\n    health_check 1s often\n  }", "Corefile:3: forward: health_check: unknown word \"often\" (accepted: no_rec, domain FQDN)"),
        ("forward . 1.1.1.1 {\n    expire soon\n  }", "Corefile:3: forward: expire: \"soon\" is not a duration (e.g. 500ms, 10s, 1m)"),
        ("forward . 1.1.1.1 {\n    max_concurrent 0\n  }", "Corefile:3: forward: max_concurrent: \"0\" is not a whole number above 0"),
        ("forward . 1.1.1.1 {\n    tls_servername dns.example\n  }", "Corefile:3: forward: option \"tls_servername\" is not supported yet (supported: force_tcp, prefer_udp, policy, max_fails, health_check, expire, max_concurrent)"),
        ("forward . 1.1.1.1 {\n    force_tcpp\n  }", "Corefile:3: forward: unknown option \"force_tcpp\" (supported: force_tcp, prefer_udp, policy, max_fails, health_check, expire, max_concurrent)"),
        ("forward . 1.1.1.1 {\n    force_tcp yes\n  }", "Corefile:3: forward: force_tcp takes no arguments"),
        ("forward a..b 1.1.1.1", "Corefile:2: forward: \"a..b\" is not a valid zone: "),
        ("forward . 1.1.1.1\n  forward . 1.0.0.1", "Corefile:3: forward: . is already forwarded at Corefile:2; list all its upstreams in one forward line"),
        ("forward A.org 1.1.1.1\n  forward a.org. 1.0.0.1", "Corefile:3: forward: a.org. is already forwarded at Corefile:2; list all its upstreams in one forward line"),
    ];
    for (directive, expected) in cases {
        let got = error(&format!(". {{\n  {directive}\n}}"));
        assert!(
            got.starts_with(expected),
            "{directive}\n got: {got}\nwant: {expected}"
        );
    }
    let sixteen: Vec<String> = (1..=16).map(|i| format!("10.0.0.{i}")).collect();
    assert_eq!(
        error(&format!(". {{\n  forward . {}\n}}", sixteen.join(" "))),
        "Corefile:2: forward: at most 15 upstreams per forward, found 16"
    );
    assert!(parse(&format!(
        ". {{\n  forward . {}\n}}",
        sixteen[..15].join(" ")
    ))
    .is_ok());
    let loader = MemLoader::new()
        .file("/etc/resolv.conf", "nameserver eth0.example\n")
        .file("/r2", "search x\n");
    assert_eq!(
        parse_with(&loader, ". {\n  forward . /etc/resolv.conf\n}").map(|_| ()),
        Err("Corefile:2: forward: /etc/resolv.conf:1: nameserver \"eth0.example\" is not an IP address".into())
    );
    assert_eq!(
        parse_with(&loader, ". {\n  forward . /r2\n}").map(|_| ()),
        Err("Corefile:2: forward: \"/r2\" lists no nameserver".into())
    );
}

#[test]
fn bind_log_and_errors() {
    let text = ". {\n  bind 127.0.0.1 ::1\n  bind 127.0.0.1 10.0.0.1\n  log\n  errors\n}";
    let block = parse(text).expect("valid").servers.remove(0);
    assert_eq!(
        block.bind,
        vec![
            "127.0.0.1".parse::<std::net::IpAddr>().expect("ip"),
            "::1".parse().expect("ip"),
            "10.0.0.1".parse().expect("ip")
        ]
    );
    assert!(block.log && block.errors);
    let cases: &[(&str, &str)] = &[
        ("bind eth0", "Corefile:2: bind: \"eth0\" is not an IP address (interface names are not supported yet)"),
        ("bind", "Corefile:2: bind: expected at least one IP address, e.g. \"bind 127.0.0.1 ::1\""),
        ("bind 127.0.0.1 {\n    except 127.0.0.2\n  }", "Corefile:2: bind: options (except) are not supported yet"),
        ("log . {combined}", "Corefile:2: log: arguments are not supported yet (\"log\" takes none for now)"),
        ("errors {\n    consolidate 5m \".*\"\n  }", "Corefile:2: errors: options are not supported yet (\"errors\" takes none for now)"),
        ("errors\n  errors", "Corefile:3: errors can be used only once per server block (first at Corefile:2)"),
    ];
    for (directive, expected) in cases {
        assert_eq!(
            &error(&format!(". {{\n  {directive}\n}}")),
            expected,
            "{directive}"
        );
    }
}

#[test]
fn unknown_and_unserved_directives() {
    assert_eq!(
        error(". {\n  log\n  errors\n  cahce\n}"),
        "Corefile:4: unknown directive \"cahce\" (supported here: gathersrv, forward, file, hosts, multicluster, multicluster_gw, bind, bufsize, log, errors, reload, prometheus, health, ready, cache, loadbalance, loop)"
    );
    assert_eq!(
        SUPPORTED_DIRECTIVES,
        [
            "gathersrv",
            "forward",
            "file",
            "hosts",
            "multicluster",
            "multicluster_gw",
            "bind",
            "bufsize",
            "log",
            "errors",
            "reload",
            "prometheus",
            "health",
            "ready",
            "cache",
            "loadbalance",
            "loop"
        ]
    );
}

#[test]
fn server_block_keys() {
    let config =
        parse("example.org:1053 Example.NET.:1053 {\n}\n.:1053 {\n}\n10.0.0.0/24 {\n}\n. {\n}")
            .expect("valid");
    let keys: Vec<(Vec<String>, u16)> = config
        .servers
        .iter()
        .map(|s| (s.zones.iter().map(ToString::to_string).collect(), s.port))
        .collect();
    assert_eq!(
        keys,
        vec![
            (
                vec!["example.org.".to_string(), "example.net.".to_string()],
                1053
            ),
            (vec![".".to_string()], 1053),
            (vec!["0.0.10.in-addr.arpa.".to_string()], 53),
            (vec![".".to_string()], 53),
        ]
    );
    // A block with no directives is fine: it answers REFUSED later.
    assert!(config
        .servers
        .iter()
        .all(|s| s.gathers.is_empty() && s.forwards.is_empty()));
}

#[test]
fn the_default_port_comes_from_the_options() {
    let options = ParseOptions { default_port: 1053 };
    let config = parse_corefile_text(
        Path::new("Corefile"),
        ". {\n}\nx.:53 {\n}",
        &MemLoader::new(),
        &options,
    )
    .expect("valid");
    let ports: Vec<u16> = config.servers.iter().map(|s| s.port).collect();
    assert_eq!(ports, vec![1053, 53]);
    assert_eq!(ParseOptions::default().default_port, 53);
    // With -dns.port 1053 these keys agree; with the default they do not.
    let text = "a.org b.org:1053 {\n}";
    assert!(parse_corefile_text(Path::new("Corefile"), text, &MemLoader::new(), &options).is_ok());
    assert_eq!(
        error(text),
        "Corefile:1: the keys of one server block must use one port, but \"a.org\" is on port 53 and \
         \"b.org:1053\" on port 1053; write one server block per port"
    );
}

#[test]
fn key_errors() {
    assert_eq!(
        error("example.org {\n}\n\nEXAMPLE.org. {\n}"),
        "Corefile:4: zone example.org. on port 53 is already served by the server block at Corefile:1"
    );
    assert!(parse("example.org {\n}\nexample.org:1053 {\n}").is_ok());
    assert_eq!(
        error("a.org a.org. {\n}"),
        "Corefile:1: zone a.org. is listed twice in this server block's keys"
    );
    assert_eq!(
        error("\n\ntls://example.org {\n}"),
        "Corefile:3: server block key \"tls://example.org\": only dns:// is supported (tls:// servers are not)"
    );
    assert_eq!(
        error("10.0.0.0/27 {\n}"),
        "Corefile:1: server block key \"10.0.0.0/27\": \"10.0.0.0/27\" is not octet-aligned; an IPv4 \
         reverse zone needs a /0, /8, /16, /24 or /32 prefix"
    );
    assert_eq!(
        error("{$NOPE} {\n}"),
        "Corefile:1: this server block has no zone: its key is empty (an unset environment variable?)"
    );
}

#[test]
fn file_directive_errors() {
    let loader = MemLoader::new().file("zones/db.example", "not a zone file @@@\n");
    let cases: &[(&str, &str)] = &[
        ("file db.missing", "Corefile:3: file: cannot read \"db.missing\": No such file or directory (os error 2)"),
        ("file", "Corefile:3: file: expected DBFILE [ZONES...], e.g. \"file db.example.org\""),
        ("file zones/db.example {\n    reload 1m\n  }", "Corefile:4: file: option \"reload\" is not supported yet (zone files are read once, at startup)"),
        ("file zones/db.example {\n    transfer to *\n  }", "Corefile:4: file: unknown option \"transfer\" (file takes no options yet)"),
    ];
    for (directive, expected) in cases {
        let got = parse_with(&loader, &format!("example.org {{\n\n  {directive}\n}}"));
        assert_eq!(
            got.as_ref().map(|_| ()),
            Err(&expected.to_string()),
            "{directive}"
        );
    }
    // A zone file error names the zone file (and its line, once the zone parser reports one).
    let got =
        parse_with(&loader, "example.org {\n\n  file zones/db.example\n}").expect_err("bad zone");
    assert!(
        got.starts_with("Corefile:3: file: zones/db.example:"),
        "{got}"
    );
}

#[test]
fn file_zones_are_read_relative_to_the_corefile() {
    let zone =
        "$TTL 30\n@ IN SOA ns.cluster-a.local. admin.cluster-a.local. 1 7200 3600 1209600 5\n\
                demo IN A 10.8.1.2\n";
    let loader = MemLoader::new().file("/etc/gatherdns/zones/db.cluster-a", zone);
    let text = "distributed.local. cluster-a.local. {
  gathersrv distributed.local. {
    cluster-a.local. a-
  }
  file zones/db.cluster-a cluster-a.local.
}";
    let got = parse_corefile_text(
        Path::new("/etc/gatherdns/Corefile"),
        text,
        &loader,
        &ParseOptions::default(),
    );
    match crate::wire::parse_zonefile(zone, &name("cluster-a.local.")) {
        // Once zone files parse, the file zone is a source for the cluster.
        Ok(records) => {
            let config = got.expect("valid");
            let file = &config.servers[0].files[0];
            assert_eq!(file.origin, name("cluster-a.local."));
            assert_eq!(file.records.len(), records.len());
            assert_eq!(file.path, "/etc/gatherdns/zones/db.cluster-a");
            assert_eq!(
                file.location,
                Location {
                    file: "/etc/gatherdns/Corefile".into(),
                    line: 5
                }
            );
        }
        // Until then, the read succeeded and only the zone parser's message is left.
        Err(_) => {
            let message = got.expect_err("zone parser not ready").to_string();
            assert!(
                message.starts_with("/etc/gatherdns/Corefile:5: file: zones/db.cluster-a"),
                "{message}"
            );
        }
    }
}

#[test]
fn environment_snippets_and_imports_together() {
    let loader = MemLoader::new()
        .env("DNS_PORT", "1053")
        .env("CLUSTER_A_DNS", "10.8.0.1")
        .file("/etc/coredns/Corefile", "(upstreams) {\n  forward cluster-a.local. {$CLUSTER_A_DNS}:53\n  import clusters/*.conf\n}\nimport blocks/*\n")
        .file("/etc/coredns/clusters/b.conf", "forward cluster-b.local. 10.9.0.1\n")
        .file(
            "/etc/coredns/blocks/distributed",
            "distributed.local.:{$DNS_PORT} {\n  import upstreams\n  gathersrv distributed.local. {\n    \
             cluster-a.local. a-\n    cluster-b.local. b-\n  }\n}\n",
        );
    let config = parse_corefile(
        Path::new("/etc/coredns/Corefile"),
        &loader,
        &ParseOptions::default(),
    )
    .expect("valid");
    let block = only_block(&config);
    assert_eq!(block.port, 1053);
    assert_eq!(
        block.location,
        Location {
            file: "/etc/coredns/blocks/distributed".into(),
            line: 1
        }
    );
    let forwards: Vec<(String, String, String)> = block
        .forwards
        .iter()
        .map(|f| {
            (
                f.from.to_string(),
                f.to[0].to_string(),
                f.location.to_string(),
            )
        })
        .collect();
    assert_eq!(
        forwards,
        vec![
            (
                "cluster-a.local.".into(),
                "10.8.0.1:53".into(),
                "/etc/coredns/Corefile:2".into()
            ),
            (
                "cluster-b.local.".into(),
                "10.9.0.1:53".into(),
                "/etc/coredns/clusters/b.conf:1".into()
            ),
        ]
    );
    assert_eq!(
        block.gathers[0].location.to_string(),
        "/etc/coredns/blocks/distributed:3"
    );
}

#[test]
fn errors_inside_imported_files_name_that_file() {
    let loader = MemLoader::new()
        .file("conf/Corefile", ". {\n  import extra/plugins.conf\n}\n")
        .file("conf/extra/plugins.conf", "log\n\ncahce 30\n");
    assert_eq!(
        parse_corefile(Path::new("conf/Corefile"), &loader, &ParseOptions::default()).map_err(|e| e.to_string()).map(|_| ()),
        Err("conf/extra/plugins.conf:3: unknown directive \"cahce\" (supported here: gathersrv, forward, file, hosts, multicluster, multicluster_gw, bind, bufsize, log, errors, reload, prometheus, health, ready, cache, loadbalance, loop)".into())
    );
}

#[test]
fn a_missing_corefile_is_a_general_error() {
    let got = parse_corefile(
        Path::new("/nowhere/Corefile"),
        &MemLoader::new(),
        &ParseOptions::default(),
    );
    assert_eq!(
        got.map(|_| ()),
        Err(ConfigError::General(
            "cannot read Corefile \"/nowhere/Corefile\": No such file or directory (os error 2)"
                .into()
        ))
    );
}

#[test]
fn a_corefile_without_a_server_block_is_an_error_naming_the_file() {
    for text in ["", "# nothing here\n", "(snippet) {\n  log\n}\n"] {
        assert_eq!(
            parse(text).map(|_| ()),
            Err("Corefile: no server block: gatherdns would listen nowhere; a Corefile needs at least one, \
                 e.g. \"distributed.local.:53 { … }\""
                .to_string()),
            "{text:?}"
        );
    }
}

#[test]
fn file_zones_must_be_reachable() {
    let zone = "@ 30 IN SOA ns hostmaster 1 7200 1800 86400 30\n";
    let loader = MemLoader::new().file("db.other", zone);
    assert_eq!(
        parse_with(&loader, "example.org {\n  file db.other other.org\n}").map(|_| ()),
        Err("Corefile:2: file: zone other.org. is not inside this server block's zones (example.org.) and no gathersrv \
             cluster of the block is under it, so no query for it would reach this block"
            .to_string())
    );
    // As the source of a gathersrv cluster, a zone outside the block's keys is reachable.
    let corefile =
        "d.org {\n  gathersrv d.org. {\n    other.org. o-\n  }\n  file db.other other.org\n}";
    assert!(parse_with(&loader, corefile).is_ok());
}

#[test]
fn forward_resilience_options() {
    let text = ". {\n  forward . 10.0.0.1 10.0.0.2 {\n    policy round_robin\n    max_fails 5\n    \
                health_check 2s no_rec domain probe.example.\n    expire 30s\n    max_concurrent 1000\n  }\n}";
    let config = parse(text).expect("valid");
    let f = &config.servers[0].forwards[0];
    assert_eq!(f.policy, crate::config::Policy::RoundRobin);
    assert_eq!(f.max_fails, 5);
    assert_eq!(f.health_check.interval, std::time::Duration::from_secs(2));
    assert!(!f.health_check.recursion_desired);
    assert_eq!(f.health_check.domain.to_string(), "probe.example.");
    assert_eq!(f.expire, std::time::Duration::from_secs(30));
    assert_eq!(f.max_concurrent, Some(1000));
    let defaults = parse(". {\n  forward . 10.0.0.1\n}").expect("valid");
    let f = &defaults.servers[0].forwards[0];
    assert_eq!(
        (f.policy, f.max_fails, f.max_concurrent),
        (crate::config::Policy::Random, 2, None)
    );
    assert_eq!(
        f.health_check.interval,
        std::time::Duration::from_millis(500)
    );
    assert!(f.health_check.recursion_desired && f.health_check.domain.to_string() == ".");
}

#[test]
fn bufsize_directive() {
    assert_eq!(
        parse(". {\n  bufsize 1400\n}").expect("valid").servers[0].bufsize,
        1400
    );
    assert_eq!(parse(". {\n}").expect("valid").servers[0].bufsize, 1232);
    assert_eq!(
        parse(". {\n  bufsize 100\n}")
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err("Corefile:2: bufsize: \"100\" is not a size from 512 to 4096".to_string())
    );
    assert_eq!(
        parse(". {\n  bufsize\n}").map(|_| ()).map_err(|e| e.to_string()),
        Err("Corefile:2: bufsize takes one argument, a size from 512 to 4096 (e.g. \"bufsize 1232\")".to_string())
    );
}

#[test]
fn ns_ip_gives_the_name_server_addresses_of_gathersrv_and_multicluster() {
    let config = parse(
        "d.local. {\n  gathersrv d.local. {\n    a.local. a-\n    ns_ip 192.0.2.53 2001:db8::53 192.0.2.53\n  }\n  \
         multicluster clusterset.d.local. {\n    b.local. b\n    ns_ip 192.0.2.54\n  }\n  forward . 10.0.0.1\n}",
    )
    .expect("valid");
    let block = &config.servers[0];
    let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("address");
    assert_eq!(
        block.gathers[0].ns_ip,
        vec![ip("192.0.2.53"), ip("2001:db8::53")],
        "duplicates are dropped"
    );
    let mcs = block.multicluster.as_ref().expect("multicluster");
    assert_eq!(mcs.ns_ip, vec![ip("192.0.2.54")]);
    let plain =
        parse("d.local. {\n  gathersrv d.local. {\n    a.local. a-\n  }\n  forward . 10.0.0.1\n}")
            .expect("valid");
    assert!(
        plain.servers[0].gathers[0].ns_ip.is_empty(),
        "default: from bind"
    );
}
