//! What only gatherdns-glommio has: several executors behind SO_REUSEPORT (the kernel spreads
//! client sockets over them; each reports how many replies it sent when it stops), the one
//! connection limit they share, and the clear refusal to start without io_uring.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use gatherdns_tests::tools::{Tool, PRLIMIT};

use crate::common::*;

const BINARY: &str = "gatherdns-glommio";

/// A zone of its own and no gathering, so that every reply an executor counts answers a
/// client of this test (the demo's executors also answer each other's sub-queries).
const SMALL: &str = "example.test.:@PORT0@ {\n    bind 127.0.0.1\n    file example.test.zone\n}\n";
const SMALL_ZONE: &str = "$ORIGIN example.test.\n$TTL 60\n\
    @ IN SOA ns.example.test. hostmaster.example.test. 1 7200 3600 1209600 30\n\
    @ IN NS ns.example.test.\nns IN A 192.0.2.1\nwww IN A 192.0.2.2\n";

/// `[INFO] executor N answered M queries` lines, as the server prints them when it stops.
fn answered_per_executor(stdout: &str) -> BTreeMap<usize, u64> {
    stdout
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("[INFO] executor ")?;
            let (index, rest) = rest.split_once(" answered ")?;
            let count = rest.strip_suffix(" queries")?;
            Some((index.parse().ok()?, count.parse().ok()?))
        })
        .collect()
}

/// Sends `count` queries pipelined on one connection and checks that each comes back once,
/// matched by ID and question.
fn pipelined(server: std::net::SocketAddr, first_id: u16, count: u16, names: &[(&str, Rtype)]) {
    let mut client = TcpClient::connect(server, REPLY_TIMEOUT).expect("connect");
    let mut sent = BTreeMap::new();
    for i in 0..count {
        let (name, qtype) = names[usize::from(i) % names.len()];
        let id = first_id + i;
        client
            .send(&query(name, qtype, None, id).build())
            .expect("send");
        sent.insert(id, format!("{} {qtype}", name.trim_end_matches('.')));
    }
    let mut got = BTreeMap::new();
    for _ in 0..count {
        let reply = Reply::parse(&client.recv().expect("every pipelined query is answered"));
        assert!(
            got.insert(reply.id, reply.question.join(" ")).is_none(),
            "two replies for ID {}",
            reply.id
        );
    }
    assert_eq!(got, sent, "one reply per query, matched by ID and question");
}

#[test]
fn client_sockets_are_spread_over_the_executors() {
    let pidfile = tempfile::NamedTempFile::new().expect("temp file");
    let pidpath = pidfile.path().display().to_string();
    let mut server = ServerBuilder::new(BINARY, SMALL)
        .file("example.test.zone", SMALL_ZONE)
        .args(&["-threads", "2", "-pidfile", &pidpath])
        .start();
    // Every executor serves only once the pidfile and the banner are out.
    let pid = std::fs::read_to_string(&pidpath).expect("pidfile written before serving");
    assert_eq!(pid.trim(), server.pid().to_string());
    // Each socket has its own source port, which the kernel hashes to pick an executor.
    let www = query("www.example.test.", Rtype::A, None, 7);
    for i in 0..64 {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("timeout");
        socket.send_to(&www.build(), server.addr()).expect("send");
        let mut buf = [0u8; 512];
        let (len, _) = socket.recv_from(&mut buf).expect("a reply on every socket");
        let reply = Reply::parse(&buf[..len]);
        assert_eq!(reply.answer.len(), 1, "socket {i}: {reply:#?}");
    }
    // TCP connections land on executors the same way, and each keeps its pipeline.
    let names = [
        ("www.example.test.", Rtype::A),
        ("nothing.example.test.", Rtype::A),
        ("example.test.", Rtype::SOA),
    ];
    for c in 0..8u16 {
        pipelined(server.addr(), 1000 * (c + 1), 100, &names);
    }
    let status = server.terminate().expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "stderr: {}", server.stderr());
    assert!(
        server.wait_for_stdout("executor 1 answered", Duration::from_secs(2)),
        "{}",
        server.stdout()
    );
    let answered = answered_per_executor(&server.stdout());
    assert_eq!(
        answered.len(),
        2,
        "one line per executor: {}",
        server.stdout()
    );
    assert!(
        answered.values().all(|n| *n > 0),
        "every executor answered some of 64 sockets and 8 connections: {answered:?}"
    );
    // The probes of the harness are answered too.
    assert!(answered.values().sum::<u64>() >= 64 + 800, "{answered:?}");
}

