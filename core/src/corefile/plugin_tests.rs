//! Corefile tests of `cache`, `loadbalance`, `loop`, gathersrv's answer options and the
//! directives gatherdns does not serve: text in, settings or the exact message out.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::{
    AnswerPolicy, Cache, CacheKind, Config, Prefetch, ServeStale, ServerBlock, StaleParts,
};
use crate::loader::MemLoader;

fn parse(text: &str) -> Result<Config, String> {
    parse_corefile_text(
        Path::new("Corefile"),
        text,
        &MemLoader::new(),
        &ParseOptions::default(),
    )
    .map_err(|e| e.to_string())
}

fn block(text: &str) -> ServerBlock {
    let mut config = parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.servers.len(), 1);
    config.servers.remove(0)
}

fn cache(body: &str) -> Cache {
    block(&format!("example.org {{\n  {body}\n}}"))
        .cache
        .expect("a cache")
}

fn cache_error(body: &str) -> String {
    parse(&format!("example.org {{\n  {body}\n}}")).expect_err("rejected")
}

fn n(s: &str) -> Name {
    Name::parse(s).expect("valid")
}

#[test]
fn cache_defaults_are_coredns_defaults() {
    let c = cache("cache");
    assert_eq!(c.zones, vec![n("example.org.")]);
    let kind = |max| CacheKind {
        capacity: 9984,
        max_ttl: max,
        min_ttl: 5,
    };
    assert_eq!(c.success, kind(3600));
    assert_eq!(c.denial, kind(1800));
    assert_eq!((c.prefetch, c.serve_stale), (None, None));
    assert_eq!(c.servfail, Duration::from_secs(5));
    assert!(!c.keepttl && c.disable_success.is_empty() && c.disable_denial.is_empty());
    let c = cache("cache 30 sub.example.org");
    assert_eq!((c.success.max_ttl, c.denial.max_ttl), (30, 30));
    assert_eq!(c.zones, vec![n("sub.example.org.")]);
}

#[test]
fn every_cache_option() {
    let c = cache(
        "cache 300 {
    success 5000 600 10
    denial 2500 60
    prefetch 10 1m 20%
    serve_stale 30m immediate 30s 10s
    servfail 2s
    disable denial sub.example.org
    disable success
    keepttl
  }",
    );
    assert_eq!(
        c.success,
        CacheKind {
            capacity: 4864,
            max_ttl: 600,
            min_ttl: 10
        }
    );
    assert_eq!(
        c.denial,
        CacheKind {
            capacity: 2304,
            max_ttl: 60,
            min_ttl: 5
        }
    );
    assert_eq!(
        c.prefetch,
        Some(Prefetch {
            amount: 10,
            window: Duration::from_secs(60),
            percentage: 20
        })
    );
    assert_eq!(
        c.serve_stale,
        Some(ServeStale {
            up_to: Duration::from_secs(1800),
            verify: false,
            response_ttl: 30,
            failure_recheck: Duration::from_secs(10)
        })
    );
    assert_eq!(c.servfail, Duration::from_secs(2));
    assert_eq!(c.disable_denial, vec![n("sub.example.org.")]);
    assert_eq!(c.disable_success, vec![Name::root()]);
    assert!(c.keepttl);
    let c = cache("cache {\n serve_stale\n prefetch 3 15%\n }");
    let stale = c.serve_stale.expect("on");
    assert_eq!(
        (stale.up_to, stale.verify),
        (Duration::from_secs(3600), false)
    );
    assert_eq!(c.prefetch.map(|p| (p.amount, p.percentage)), Some((3, 15)));
    let c = cache("cache {\n serve_stale 1h verify 0 30s\n prefetch 0\n }");
    assert_eq!(
        c.serve_stale.map(|s| (s.verify, s.response_ttl)),
        Some((true, 30))
    );
    assert_eq!(c.prefetch, None, "an amount of 0 turns prefetch off");
}

