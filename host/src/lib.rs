//! gatherdns-host: the server around gatherdns's sans-IO core, written once for both
//! binaries. A runtime crate implements [`Runtime`] (executors, tasks, timers, sockets) and
//! calls [`main`]; everything else lives here:
//!
//! - before serving: the command line ([`cli`]), loading the Corefile ([`loader`],
//!   [`startup`]), the banner and log lines ([`log`]);
//! - the executors ([`executors`]): one gateway per executor, each driven by a `Driver`;
//! - a query's path: runtime socket → `udp`/`client_tcp` → `Driver::handle_*` → the core's
//!   `handle_*` → [`drain`] (events, connection commands, transmits) → `udp::Outbox`,
//!   `upstream_tcp`, `client_tcp` → runtime socket; upstream replies come back through
//!   `upstream_udp`/`upstream_tcp` the same way, and the timer task (`timer`) feeds the core
//!   its deadlines;
//! - beside the executors, on threads of their own: signals and the stop sequence, the HTTP
//!   side of `prometheus`/`health`/`ready` ([`admin`], `http`), reloads ([`reload`],
//!   reading the Corefile again in `reload::reader`), `process_*` metrics ([`process`]), and
//!   the Kubernetes client of `multicluster` (`kubernetes`, behind the `kubernetes` feature).

// The host matches the core's outputs: a new variant must not fall into a wildcard unseen.
#![warn(clippy::wildcard_enum_match_arm)]

pub mod admin;
pub mod batch;
mod budget;
pub mod cli;
mod client_tcp;
pub mod drain;
mod driver;
mod executors;
mod http;
#[cfg(feature = "kubernetes")]
mod kubernetes;
#[cfg(not(feature = "kubernetes"))]
#[path = "kubernetes_off.rs"]
mod kubernetes;
pub mod loader;
pub mod log;
pub mod panics;
mod peers;
pub mod process;
pub mod reload;
mod runtime;
mod serve;
pub mod startup;
mod timer;
mod udp;
mod upstream_tcp;
mod upstream_udp;
mod waiting;
mod watch;

pub use runtime::{Runtime, UdpSocket};
pub use serve::main;

/// A gateway's RNG seed, from the OS: sub-query IDs must not be predictable.
pub(crate) fn seed() -> Result<[u8; 32], String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| format!("cannot seed the random number generator: {e}"))?;
    Ok(seed)
}
