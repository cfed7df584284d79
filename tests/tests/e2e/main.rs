//! End-to-end tests: the real server binaries on loopback, asked by a real client, against the
//! embedded demo (the server is its own cluster DNS) and against Knot DNS as the clusters'
//! DNS. Every test runs once per binary in `BINARIES`. One test binary, modules per topic.

mod answers;
mod backlog;
mod caps;
mod cli;
mod common;
mod dig;
mod dnsviz;
mod gather;
mod glommio;
mod hosts;
mod hygiene;
mod ipv6;
mod knot;
mod kubernetes;
mod multicluster;
mod musl;
mod ops;
mod plugins;
mod reload;
mod resilience;
mod size;
mod tcp;
mod upstream_sockets;
mod upstream_tcp;
