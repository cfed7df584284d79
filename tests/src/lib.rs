//! Test support for gatherdns: message helpers, the deterministic simulation harness, and
//! (for end-to-end tests) DNS clients and server processes on loopback.
#![allow(unreachable_pub, missing_docs, clippy::unwrap_used)]

pub mod dns_client;
pub mod echo_cluster;
pub mod knot;
pub mod kube_api;
pub mod message;
pub mod netns;
pub mod server;
pub mod sim;
pub mod tools;
pub mod upstream_reply;
