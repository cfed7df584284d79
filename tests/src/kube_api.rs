//! A Kubernetes API server for tests, on loopback, that speaks the real protocol for the two
//! resources `multicluster` reads: lists with a `resourceVersion` (and `limit`/`continue`
//! pages), `?watch=true` streams of newline-delimited JSON events (ADDED, MODIFIED,
//! DELETED, BOOKMARK, and ERROR with `410 Gone` for a compacted version), label selectors,
//! and objects shaped as the API returns them ([`service_import`], [`endpoint_slice`]).
//! Tests change objects while gatherdns watches, drop every watch, compact the history,
//! and take the server down and up again on the same port. Requests must carry the bearer
//! token [`TOKEN`] (401 otherwise); [`KubeApi::new_tls`] serves HTTPS with a certificate for
//! 127.0.0.1 from a CA made for the test, as an in-cluster client expects.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::{json, Value};

/// ServiceImports: `multicluster.x-k8s.io/v1alpha1`.
pub const IMPORTS: &str = "/apis/multicluster.x-k8s.io/v1alpha1/serviceimports";
/// EndpointSlices: `discovery.k8s.io/v1`.
pub const SLICES: &str = "/apis/discovery.k8s.io/v1/endpointslices";

/// The bearer token every request must carry.
pub const TOKEN: &str = "test-token";

/// How often an idle watch gets a BOOKMARK.
const BOOKMARK_EVERY: Duration = Duration::from_millis(300);

