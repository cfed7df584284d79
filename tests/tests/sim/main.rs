//! Deterministic simulation tests of the core: every rule of SPEC §3 and §5 driven through
//! `Gateway` with a simulated clock and simulated upstreams. No sockets, no sleeping.
// Helpers of a test binary are test code: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod answers;
mod cache;
mod caps;
mod cname;
mod deadlines;
mod fixtures;
mod gather;
mod hosts;
mod hygiene;
mod loop_check;
mod metrics;
mod multicluster;
mod multicluster_api;
mod multicluster_gw;
mod name_server;
mod recursion;
mod reload;
mod resilience;
mod truncation;
mod upstream_tcp;
mod zones;
