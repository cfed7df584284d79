//! `multicluster` from the Kubernetes API on the real binaries: the `kube` client inside
//! gatherdns talks HTTP to the test API server of `gatherdns_tests::kube_api` (lists, watch
//! streams, bookmarks, 410 Gone) through a kubeconfig that points at it, and the answers are
//! those coredns/multicluster gives for the same ServiceImports and EndpointSlices.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gatherdns_tests::kube_api::{endpoint_slice, service_import, KubeApi, IMPORTS, SLICES};

use crate::common::*;
use crate::ops::get;

const Z: &str = "clusterset.local.";

/// web: a dual-stack ClusterSetIP import; db: a headless one with endpoints in two clusters
/// (one not ready, one without a hostname, one dual-stack).
fn objects(api: &KubeApi) {
    api.apply(
        IMPORTS,
        service_import(
            "default",
            "web",
            "ClusterSetIP",
            &["10.42.0.10", "fd00:42::10"],
            &[("http", "TCP", 80)],
        ),
    );
    api.apply(
        IMPORTS,
        service_import(
            "default",
            "db",
            "Headless",
            &[],
            &[("postgres", "TCP", 5432)],
        ),
    );
    let pg = [("postgres", "TCP", 5432)];
    api.apply(
        SLICES,
        endpoint_slice(
            "default",
            "db-cluster-a-x1",
            "db",
            "cluster-a",
            "IPv4",
            &pg,
            &[
                ("10.8.1.1", Some("db-0"), true),
                ("10.8.1.2", Some("db-1"), false),
                ("10.8.1.3", None, true),
            ],
        ),
    );
    api.apply(
        SLICES,
        endpoint_slice(
            "default",
            "db-cluster-b-x1",
            "db",
            "cluster-b",
            "IPv4",
            &pg,
            &[("10.9.1.1", Some("db-0"), true)],
        ),
    );
    api.apply(
        SLICES,
        endpoint_slice(
            "default",
            "db-cluster-b-x2",
            "db",
            "cluster-b",
            "IPv6",
            &pg,
            &[("fd00:9::1", Some("db-0"), true)],
        ),
    );
}

/// A Corefile reading the API through `kubeconfig` (a file beside it), with `ready` and
/// `prometheus` on ports 1 and 2.
fn builder(binary: &str, api: &KubeApi, options: &str, extra: &str) -> ServerBuilder {
    let corefile = format!(
        "clusterset.local.:@PORT0@ {{
    bind 127.0.0.1
    multicluster {{
        kubeconfig kubeconfig
{options}
    }}
    ready 127.0.0.1:@PORT1@
    prometheus 127.0.0.1:@PORT2@
{extra}
}}
"
    );
    ServerBuilder::new(binary, &corefile).file("kubeconfig", &api.kubeconfig())
}

fn ask_udp(server: SocketAddr, name: &str, qtype: Rtype) -> Reply {
    ask(
        server,
        Transport::Udp,
        &query(name, qtype, Some((1232, false)), 7),
    )
}

