//! Real server processes for end-to-end tests: a Corefile and data files written into a
//! temporary directory, free loopback ports, the binary started and probed until it answers,
//! its output captured, and the process killed when the handle is dropped.
//!
//! Finding the binary: a bin-only package cannot be a (dev-)dependency (Cargo ignores it, and
//! `CARGO_BIN_EXE_*` exists only for the binary's own package), so the harness asks Cargo to
//! build it, once per test process, into the target directory the test binary itself lives
//! in (`target/<profile>/deps/e2e-…` → `target/<profile>/gatherdns-smol`). That build is a
//! no-op when the binary is fresh, and it keeps `cargo test -p gatherdns-tests` honest after
//! an edit to a runtime. `GATHERDNS_BIN_DIR` points at prebuilt binaries instead.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;

use crate::dns_client::{udp_exchange, QuerySpec};
use crate::tools::{in_ci, Tool};

/// The server binaries every end-to-end test runs against.
pub const BINARIES: &[&str] = &["gatherdns-smol", "gatherdns-glommio"];

/// Executors of gatherdns-glommio in the shared suite, unless a test passes `-threads` itself;
/// `GATHERDNS_GLOMMIO_THREADS` overrides it (the suite passed a dozen times with 2, also under
/// CPU hogs). One, because a fresh-clone CI run with 2, on CPUs oversubscribed by busy loops
/// and a compiler besides the suite, saw one executor answer nothing for over 5 s (no log line,
/// no reply): a glommio stall not understood yet, which CI must not depend on. The multi-executor behaviour (shared health
/// verdicts, spreading, pipelined TCP) is tested in e2e/glommio.rs.
const GLOMMIO_SUITE_THREADS: &str = "1";

/// How long a server may take to answer its first query.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a one-shot run (`-validate`, a failing start) may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the demo lives, relative to this crate.
pub fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo")
}

/// The path of an external program a test cannot run without. Such a test carries
/// `#[cfg_attr(no_<tool>, ignore = "needs <tool>: apt-get install <package>")]`, which
/// `build.rs` turns on when the program is missing outside CI. Reaching this without it means
/// CI lacks an install step (or the program went away after the build): the test fails.
pub fn require_tool(tool: Tool) -> PathBuf {
    tool.find().unwrap_or_else(|| {
        let ci = if in_ci() {
            "CI is set, so the test is not ignored: the CI script must install it"
        } else {
            "it was found when this test binary was built; `cargo test` rebuilds it to ignore the test"
        };
        panic!(
            "{} is not installed (looked in {:?} and on PATH): {ci}",
            tool.name, tool.candidates
        )
    })
}

/// The path of a server binary, built by Cargo on first use in this process.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<BTreeMap<String, Result<PathBuf, String>>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let result = built
        .entry(name.to_string())
        .or_insert_with(|| build(name))
        .clone();
    result.unwrap_or_else(|e| panic!("cannot provide the {name} binary: {e}"))
}

fn build(name: &str) -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("GATHERDNS_BIN_DIR") {
        let path = PathBuf::from(dir).join(name);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{} does not exist", path.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/<profile>/deps/<test binary>: the profile directory is the grandparent.
    let profile_dir = exe
        .parent()
        .filter(|deps| deps.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent)
        .ok_or_else(|| {
            format!(
                "test binary {} is not in a target/<profile>/deps directory",
                exe.display()
            )
        })?;
    let target_dir = profile_dir.parent().ok_or("no target directory")?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("no profile name")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--quiet", "--package", name, "--bin", name]);
    match profile {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    command
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    let output = command
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let path = profile_dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "cargo built {name} but {} does not exist",
            path.display()
        ))
    }
}