#[test]
fn two_executors_serve_the_demo_like_one() {
    let server = ServerBuilder::demo(BINARY).args(&["-threads", "2"]).start();
    check_demo_answers(server.addr());
    // Gathering crosses executors here: a sub-query may be answered by the other one.
    for i in 0..20u16 {
        let reply = ask(
            server.addr(),
            Transport::Udp,
            &query(SRV_QNAME, Rtype::SRV, Some((1232, false)), 100 + i),
        );
        assert_spec_srv(&reply, SRV_QNAME, Some((1232, false)));
    }
    let names = [
        (SRV_QNAME, Rtype::SRV),
        ("a-demo-service-0.default.svc.distributed.local.", Rtype::A),
        ("demo-service.default.svc.distributed.local.", Rtype::A),
        ("nothing-here.default.svc.distributed.local.", Rtype::A),
    ];
    for c in 0..4u16 {
        pipelined(server.addr(), 1000 * (c + 1), 200, &names);
    }
}

#[test]
fn the_connection_limit_holds_over_all_executors() {
    const CAP: usize = 1000;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<usize>().ok());
    if files.is_some_and(|n| n < 2 * CAP + 200) {
        eprintln!("SKIPPED: open-file limit {files:?} < {}", 2 * CAP + 200);
        return;
    }
    let server = ServerBuilder::new(BINARY, SMALL)
        .file("example.test.zone", SMALL_ZONE)
        .args(&["-threads", "2"])
        .start();
    let www = query("www.example.test.", Rtype::A, None, 9);
    let mut open = Vec::with_capacity(CAP);
    for i in 0..CAP {
        let mut client = TcpClient::connect(server.addr(), REPLY_TIMEOUT)
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        // A reply proves the server accepted this connection and counts it.
        client.send(&www.build()).expect("send");
        let reply = Reply::parse(&client.recv().expect("reply"));
        assert_eq!(reply.answer.len(), 1);
        open.push(client);
    }
    let mut extra =
        TcpClient::connect(server.addr(), REPLY_TIMEOUT).expect("the kernel still accepts");
    let started = Instant::now();
    assert!(
        extra.is_closed_by_server(),
        "connection {} is over the limit whichever executor takes it",
        CAP + 1
    );
    assert!(started.elapsed() < Duration::from_secs(3), "closed at once");
}

/// Drops root's CAP_SYS_RESOURCE before prlimit runs, where it is installed; optional.
const SETPRIV: Tool = Tool {
    name: "setpriv",
    candidates: &["/usr/bin/setpriv"],
};

