//! Operations over real sockets, on both binaries: `/metrics` after known traffic (exact
//! counter values and label sets, CoreDNS's names), `/health` and `/ready` through a SIGTERM
//! with lameduck, SIGINT twice, and HTTP listeners that cannot bind.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

/// The demo's distributed domain on PORT0, its clusters on PORT1, `/metrics` on PORT2,
/// `/health` on PORT3 (lameduck `LAMEDUCK`) and `/ready` on PORT4.
fn corefile(forward_b: &str) -> String {
    format!(
        "distributed.local.:@PORT0@ {{
    bind 127.0.0.1
    gathersrv distributed.local. {{
        cluster-a.local. a-
        cluster-b.local. b-
    }}
    forward cluster-a.local. 127.0.0.1:@PORT1@
    forward cluster-b.local. {forward_b}
    prometheus 127.0.0.1:@PORT2@
    health 127.0.0.1:@PORT3@ {{
        lameduck 1s
    }}
    ready 127.0.0.1:@PORT4@
}}
cluster-a.local.:@PORT1@ {{
    bind 127.0.0.1
    file cluster-a.local.zone
}}
cluster-b.local.:@PORT1@ {{
    bind 127.0.0.1
    file cluster-b.local.zone
}}
"
    )
}

const LAMEDUCK: Duration = Duration::from_secs(1);

fn start(binary: &str, corefile: &str, args: &[&str]) -> Server {
    let mut builder = ServerBuilder::new(binary, corefile).args(args);
    for zone in ["cluster-a.local.zone", "cluster-b.local.zone"] {
        let text = std::fs::read_to_string(demo_dir().join(zone)).expect("demo zone");
        builder = builder.file(zone, &text);
    }
    builder.start()
}

/// A loopback UDP port that swallows everything: bound, never read.
fn black_hole() -> (UdpSocket, String) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("addr").to_string();
    (socket, addr)
}

/// `GET path` over HTTP/1.1: status, headers (lower-case names) and body.
pub(crate) fn get(addr: SocketAddr, path: &str) -> (u16, BTreeMap<String, String>, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").expect("request");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .expect("the server closes after the response");
    let text = String::from_utf8(raw).expect("utf-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    assert_eq!(
        headers_len(&headers),
        Some(body.len()),
        "Content-Length matches the body"
    );
    (status, headers, body.to_string())
}

fn headers_len(headers: &BTreeMap<String, String>) -> Option<usize> {
    headers.get("content-length").and_then(|v| v.parse().ok())
}

/// A sample of the exposition: name and its labels, sorted.
pub(crate) type Key = (String, Vec<(String, String)>);

/// Parses the text format (no escapes occur in our label values).
pub(crate) fn samples(text: &str) -> BTreeMap<Key, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("NAME VALUE");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect("closing brace");
                let mut labels: Vec<(String, String)> = inner
                    .split("\",")
                    .filter(|p| !p.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once("=\"").expect("k=\"v\"");
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                labels.sort();
                (name.to_string(), labels)
            }
            None => (series.to_string(), Vec::new()),
        };
        out.insert((name, labels), value.parse::<f64>().expect("a number"));
    }
    out
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    (name.to_string(), labels)
}