/// `n` distinct loopback ports free for both UDP and TCP right now.
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..n * 20 {
        if ports.len() == n {
            break;
        }
        let Ok(udp) = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) else {
            continue;
        };
        let Ok(port) = udp.local_addr().map(|a| a.port()) else {
            continue;
        };
        // Holding both sockets until all ports are chosen keeps the choices distinct.
        let Ok(tcp) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) else {
            continue;
        };
        // The IPv6 tests listen on ::1: the port must be free there too, where the host has
        // it (elsewhere binding fails for want of the address, not for the port).
        let v6 = (
            UdpSocket::bind((Ipv6Addr::LOCALHOST, port)),
            TcpListener::bind((Ipv6Addr::LOCALHOST, port)),
        );
        let in_use = |e: &std::io::Error| e.kind() == std::io::ErrorKind::AddrInUse;
        if v6.0.as_ref().err().is_some_and(in_use) || v6.1.as_ref().err().is_some_and(in_use) {
            continue;
        }
        ports.push(port);
        held.push((udp, tcp, v6));
    }
    assert_eq!(ports.len(), n, "could not find {n} free loopback ports");
    ports
}

/// Output of a process, collected by background threads while it runs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn spawn_reader(&self, mut source: impl Read + Send + 'static) -> thread::JoinHandle<()> {
        let sink = self.0.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends at EOF, which comes when the process exits.
            while let Ok(n) = source.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&buf[..n]);
            }
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// How to start a server: a Corefile template, files beside it and arguments. In all of them
/// `@PORT0@`, `@PORT1@`, … become free ports and `@DIR@` the temporary directory.
#[derive(Clone, Debug)]
pub struct ServerBuilder {
    binary: String,
    corefile: String,
    files: Vec<(String, String)>,
    args: Vec<String>,
    /// Environment variables set for the server.
    env: Vec<(String, String)>,
    /// A program (with its arguments) that runs the binary: it gets the binary's path and
    /// arguments after its own, and must exec it.
    wrapper: Vec<String>,
    /// Which port's listener to probe for readiness.
    probe_port: usize,
    /// The address of that listener: 127.0.0.1 unless the server listens elsewhere (::1).
    probe_ip: IpAddr,
    /// Where to probe instead, for a server on a fixed address.
    probe_addr: Option<SocketAddr>,
}

impl ServerBuilder {
    pub fn new(binary: &str, corefile: &str) -> ServerBuilder {
        ServerBuilder {
            binary: binary.to_string(),
            corefile: corefile.to_string(),
            files: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            wrapper: Vec::new(),
            probe_port: 0,
            probe_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            probe_addr: None,
        }
    }

    /// The demo of `examples/demo`, with its ports 1053 and 1054 replaced by free ones.
    pub fn demo(binary: &str) -> ServerBuilder {
        let dir = demo_dir();
        let corefile =
            std::fs::read_to_string(dir.join("Corefile")).expect("examples/demo/Corefile");
        let corefile = corefile
            .replace("1053", "@PORT0@")
            .replace("1054", "@PORT1@");
        let mut builder = ServerBuilder::new(binary, &corefile);
        for zone in ["cluster-a.local.zone", "cluster-b.local.zone"] {
            let text = std::fs::read_to_string(dir.join(zone))
                .unwrap_or_else(|e| panic!("examples/demo/{zone}: {e}"));
            builder = builder.file(zone, &text);
        }
        builder
    }

    /// Adds a file to the server's directory.
    pub fn file(mut self, name: &str, contents: &str) -> Self {
        self.files.push((name.to_string(), contents.to_string()));
        self
    }

    /// Probes `addr` for readiness (and makes it [`Server::addr`]) instead of
    /// 127.0.0.1:`@PORT0@`: for a server on a fixed address, such as port 53 in a network
    /// namespace of the test's own.
    pub fn probe_at(mut self, addr: SocketAddr) -> Self {
        self.probe_addr = Some(addr);
        self
    }

