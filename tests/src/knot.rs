//! Knot DNS as a real cluster DNS for end-to-end tests: a knot.conf and zone files written into
//! a temporary directory, `knotd` on a free loopback port, probed until it answers, killed on
//! drop. Knot is an independent implementation, so gathering from it checks our wire handling
//! against someone else's.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;

use crate::dns_client::{udp_exchange, QuerySpec, Reply};
use crate::server::{free_ports, require_tool};
use crate::tools::KNOTD;

/// How long knotd may take to load its zones and answer.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running knotd; killed when dropped.
pub struct Knot {
    child: Child,
    dir: tempfile::TempDir,
    addr: SocketAddr,
}

impl Knot {
    /// The knotd binary; panics if it is missing (see [`require_tool`]).
    pub fn binary() -> PathBuf {
        require_tool(KNOTD)
    }

    /// Serves `zones` (`(origin, zone file text)`) on a free port; panics if knotd is missing
    /// or does not come up.
    pub fn start(zones: &[(&str, &str)]) -> Knot {
        Knot::start_on_ip(IpAddr::V4(Ipv4Addr::LOCALHOST), zones)
    }

    /// Serves `zones` on a free port of `ip` (`::1` for the IPv6 tests).
    pub fn start_on_ip(ip: IpAddr, zones: &[(&str, &str)]) -> Knot {
        let port = free_ports(1)[0];
        Knot::start_on(SocketAddr::new(ip, port), zones)
    }

    /// Serves `zones` on `addr` (port 53 of an address of a network namespace, say).
    pub fn start_on(addr: SocketAddr, zones: &[(&str, &str)]) -> Knot {
        let knotd = Knot::binary();
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path().display().to_string();
        let (ip, port) = (addr.ip(), addr.port());
        let mut conf = format!(
            "server:\n    rundir: \"{root}\"\n    listen: {ip}@{port}\n    udp-workers: 1\n    \
             tcp-workers: 1\n    background-workers: 1\n\
             control:\n    listen: \"{root}/knot.sock\"\n\
             database:\n    storage: \"{root}/db\"\n\
             log:\n  - target: stderr\n    any: warning\n\
             template:\n  - id: default\n    storage: \"{root}\"\n    zonefile-sync: -1\n    \
             zonefile-load: whole\n    journal-content: none\n\
             zone:\n"
        );
        for (origin, text) in zones {
            let file = match origin.trim_end_matches('.') {
                "" => "root.zone".to_string(),
                name => format!("{name}.zone"),
            };
            std::fs::write(dir.path().join(&file), text).expect("write zone file");
            conf.push_str(&format!("  - domain: {origin}\n    file: \"{file}\"\n"));
        }
        let conf_path = dir.path().join("knot.conf");
        std::fs::write(&conf_path, conf).expect("write knot.conf");
        // A file rather than a pipe: nobody reads a pipe while knotd runs, and a full one
        // would block it.
        let log = std::fs::File::create(dir.path().join("knotd.log")).expect("create knotd.log");
        let child = Command::new(knotd)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn knotd");
        let mut knot = Knot { child, dir, addr };
        let first = zones.first().map_or(".", |z| z.0);
        knot.wait_until_serving(first);
        knot
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Waits until knotd answers the SOA of `zone` authoritatively.
    fn wait_until_serving(&mut self, zone: &str) {
        let probe = QuerySpec::new(zone, Rtype::SOA).id(0x4b4e).build();
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let err =
                    std::fs::read_to_string(self.dir.path().join("knotd.log")).unwrap_or_default();
                panic!("knotd exited with {status} before serving {zone}: {err}");
            }
            if let Ok(bytes) = udp_exchange(self.addr, &probe, Duration::from_millis(200)) {
                if Reply::try_parse(&bytes).is_ok_and(|r| r.aa && !r.answer.is_empty()) {
                    return;
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "knotd did not serve {zone} on {} within {START_TIMEOUT:?}",
            self.addr
        );
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