#[test]
fn cache_mistakes_name_the_line_and_what_is_accepted() {
    let cases = [
        ("cache 0", "Corefile:2: cache: TTL can not be zero or negative: 0 (a number of seconds, e.g. 30)"),
        ("cache example.com", "Corefile:2: cache: example.com. is not inside this server block's zones (example.org.), so no query for it would reach cache; use the block's zone or a name below it"),
        ("cache {\n success\n }", "Corefile:3: cache: success takes CAPACITY [TTL] [MINTTL], e.g. \"success 5000 300 5\""),
        ("cache {\n denial x\n }", "Corefile:3: cache: denial: capacity \"x\" is not a number"),
        ("cache {\n success 10 0\n }", "Corefile:3: cache: success TTL can not be zero or negative: 0 (a number of seconds, e.g. 30)"),
        ("cache {\n prefetch 10 1m 5%\n }", "Corefile:3: cache: prefetch percentage \"5%\" should fall in range [10, 90], e.g. \"10%\""),
        ("cache {\n prefetch 10 1m 20\n }", "Corefile:3: cache: prefetch percentage \"20\" must end with '%', e.g. \"10%\""),
        ("cache {\n serve_stale 1h sometimes\n }", "Corefile:3: cache: invalid value for serve_stale refresh mode: \"sometimes\" (immediate or verify)"),
        ("cache {\n serve_stale 1h verify 100ms\n }", "Corefile:3: cache: serve_stale verify timeout must be 0 here: gatherdns's verify waits for the query's own deadline (gathersrv's timeout, 2s by default), then serves the expired entry"),
        ("cache {\n servfail 10m\n }", "Corefile:3: cache: caching SERVFAIL responses over 5 minutes is not permitted (RFC 2308)"),
        ("cache {\n disable all\n }", "Corefile:3: cache: cache type for disable must be \"success\" or \"denial\", not \"all\""),
        ("cache {\n keepttl yes\n }", "Corefile:3: cache: keepttl takes no value, but \"yes\" follows it"),
        ("cache {\n size 10\n }", "Corefile:3: cache: unknown option \"size\" (cache takes success, denial, prefetch, serve_stale, servfail, disable, keepttl)"),
        ("cache\n  cache", "Corefile:3: cache can be used only once per server block (first at Corefile:2)"),
    ];
    for (body, expected) in cases {
        assert_eq!(cache_error(body), expected, "{body}");
    }
}

#[test]
fn loadbalance_and_loop() {
    let b = block("example.org {\n loadbalance round_robin\n loop\n}");
    assert!(b.loadbalance && b.loop_check);
    let b = block("example.org {\n loadbalance\n}");
    assert!(b.loadbalance && !b.loop_check);
    for (body, expected) in [
        ("loadbalance weighted w.txt", "Corefile:2: loadbalance: the weighted policy is not supported; use \"loadbalance\" (round_robin: A, AAAA and MX records shuffled)"),
        ("loadbalance random", "Corefile:2: loadbalance: unknown policy \"random\" (loadbalance takes round_robin)"),
        ("loadbalance {\n prefer 10.0.0.0/8\n }", "Corefile:3: loadbalance: option \"prefer\" is not supported (loadbalance takes no options here)"),
        ("loop 1", "Corefile:2: loop takes no arguments, but \"1\" follows it"),
        ("loop\n loop", "Corefile:3: loop can be used only once per server block"),
    ] {
        assert_eq!(cache_error(body), expected, "{body}");
    }
}

const GATHER: &str = "distributed.local. {
  gathersrv distributed.local. {
    cluster-a.local. a-
    cluster-b.local. b-
    OPTIONS
  }
  forward cluster-a.local. 10.8.0.1:53
  forward cluster-b.local. 10.9.0.1:53
}";

fn gather(options: &str) -> Result<crate::config::AnswerOptions, String> {
    parse(&GATHER.replace("OPTIONS", options))
        .map(|mut c| c.servers.remove(0).gathers.remove(0).answers)
}