    /// Probes `ip`:`@PORT0@` (and makes it [`Server::addr`]) instead of 127.0.0.1, for a
    /// server that listens only on another loopback address, such as `::1`.
    pub fn probe_ip(mut self, ip: IpAddr) -> Self {
        self.probe_ip = ip;
        self
    }

    /// Adds command-line arguments after `-conf`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Sets an environment variable of the server (`@PORTn@` and `@DIR@` filled in).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs the binary through `command` (e.g. a namespace tool and a shell script), which
    /// gets the binary's path and arguments after its own and must exec it.
    pub fn wrapped(mut self, command: &[&str]) -> Self {
        self.wrapper = command.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Starts the server and waits until it answers on 127.0.0.1:`@PORT0@` (or where
    /// [`Self::probe_ip`] or [`Self::probe_at`] say).
    pub fn start(&self) -> Server {
        let mut last_error = String::new();
        // A port taken between choosing and binding is retried with fresh ports.
        for _ in 0..3 {
            match self.try_start() {
                Ok(server) => return server,
                Err(e) if e.contains("address already in use") => last_error = e,
                Err(e) => panic!("{} did not start: {e}", self.binary),
            }
        }
        panic!("{} did not start: {last_error}", self.binary)
    }

    /// Writes the files and runs the binary to completion (for `-validate` and startup
    /// errors): exit status, stdout, stderr.
    pub fn run_to_exit(&self) -> RunOutput {
        let (dir, ports) = self.prepare();
        let mut child = self
            .command(dir.path(), &ports)
            .spawn()
            .expect("spawn server");
        let (out, err) = (Captured::default(), Captured::default());
        let readers = [
            out.spawn_reader(child.stdout.take().expect("piped stdout")),
            err.spawn_reader(child.stderr.take().expect("piped stderr")),
        ];
        let status = wait_bounded(&mut child, RUN_TIMEOUT);
        for reader in readers {
            let _ = reader.join();
        }
        RunOutput {
            status,
            stdout: out.text(),
            stderr: err.text(),
            dir,
        }
    }

    /// Ports to choose: one per distinct `@PORTn@` in the Corefile, the files or the
    /// arguments, and at least one (the probe's).
    fn port_count(&self) -> usize {
        let texts: Vec<&str> = std::iter::once(self.corefile.as_str())
            .chain(self.files.iter().map(|(_, c)| c.as_str()))
            .chain(self.args.iter().map(String::as_str))
            .chain(self.env.iter().map(|(_, v)| v.as_str()))
            .chain(self.wrapper.iter().map(String::as_str))
            .collect();
        (0..10)
            .take_while(|i| texts.iter().any(|t| t.contains(&format!("@PORT{i}@"))))
            .count()
            .max(1)
    }

    fn prepare(&self) -> (tempfile::TempDir, Vec<u16>) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let ports = free_ports(self.port_count());
        std::fs::write(
            dir.path().join("Corefile"),
            fill(&self.corefile, dir.path(), &ports),
        )
        .expect("write Corefile");
        for (name, contents) in &self.files {
            std::fs::write(dir.path().join(name), fill(contents, dir.path(), &ports))
                .expect("write data file");
        }
        (dir, ports)
    }

    fn command(&self, dir: &Path, ports: &[u16]) -> Command {
        let mut command = match self.wrapper.split_first() {
            None => Command::new(binary(&self.binary)),
            Some((program, args)) => {
                let mut command = Command::new(program);
                command
                    .args(args.iter().map(|a| fill(a, dir, ports)))
                    .arg(binary(&self.binary));
                command
            }
        };
        command
            .envs(self.env.iter().map(|(k, v)| (k, fill(v, dir, ports))))
            .arg("-conf")
            .arg(dir.join("Corefile"))
            .args(self.args.iter().map(|a| fill(a, dir, ports)))
            .args(self.default_threads())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// `-threads N` for gatherdns-glommio when the test does not choose.
    fn default_threads(&self) -> Vec<String> {
        let chosen = self.args.iter().any(|a| {
            let flag = a.trim_start_matches('-');
            flag.starts_with("threads") || flag.starts_with("cpus")
        });
        if self.binary != "gatherdns-glommio" || chosen {
            return Vec::new();
        }
        let threads = std::env::var("GATHERDNS_GLOMMIO_THREADS")
            .unwrap_or_else(|_| GLOMMIO_SUITE_THREADS.to_string());
        vec!["-threads".to_string(), threads]
    }

    fn try_start(&self) -> Result<Server, String> {
        let (dir, ports) = self.prepare();
        let mut child = self
            .command(dir.path(), &ports)
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let (stdout, stderr) = (Captured::default(), Captured::default());
        stdout.spawn_reader(child.stdout.take().expect("piped stdout"));
        stderr.spawn_reader(child.stderr.take().expect("piped stderr"));
        let addr = self
            .probe_addr
            .unwrap_or_else(|| SocketAddr::new(self.probe_ip, ports[self.probe_port]));
        let mut server = Server {
            child,
            dir,
            ports,
            addr,
            stdout,
            stderr,
        };
        server.wait_until_answering()?;
        Ok(server)
    }
}

/// `text` with `@DIR@` and `@PORTn@` filled in.
fn fill(text: &str, dir: &Path, ports: &[u16]) -> String {
    let mut text = text.replace("@DIR@", &dir.display().to_string());
    for (i, port) in ports.iter().enumerate() {
        text = text.replace(&format!("@PORT{i}@"), &port.to_string());
    }
    text
}

/// The result of [`ServerBuilder::run_to_exit`].
pub struct RunOutput {
    /// `None` if the process had to be killed.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    /// The directory the Corefile was written to (kept until this is dropped).
    pub dir: tempfile::TempDir,
}

impl RunOutput {
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }
}

impl std::fmt::Debug for RunOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Waits for a child at most `limit`, then kills it.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    dir: tempfile::TempDir,
    ports: Vec<u16>,
    addr: SocketAddr,
    stdout: Captured,
    stderr: Captured,
}

