//! DNSViz, run as an operator would before delegating the zone to gatherdns: in a network
//! namespace of the test's own, Knot serves the root and `local.` (which delegates
//! `distributed.local.` to the name gatherdns advertises, `ns.dns.distributed.local.`, with
//! glue), another Knot serves the clusters' zones, and gatherdns the gathered zone on port 53
//! of the glue's address. `dnsviz probe -A -E` then `dnsviz grok` must find no error and no
//! warning, except that the name server's address is a private (loopback) one.
//!
//! DNSViz is installed with pip into a virtual environment under the target directory, once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gatherdns_tests::knot::Knot;
use gatherdns_tests::netns::enter_private_network;
use gatherdns_tests::tools::PYTHON3;

use crate::common::*;

/// What DNSViz may say: the name server's address, and so its glue, is a loopback address.
const ALLOWED: &[&str] = &["NS_NAME_PRIVATE_IP", "GLUE_PRIVATE_IP"];

/// Pinned so that the checks and their codes stay put. dnspython 2.4 and later cannot copy
/// the unknown EDNS option of DNSViz 0.11's `-E` checks (`AttributeError: 100`).
const REQUIREMENTS: &[&str] = &["dnsviz==0.11.2", "dnspython==2.3.0", "cryptography"];

/// The parent's name server and gatherdns's address (the glue).
const PARENT: &str = "127.0.0.2";
const GATHERDNS: &str = "127.0.0.10";

/// How long one DNSViz command may take (it needs about a second here).
const DNSVIZ_TIMEOUT: Duration = Duration::from_secs(120);

const ROOT_ZONE: &str = "$ORIGIN .
$TTL 3600
@ IN SOA ns.local. hostmaster.local. 1 7200 1800 86400 300
@ IN NS ns.local.
local. IN NS ns.local.
ns.local. IN A 127.0.0.2
";

const LOCAL_ZONE: &str = "$ORIGIN local.
$TTL 3600
@ IN SOA ns.local. hostmaster.local. 1 7200 1800 86400 300
@ IN NS ns.local.
ns IN A 127.0.0.2
distributed IN NS ns.dns.distributed.local.
ns.dns.distributed IN A 127.0.0.10
";

/// The names DNSViz looks at: the zone, an SRV service, an alias (a CNAME in each cluster,
/// to different renamed targets), 120 addresses, a prefixed host and a missing name.
const NAMES: &[&str] = &[
    "distributed.local.",
    "_demo._tcp.demo-service.default.svc.distributed.local.",
    "alias.default.svc.distributed.local.",
    "big.default.svc.distributed.local.",
    "a-demo-service-0.default.svc.distributed.local.",
    "missing.default.svc.distributed.local.",
];

#[test]
#[cfg_attr(
    any(no_netns, no_knotd, no_python3, no_ip),
    ignore = "needs network namespaces, knotd (apt-get install knot), python3 with venv \
              (apt-get install python3-venv) and ip (apt-get install iproute2)"
)]
fn dnsviz_finds_nothing_wrong_with_the_delegated_gathered_zone() {
    // Before entering the namespace: pip needs the package registry.
    let venv = dnsviz_venv();
    enter_private_network();
    let parent = Knot::start_on(
        (PARENT.parse::<std::net::IpAddr>().expect("ip"), 53).into(),
        &[(".", ROOT_ZONE), ("local.", LOCAL_ZONE)],
    );
    let demo = demo_dir();
    let zone = |name: &str| {
        let text = std::fs::read_to_string(demo.join(name)).expect("demo zone");
        text + "alias.default.svc 30 IN CNAME demo-service.default.svc\n"
    };
    let (a, b) = (zone("cluster-a.local.zone"), zone("cluster-b.local.zone"));
    let clusters = Knot::start(&[("cluster-a.local.", &a), ("cluster-b.local.", &b)]);
    let upstream = clusters.addr();
    let corefile = format!(
        "distributed.local.:53 {{\n  bind {GATHERDNS}\n  gathersrv distributed.local. {{\n    \
         cluster-a.local. a-\n    cluster-b.local. b-\n  }}\n  forward cluster-a.local. {upstream}\n  \
         forward cluster-b.local. {upstream}\n}}\n"
    );
    let gatherdns = (GATHERDNS.parse::<std::net::IpAddr>().expect("ip"), 53).into();
    for_each_binary(|binary| {
        let server = ServerBuilder::new(binary, &corefile)
            .probe_at(gatherdns)
            .start();
        let findings = dnsviz(&venv, server.dir());
        for f in &findings {
            eprintln!("{f}");
        }
        let analysed: Vec<&str> = findings
            .iter()
            .filter_map(|f| f.strip_prefix("ANALYSED "))
            .collect();
        assert!(
            analysed.contains(&"distributed.local.")
                && analysed.contains(&"alias.default.svc.distributed.local."),
            "DNSViz analysed {analysed:?}"
        );
        let wrong: Vec<&String> = findings
            .iter()
            .filter(|f| f.starts_with("error ") || f.starts_with("warning "))
            .filter(|f| !ALLOWED.iter().any(|code| f.contains(&format!(" {code} "))))
            .collect();
        assert!(
            wrong.is_empty(),
            "DNSViz finds fault with {binary}: {wrong:#?}"
        );
        let private = findings.iter().filter(|f| f.starts_with("error ")).count();
        assert!(
            private > 0,
            "the private-address findings are there: DNSViz checked the delegation"
        );
    });
    drop(parent);
}

