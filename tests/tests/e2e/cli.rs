//! The process as an operator sees it: flags, `-validate`, startup errors as one line and
//! exit code 1, the banner, the pidfile, and a clean exit on SIGTERM.

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use crate::common::*;

/// A valid one-block Corefile with a zone of its own, for tests that need no gathering.
const SMALL: &str = "example.test.:@PORT0@ {\n    bind 127.0.0.1\n    file example.test.zone\n}\n";
const SMALL_ZONE: &str = "$ORIGIN example.test.\n$TTL 60\n\
    @ IN SOA ns.example.test. hostmaster.example.test. 1 7200 3600 1209600 30\n\
    @ IN NS ns.example.test.\nns IN A 192.0.2.1\nwww IN A 192.0.2.2\n";

#[test]
fn version_and_plugins() {
    for_each_binary(|binary| {
        let out = ServerBuilder::new(binary, SMALL)
            .args(&["-version"])
            .run_to_exit();
        assert_eq!(out.code(), Some(0), "{out:?}");
        assert_eq!(
            out.stdout.trim(),
            format!("{binary} {}", env!("CARGO_PKG_VERSION"))
        );
        let out = ServerBuilder::new(binary, SMALL)
            .args(&["-plugins"])
            .run_to_exit();
        assert_eq!(out.code(), Some(0), "{out:?}");
        for directive in [
            "gathersrv",
            "forward",
            "file",
            "hosts",
            "multicluster",
            "multicluster_gw",
            "prometheus",
            "health",
            "ready",
        ] {
            assert!(
                out.stdout.contains(directive),
                "-plugins lists {directive}: {out:?}"
            );
        }
    });
}

#[test]
fn unknown_flag_is_a_usage_error() {
    for_each_binary(|binary| {
        let out = ServerBuilder::new(binary, SMALL)
            .args(&["-frobnicate"])
            .run_to_exit();
        assert_eq!(out.code(), Some(2), "{out:?}");
        assert!(out.stderr.contains("-frobnicate"), "{out:?}");
    });
}

#[test]
fn validate_accepts_the_demo() {
    for_each_binary(|binary| {
        let out = ServerBuilder::demo(binary)
            .args(&["-validate"])
            .run_to_exit();
        assert_eq!(out.code(), Some(0), "{out:?}");
        assert!(out.stdout.contains("[INFO] Corefile OK"), "{out:?}");
    });
}

#[test]
fn validate_rejects_a_bad_corefile_with_file_and_line() {
    for_each_binary(|binary| {
        let bad = "example.test.:@PORT0@ {\n    bind 127.0.0.1\n    frobnicate on\n}\n";
        let out = ServerBuilder::new(binary, bad)
            .args(&["-validate"])
            .run_to_exit();
        assert_eq!(out.code(), Some(1), "{out:?}");
        assert!(
            out.stderr.contains("Corefile:3: "),
            "the error names file and line: {out:?}"
        );
        assert!(
            out.stderr.contains("frobnicate"),
            "and the directive: {out:?}"
        );
        assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {out:?}");
        assert!(!out.stdout.contains("Corefile OK"));
    });
}

#[test]
fn missing_corefile_is_one_line_and_exit_1() {
    for_each_binary(|binary| {
        let out = ServerBuilder::new(binary, SMALL)
            .args(&["-conf", "/nonexistent/Corefile"])
            .run_to_exit();
        assert_eq!(out.code(), Some(1), "{out:?}");
        assert!(out.stderr.contains("/nonexistent/Corefile"), "{out:?}");
        assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {out:?}");
        // A Corefile that exists but cannot be read (here: a directory).
        let out = ServerBuilder::new(binary, SMALL)
            .args(&["-conf", "@DIR@"])
            .run_to_exit();
        assert_eq!(out.code(), Some(1), "{out:?}");
        assert!(
            out.stderr.contains("Corefile")
                && out.stderr.contains(&out.dir.path().display().to_string()),
            "{out:?}"
        );
        assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {out:?}");
    });
}

#[test]
fn a_corefile_without_a_server_block_is_a_startup_error() {
    // It used to start a server that listened nowhere and said nothing.
    for_each_binary(|binary| {
        let out = ServerBuilder::new(binary, "# no server block yet\n").run_to_exit();
        assert_eq!(out.code(), Some(1), "{out:?}");
        let path = out.dir.path().join("Corefile").display().to_string();
        assert!(
            out.stderr.contains(&format!("{path}: no server block")),
            "{out:?}"
        );
        assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {out:?}");
    });
}

