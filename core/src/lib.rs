//! gatherdns-core: the sans-IO state machine of gatherdns, a DNS server that answers a
//! distributed domain by asking every cluster's DNS at once and merging the answers.
//!
//! The core owns no sockets, reads no clock and draws no OS randomness: the driver passes the
//! time into every call and a seed into [`Gateway::new`]. Inputs are `handle_*` calls,
//! outputs are drained with `poll_*`.
//!
//! # Run loop
//!
//! After every `handle_*` call, drain [`Gateway::poll_connection`], [`Gateway::poll_transmit`]
//! and [`Gateway::poll_event`] until they return `None`, then wait until the next input or
//! [`Gateway::poll_timeout`], whichever comes first, and call [`Gateway::handle_timeout`] when
//! the deadline has passed. Never wait with outputs still queued.
//!
//! Upstream TCP connections are outputs and inputs of the same machine: the gateway decides
//! when one opens ([`ConnectionCommand::Open`]), what is written on it
//! ([`Destination::Connection`]) and when it closes ([`ConnectionCommand::Close`]); the driver
//! moves the bytes and reports `handle_connection_opened`, `handle_connection_message` (one
//! DNS message read from it) and `handle_connection_closed`. Their idle and stall deadlines
//! are part of `poll_timeout`.
//!
//! A reload is one more input: [`Gateway::reconfigure`] between two calls, then a drain as
//! after any other; queries in flight finish under the configuration they started with.
//! The server around the core (reading files, the drain loop, sockets, reloads, the HTTP
//! side) is the `gatherdns-host` crate, written once for both binaries.
//!
//! Observability is read, not driven: [`Gateway::metrics`] is a snapshot of the Prometheus
//! counters (updated on the query path without locks; [`metrics`] renders them as CoreDNS
//! names them), and [`Gateway::not_ready`] says what `/ready` waits for.
//!
//! ```no_run
//! use std::time::Instant;
//! use bytes::Bytes;
//! use gatherdns_core::{
//!     ClientAddr, Closed, ConnId, ConnectionCommand, Destination, Gateway, SocketIndex,
//! };
//!
//! /// What woke the driver.
//! enum Input {
//!     Client(ClientAddr, Bytes),
//!     UpstreamDatagram(std::net::SocketAddr, SocketIndex, Bytes),
//!     Opened(ConnId),
//!     Read(ConnId, Bytes),
//!     Ended(ConnId, Closed),
//! }
//! # fn wait(_: Option<Instant>) -> Option<Input> { None }
//! # fn send(_: Destination, _: Bytes) {}
//! # fn connect(_: ConnId, _: std::net::SocketAddr) {}
//! # fn close(_: ConnId) {}
//! # fn clock() -> Instant { unimplemented!() }
//! # fn log(_: gatherdns_core::Event) {}
//! # let config = gatherdns_core::Config::default();
//! let mut gateway = Gateway::new(config, [7; 32]).expect("valid config");
//! loop {
//!     // 1. Sleep until the next input or deadline; one input per wake.
//!     let now = clock();
//!     match wait(gateway.poll_timeout()) {
//!         Some(Input::Client(from, msg)) => gateway.handle_client_message(now, from, msg),
//!         Some(Input::UpstreamDatagram(from, via, msg)) => {
//!             gateway.handle_upstream_message(now, from, via, msg)
//!         }
//!         Some(Input::Opened(conn)) => gateway.handle_connection_opened(now, conn),
//!         Some(Input::Read(conn, msg)) => gateway.handle_connection_message(now, conn, msg),
//!         Some(Input::Ended(conn, how)) => gateway.handle_connection_closed(now, conn, how),
//!         None => {}
//!     }
//!     // 2. Timers: harmless when called early.
//!     gateway.handle_timeout(clock());
//!     // 3. Drain everything the core queued.
//!     while let Some(command) = gateway.poll_connection() {
//!         match command {
//!             ConnectionCommand::Open { conn, addr } => connect(conn, addr),
//!             ConnectionCommand::Close(conn) => close(conn),
//!         }
//!     }
//!     while let Some(t) = gateway.poll_transmit() {
//!         send(t.destination, t.payload);
//!     }
//!     while let Some(event) = gateway.poll_event() {
//!         log(event);
//!     }
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod answer;
mod block;
mod cache;
mod concurrency;
pub mod config;
pub mod corefile;
mod distributed_domain;
pub mod error;
pub mod event;
pub mod framing;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gateway;
mod gather;
mod generation;
mod hosts;
mod hosts_file;
pub mod kube_view;
mod loadbalance;
pub mod loader;
mod loop_detect;
mod mcs;
mod mcs_api;
pub mod metrics;
mod multicluster_gw;
mod pending;
mod policy;
mod respond;
mod routing;
mod seeded;
mod tcp_pool;
mod timers;
pub mod transmit;
mod truncate;
mod upstream_pool;
mod vec_pool;
pub mod wire;
pub mod zone;

/// The version of every crate of the workspace, as the binaries introduce themselves and
/// `coredns_build_info` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use answer::Answer;
pub use concurrency::SharedCount;
pub use config::Config;
pub use error::ConfigError;
pub use event::{Event, QueryLog};
pub use gateway::{Gateway, WatchedFile};
pub use transmit::{
    AttemptId, ClientAddr, ClientTransport, Closed, ConnId, ConnectionCommand, Destination,
    ListenerId, SocketIndex, Transmit, UpstreamFailure, UPSTREAM_SOCKETS,
};
