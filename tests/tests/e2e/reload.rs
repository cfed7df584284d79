//! Reloading the Corefile on the real binaries: SIGUSR1 under continuous query load loses no
//! query and the new configuration (a renamed cluster, a new port) answers afterwards; a broken
//! Corefile or a port that cannot be bound is logged and the old configuration keeps serving;
//! the `reload` directive picks up an edit without a signal.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

/// The gathered question every test asks.
const SRV: &str = "_demo._tcp.demo-service.default.svc.distributed.local.";

/// Queries the load test sends, about one a millisecond.
const LOAD: u16 = 2000;

/// Queries the load test keeps unanswered at most: enough to have many in flight across the
/// reload, few enough that a debug build on a small machine is never overloaded (overload
/// costs replies of its own, which is not what this test is about).
const WINDOW: usize = 32;

/// How long a reload may take to show.
const PICKUP: Duration = Duration::from_secs(10);

/// The demo, with a spare port (`@PORT2@`) for a block a reload adds.
fn demo(binary: &str) -> ServerBuilder {
    ServerBuilder::demo(binary).file("spare-port", "@PORT2@")
}

/// Replaces the Corefile the way a ConfigMap mount or an editor does: aside, then renamed.
fn rewrite(server: &Server, edit: impl FnOnce(String) -> String) {
    let path = server.dir().join("Corefile");
    let text = std::fs::read_to_string(&path).expect("read the Corefile");
    replace(&path, &edit(text));
}

fn replace(path: &Path, text: &str) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, text).expect("write the new Corefile");
    std::fs::rename(&aside, path).expect("rename it into place");
}

/// Cluster A's prefix becomes `x-`, and a block on the spare port answers `www.extra.local.`.
fn renamed_with_extra_port(server: &Server) -> impl FnOnce(String) -> String {
    let port = server.port(2);
    move |text| {
        let text = text.replace("cluster-a.local. a-", "cluster-a.local. x-");
        format!(
            "{text}\nextra.local.:{port} {{\n    bind 127.0.0.1\n    hosts {{\n        10.1.2.3 www.extra.local.\n    }}\n}}\n"
        )
    }
}

fn usr1(server: &Server) {
    let status = Command::new("kill")
        .args(["-USR1", &server.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -USR1 failed");
}

/// The first label of the first SRV target: `a-demo-service-0` or `x-demo-service-0`.
fn first_target(reply: &Reply) -> String {
    reply
        .answer
        .first()
        .and_then(|rr| rr.rsplit(' ').next())
        .and_then(|target| target.split('.').next())
        .unwrap_or_default()
        .to_string()
}

fn srv(server: SocketAddr, id: u16) -> Reply {
    ask(
        server,
        Transport::Udp,
        &query(SRV, Rtype::SRV, Some((1232, false)), id),
    )
}

/// Waits (bounded) until stdout has `needle`, then returns the line with it.
fn line_with(server: &Server, needle: &str) -> String {
    assert!(
        server.wait_for_stdout(needle, PICKUP),
        "no {needle:?} in stdout:\n{}",
        server.stdout()
    );
    server
        .stdout()
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_default()
        .to_string()
}

/// Sends `LOAD` gathered queries from one socket, one a millisecond at most and `WINDOW`
/// unanswered at most, and collects the replies by ID until all are in or the time is up.
/// `midway` runs on the calling thread once half are sent.
fn load_with(server: SocketAddr, midway: impl FnOnce()) -> BTreeMap<u16, Vec<Reply>> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("client socket");
    socket.connect(server).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    // The receiver only copies datagrams out (parsing comes after), so that it keeps up and
    // the client's socket buffer never overflows.
    let answered = Arc::new(AtomicUsize::new(0));
    let receiver = {
        let socket = socket.try_clone().expect("clone socket");
        let answered = answered.clone();
        thread::spawn(move || {
            let mut datagrams: Vec<Vec<u8>> = Vec::with_capacity(usize::from(LOAD));
            let mut ids = std::collections::BTreeSet::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut buf = vec![0u8; 65535];
            // Anything that comes late would be a duplicate: after the last one, a moment more.
            let mut until = deadline;
            while Instant::now() < until {
                if let Ok(len) = socket.recv(&mut buf) {
                    if len >= 2 {
                        ids.insert(u16::from_be_bytes([buf[0], buf[1]]));
                        answered.store(ids.len(), Ordering::Relaxed);
                    }
                    datagrams.push(buf[..len].to_vec());
                    if ids.len() == usize::from(LOAD) && until == deadline {
                        until = Instant::now() + Duration::from_millis(300);
                    }
                }
            }
            let mut replies: BTreeMap<u16, Vec<Reply>> = BTreeMap::new();
            for datagram in datagrams {
                let reply = Reply::parse(&datagram);
                replies.entry(reply.id).or_default().push(reply);
            }
            replies
        })
    };
    let mut midway = Some(midway);
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in 0..LOAD {
        while usize::from(id) >= answered.load(Ordering::Relaxed) + WINDOW
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_micros(200));
        }
        if id == LOAD / 2 {
            if let Some(action) = midway.take() {
                action();
            }
        }
        let msg = query(SRV, Rtype::SRV, Some((1232, false)), id).build();
        socket.send(&msg).expect("send");
        thread::sleep(Duration::from_millis(1));
    }
    receiver.join().expect("receiver thread")
}