#[test]
fn port_in_use_is_a_startup_error() {
    for_each_binary(|binary| {
        let port = free_ports(1)[0];
        let _holder = UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).expect("hold the port");
        let corefile = SMALL.replace("@PORT0@", &port.to_string());
        let out = ServerBuilder::new(binary, &corefile)
            .file("example.test.zone", SMALL_ZONE)
            .run_to_exit();
        assert_eq!(out.code(), Some(1), "{out:?}");
        let expected = format!("listen udp 127.0.0.1:{port}: address already in use");
        assert!(
            out.stderr.contains(&expected),
            "expected {expected:?}: {out:?}"
        );
        assert_eq!(out.stderr.trim().lines().count(), 1, "one line: {out:?}");
    });
}

#[test]
fn banner_pidfile_and_sigterm() {
    for_each_binary(|binary| {
        let pidfile = tempfile::NamedTempFile::new().expect("temp file");
        let pidpath = pidfile.path().display().to_string();
        let mut server = ServerBuilder::new(binary, SMALL)
            .file("example.test.zone", SMALL_ZONE)
            .args(&["-pidfile", &pidpath])
            .start();
        let banner = format!("dns://127.0.0.1:{}", server.port(0));
        assert!(
            server.wait_for_stdout(&banner, Duration::from_secs(5)),
            "{}",
            server.stdout()
        );
        let version = format!("{binary}-{}", env!("CARGO_PKG_VERSION"));
        assert!(
            server.wait_for_stdout(&version, Duration::from_secs(5)),
            "{}",
            server.stdout()
        );
        let pid = std::fs::read_to_string(&pidpath).expect("pidfile");
        assert_eq!(pid.trim(), server.pid().to_string());
        let reply = ask(
            server.addr(),
            Transport::Udp,
            &query("www.example.test.", Rtype::A, None, 3),
        );
        assert_eq!(reply.answer.len(), 1, "{reply:#?}");
        let status = server.terminate().expect("exits after SIGTERM");
        assert_eq!(
            status.code(),
            Some(0),
            "SIGTERM exits 0; stderr: {}",
            server.stderr()
        );
    });
}

#[test]
fn dns_port_sets_the_port_of_blocks_without_one() {
    for_each_binary(|binary| {
        let corefile = SMALL.replace(":@PORT0@", "");
        let server = ServerBuilder::new(binary, &corefile)
            .file("example.test.zone", SMALL_ZONE)
            .args(&["-dns.port", "@PORT0@"])
            .start();
        let reply = ask(
            server.addr(),
            Transport::Tcp,
            &query("www.example.test.", Rtype::A, None, 4),
        );
        assert_eq!(reply.answer.len(), 1, "{reply:#?}");
    });
}

#[test]
fn corefile_warnings_are_printed() {
    for_each_binary(|binary| {
        // An import glob that matches nothing is accepted with a warning.
        let corefile = format!("import @DIR@/nothing-*.conf\n{SMALL}");
        let out = ServerBuilder::new(binary, &corefile)
            .file("example.test.zone", SMALL_ZONE)
            .args(&["-validate"])
            .run_to_exit();
        assert_eq!(out.code(), Some(0), "{out:?}");
        assert!(
            out.stdout.contains("[WARNING] "),
            "a [WARNING] line: {out:?}"
        );
    });
}

#[test]
fn sigint_exits_zero() {
    for_each_binary(|binary| {
        let mut server = ServerBuilder::new(binary, SMALL)
            .file("example.test.zone", SMALL_ZONE)
            .start();
        let status = server.signal("INT").expect("exits after SIGINT");
        assert_eq!(
            status.code(),
            Some(0),
            "SIGINT exits 0; stderr: {}",
            server.stderr()
        );
    });
}

#[test]
fn quiet_has_no_banner() {
    for_each_binary(|binary| {
        let server = ServerBuilder::new(binary, SMALL)
            .file("example.test.zone", SMALL_ZONE)
            .args(&["-quiet"])
            .start();
        std::thread::sleep(Duration::from_millis(200));
        assert!(!server.stdout().contains("dns://"), "{}", server.stdout());
    });
}