impl Server {
    /// The address probed at start: 127.0.0.1 and the first port (the demo's distributed
    /// domain) unless the builder said otherwise.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// 127.0.0.1 and port `i`.
    pub fn addr_of(&self, i: usize) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.ports[i]))
    }

    pub fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server printed on stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    /// What the server printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Waits (bounded) until stdout contains `needle`.
    pub fn wait_for_stdout(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.stdout().contains(needle) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.stdout().contains(needle)
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        self.signal("TERM")
    }

    /// Sends a signal by name (`TERM`, `INT`, …) and waits (bounded) for the exit status.
    pub fn signal(&mut self, name: &str) -> Option<ExitStatus> {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
        wait_bounded(&mut self.child, Duration::from_secs(10))
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn wait_until_answering(&mut self) -> Result<(), String> {
        let probe = QuerySpec::new("probe.invalid.", Rtype::A)
            .id(0xbeef)
            .build();
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader threads catch the last words.
                thread::sleep(Duration::from_millis(100));
                return Err(format!(
                    "exited with {status} before answering: {}",
                    self.stderr().trim()
                ));
            }
            if udp_exchange(self.addr, &probe, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            // A refused probe returns at once; pacing keeps the loop from churning through
            // ephemeral ports (one of which could be the port the server is about to bind).
            thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "no answer on {} within {START_TIMEOUT:?}\n--- stdout\n{}--- stderr\n{}",
            self.addr,
            self.stdout(),
            self.stderr()
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let exited = self.child.try_wait().ok().flatten();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            // The test failed: what the server said is usually why.
            thread::sleep(Duration::from_millis(50));
            eprintln!(
                "--- server {} (exited before the end of the test: {exited:?})\n--- stdout\n{}--- stderr\n{}",
                self.addr,
                self.stdout(),
                self.stderr()
            );
        }
    }
}
