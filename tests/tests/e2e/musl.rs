//! A musl-linked stub resolver: musl before 1.2.4 (Debian 12 has 1.2.3) never retries over TCP
//! and uses a truncated UDP reply as it is, so what a truncated reply keeps is what its
//! programs connect to. `getaddrinfo` of the demo's `big` service (60 addresses in each of
//! two clusters) must return addresses of both clusters.
//!
//! musl reads only /etc/resolv.conf and asks port 53, so the test runs gatherdns on
//! 127.0.0.1:53 in a network namespace of its own, and the client in a mount namespace where
//! a resolv.conf of the test's is mounted over /etc/resolv.conf: the host's is never touched.

use std::path::Path;
use std::process::Command;

use gatherdns_tests::netns::enter_private_network;
use gatherdns_tests::tools::{MUSL_GCC, UNSHARE};

use crate::common::*;

/// Prints each address getaddrinfo returns for argv[1], one a line.
const CLIENT: &str = r#"
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    struct addrinfo hints, *res, *p;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(argv[1], "80", &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "getaddrinfo: %s\n", gai_strerror(rc));
        return 1;
    }
    for (p = res; p; p = p->ai_next) {
        char text[INET6_ADDRSTRLEN];
        void *addr = p->ai_family == AF_INET
            ? (void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr
            : (void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr;
        inet_ntop(p->ai_family, addr, text, sizeof text);
        puts(text);
    }
    freeaddrinfo(res);
    return 0;
}
"#;

#[test]
#[cfg_attr(
    any(no_netns, no_musl_gcc, no_unshare, no_ip),
    ignore = "needs network namespaces, musl-gcc (apt-get install musl-tools), unshare \
              (apt-get install util-linux) and ip (apt-get install iproute2)"
)]
fn a_musl_client_of_a_truncated_reply_reaches_every_cluster() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let client = compile_client(dir.path());
    let resolv_conf = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv_conf,
        "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n",
    )
    .expect("write resolv.conf");
    enter_private_network();
    // The demo with its distributed domain on port 53.
    let corefile = std::fs::read_to_string(demo_dir().join("Corefile"))
        .expect("examples/demo/Corefile")
        .replace("1053", "53")
        .replace("1054", "@PORT0@");
    for_each_binary(|binary| {
        let mut server =
            ServerBuilder::new(binary, &corefile).probe_at(([127, 0, 0, 1], 53).into());
        for zone in ["cluster-a.local.zone", "cluster-b.local.zone"] {
            let text = std::fs::read_to_string(demo_dir().join(zone)).expect("demo zone");
            server = server.file(zone, &text);
        }
        let server = server.start();
        let out = Command::new(require_tool(UNSHARE))
            .args([
                "--mount",
                "sh",
                "-c",
                "mount --bind \"$1\" /etc/resolv.conf && exec \"$2\" \"$3\"",
                "sh",
            ])
            .arg(&resolv_conf)
            .arg(&client)
            .arg("big.default.svc.distributed.local")
            .output()
            .expect("run the musl client");
        let addrs = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{}: {addrs}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            server.stdout()
        );
        let a = addrs.lines().filter(|l| l.starts_with("10.8.")).count();
        let b = addrs.lines().filter(|l| l.starts_with("10.9.")).count();
        eprintln!("musl getaddrinfo: {a} addresses of cluster A, {b} of cluster B");
        assert!(
            server.wait_for_stdout("qr,aa,tc,rd", std::time::Duration::from_secs(5)),
            "the reply it used was truncated: {}",
            server.stdout()
        );
        assert!(
            a > 0 && b > 0 && a.abs_diff(b) <= 1,
            "{a} from A, {b} from B:\n{addrs}"
        );
    });
}

/// Builds the client with musl-gcc, statically (Debian's musl-gcc links musl's static libc).
fn compile_client(dir: &Path) -> std::path::PathBuf {
    let source = dir.join("resolve.c");
    let binary = dir.join("resolve");
    std::fs::write(&source, CLIENT).expect("write resolve.c");
    let out = Command::new(require_tool(MUSL_GCC))
        .arg("-static")
        .arg("-O1")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .output()
        .expect("run musl-gcc");
    assert!(
        out.status.success(),
        "musl-gcc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    binary
}