/// One change, as a watch reports it.
#[derive(Clone)]
struct Change {
    version: u64,
    path: &'static str,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct State {
    version: u64,
    /// Objects by (resource path, namespace, name).
    objects: BTreeMap<(&'static str, String, String), Value>,
    log: Vec<Change>,
    /// Versions at or below this are compacted: a watch from them gets 410.
    compacted: u64,
    /// Bumped to end every open watch.
    epoch: u64,
    /// Every request line received, in order.
    requests: Vec<String>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    tls: Option<Arc<ServerConfig>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The server's listener: dropping it (or [`KubeApi::stop`]) closes every connection.
struct Running {
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A test API server; its objects survive [`KubeApi::stop`] and [`KubeApi::start`].
pub struct KubeApi {
    shared: Arc<Shared>,
    port: u16,
    running: Option<Running>,
}

impl KubeApi {
    /// A server on a free loopback port, serving.
    pub fn new() -> KubeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test API server");
        let port = listener.local_addr().expect("addr").port();
        let mut api = KubeApi::down(port);
        api.serve(listener);
        api
    }

    /// A server for `port` that is not listening yet (the API is down); [`KubeApi::start`].
    pub fn down(port: u16) -> KubeApi {
        KubeApi::with_tls(port, None)
    }

    /// An HTTPS server on a free loopback port, serving, and the PEM of the CA that signed
    /// its certificate (for 127.0.0.1), as a service account's `ca.crt` holds it.
    pub fn new_tls() -> (KubeApi, String) {
        let (config, ca) = tls_config();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the test API server");
        let port = listener.local_addr().expect("addr").port();
        let mut api = KubeApi::with_tls(port, Some(config));
        api.serve(listener);
        (api, ca)
    }

    fn with_tls(port: u16, tls: Option<Arc<ServerConfig>>) -> KubeApi {
        KubeApi {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    version: 100,
                    ..State::default()
                }),
                changed: Condvar::new(),
                tls,
            }),
            port,
            running: None,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A kubeconfig that points at this server, with a bearer token, as kubectl writes one.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n\
             current-context: test\nusers:\n- name: test\n  user:\n    token: {TOKEN}\n",
            self.url()
        )
    }

    /// Listens again on the same port (after [`KubeApi::stop`], or for [`KubeApi::down`]).
    pub fn start(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(listener) => break listener,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                Err(e) => panic!("cannot listen on 127.0.0.1:{} again: {e}", self.port),
            }
        };
        self.serve(listener);
    }

    /// Stops listening and ends every connection: the API is gone.
    pub fn stop(&mut self) {
        self.drop_watches();
        self.running = None;
    }

    fn serve(&mut self, listener: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, flag) = (self.shared.clone(), stop.clone());
        let addr = listener.local_addr().expect("addr");
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (shared, flag) = (shared.clone(), flag.clone());
                thread::spawn(move || {
                    let _ = handle(&shared, &flag, stream);
                });
            }
        });
        self.running = Some(Running {
            stop,
            addr,
            thread: Some(thread),
        });
    }

    /// Adds or replaces an object (ADDED or MODIFIED for the watches); its
    /// `metadata.resourceVersion` is set to the new version.
    pub fn apply(&self, path: &'static str, mut object: Value) {
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let mut state = self.shared.lock();
        state.version += 1;
        let version = state.version;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        let key = (path, ns, name);
        let kind = if state.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        state.objects.insert(key, object.clone());
        state.log.push(Change {
            version,
            path,
            kind,
            object,
        });
        drop(state);
        self.shared.changed.notify_all();
    }

    /// Deletes an object (DELETED for the watches).
    pub fn delete(&self, path: &'static str, namespace: &str, name: &str) {
        let mut state = self.shared.lock();
        let key = (path, namespace.to_string(), name.to_string());
        let Some(mut object) = state.objects.remove(&key) else {
            return;
        };
        state.version += 1;
        let version = state.version;
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        state.log.push(Change {
            version,
            path,
            kind: "DELETED",
            object,
        });
        drop(state);
        self.shared.changed.notify_all();
    }

    /// Ends every open watch (the client must resume from its last resourceVersion).
    pub fn drop_watches(&self) {
        self.shared.lock().epoch += 1;
        self.shared.changed.notify_all();
    }

    /// Forgets the history so far: resuming from an earlier version gets `410 Gone`.
    pub fn compact(&self) {
        let mut state = self.shared.lock();
        state.compacted = state.version;
        state.log.clear();
    }

    /// The request lines received so far (`GET /apis/...?... HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.shared.lock().requests.clone()
    }

    /// Waits (bounded) until a request line matching `pred` has come.
    pub fn wait_for_request(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.requests().iter().any(|r| pred(r)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Default for KubeApi {
    fn default() -> Self {
        KubeApi::new()
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The parts of a request line the server reads.
struct Request {
    path: String,
    query: BTreeMap<String, String>,
}

fn parse_request(line: &str) -> Option<Request> {
    let target = line.split_whitespace().nth(1)?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect();
    Some(Request {
        path: path.to_string(),
        query,
    })
}

/// Percent-decoding of a query component (`+` is a space).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True if `object`'s labels satisfy a selector of `key`, `key=value` and `!key` terms.
fn selected(object: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    let labels = &object["metadata"]["labels"];
    selector.split(',').all(|term| {
        if let Some(key) = term.strip_prefix('!') {
            labels.get(key).is_none()
        } else if let Some((key, value)) = term.split_once('=') {
            labels
                .get(key.trim_end_matches('='))
                .and_then(Value::as_str)
                == Some(value)
        } else {
            labels.get(term).is_some()
        }
    })
}

/// A connection, plain or TLS; `cut` ends it as a broken connection would.
trait Conn: Read + Write {
    fn cut(&mut self);
}

impl Conn for TcpStream {
    fn cut(&mut self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Conn for StreamOwned<ServerConnection, TcpStream> {
    fn cut(&mut self) {
        let _ = self.sock.shutdown(Shutdown::Both);
    }
}

fn handle(shared: &Shared, stop: &AtomicBool, stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    match &shared.tls {
        None => serve_request(shared, stop, stream),
        Some(config) => {
            let tls = ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
            serve_request(shared, stop, StreamOwned::new(tls, stream))
        }
    }
}

/// The request head, up to the blank line.
fn read_head(conn: &mut impl Read) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        if conn.read(&mut byte)? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn serve_request(shared: &Shared, stop: &AtomicBool, mut out: impl Conn) -> std::io::Result<()> {
    let head = read_head(&mut out)?;
    let mut lines = head.lines();
    let line = lines.next().unwrap_or_default().trim().to_string();
    let authorized = lines.any(|h| {
        h.split_once(':').is_some_and(|(k, v)| {
            k.eq_ignore_ascii_case("authorization") && v.trim() == format!("Bearer {TOKEN}")
        })
    });
    shared.lock().requests.push(line.clone());
    if !authorized {
        return respond(&mut out, 401, &status(401, "Unauthorized", "Unauthorized"));
    }
    let Some(request) = parse_request(&line) else {
        return respond(
            &mut out,
            400,
            &status(400, "BadRequest", "malformed request line"),
        );
    };
    let path: &'static str = match request.path.as_str() {
        IMPORTS => IMPORTS,
        SLICES => SLICES,
        other => {
            let body = status(
                404,
                "NotFound",
                &format!("the server could not find the requested resource ({other})"),
            );
            return respond(&mut out, 404, &body);
        }
    };
    let watching = matches!(
        request.query.get("watch").map(String::as_str),
        Some("true" | "1")
    );
    if watching {
        watch(shared, stop, &mut out, path, &request)
    } else {
        list(shared, &mut out, path, &request)
    }
}

fn list(
    shared: &Shared,
    out: &mut impl Conn,
    path: &'static str,
    request: &Request,
) -> std::io::Result<()> {
    let state = shared.lock();
    let selector = request.query.get("labelSelector");
    let all: Vec<&Value> = state
        .objects
        .iter()
        .filter(|((p, _, _), o)| *p == path && selected(o, selector))
        .map(|(_, o)| o)
        .collect();
    let start: usize = request
        .query
        .get("continue")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let limit: usize = request
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(limit)
        .map(|o| (*o).clone())
        .collect();
    let mut metadata = json!({ "resourceVersion": state.version.to_string() });
    if start + page.len() < all.len() {
        metadata["continue"] = json!((start + page.len()).to_string());
    }
    let (api_version, kind) = kind_of(path);
    let body = json!({
        "apiVersion": api_version,
        "kind": format!("{kind}List"),
        "metadata": metadata,
        "items": page,
    });
    drop(state);
    respond(out, 200, &body)
}

fn watch(
    shared: &Shared,
    stop: &AtomicBool,
    out: &mut impl Conn,
    path: &'static str,
    request: &Request,
) -> std::io::Result<()> {
    let selector = request.query.get("labelSelector").cloned();
    let timeout = request
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(Duration::from_secs(300), Duration::from_secs);
    let mut from: u64 = request
        .query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )?;
    let (api_version, kind) = kind_of(path);
    let deadline = Instant::now() + timeout;
    let mut state = shared.lock();
    let epoch = state.epoch;
    if from < state.compacted {
        let message = format!("too old resource version: {from} ({})", state.compacted);
        drop(state);
        let error = json!({"type": "ERROR", "object": status(410, "Expired", &message)});
        chunk(out, &error)?;
        return end(out);
    }
    let mut last_sent = Instant::now();
    loop {
        let changes: Vec<Change> = state
            .log
            .iter()
            .filter(|c| c.version > from && c.path == path)
            .cloned()
            .collect();
        let newest = state.version;
        drop(state);
        for change in changes {
            from = change.version;
            if selected(&change.object, selector.as_ref()) {
                chunk(out, &json!({"type": change.kind, "object": change.object}))?;
                last_sent = Instant::now();
            }
        }
        if last_sent.elapsed() >= BOOKMARK_EVERY {
            from = from.max(newest);
            let bookmark = json!({"type": "BOOKMARK", "object": {
                "apiVersion": api_version, "kind": kind,
                "metadata": {"resourceVersion": from.to_string()}}});
            chunk(out, &bookmark)?;
            last_sent = Instant::now();
        }
        state = shared.lock();
        if state.epoch != epoch || stop.load(Ordering::SeqCst) {
            drop(state);
            // Cut, as a restarting API server or a broken connection does: no final chunk.
            out.cut();
            return Ok(());
        }
        if Instant::now() >= deadline {
            drop(state);
            return end(out);
        }
        state = shared
            .changed
            .wait_timeout(state, Duration::from_millis(50))
            .map(|(s, _)| s)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

fn kind_of(path: &str) -> (&'static str, &'static str) {
    if path == IMPORTS {
        ("multicluster.x-k8s.io/v1alpha1", "ServiceImport")
    } else {
        ("discovery.k8s.io/v1", "EndpointSlice")
    }
}

/// A `meta/v1` Status, as the API reports errors.
fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn respond(out: &mut impl Conn, code: u16, body: &Value) -> std::io::Result<()> {
    let text = body.to_string();
    let reason = match code {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        410 => "Gone",
        _ => "Bad Request",
    };
    write!(
        out,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    out.flush()
}

fn chunk(out: &mut impl Conn, event: &Value) -> std::io::Result<()> {
    let line = format!("{event}\n");
    write!(out, "{:x}\r\n{line}\r\n", line.len())?;
    out.flush()
}

fn end(out: &mut impl Conn) -> std::io::Result<()> {
    out.write_all(b"0\r\n\r\n")?;
    out.flush()
}

/// A ServiceImport as the API returns it. `kind` is `ClusterSetIP` or `Headless`; `ports`
/// are `(name, protocol, port)`.
pub fn service_import(
    namespace: &str,
    name: &str,
    kind: &str,
    ips: &[&str],
    ports: &[(&str, &str, u16)],
) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(n, p, port)| json!({"name": n, "protocol": p, "port": port}))
        .collect();
    json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1",
        "kind": "ServiceImport",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("00000000-0000-4000-8000-{:012x}", fnv(&format!("{namespace}/{name}"))),
            "generation": 1,
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
        "spec": {"type": kind, "ips": ips, "ports": ports, "sessionAffinity": "None"},
        "status": {"clusters": [{"cluster": "cluster-a"}, {"cluster": "cluster-b"}]},
    })
}

/// One endpoint of [`endpoint_slice`]: address, hostname, ready.
pub type EndpointSpec<'a> = (&'a str, Option<&'a str>, bool);

/// An EndpointSlice as an MCS controller makes it for an import: labelled with the service
/// name and the source cluster. `family` is `IPv4` or `IPv6`.
pub fn endpoint_slice(
    namespace: &str,
    name: &str,
    service: &str,
    cluster: &str,
    family: &str,
    ports: &[(&str, &str, u16)],
    endpoints: &[EndpointSpec<'_>],
) -> Value {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(n, p, port)| json!({"name": n, "protocol": p, "port": port}))
        .collect();
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(address, hostname, ready)| {
            let mut e = json!({
                "addresses": [address],
                "conditions": {"ready": ready, "serving": ready, "terminating": false},
            });
            if let Some(h) = hostname {
                e["hostname"] = json!(h);
            }
            e
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("00000000-0000-4000-9000-{:012x}", fnv(&format!("{namespace}/{name}"))),
            "generation": 1,
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "labels": {
                "endpointslice.kubernetes.io/managed-by": "mcs-controller.x-k8s.io",
                "multicluster.kubernetes.io/service-name": service,
                "multicluster.kubernetes.io/source-cluster": cluster,
            },
        },
        "addressType": family,
        "endpoints": endpoints,
        "ports": ports,
    })
}

/// A stable number for fixture UIDs.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    }) & 0xffff_ffff_ffff
}

/// A CA made for the test and a certificate it signed for 127.0.0.1: the server's TLS
/// configuration and the CA's PEM.
fn tls_config() -> (Arc<ServerConfig>, String) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "gatherdns test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let key = rcgen::KeyPair::generate().expect("server key");
    let mut params =
        rcgen::CertificateParams::new(vec!["kubernetes.default.svc".to_string()]).expect("params");
    params.subject_alt_names.push(rcgen::SanType::IpAddress(
        std::net::Ipv4Addr::LOCALHOST.into(),
    ));
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .expect("server certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("TLS configuration");
    (Arc::new(config), ca.pem())
}