/// Every sample of `name` whose `server` label is `server`, with its labels but `server`.
fn family(
    all: &BTreeMap<Key, f64>,
    name: &str,
    server: &str,
) -> BTreeMap<Vec<(String, String)>, f64> {
    all.iter()
        .filter(|((n, labels), _)| {
            n == name && labels.iter().any(|(k, v)| k == "server" && v == server)
        })
        .map(|((_, labels), v)| {
            let rest = labels
                .iter()
                .filter(|(k, _)| k != "server")
                .cloned()
                .collect();
            (rest, *v)
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    key("", pairs).1
}

#[test]
fn metrics_after_known_traffic_have_coredns_names_values_and_labels() {
    for_each_binary(|binary| {
        // Two executors for gatherdns-glommio: their counters must add up at scrape time.
        let threads: &[&str] = if binary == "gatherdns-glommio" {
            &["-threads", "2"]
        } else {
            &[]
        };
        let server = start(binary, &corefile("127.0.0.1:@PORT1@"), threads);
        let srv = "_demo._tcp.demo-service.default.svc.distributed.local.";
        for id in 1..=2 {
            let reply = ask(
                server.addr(),
                Transport::Udp,
                &query(srv, Rtype::SRV, Some((1232, false)), id),
            );
            assert_eq!(reply.answer.len(), 4, "{reply:#?}");
        }
        let reply = ask(
            server.addr(),
            Transport::Tcp,
            &query(srv, Rtype::SRV, None, 3),
        );
        assert_eq!(reply.answer.len(), 4, "{reply:#?}");
        let host = "a-demo-service-0.default.svc.distributed.local.";
        let reply = ask(
            server.addr(),
            Transport::Udp,
            &query(host, Rtype::A, None, 4),
        );
        assert_eq!(reply.rcode, "NOERROR");
        let reply = ask(
            server.addr(),
            Transport::Udp,
            &query("nope.distributed.local.", Rtype::A, None, 5),
        );
        assert_eq!(reply.rcode, "NXDOMAIN");

        let (status, headers, body) = get(server.addr_of(2), "/metrics");
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            headers.get("content-type").map(String::as_str),
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
        );
        assert!(body.ends_with("# EOF\n"), "{body}");
        assert!(
            body.contains("# TYPE coredns_dns_requests counter\n"),
            "{body}"
        );
        let all = samples(&body);
        let s = format!("dns://127.0.0.1:{}", server.port(0));
        let zone = "distributed.local.";
        let requests = family(&all, "coredns_dns_requests_total", &s);
        let z = |proto, t| {
            labels(&[
                ("zone", zone),
                ("view", ""),
                ("proto", proto),
                ("family", "1"),
                ("type", t),
            ])
        };
        assert_eq!(requests.get(&z("udp", "SRV")), Some(&2.0), "{requests:?}");
        assert_eq!(requests.get(&z("tcp", "SRV")), Some(&1.0), "{requests:?}");
        assert_eq!(requests.get(&z("udp", "A")), Some(&2.0), "{requests:?}");
        // The harness's readiness probe (probe.invalid.) is the only other query: no block
        // takes it, so CoreDNS's server reports it under zone "dropped".
        let dropped = labels(&[
            ("zone", "dropped"),
            ("view", ""),
            ("proto", "udp"),
            ("family", "1"),
            ("type", "A"),
        ]);
        assert!(
            requests.get(&dropped).is_some_and(|v| *v >= 1.0),
            "{requests:?}"
        );
        assert_eq!(requests.len(), 4, "no other series: {requests:?}");

        let responses = family(&all, "coredns_dns_responses_total", &s);
        let r = |rcode, plugin| {
            labels(&[
                ("zone", zone),
                ("view", ""),
                ("rcode", rcode),
                ("plugin", plugin),
            ])
        };
        assert_eq!(
            responses.get(&r("NOERROR", "gathersrv")),
            Some(&4.0),
            "{responses:?}"
        );
        assert_eq!(
            responses.get(&r("NXDOMAIN", "gathersrv")),
            Some(&1.0),
            "{responses:?}"
        );
        let refused = labels(&[
            ("zone", "dropped"),
            ("view", ""),
            ("rcode", "REFUSED"),
            ("plugin", ""),
        ]);
        assert!(responses.contains_key(&refused), "{responses:?}");
        assert_eq!(responses.len(), 3, "{responses:?}");

        let zl = [("server", s.as_str()), ("zone", zone), ("view", "")];
        assert_eq!(
            all.get(&key("coredns_dns_request_duration_seconds_count", &zl)),
            Some(&5.0)
        );
        let le_inf: Vec<(&str, &str)> = zl.iter().copied().chain([("le", "+Inf")]).collect();
        assert_eq!(
            all.get(&key("coredns_dns_request_duration_seconds_bucket", &le_inf)),
            Some(&5.0)
        );
        let le_first: Vec<(&str, &str)> = zl.iter().copied().chain([("le", "0.00025")]).collect();
        assert!(
            all.contains_key(&key(
                "coredns_dns_request_duration_seconds_bucket",
                &le_first
            )),
            "CoreDNS's first time bucket"
        );
        for (proto, count) in [("udp", 4.0), ("tcp", 1.0)] {
            let l: Vec<(&str, &str)> = zl.iter().copied().chain([("proto", proto)]).collect();
            assert_eq!(
                all.get(&key("coredns_dns_request_size_bytes_count", &l)),
                Some(&count)
            );
            assert_eq!(
                all.get(&key("coredns_dns_response_size_bytes_count", &l)),
                Some(&count)
            );
            let le: Vec<(&str, &str)> = l.iter().copied().chain([("le", "64000.0")]).collect();
            assert_eq!(
                all.get(&key("coredns_dns_request_size_bytes_bucket", &le)),
                Some(&count)
            );
        }

        let gathered = family(&all, "coredns_gathersrv_request_count_total", &s);
        assert_eq!(
            gathered,
            BTreeMap::from([
                (labels(&[("qualified", "true"), ("type", "A")]), 2.0),
                (labels(&[("qualified", "true"), ("type", "SRV")]), 3.0),
            ])
        );
        let sub = family(&all, "coredns_gathersrv_sub_request_count_total", &s);
        let p = |prefix, t| labels(&[("prefix", prefix), ("type", t), ("code", "0")]);
        assert_eq!(
            sub,
            BTreeMap::from([
                (p("a-", "A"), 2.0),
                (p("a-", "SRV"), 3.0),
                (p("b-", "A"), 1.0),
                (p("b-", "SRV"), 3.0),
            ])
        );

        let to = format!("127.0.0.1:{}", server.port(1));
        assert_eq!(
            all.get(&key("coredns_forward_requests_total", &[("to", &to)])),
            Some(&9.0)
        );
        assert_eq!(
            all.get(&key(
                "coredns_forward_responses_total",
                &[("rcode", "NOERROR"), ("to", &to)]
            )),
            Some(&7.0)
        );
        assert_eq!(
            all.get(&key(
                "coredns_forward_responses_total",
                &[("rcode", "NXDOMAIN"), ("to", &to)]
            )),
            Some(&2.0)
        );
        assert_eq!(
            all.get(&key(
                "coredns_forward_request_duration_seconds_count",
                &[("to", &to), ("rcode", "NOERROR")]
            )),
            Some(&7.0)
        );
        for (cluster, answered) in [("cluster-a.local.", 5.0), ("cluster-b.local.", 4.0)] {
            let l = [
                ("domain", zone),
                ("cluster", cluster),
                ("result", "answered"),
            ];
            assert_eq!(
                all.get(&key("gatherdns_cluster_sub_queries_total", &l)),
                Some(&answered)
            );
            let l = [("domain", zone), ("cluster", cluster)];
            assert_eq!(all.get(&key("gatherdns_cluster_up", &l)), Some(&1.0));
            assert_eq!(
                all.get(&key("gatherdns_cluster_request_duration_seconds_count", &l)),
                Some(&answered)
            );
        }
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            all.get(&key(
                "coredns_build_info",
                &[("version", version), ("revision", ""), ("goversion", "")]
            )),
            Some(&1.0)
        );
        assert_eq!(
            all.get(&key("coredns_reload_failed_total", &[])),
            Some(&0.0)
        );
        assert_eq!(all.get(&key("coredns_panics_total", &[])), Some(&0.0));
        assert_eq!(
            all.get(&key("gatherdns_upstream_up", &[("to", &to)])),
            Some(&1.0)
        );
        assert_eq!(
            all.get(&key("gatherdns_queries_in_flight", &[])),
            Some(&0.0)
        );
        for process in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(
                all.get(&key(process, &[])).is_some_and(|v| *v > 0.0),
                "{process}: {body}"
            );
        }
        // Only the endpoint of its directive is served on a listener.
        assert_eq!(get(server.addr_of(2), "/health").0, 404);
    });
}