#[test]
fn sigusr1_under_load_loses_no_query_and_the_new_configuration_answers() {
    for_each_binary(|binary| {
        let server = demo(binary).start();
        let addr = server.addr();
        assert_eq!(first_target(&srv(addr, 1)), "a-demo-service-0");
        let replies = load_with(addr, || {
            rewrite(&server, renamed_with_extra_port(&server));
            usr1(&server);
        });
        let missing: Vec<u16> = (0..LOAD).filter(|id| !replies.contains_key(id)).collect();
        assert!(
            missing.is_empty(),
            "no reply to {} queries: {missing:?}",
            missing.len()
        );
        let mut prefixes: BTreeMap<String, usize> = BTreeMap::new();
        for (id, got) in &replies {
            assert_eq!(got.len(), 1, "query {id} got {} replies", got.len());
            let reply = &got[0];
            assert_eq!(reply.rcode, "NOERROR", "query {id}: {reply:#?}");
            assert_eq!(reply.answer.len(), 4, "query {id}: {reply:#?}");
            *prefixes.entry(first_target(reply)).or_default() += 1;
        }
        line_with(&server, "[INFO] SIGUSR1: Reloading");
        let running = line_with(
            &server,
            "[INFO] plugin/reload: Running configuration SHA512 = ",
        );
        let sha = running.rsplit(' ').next().unwrap_or_default();
        assert!(
            sha.len() == 128 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
            "{running}"
        );
        line_with(&server, "[INFO] Reloading complete");
        assert_eq!(
            prefixes.len(),
            2,
            "both configurations answered: {prefixes:?}"
        );
        // The new configuration answers on the port that stayed and on the new one.
        assert_eq!(first_target(&srv(addr, 2)), "x-demo-service-0");
        let extra = ask(
            server.addr_of(2),
            Transport::Udp,
            &query("www.extra.local.", Rtype::A, None, 3),
        );
        assert_eq!(extra.answer, ["www.extra.local. 3600 A 10.1.2.3"]);
        let tcp = ask(
            server.addr_of(2),
            Transport::Tcp,
            &query("www.extra.local.", Rtype::A, None, 4),
        );
        assert_eq!(tcp.rcode, "NOERROR");
    });
}

#[test]
fn a_broken_corefile_is_reported_and_the_old_one_keeps_serving() {
    for_each_binary(|binary| {
        let mut server = demo(binary).start();
        let addr = server.addr();
        let good = std::fs::read_to_string(server.dir().join("Corefile")).expect("read");
        rewrite(&server, |text| {
            text.replace("cluster-a.local. a-", "cluster-a.local. x-")
                .replace("    log\n", "    log\n    bogus\n")
        });
        usr1(&server);
        let error = line_with(&server, "[ERROR] SIGUSR1: ");
        assert!(
            error.contains("Corefile:") && error.contains("unknown directive \"bogus\""),
            "{error}"
        );
        assert!(server.is_running());
        assert_eq!(first_target(&srv(addr, 1)), "a-demo-service-0");

        // A port another process holds: the reload fails as a whole, nothing closes.
        let holder = UdpSocket::bind(server.addr_of(2)).expect("hold the spare port");
        replace(&server.dir().join("Corefile"), &good);
        rewrite(&server, renamed_with_extra_port(&server));
        usr1(&server);
        let needle = format!("[ERROR] SIGUSR1: listen udp 127.0.0.1:{}", server.port(2));
        let error = line_with(&server, &needle);
        assert!(error.contains("address already in use"), "{error}");
        assert_eq!(first_target(&srv(addr, 2)), "a-demo-service-0");
        drop(holder);

        // Fixed: the next signal installs it.
        usr1(&server);
        line_with(&server, "[INFO] Reloading complete");
        assert_eq!(first_target(&srv(addr, 3)), "x-demo-service-0");
        let extra = ask(
            server.addr_of(2),
            Transport::Udp,
            &query("www.extra.local.", Rtype::A, None, 4),
        );
        assert_eq!(extra.rcode, "NOERROR");
    });
}

#[test]
fn the_reload_directive_picks_up_an_edit_without_a_signal() {
    for_each_binary(|binary| {
        let builder = ServerBuilder::demo(binary);
        let server = builder.start();
        rewrite(&server, |text| {
            text.replace("    errors\n", "    errors\n    reload 2s 1s\n")
        });
        // The first configuration has no `reload`: the signal brings it in.
        usr1(&server);
        line_with(&server, "[INFO] Reloading complete");
        let reloads = server.stdout().matches("Reloading complete").count();
        rewrite(&server, |text| {
            text.replace("cluster-a.local. a-", "cluster-a.local. x-")
        });
        let deadline = Instant::now() + PICKUP;
        let mut target = String::new();
        for id in 1.. {
            target = first_target(&srv(server.addr(), id));
            if target == "x-demo-service-0" || Instant::now() > deadline {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(target, "x-demo-service-0", "the edit was not picked up");
        // The main thread prints "complete" once every executor has installed it, which can
        // be a moment after the first executor answers with the new names.
        let deadline = Instant::now() + Duration::from_secs(3);
        while server.stdout().matches("Reloading complete").count() <= reloads
            && Instant::now() < deadline
        {
            thread::sleep(Duration::from_millis(20));
        }
        let stdout = server.stdout();
        assert!(stdout.contains("\n[INFO] Reloading\n"), "{stdout}");
        assert_eq!(stdout.matches("Reloading complete").count(), reloads + 1);
        // An unchanged file is not reloaded again.
        thread::sleep(Duration::from_secs(4));
        assert_eq!(
            server.stdout().matches("Reloading complete").count(),
            reloads + 1
        );
    });
}