#[test]
#[cfg_attr(no_prlimit, ignore = "needs prlimit: apt-get install util-linux")]
fn without_io_uring_it_says_so_and_names_gatherdns_smol() {
    let prlimit = require_tool(PRLIMIT);
    let port = free_ports(1)[0];
    let dir = tempfile::tempdir().expect("temporary directory");
    let corefile = dir.path().join("Corefile");
    std::fs::write(&corefile, SMALL.replace("@PORT0@", &port.to_string())).expect("Corefile");
    std::fs::write(dir.path().join("example.test.zone"), SMALL_ZONE).expect("zone");
    // No locked memory at all, soft and hard. Root may raise a hard limit (CAP_SYS_RESOURCE),
    // so that capability goes first where setpriv can drop it.
    let mut command = match SETPRIV.find() {
        Some(setpriv) => {
            let mut c = Command::new(setpriv);
            c.args([
                "--bounding-set",
                "-sys_resource",
                "--inh-caps",
                "-sys_resource",
            ])
            .arg(&prlimit);
            c
        }
        None => Command::new(&prlimit),
    };
    let output = command
        .args(["--memlock=0:0", "--"])
        .arg(binary(BINARY))
        .arg("-conf")
        .arg(&corefile)
        .current_dir(dir.path())
        .output()
        .expect("run the server under prlimit");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("io_uring is unavailable") && stderr.contains("RLIMIT_MEMLOCK"),
        "{stderr}"
    );
    assert!(stderr.contains("run gatherdns-smol instead"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The resilience suite's dead cluster, with two executors: once one executor has marked the
/// upstream down, the other skips it too (the verdict crosses executors), so no later query
/// waits for the dead cluster, whichever executor the kernel hands it to.
#[test]
fn a_dead_cluster_is_skipped_by_every_executor() {
    let hole = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let dead = hole.local_addr().expect("addr");
    let corefile = format!(
        "distributed.local.:@PORT0@ {{\n    bind 127.0.0.1\n    gathersrv distributed.local. {{\n        \
         cluster-a.local. a-\n        cluster-b.local. b-\n    }}\n    forward cluster-a.local. 127.0.0.1:@PORT1@\n    \
         forward cluster-b.local. {dead}\n}}\n\
         cluster-a.local.:@PORT1@ {{\n    bind 127.0.0.1\n    file cluster-a.local.zone\n}}\n"
    );
    let zone = std::fs::read_to_string(demo_dir().join("cluster-a.local.zone")).expect("zone");
    let server = ServerBuilder::new(BINARY, &corefile)
        .file("cluster-a.local.zone", &zone)
        .args(&["-threads", "2"])
        .start();
    let srv = |id| query(SRV_QNAME, Rtype::SRV, Some((1232, false)), id);
    let _ = ask(server.addr(), Transport::Udp, &srv(1));
    for id in 2..22 {
        let started = Instant::now();
        let _ = ask(server.addr(), Transport::Udp, &srv(id));
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "query {id} waited {:?} for a cluster already known to be dead",
            started.elapsed()
        );
    }
    let mut server = server;
    let status = server.terminate().expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "stderr: {}", server.stderr());
    assert!(
        server.wait_for_stdout("executor 1 answered", Duration::from_secs(2)),
        "{}",
        server.stdout()
    );
    let answered = answered_per_executor(&server.stdout());
    assert!(
        answered.len() == 2 && answered.values().all(|n| *n > 0),
        "both executors answered some of the 21 sockets: {answered:?}"
    );
}

/// `-cpus LIST` pins one executor to each CPU listed: the executor's thread may run on that
/// CPU only. A CPU the process may not use stops startup with a message that says so.
#[test]
fn cpus_pins_one_executor_per_listed_cpu() {
    let server = ServerBuilder::new(BINARY, SMALL)
        .file("example.test.zone", SMALL_ZONE)
        .args(&["-cpus", "0"])
        .start();
    let reply = ask(
        server.addr(),
        Transport::Udp,
        &query("www.example.test.", Rtype::A, None, 7),
    );
    assert_eq!(reply.answer.len(), 1);
    let tasks = std::fs::read_dir(format!("/proc/{}/task", server.pid())).expect("tasks");
    let executors: Vec<String> = tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .filter(|status| {
            status
                .lines()
                .any(|l| l.starts_with("Name:") && l.contains("executor-"))
        })
        .filter_map(|status| {
            let line = status
                .lines()
                .find(|l| l.starts_with("Cpus_allowed_list:"))?;
            Some(line["Cpus_allowed_list:".len()..].trim().to_string())
        })
        .collect();
    // glommio's helper threads inherit the executor thread's name and its affinity.
    assert!(
        !executors.is_empty() && executors.iter().all(|cpus| cpus == "0"),
        "the executor's threads run on CPU 0 only: {executors:?}"
    );

    let out = ServerBuilder::new(BINARY, SMALL)
        .file("example.test.zone", SMALL_ZONE)
        .args(&["-cpus", "4000"])
        .run_to_exit();
    assert_eq!(out.status.and_then(|s| s.code()), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("-cpus: CPU 4000 is not one this process may run on"),
        "{}",
        out.stderr
    );
}