/// A virtual environment with DNSViz, made once under the target directory.
fn dnsviz_venv() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dnsviz-venv");
    let marker = venv.join("installed.txt");
    let wanted = REQUIREMENTS.join(" ");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return venv;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let python = require_tool(PYTHON3);
    let out = bounded(
        Command::new(&python).arg("-m").arg("venv").arg(&venv),
        DNSVIZ_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "{} -m venv: {}",
        python.display(),
        text(&out)
    );
    let mut pip = Command::new(venv.join("bin/pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check"])
        .args(REQUIREMENTS);
    let out = bounded(&mut pip, Duration::from_secs(600));
    assert!(
        out.status.success(),
        "pip install {wanted} (DNSViz from the package registry): {}",
        text(&out)
    );
    std::fs::write(&marker, wanted).expect("write the marker");
    venv
}

/// Probes the names with `dnsviz probe -A -E` (authoritative servers, EDNS checks) through the
/// parent, grades them with `dnsviz grok`, and returns one line per finding (`error|warning
/// PATH CODE DESCRIPTION`) and per analysed name (`ANALYSED NAME`).
fn dnsviz(venv: &Path, dir: &Path) -> Vec<String> {
    let probe = dir.join("probe.json");
    let grok = dir.join("grok.json");
    let root = format!(".:ns.local={PARENT}");
    let local = format!("local.:ns.local={PARENT}");
    let mut command = Command::new(venv.join("bin/dnsviz"));
    command
        .args([
            "probe", "-A", "-E", "-a", "local.", "-x", &root, "-x", &local, "-o",
        ])
        .arg(&probe)
        .args(NAMES);
    let out = bounded(&mut command, DNSVIZ_TIMEOUT);
    let said = text(&out);
    assert!(
        out.status.success() && !said.contains("Error analyzing"),
        "dnsviz probe: {said}"
    );
    let mut command = Command::new(venv.join("bin/dnsviz"));
    command
        .arg("grok")
        .arg("-r")
        .arg(&probe)
        .arg("-o")
        .arg(&grok);
    let out = bounded(&mut command, DNSVIZ_TIMEOUT);
    assert!(out.status.success(), "dnsviz grok: {}", text(&out));
    let mut command = Command::new(venv.join("bin/python"));
    command.args(["-c", FINDINGS]).arg(&grok);
    let out = bounded(&mut command, DNSVIZ_TIMEOUT);
    assert!(
        out.status.success(),
        "reading grok's output: {}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Lists every error and warning anywhere in grok's JSON, with where it is.
const FINDINGS: &str = r#"
import json, sys
report = json.load(open(sys.argv[1]))
for name in report:
    print("ANALYSED", name)
def walk(node, path):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("errors", "warnings") and isinstance(value, list):
                for f in value:
                    print(key[:-1], "/".join(path), f.get("code"), f.get("description"))
            else:
                walk(value, path + [key])
    elif isinstance(node, list):
        for i, value in enumerate(node):
            walk(value, path + [str(i)])
walk(report, [])
"#;

/// Runs `command` to completion, killing it after `limit`.
fn bounded(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    let deadline = Instant::now() + limit;
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("collect the output")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