#[test]
fn gathersrv_answer_options() {
    let o = gather("").expect("valid");
    assert_eq!(o.policy, AnswerPolicy::Union);
    assert!(o.srv_priority.is_empty() && o.stale_parts.is_none());
    let o = gather("policy prefer A-\n    srv_priority b- 10\n    serve_stale 10m").expect("valid");
    assert_eq!(o.policy, AnswerPolicy::Prefer(vec!["a-".into()]));
    assert_eq!(o.srv_priority, vec![("b-".to_string(), 10)]);
    assert_eq!(
        o.stale_parts,
        Some(StaleParts {
            max_age: Duration::from_secs(600),
            capacity: 4096
        })
    );
    let o = gather("policy first_positive\n    serve_stale 1h 100").expect("valid");
    assert_eq!(o.policy, AnswerPolicy::FirstPositive);
    assert_eq!(o.stale_parts.map(|s| s.capacity), Some(100));
    for (options, expected) in [
        ("policy", "Corefile:5: gathersrv: policy takes union, prefer PREFIX… or first_positive (e.g. \"policy prefer a-\")"),
        ("policy best", "Corefile:5: gathersrv: unknown policy \"best\"; takes union, prefer PREFIX… or first_positive (e.g. \"policy prefer a-\")"),
        ("policy prefer", "Corefile:5: gathersrv: policy prefer needs the prefixes of the preferred clusters, e.g. \"policy prefer a-\""),
        ("policy prefer c-", "Corefile:5: gathersrv: policy prefer: \"c-\" is not the prefix of a cluster of this gathersrv (its prefixes: a-, b-)"),
        ("policy union a-", "Corefile:5: gathersrv: policy union takes nothing after it, but \"a-\" follows"),
        ("policy union\n    policy union", "Corefile:6: gathersrv: policy is set twice (first at Corefile:5)"),
        ("srv_priority a-", "Corefile:5: gathersrv: srv_priority takes a cluster's prefix and a number to add to its SRV priorities, e.g. \"srv_priority b- 10\""),
        ("srv_priority a- -1", "Corefile:5: gathersrv: srv_priority \"-1\" is not a number from 0 to 65535"),
        ("srv_priority z- 1", "Corefile:5: gathersrv: srv_priority: \"z-\" is not the prefix of a cluster of this gathersrv (its prefixes: a-, b-)"),
        ("serve_stale", "Corefile:5: gathersrv: serve_stale takes how long a cluster's last answer is kept and optionally how many are kept, e.g. \"serve_stale 1h\" or \"serve_stale 1h 10000\""),
        ("serve_stale 0s", "Corefile:5: gathersrv: serve_stale \"0s\" is not a duration above 0 (e.g. 30s, 10m, 1h)"),
        ("serve_stale 1h 0", "Corefile:5: gathersrv: serve_stale capacity \"0\" is not a number of parts above 0"),
    ] {
        assert_eq!(gather(options).expect_err(options), expected, "{options}");
    }
}

/// CoreDNS's MCS example Corefile (coredns/multicluster's README) as a user brings it: every
/// directive gatherdns does not serve gets its own line, each with what to do instead.
#[test]
fn every_unserved_directive_is_reported_with_what_to_do() {
    let text = ".:53 {
    errors
    health
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    template IN A example.org {
      answer \"{{ .Name }} 60 IN A 127.0.0.1\"
    }
    rewrite name foo.example.org bar.example.org
    prometheus :9153
    forward . 10.0.0.53
    cache 30
    loop
    reload
    loadbalance
}";
    let lines: Vec<String> = parse(text)
        .expect_err("three directives gatherdns does not serve")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].starts_with(
        "Corefile:4: kubernetes: gatherdns does not serve CoreDNS's kubernetes plugin: gatherdns does not answer a cluster's own names; keep CoreDNS with kubernetes for cluster.local and forward the distributed (or clusterset) zone from it to gatherdns"
    ), "{}", lines[0]);
    assert!(lines[0].contains("deploy/README.md#next-to-the-clusters-coredns"));
    assert!(lines[1].starts_with("Corefile:8: template: gatherdns does not serve CoreDNS's template plugin: answer from a zone file (file) or a static table (hosts) instead"), "{}", lines[1]);
    assert!(
        lines[2].starts_with(
            "Corefile:11: rewrite: gatherdns does not serve CoreDNS's rewrite plugin:"
        ),
        "{}",
        lines[2]
    );
    // A hard error after refused lines is reported with them.
    let lines = parse(".:53 {\n  whoami\n  bufsize 1\n}").expect_err("two");
    assert_eq!(lines.lines().count(), 2, "{lines}");
    // Without the refused directives, the same Corefile starts.
    let kept: String = text
        .lines()
        .filter(|l| {
            ![
                "kubernetes",
                "pods",
                "fallthrough",
                "template",
                "answer",
                "rewrite",
            ]
            .iter()
            .any(|w| l.trim_start().starts_with(w))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let kept = kept.replace("    }\n    }\n", "");
    let kept = kept.replace("    }\n", "");
    let b = block(&kept);
    assert!(b.cache.is_some() && b.loop_check && b.loadbalance);
}
