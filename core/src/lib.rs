//! gatherdns-core: the sans-IO state machine of gatherdns, a DNS server that answers a
//! distributed domain by asking every cluster's DNS at once and merging the answers.
//!
//! The core owns no sockets, reads no clock and draws no OS randomness: the driver passes the
//! time into every call and a seed into [`Gateway::new`]. Inputs are `handle_*` calls,
//! outputs are drained with `poll_*`.
//!
//! # Run loop
//!
//! After every `handle_*` call, drain [`Gateway::poll_transmit`] and [`Gateway::poll_event`]
//! until they return `None`, then wait until the next input or [`Gateway::poll_timeout`],
//! whichever comes first, and call [`Gateway::handle_timeout`] when the deadline has passed.
//! Never wait with outputs still queued.
//!
//! A reload is one more input: [`Gateway::reconfigure`] between two calls, then a drain as
//! after any other; queries in flight finish under the configuration they started with.
//! [`reload`] has the parts of a reload both binaries share; [`drive`] the drain and the
//! timer bookkeeping of their run loops.
//!
//! Observability is read, not driven: [`Gateway::metrics`] is a snapshot of the Prometheus
//! counters (updated on the query path without locks; [`metrics`] renders them as CoreDNS
//! names them), [`Gateway::not_ready`] says what `/ready` waits for, and [`admin`] is the
//! socket-free HTTP side of `prometheus`, `health` and `ready` both binaries serve.
//!
//! ```no_run
//! use std::time::Instant;
//! use bytes::Bytes;
//! use gatherdns_core::{ClientAddr, ClientTransport, Destination, Gateway, ListenerId};
//!
//! # fn recv() -> Option<(ClientAddr, Bytes)> { None }
//! # fn send(_: Destination, _: Bytes) {}
//! # fn wait_until(_: Option<Instant>) {}
//! # let config = gatherdns_core::Config::default();
//! let mut gateway = Gateway::new(config, Instant::now(), [7; 32]).expect("valid config");
//! loop {
//!     // 1. One input per wake: a client message (or an upstream one, or a failure).
//!     if let Some((from, msg)) = recv() {
//!         gateway.handle_client_message(Instant::now(), from, msg);
//!     }
//!     // 2. Timers: harmless when called early.
//!     gateway.handle_timeout(Instant::now());
//!     // 3. Drain everything the core queued.
//!     while let Some(t) = gateway.poll_transmit() {
//!         send(t.destination, t.payload);
//!     }
//!     while let Some(event) = gateway.poll_event() {
//!         println!("{event:?}");
//!     }
//!     // 4. Sleep until the next input or deadline.
//!     wait_until(gateway.poll_timeout());
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
mod answer;
mod block;
pub mod cli;
pub mod config;
pub mod corefile;
mod distributed_domain;
pub mod drive;
pub mod error;
pub mod event;
pub mod framing;
#[doc(hidden)]
pub mod fuzzing;
mod gateway;
mod gather;
mod generation;
mod hosts;
mod hosts_file;
pub mod loader;
mod mcs;
pub mod metrics;
mod multicluster_gw;
mod pending;
pub mod reload;
mod respond;
mod routing;
pub mod startup;
pub mod tcp_pool;
mod timers;
pub mod transmit;
mod truncate;
mod upstream_pool;
pub mod wire;
pub mod zone;

pub use answer::Answer;
pub use config::Config;
pub use error::ConfigError;
pub use event::{Event, QueryLog};
pub use gateway::{Gateway, WatchedFile};
pub use transmit::{
    AttemptId, ClientAddr, ClientTransport, Destination, ListenerId, Transmit, UpstreamFailure,
    UpstreamTransport,
};
