//! The HTTP side of `prometheus`, `health` and `ready`, without sockets: which listeners the
//! Corefile asks for, a tiny HTTP/1.1 responder (request head in, response bytes out) that
//! both runtimes serve on listeners of their own, away from the DNS path, and the
//! process-wide state of the endpoints.
//!
//! Behaviour as CoreDNS: `GET /health` is `200 OK` while the process runs (also during the
//! lameduck period); `GET /ready` is `200 OK` once ready, `503` with what is not ready
//! otherwise, and `503 Shutting down` from SIGTERM on; `GET /metrics` is the OpenMetrics text.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gatherdns_core::config::Config;
use gatherdns_core::metrics::{families, Snapshot};

use crate::process::Process;

/// A request head larger than this is refused (431): the endpoints take no body.
pub const MAX_REQUEST: usize = 8 * 1024;

/// How long a client may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections served at once per runtime; more wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 64;

/// One HTTP listener and the paths it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// The TCP address.
    pub addr: SocketAddr,
    /// `/metrics` (`prometheus`).
    pub metrics: bool,
    /// `/health` (`health`).
    pub health: bool,
    /// `/ready` (`ready`).
    pub ready: bool,
}

/// What the Corefile asks of the HTTP side, process-wide.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// One listener per distinct address, in Corefile order.
    pub listeners: Vec<Listener>,
    /// The longest `lameduck` of any `health`.
    pub lameduck: Duration,
    /// Some block has `ready`: readiness probes go out at startup.
    pub ready: bool,
}

impl Plan {
    /// The listeners of every block's `prometheus`, `health` and `ready`; directives that name
    /// the same address share its listener (CoreDNS would fight over the port).
    pub fn from_config(config: &Config) -> Plan {
        let mut plan = Plan::default();
        for block in &config.servers {
            let ops = &block.ops;
            let wanted = [
                (ops.prometheus.as_ref(), Route::Metrics),
                (ops.health.as_ref(), Route::Health),
                (ops.ready.as_ref(), Route::Ready),
            ];
            for (endpoint, route) in wanted {
                let Some(endpoint) = endpoint else { continue };
                let index = match plan.listeners.iter().position(|l| l.addr == endpoint.addr) {
                    Some(index) => index,
                    None => {
                        plan.listeners.push(Listener {
                            addr: endpoint.addr,
                            metrics: false,
                            health: false,
                            ready: false,
                        });
                        plan.listeners.len() - 1
                    }
                };
                let listener = &mut plan.listeners[index];
                match route {
                    Route::Metrics => listener.metrics = true,
                    Route::Health => listener.health = true,
                    Route::Ready => listener.ready = true,
                }
            }
            plan.lameduck = plan.lameduck.max(ops.lameduck);
            plan.ready |= ops.ready.is_some();
        }
        plan
    }
}

/// An endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/metrics`.
    Metrics,
    /// `/health`.
    Health,
    /// `/ready`.
    Ready,
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// The head is not complete yet: read more.
    Incomplete,
    /// A valid request for an endpoint this listener serves; `head` for HEAD (no body).
    Route {
        /// Which endpoint.
        route: Route,
        /// A HEAD request.
        head: bool,
    },
    /// Answer with this (an error) and close.
    Respond(Response),
}

/// Reads a request head (`buf` holds what arrived so far).
pub fn parse_request(buf: &[u8], listener: &Listener) -> Request {
    let end = find(buf, b"\r\n\r\n").or_else(|| find(buf, b"\n\n"));
    if end.is_none() {
        return if buf.len() >= MAX_REQUEST {
            Request::Respond(Response::text(431, "request head too large\n"))
        } else {
            Request::Incomplete
        };
    }
    let line_end = find(buf, b"\n").unwrap_or(buf.len());
    let line = String::from_utf8_lossy(&buf[..line_end]);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Respond(Response::text(400, "malformed request line\n"));
    };
    if !version.starts_with("HTTP/1.") {
        return Request::Respond(Response::text(505, "HTTP/1.x only\n"));
    }
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let mut response = Response::text(405, "method not allowed\n");
            response.allow = true;
            return Request::Respond(response);
        }
    };
    let path = target.split('?').next().unwrap_or_default();
    let route = match path {
        "/metrics" if listener.metrics => Route::Metrics,
        "/health" if listener.health => Route::Health,
        "/ready" if listener.ready => Route::Ready,
        _ => return Request::Respond(Response::text(404, "404 page not found\n")),
    };
    Request::Route { route, head }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An HTTP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// Send `Allow: GET, HEAD` (405).
    allow: bool,
}

