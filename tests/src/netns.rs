//! Network namespaces for end-to-end tests that need addresses and ports of their own (port 53,
//! a parent zone's name server): the calling thread moves into a fresh namespace whose only
//! interface is loopback, so nothing it starts can reach the host's network or clash with
//! its ports. Processes and threads it starts afterwards inherit the namespace, which goes
//! away with the last of them. Other test threads stay where they were.

use std::process::Command;

use crate::server::require_tool;
use crate::tools::IP;

/// Moves the calling thread into a new network namespace and brings its loopback interface
/// up (all of 127.0.0.0/8 and ::1). Tests that call it carry
/// `#[cfg_attr(no_netns, ignore = "…")]`: `build.rs` sets the cfg where namespaces cannot be
/// created.
pub fn enter_private_network() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| {
        panic!("cannot create a network namespace ({e}); build.rs found it possible")
    });
    let status = Command::new(require_tool(IP))
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("run ip");
    assert!(status.success(), "ip link set lo up: {status}");
}