#[test]
fn health_and_ready_through_a_lameduck_stop() {
    for_each_binary(|binary| {
        // Cluster B's upstream never answers: the readiness probe to it times out (2 s).
        let (_hole, dead) = black_hole();
        let mut server = start(binary, &corefile(&dead), &[]);
        let (health, ready) = (server.addr_of(3), server.addr_of(4));
        let (status, _, body) = get(health, "/health");
        assert_eq!((status, body.as_str()), (200, "OK"));
        // The live upstream answers its probe within moments (on every executor); the dead
        // one keeps the server unready until its probe times out.
        let waiting = format!("forward: upstream {dead} not tried yet");
        let deadline = Instant::now() + Duration::from_millis(1500);
        let (status, body) = loop {
            let (status, _, body) = get(ready, "/ready");
            if body == waiting || Instant::now() >= deadline {
                break (status, body);
            }
            thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(
            status, 503,
            "not ready before every upstream was tried: {body}"
        );
        assert_eq!(body, waiting);
        let deadline = Instant::now() + Duration::from_secs(6);
        while get(ready, "/ready").0 != 200 {
            assert!(Instant::now() < deadline, "ready within the probe timeout");
            thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(get(ready, "/ready").2, "OK");
        assert_eq!(
            get(ready, "/health").0,
            404,
            "/health is not on ready's listener"
        );

        let _ = std::process::Command::new("kill")
            .args(["-TERM", &server.pid().to_string()])
            .status();
        let sigterm = Instant::now();
        assert!(
            server.wait_for_stdout(
                "[INFO] plugin/health: Going into lameduck mode for 1s",
                Duration::from_secs(2)
            ),
            "{}",
            server.stdout()
        );
        // Lameduck: not ready, still healthy (CoreDNS), and still answering DNS.
        let (status, _, body) = get(ready, "/ready");
        assert_eq!((status, body.as_str()), (503, "Shutting down"));
        assert_eq!(get(health, "/health").0, 200);
        let host = "a-demo-service-0.default.svc.distributed.local.";
        let reply = ask(
            server.addr(),
            Transport::Udp,
            &query(host, Rtype::A, None, 9),
        );
        assert_eq!(reply.rcode, "NOERROR");
        assert!(server.is_running());
        let status = server
            .signal("TERM")
            .expect("exits after the lameduck period");
        let took = sigterm.elapsed();
        assert_eq!(status.code(), Some(0), "{}", server.stdout());
        assert!(
            took >= LAMEDUCK,
            "serves for the lameduck period first: {took:?}"
        );
        assert!(
            took < LAMEDUCK + Duration::from_secs(4),
            "then stops: {took:?}"
        );
        assert!(
            server
                .stdout()
                .contains("[INFO] SIGTERM: Shutting down servers then terminating"),
            "{}",
            server.stdout()
        );
        assert!(TcpStream::connect_timeout(&health, Duration::from_millis(500)).is_err());
    });
}

#[test]
fn a_second_sigint_forces_the_exit() {
    for_each_binary(|binary| {
        let (_hole, dead) = black_hole();
        let mut server = start(binary, &corefile(&dead), &[]);
        // A query to the dead cluster stays in flight (up to the 2 s deadline): the first
        // SIGINT waits for it, the second does not.
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let name = "b-demo-service-0.default.svc.distributed.local.";
        socket
            .send_to(&query(name, Rtype::A, None, 7).build(), server.addr())
            .expect("send");
        thread::sleep(Duration::from_millis(100));
        let _ = std::process::Command::new("kill")
            .args(["-INT", &server.pid().to_string()])
            .status();
        assert!(
            server.wait_for_stdout("[INFO] SIGINT: Shutting down", Duration::from_secs(2)),
            "{}",
            server.stdout()
        );
        thread::sleep(Duration::from_millis(100));
        assert!(
            server.is_running(),
            "the first SIGINT lets the query in flight finish"
        );
        let status = server.signal("INT").expect("a second SIGINT ends it");
        assert_eq!(status.code(), Some(2), "{}", server.stdout());
        assert!(
            server.stdout().contains("[INFO] SIGINT: Force quit"),
            "{}",
            server.stdout()
        );
    });
}

#[test]
fn an_http_port_in_use_is_a_startup_error() {
    for_each_binary(|binary| {
        let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("hold a port");
        let port = holder.local_addr().expect("addr").port();
        let corefile = format!(
            "example.test.:@PORT0@ {{\n    bind 127.0.0.1\n    prometheus 127.0.0.1:{port}\n}}\n"
        );
        let out = ServerBuilder::new(binary, &corefile).run_to_exit();
        assert_eq!(out.code(), Some(1), "{out:?}");
        let expected = format!("listen tcp 127.0.0.1:{port}: address already in use");
        assert!(
            out.stderr.contains(&expected),
            "expected {expected:?}: {out:?}"
        );
        assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {out:?}");
    });
}

#[test]
fn a_panic_while_handling_a_query_is_answered_servfail_counted_and_survived() {
    // Debug builds (which the suite runs) panic inside the gateway's input for a query
    // carrying this label: the only way to make the core panic on purpose.
    for_each_binary(|binary| {
        let mut builder = ServerBuilder::new(binary, &corefile("127.0.0.1:@PORT1@"))
            .env("GATHERDNS_TEST_PANIC", "boom-now");
        for zone in ["cluster-a.local.zone", "cluster-b.local.zone"] {
            let text = std::fs::read_to_string(demo_dir().join(zone)).expect("demo zone");
            builder = builder.file(zone, &text);
        }
        let server = builder.start();
        let reply = ask(
            server.addr(),
            Transport::Udp,
            &query("boom-now.distributed.local.", Rtype::A, None, 7),
        );
        assert_eq!(reply.rcode, "SERVFAIL", "{reply:#?}");
        assert_eq!(reply.id, 7);
        let srv = "_demo._tcp.demo-service.default.svc.distributed.local.";
        for transport in [Transport::Udp, Transport::Tcp] {
            let reply = ask(server.addr(), transport, &query(srv, Rtype::SRV, None, 8));
            assert_eq!(reply.answer.len(), 4, "still serving: {reply:#?}");
        }
        let (status, _, body) = get(server.addr_of(2), "/metrics");
        assert_eq!(status, 200, "{body}");
        let all = samples(&body);
        assert_eq!(
            all.get(&key("coredns_panics_total", &[])),
            Some(&1.0),
            "{body}"
        );
        assert!(
            server.wait_for_stdout("Recovered from panic", Duration::from_secs(2)),
            "{}",
            server.stdout()
        );
    });
}