impl Response {
    /// A plain-text response.
    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
            allow: false,
        }
    }

    /// The bytes to write; the connection is closed after them.
    pub fn to_bytes(&self, head: bool) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            505 => "HTTP Version Not Supported",
            _ => "",
        };
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        if self.allow {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("Connection: close\r\n\r\n");
        let mut bytes = out.into_bytes();
        if !head {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// `/health`: CoreDNS's health plugin says `OK` as long as the process serves, lameduck
/// included (the readiness probe is what takes a stopping server out of a Service).
pub fn health() -> Response {
    Response::text(200, "OK")
}

/// `/ready`: `OK`, else 503 with what is not ready (CoreDNS lists the plugins), or
/// `Shutting down` once a stop began.
pub fn ready(stopping: bool, not_ready: &[String]) -> Response {
    if stopping {
        Response::text(503, "Shutting down")
    } else if not_ready.is_empty() {
        Response::text(200, "OK")
    } else {
        Response::text(503, &not_ready.join(", "))
    }
}

/// `/metrics`: the gateways' snapshot plus the process-wide families (`reload_failed` is
/// the runtime's count of refused reloads), rendered.
pub fn metrics(mut snapshot: Snapshot, reload_failed: u64) -> Response {
    snapshot.counter(&families::RELOAD_FAILED, &[], reload_failed);
    Process::read().add_to(&mut snapshot);
    Response {
        status: 200,
        content_type: gatherdns_core::metrics::CONTENT_TYPE,
        body: gatherdns_core::metrics::render(snapshot).into_bytes(),
        allow: false,
    }
}

/// What `/health` and `/ready` answer from, shared by the runtime's threads: whether a stop
/// began, and whether the server has been ready once (CoreDNS's `monitor until-ready`).
#[derive(Debug, Default)]
pub struct State {
    stopping: AtomicBool,
    ready: AtomicBool,
}

impl State {
    /// A stop began (SIGTERM or SIGINT): `/ready` says `Shutting down` from now on.
    pub fn begin_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// True once a stop began.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// The `/ready` answer. `not_ready` is asked only until it once comes back empty.
    pub fn ready(&self, not_ready: impl FnOnce() -> Vec<String>) -> Response {
        if self.stopping() || self.ready.load(Ordering::Relaxed) {
            return ready(self.stopping(), &[]);
        }
        let waiting = not_ready();
        if waiting.is_empty() {
            self.ready.store(true, Ordering::Relaxed);
        }
        ready(false, &waiting)
    }
}

/// The log line of a SIGTERM with a lameduck period, as CoreDNS's health plugin prints it.
pub fn lameduck_line(lameduck: Duration) -> String {
    format!(
        "[INFO] plugin/health: Going into lameduck mode for {}",
        go_duration(lameduck)
    )
}

/// A duration as Go prints it for whole seconds and milliseconds (`5s`, `1.5s`, `300ms`).
fn go_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) && d.subsec_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Listener {
        Listener {
            addr: "127.0.0.1:8080".parse().expect("addr"),
            metrics: true,
            health: true,
            ready: true,
        }
    }

    #[test]
    fn requests_are_routed_or_refused() {
        let l = all();
        assert_eq!(
            parse_request(b"GET /health HTTP/1.1\r\nHost: x", &l),
            Request::Incomplete
        );
        assert_eq!(
            parse_request(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", &l),
            Request::Route {
                route: Route::Health,
                head: false
            }
        );
        assert_eq!(
            parse_request(b"HEAD /metrics?x=1 HTTP/1.0\n\n", &l),
            Request::Route {
                route: Route::Metrics,
                head: true
            }
        );
        let status = |buf: &[u8], l: &Listener| match parse_request(buf, l) {
            Request::Respond(r) => r.status,
            other @ (Request::Incomplete | Request::Route { .. }) => panic!("{other:?}"),
        };
        assert_eq!(status(b"POST /ready HTTP/1.1\r\n\r\n", &l), 405);
        assert_eq!(status(b"GET /nope HTTP/1.1\r\n\r\n", &l), 404);
        assert_eq!(status(b"GET /ready\r\n\r\n", &l), 400);
        assert_eq!(status(b"GET /ready SPDY/3\r\n\r\n", &l), 505);
        let health_only = Listener {
            metrics: false,
            ready: false,
            ..all()
        };
        assert_eq!(status(b"GET /ready HTTP/1.1\r\n\r\n", &health_only), 404);
        assert_eq!(status(&vec![b'a'; MAX_REQUEST], &l), 431);
    }

    #[test]
    fn responses_have_length_and_close() {
        let bytes = health().to_bytes(false);
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\
             Connection: close\r\n\r\nOK"
        );
        let head = String::from_utf8(ready(true, &[]).to_bytes(true)).expect("utf-8");
        assert!(head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(head.contains("Content-Length: 13\r\n") && head.ends_with("\r\n\r\n"));
        let r = ready(
            false,
            &["forward: upstream 10.0.0.1:53 not tried yet".into()],
        );
        assert_eq!(
            (r.status, r.body.as_slice()),
            (503, &b"forward: upstream 10.0.0.1:53 not tried yet"[..])
        );
        assert_eq!(ready(false, &[]).body, b"OK");
    }

    #[test]
    fn the_plan_shares_addresses_and_takes_the_longest_lameduck() {
        let text =
            "a.example.:1053 {\n  prometheus :9153\n  health :9153 {\n    lameduck 2s\n  }\n}\n\
                    b.example.:1053 {\n  health {\n    lameduck 5s\n  }\n  ready\n}\n";
        let config = gatherdns_core::corefile::parse_corefile_text(
            std::path::Path::new("Corefile"),
            text,
            &gatherdns_core::loader::MemLoader::new(),
            &gatherdns_core::corefile::ParseOptions::default(),
        )
        .expect("valid");
        let plan = Plan::from_config(&config);
        let addrs: Vec<String> = plan.listeners.iter().map(|l| l.addr.to_string()).collect();
        assert_eq!(addrs, ["0.0.0.0:9153", "0.0.0.0:8080", "0.0.0.0:8181"]);
        assert!(plan.listeners[0].metrics && plan.listeners[0].health && !plan.listeners[0].ready);
        assert_eq!(plan.lameduck, Duration::from_secs(5));
        assert!(plan.ready);
    }

    #[test]
    fn metrics_carry_the_process_counters() {
        let text = String::from_utf8(metrics(Snapshot::default(), 1).body).expect("utf-8");
        assert!(text.contains("coredns_reload_failed_total 1\n"), "{text}");
        if cfg!(target_os = "linux") {
            assert!(text.contains("process_resident_memory_bytes "), "{text}");
        }
    }

    #[test]
    fn ready_latches_and_stopping_wins() {
        let state = State::default();
        assert_eq!(state.ready(|| vec!["x".into()]).status, 503);
        assert_eq!(state.ready(Vec::new).status, 200);
        assert_eq!(state.ready(|| panic!("not asked once ready")).status, 200);
        state.begin_stopping();
        assert_eq!(state.ready(Vec::new).body, b"Shutting down");
    }

    #[test]
    fn lameduck_is_logged_as_coredns_does() {
        assert_eq!(
            lameduck_line(Duration::from_secs(5)),
            "[INFO] plugin/health: Going into lameduck mode for 5s"
        );
        assert_eq!(go_duration(Duration::from_millis(300)), "300ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
    }
}
