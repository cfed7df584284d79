//! `hosts` on the real binaries (examples/hosts): names, wildcards and PTR from the file, and
//! edits to the file picked up while queries run — none dropped — with a malformed edit
//! reported by line and the previous table kept in service.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::multicluster::example_with;

/// How long a changed file may take to be served: a few reload intervals.
const PICKUP: Duration = Duration::from_secs(10);

/// Replaces the file the way a ConfigMap mount or an editor does: write aside, rename over.
fn replace(path: &Path, text: &str) {
    let aside = path.with_extension("tmp");
    std::fs::write(&aside, text).expect("write the new hosts file");
    std::fs::rename(&aside, path).expect("rename it into place");
}

fn addresses(server: SocketAddr, name: &str, id: u16) -> (String, Vec<String>) {
    let reply = ask(server, Transport::Udp, &query(name, Rtype::A, None, id));
    let data = reply.answer_rrs().into_iter().map(|r| r.rdata).collect();
    (reply.rcode, data)
}

/// Waits (bounded) until `name` resolves to `want`.
fn wait_for(server: SocketAddr, name: &str, want: &[&str]) -> bool {
    let deadline = Instant::now() + PICKUP;
    while Instant::now() < deadline {
        if addresses(server, name, 0x4e4e).1 == want {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

fn hosts_server(binary: &str) -> Server {
    example_with(binary, "hosts", &[("reload 2s", "reload 100ms")]).start()
}

#[test]
fn hosts_example_answers_names_wildcards_and_ptr() {
    for_each_binary(|binary| {
        let server = hosts_server(binary);
        let addr = server.addr();
        assert_eq!(
            addresses(addr, "web.example.org.", 1),
            ("NOERROR".into(), vec!["10.0.0.1".into()])
        );
        assert_eq!(
            addresses(addr, "inline.example.org.", 2).1,
            vec!["10.0.0.100"]
        );
        assert_eq!(
            addresses(addr, "api.gateway.cluster-a.example.org.", 3).1,
            vec!["10.0.0.9"]
        );
        let reply = ask(
            addr,
            Transport::Tcp,
            &query("web.example.org.", Rtype::AAAA, None, 4),
        );
        assert_eq!(
            reply
                .answer_rrs()
                .iter()
                .map(|r| r.rdata.as_str())
                .collect::<Vec<_>>(),
            vec!["fd00::1"]
        );
        let reply = ask(
            addr,
            Transport::Udp,
            &query("1.0.0.10.in-addr.arpa.", Rtype::PTR, None, 5),
        );
        let names: Vec<String> = reply.answer_rrs().into_iter().map(|r| r.rdata).collect();
        assert_eq!(names, vec!["web.example.org.", "www.example.org."]);
        let reply = ask(
            addr,
            Transport::Udp,
            &query("nope.example.org.", Rtype::A, None, 6),
        );
        assert_eq!(reply.rcode, "NXDOMAIN");
        assert_eq!(
            reply.authority_rrs().first().map(|r| r.owner.as_str()),
            Some("example.org.")
        );
    });
}

#[test]
fn hosts_file_edits_are_picked_up_while_queries_run() {
    for_each_binary(|binary| {
        let server = hosts_server(binary);
        let addr = server.addr();
        let file = server.dir().join("example.hosts");

        // A client asking without pause the whole time; every query must get a reply.
        let stop = Arc::new(AtomicBool::new(false));
        let client = {
            let stop = stop.clone();
            thread::spawn(move || {
                let (mut answered, mut lost) = (0u32, 0u32);
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut id = 0u16;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    id = id.wrapping_add(1);
                    let msg = query("web.example.org.", Rtype::A, None, id).build();
                    match udp_exchange(addr, &msg, Duration::from_secs(2)) {
                        Ok(_) => answered += 1,
                        Err(_) => lost += 1,
                    }
                    // About a thousand queries a second: steady traffic, not a load test.
                    thread::sleep(Duration::from_millis(1));
                }
                (answered, lost)
            })
        };

        let edited = "10.0.0.11 web.example.org\n10.0.0.50 new.example.org\n";
        replace(&file, edited);
        assert!(
            wait_for(addr, "new.example.org.", &["10.0.0.50"]),
            "the edit was not picked up"
        );
        assert_eq!(addresses(addr, "web.example.org.", 7).1, vec!["10.0.0.11"]);
        assert_eq!(
            addresses(addr, "inline.example.org.", 8).1,
            vec!["10.0.0.100"],
            "inline entries stay"
        );

        // A malformed edit: reported with its line, the previous table stays.
        replace(
            &file,
            "10.0.0.60 newer.example.org\n10.0.0.300 broken.example.org\n",
        );
        let needle = "[ERROR] plugin/hosts: ";
        assert!(
            server.wait_for_stdout(needle, PICKUP),
            "no error logged:\n{}",
            server.stdout()
        );
        let line = server
            .stdout()
            .lines()
            .find(|l| l.starts_with(needle))
            .map(str::to_string);
        let line = line.unwrap_or_default();
        assert!(
            line.contains("example.hosts:2: hosts: \"10.0.0.300\" is not an IP address"),
            "{line}"
        );
        assert_eq!(addresses(addr, "new.example.org.", 9).1, vec!["10.0.0.50"]);
        assert_eq!(addresses(addr, "newer.example.org.", 10).0, "NXDOMAIN");

        // Fixed again: served again.
        replace(&file, "10.0.0.60 newer.example.org\n");
        assert!(
            wait_for(addr, "newer.example.org.", &["10.0.0.60"]),
            "the fix was not picked up"
        );

        stop.store(true, Ordering::Relaxed);
        let (answered, lost) = client.join().expect("client thread");
        assert!(answered > 0, "the client got no reply at all");
        assert_eq!(
            lost,
            0,
            "{lost} of {} queries got no reply during the edits",
            answered + lost
        );
    });
}