/// Asks until `check` passes (bounded): changes reach the answers asynchronously.
fn eventually(limit: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(()) => return,
            Err(why) if Instant::now() >= deadline => panic!("not within {limit:?}: {why}"),
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn answers(server: SocketAddr, name: &str, qtype: Rtype) -> Vec<String> {
    ask_udp(server, name, qtype).answer
}

#[test]
fn kubernetes_answers_as_coredns_multicluster() {
    let api = KubeApi::new();
    objects(&api);
    for_each_binary(|binary| {
        let server = builder(binary, &api, "", "").start();
        let s = server.addr();
        let web = format!("web.default.svc.{Z}");
        assert_eq!(
            answers(s, &web, Rtype::A),
            vec![format!("{web} 5 A 10.42.0.10")]
        );
        assert_eq!(
            answers(s, &web, Rtype::AAAA),
            vec![format!("{web} 5 AAAA fd00:42::10")]
        );
        let q = format!("_http._tcp.{web}");
        let reply = ask_udp(s, &q, Rtype::SRV);
        assert_eq!(reply.answer, vec![format!("{q} 5 SRV 0 50 80 {web}")]);
        assert_eq!(
            reply.additional,
            vec![
                format!("{web} 5 A 10.42.0.10"),
                format!("{web} 5 AAAA fd00:42::10")
            ]
        );
        // Headless: ready endpoints of both clusters; 10.8.1.2 is not ready.
        let db = format!("db.default.svc.{Z}");
        assert_eq!(
            answers(s, &db, Rtype::A),
            ["10.8.1.1", "10.8.1.3", "10.9.1.1"]
                .map(|ip| format!("{db} 5 A {ip}"))
                .to_vec()
        );
        assert_eq!(
            answers(s, &db, Rtype::AAAA),
            vec![format!("{db} 5 AAAA fd00:9::1")]
        );
        let q = format!("_postgres._tcp.{db}");
        let srv = |host: &str| format!("{q} 5 SRV 0 25 5432 {host}.{db}");
        assert_eq!(
            ask_udp(s, &q, Rtype::SRV).answer,
            vec![
                srv("db-0.cluster-a"),
                srv("10-8-1-3.cluster-a"),
                srv("db-0.cluster-b")
            ]
        );
        let host = format!("db-0.cluster-b.{db}");
        assert_eq!(
            answers(s, &host, Rtype::AAAA),
            vec![format!("{host} 5 AAAA fd00:9::1")]
        );
        for name in [
            format!("db-1.cluster-a.{db}"),
            format!("cluster-a.{db}"),
            format!("nope.default.svc.{Z}"),
        ] {
            let reply = ask_udp(s, &name, Rtype::A);
            assert_eq!(reply.rcode, "NXDOMAIN", "{name}");
            assert!(
                reply.authority[0].contains(" SOA ns.dns.clusterset.local. "),
                "{reply:?}"
            );
        }
        let reply = ask_udp(s, &format!("dns-version.{Z}"), Rtype::TXT);
        assert_eq!(
            reply.answer,
            vec![format!("dns-version.{Z} 28800 TXT \"1.1.0\"")]
        );
        // A start without failures logs none, nor a recovery.
        assert!(
            !server.stdout().contains("plugin/multicluster: kubeconfig"),
            "{}",
            server.stdout()
        );
        // Ready, and the metrics say both watches are established.
        let (status, _, body) = get(server.addr_of(1), "/ready");
        assert_eq!((status, body.as_str()), (200, "OK"));
        let (_, _, metrics) = get(server.addr_of(2), "/metrics");
        let source = format!("kubeconfig {}", server.dir().join("kubeconfig").display());
        for resource in ["serviceimports", "endpointslices"] {
            let line = format!(
                "gatherdns_kubernetes_synced{{source=\"{source}\",resource=\"{resource}\"}} 1"
            );
            assert!(metrics.contains(&line), "{line} in\n{metrics}");
        }
    });
}

#[test]
fn kubernetes_updates_reach_answers_within_a_second_while_queries_flow() {
    let api = KubeApi::new();
    objects(&api);
    for_each_binary(|binary| {
        let server = builder(binary, &api, "", "").start();
        let s = server.addr();
        let web = format!("web.default.svc.{Z}");
        // Queries flow the whole time; every one must be answered.
        let stop = Arc::new(AtomicBool::new(false));
        let unanswered = Arc::new(AtomicUsize::new(0));
        let flow = {
            let (stop, unanswered, web) = (stop.clone(), unanswered.clone(), web.clone());
            thread::spawn(move || {
                let mut sent = 0;
                while !stop.load(Ordering::SeqCst) && sent < 5000 {
                    let q = query(&web, Rtype::A, None, sent as u16).build();
                    if udp_exchange(s, &q, Duration::from_secs(1)).is_err() {
                        unanswered.fetch_add(1, Ordering::SeqCst);
                    }
                    sent += 1;
                }
                sent
            })
        };
        let mut import = service_import(
            "default",
            "web",
            "ClusterSetIP",
            &["10.42.0.77"],
            &[("http", "TCP", 80)],
        );
        api.apply(IMPORTS, import.clone());
        let changed = Instant::now();
        eventually(Duration::from_secs(3), || {
            let got = answers(s, &web, Rtype::A);
            (got == vec![format!("{web} 5 A 10.42.0.77")])
                .then_some(())
                .ok_or(format!("{got:?}"))
        });
        let took = changed.elapsed();
        assert!(took < Duration::from_secs(1), "the update took {took:?}");
        // A new import and a deleted one.
        import["metadata"]["name"] = "cart".into();
        api.apply(IMPORTS, import);
        api.delete(IMPORTS, "default", "web");
        eventually(Duration::from_secs(3), || {
            let cart = answers(s, &format!("cart.default.svc.{Z}"), Rtype::A);
            let web = ask_udp(s, &web, Rtype::A).rcode;
            (cart.len() == 1 && web == "NXDOMAIN")
                .then_some(())
                .ok_or(format!("{cart:?} {web}"))
        });
        stop.store(true, Ordering::SeqCst);
        let sent = flow.join().expect("query thread");
        assert!(sent > 10, "only {sent} queries flowed");
        assert_eq!(
            unanswered.load(Ordering::SeqCst),
            0,
            "queries went unanswered during updates"
        );
        // Put the shared objects back for the next binary.
        api.delete(IMPORTS, "default", "cart");
        objects(&api);
    });
}

#[test]
fn kubernetes_watch_drop_resumes_and_410_relists() {
    for_each_binary(|binary| {
        let api = KubeApi::new();
        objects(&api);
        let server = builder(binary, &api, "", "").start();
        let s = server.addr();
        let web = format!("web.default.svc.{Z}");
        let watches = |api: &KubeApi| {
            api.requests()
                .iter()
                .filter(|r| r.contains(IMPORTS) && r.contains("watch=true"))
                .count()
        };
        let lists = |api: &KubeApi| {
            api.requests()
                .iter()
                .filter(|r| r.contains(IMPORTS) && !r.contains("watch="))
                .count()
        };
        assert!(
            api.wait_for_request(Duration::from_secs(5), |r| r.contains(IMPORTS)
                && r.contains("watch=true"))
        );
        let (watched, listed) = (watches(&api), lists(&api));
        // The watch is cut: resumed from the last version, without a new list.
        api.drop_watches();
        assert!(api.wait_for_request(Duration::from_secs(5), |_| watches(&api) > watched));
        let resumed = api
            .requests()
            .into_iter()
            .rfind(|r| r.contains(IMPORTS) && r.contains("watch=true"))
            .unwrap_or_default();
        let version = resumed
            .split(['?', '&', ' '])
            .find_map(|p| p.strip_prefix("resourceVersion="))
            .and_then(|v| v.parse::<u64>().ok());
        // The fixtures end at version 105; bookmarks may have moved it on since.
        assert!(
            version.is_some_and(|v| v >= 105),
            "resumed from the last version: {resumed}"
        );
        assert_eq!(
            lists(&api),
            listed,
            "a dropped watch is resumed, not listed again"
        );
        api.apply(
            IMPORTS,
            service_import(
                "default",
                "web",
                "ClusterSetIP",
                &["10.42.0.2"],
                &[("http", "TCP", 80)],
            ),
        );
        eventually(Duration::from_secs(3), || {
            let got = answers(s, &web, Rtype::A);
            (got == vec![format!("{web} 5 A 10.42.0.2")])
                .then_some(())
                .ok_or(format!("{got:?}"))
        });
        // The history is compacted while the watch is cut: 410 Gone, then a new list.
        api.compact();
        api.drop_watches();
        api.apply(
            IMPORTS,
            service_import(
                "default",
                "web",
                "ClusterSetIP",
                &["10.42.0.3"],
                &[("http", "TCP", 80)],
            ),
        );
        api.compact();
        assert!(
            api.wait_for_request(Duration::from_secs(5), |_| lists(&api) > listed),
            "no new list after 410"
        );
        eventually(Duration::from_secs(3), || {
            let got = answers(s, &web, Rtype::A);
            (got == vec![format!("{web} 5 A 10.42.0.3")])
                .then_some(())
                .ok_or(format!("{got:?}"))
        });
    });
}

#[test]
fn kubernetes_api_down_at_startup_then_up_then_gone() {
    for_each_binary(|binary| {
        let port = free_ports(1)[0];
        let mut api = KubeApi::down(port);
        objects(&api);
        let started = Instant::now();
        let mut server = builder(binary, &api, "", "").start();
        // Serving waited about 5 s for the first list, then started anyway.
        assert!(
            started.elapsed() >= Duration::from_millis(4500),
            "started after {:?}",
            started.elapsed()
        );
        assert!(server.wait_for_stdout(
            "starting server with unsynced Kubernetes API",
            Duration::from_secs(2)
        ));
        let s = server.addr();
        let web = format!("web.default.svc.{Z}");
        let reply = ask_udp(s, &web, Rtype::A);
        assert_eq!(reply.rcode, "SERVFAIL", "{reply:?}");
        let (status, _, body) = get(server.addr_of(1), "/ready");
        assert_eq!(status, 503);
        assert!(
            body.contains("multicluster: ServiceImports and EndpointSlices of kubeconfig"),
            "{body}"
        );
        // The API comes up: answers follow.
        api.start();
        eventually(Duration::from_secs(10), || {
            let got = answers(s, &web, Rtype::A);
            (got == vec![format!("{web} 5 A 10.42.0.10")])
                .then_some(())
                .ok_or(format!("{got:?}"))
        });
        assert_eq!(get(server.addr_of(1), "/ready").0, 200);
        assert!(server.wait_for_stdout(
            "serviceimports: watching the Kubernetes API again",
            Duration::from_secs(5)
        ));
        // The API goes away: the last view keeps answering, the metrics and the log say so.
        api.stop();
        assert!(server.wait_for_stdout("answering from the last list", Duration::from_secs(10)));
        assert_eq!(
            answers(s, &web, Rtype::A),
            vec![format!("{web} 5 A 10.42.0.10")]
        );
        let (_, _, metrics) = get(server.addr_of(2), "/metrics");
        let labels = format!(
            "{{source=\"kubeconfig {}\",resource=\"serviceimports\"}}",
            server.dir().join("kubeconfig").display()
        );
        assert!(
            metrics.contains(&format!("gatherdns_kubernetes_synced{labels} 0")),
            "{metrics}"
        );
        let errors = metrics
            .lines()
            .find(|l| l.starts_with(&format!("gatherdns_kubernetes_errors_total{labels}")))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
        assert!(errors.is_some_and(|n| n > 0), "{metrics}");
        assert!(server.is_running());
    });
}

#[test]
fn kubernetes_noendpoints_watches_no_slices() {
    for_each_binary(|binary| {
        let api = KubeApi::new();
        objects(&api);
        let server = builder(binary, &api, "        noendpoints", "").start();
        let s = server.addr();
        let web = format!("web.default.svc.{Z}");
        assert_eq!(answers(s, &web, Rtype::A).len(), 1);
        for name in [
            format!("db.default.svc.{Z}"),
            format!("db-0.cluster-a.db.default.svc.{Z}"),
        ] {
            assert_eq!(ask_udp(s, &name, Rtype::A).rcode, "NXDOMAIN", "{name}");
        }
        assert!(
            !api.requests().iter().any(|r| r.contains(SLICES)),
            "{:?}",
            api.requests()
        );
    });
}

#[test]
fn kubernetes_fallthrough_to_a_forward() {
    for_each_binary(|binary| {
        let api = KubeApi::new();
        objects(&api);
        let legacy = format!(
            "$ORIGIN {Z}\n@ 30 IN SOA ns hostmaster 1 7200 1800 86400 30\nlegacy.default.svc 30 IN A 192.0.2.2\n"
        );
        let extra = "    forward . 127.0.0.1:@PORT3@
}

clusterset.local.:@PORT3@ {
    bind 127.0.0.1
    file legacy.zone clusterset.local.";
        let server = builder(binary, &api, "        fallthrough", extra)
            .file("legacy.zone", &legacy)
            .start();
        let s = server.addr();
        let web = format!("web.default.svc.{Z}");
        assert_eq!(
            answers(s, &web, Rtype::A),
            vec![format!("{web} 5 A 10.42.0.10")]
        );
        let name = format!("legacy.default.svc.{Z}");
        assert_eq!(
            answers(s, &name, Rtype::A),
            vec![format!("{name} 30 A 192.0.2.2")]
        );
    });
}

#[test]
fn kubernetes_fallthrough_to_the_gathering_source() {
    for_each_binary(|binary| {
        let api = KubeApi::new();
        objects(&api);
        let zone = |suffix: &str, ip: &str| {
            format!("$ORIGIN {suffix}\n@ 30 IN SOA ns hostmaster 1 7200 1800 86400 30\ncache.default.svc 30 IN A {ip}\nweb.default.svc 30 IN A {ip}\n")
        };
        let options = "        cluster-a.local. cluster-a
        cluster-b.local. cluster-b
        fallthrough";
        let extra = "    forward cluster-a.local. 127.0.0.1:@PORT3@
    forward cluster-b.local. 127.0.0.1:@PORT3@
}

cluster-a.local.:@PORT3@ {
    bind 127.0.0.1
    file a.zone cluster-a.local.
}

cluster-b.local.:@PORT3@ {
    bind 127.0.0.1
    file b.zone cluster-b.local.";
        let server = builder(binary, &api, options, extra)
            .file("a.zone", &zone("cluster-a.local.", "10.8.0.20"))
            .file("b.zone", &zone("cluster-b.local.", "10.9.0.20"))
            .start();
        let s = server.addr();
        // Known to the API: its ClusterSetIP, not the clusters' addresses.
        let web = format!("web.default.svc.{Z}");
        assert_eq!(
            answers(s, &web, Rtype::A),
            vec![format!("{web} 5 A 10.42.0.10")]
        );
        // Not imported: gathered from both clusters' DNS.
        let cache = format!("cache.default.svc.{Z}");
        assert_eq!(
            answers(s, &cache, Rtype::A),
            vec![
                format!("{cache} 30 A 10.8.0.20"),
                format!("{cache} 30 A 10.9.0.20")
            ]
        );
    });
}

#[test]
fn kubernetes_bad_kubeconfig_is_a_startup_error() {
    for_each_binary(|binary| {
        let corefile = "clusterset.local.:@PORT0@ {\n    bind 127.0.0.1\n    multicluster {\n        kubeconfig missing.yaml\n    }\n}\n";
        let out = ServerBuilder::new(binary, corefile).run_to_exit();
        assert_eq!(out.code(), Some(1), "{out:?}");
        assert!(
            out.stderr.contains("Corefile:3: multicluster: kubeconfig")
                && out.stderr.contains("missing.yaml"),
            "{out:?}"
        );
        // In-cluster outside a cluster: refused at startup, but -validate accepts the file.
        let corefile = ".:@PORT0@ {\n    bind 127.0.0.1\n    multicluster clusterset.local\n}\n";
        let out = ServerBuilder::new(binary, corefile).run_to_exit();
        assert_eq!(out.code(), Some(1), "{out:?}");
        assert!(
            out.stderr
                .contains("no in-cluster Kubernetes configuration"),
            "{out:?}"
        );
        let out = ServerBuilder::new(binary, corefile)
            .args(&["-validate"])
            .run_to_exit();
        assert_eq!(out.code(), Some(0), "{out:?}");
    });
}

/// The plugin README's Corefile (`multicluster clusterset.local`, nothing else: in-cluster),
/// with a bind to stay on loopback. The server runs as in a pod: `KUBERNETES_SERVICE_HOST`
/// and `_PORT` point at the test API server over HTTPS, and the service account's token, CA
/// and namespace are at /var/run/secrets/kubernetes.io/serviceaccount — inside a mount
/// namespace of the server's own (`unshare`), on a tmpfs over /run, so nothing of the
/// machine changes.
#[test]
fn kubernetes_in_cluster_as_in_the_plugins_readme() {
    let (api, ca) = KubeApi::new_tls();
    objects(&api);
    let sa = "/var/run/secrets/kubernetes.io/serviceaccount";
    let script = format!(
        "mount -t tmpfs tmpfs /run && mkdir -p {sa} && cp @DIR@/sa-token {sa}/token && \
         cp @DIR@/sa-ca.crt {sa}/ca.crt && cp @DIR@/sa-namespace {sa}/namespace && exec \"$@\""
    );
    // Root makes mount namespaces; anyone else needs a user namespace mapped to root.
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut wrapper = vec!["unshare", "--mount", "--propagation", "private"];
    if !root {
        wrapper.push("--map-root-user");
    }
    wrapper.extend(["sh", "-c", &script, "sh"]);
    for_each_binary(|binary| {
        let corefile = ".:@PORT0@ {\n    bind 127.0.0.1\n    multicluster clusterset.local\n}\n";
        let server = ServerBuilder::new(binary, corefile)
            .file("sa-token", gatherdns_tests::kube_api::TOKEN)
            .file("sa-ca.crt", &ca)
            .file("sa-namespace", "gatherdns\n")
            .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", &api.port().to_string())
            .wrapped(&wrapper)
            .start();
        let s = server.addr();
        let web = format!("web.default.svc.{Z}");
        eventually(Duration::from_secs(5), || {
            let got = answers(s, &web, Rtype::A);
            (got == vec![format!("{web} 5 A 10.42.0.10")])
                .then_some(())
                .ok_or(format!("{got:?}\n{}", server.stdout()))
        });
        let db = format!("db.default.svc.{Z}");
        assert_eq!(answers(s, &db, Rtype::A).len(), 3);
        // Outside the plugin's zone: no plugin of the block takes the name.
        assert_eq!(ask_udp(s, "example.org.", Rtype::A).rcode, "REFUSED");
    });
}

/// SIGUSR1 with a Corefile that now reads the API: a bad kubeconfig fails the reload and the
/// old configuration keeps answering; a good one starts the client, and the answers follow.
#[test]
fn kubernetes_source_added_by_a_reload() {
    let api = KubeApi::new();
    objects(&api);
    for_each_binary(|binary| {
        let hosts = "clusterset.local.:@PORT0@ {
    bind 127.0.0.1
    hosts {
        192.0.2.9 web.default.svc.clusterset.local.
    }
}
";
        let server = ServerBuilder::new(binary, hosts)
            .file("kubeconfig", &api.kubeconfig())
            .start();
        let s = server.addr();
        let web = format!("web.default.svc.{Z}");
        assert_eq!(
            answers(s, &web, Rtype::A),
            vec![format!("{web} 3600 A 192.0.2.9")]
        );
        let corefile = server.dir().join("Corefile");
        let reload_with = |kubeconfig: &str| {
            let text = format!(
                "clusterset.local.:{} {{\n    bind 127.0.0.1\n    multicluster {{\n        kubeconfig {kubeconfig}\n    }}\n}}\n",
                server.port(0)
            );
            let aside = corefile.with_extension("new");
            std::fs::write(&aside, text).expect("write the Corefile");
            std::fs::rename(&aside, &corefile).expect("rename it into place");
            let status = std::process::Command::new("kill")
                .args(["-USR1", &server.pid().to_string()])
                .status()
                .expect("kill");
            assert!(status.success());
        };
        reload_with("missing.yaml");
        assert!(
            server.wait_for_stdout("missing.yaml", Duration::from_secs(10)),
            "{}",
            server.stdout()
        );
        assert_eq!(
            answers(s, &web, Rtype::A),
            vec![format!("{web} 3600 A 192.0.2.9")]
        );
        reload_with("kubeconfig");
        assert!(server.wait_for_stdout("Reloading complete", Duration::from_secs(10)));
        eventually(Duration::from_secs(5), || {
            let got = answers(s, &web, Rtype::A);
            (got == vec![format!("{web} 5 A 10.42.0.10")])
                .then_some(())
                .ok_or(format!("{got:?}"))
        });
    });
}
