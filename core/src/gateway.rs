//! The gateway: the sans-IO state machine the runtimes drive.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::config::Config;
use crate::error::ConfigError;
use crate::event::Event;
use crate::transmit::{AttemptId, ClientAddr, Transmit, UpstreamFailure, UpstreamTransport};

/// The gatherdns state machine. See the crate documentation for the driving loop.
pub struct Gateway {
    listeners: Vec<SocketAddr>,
}

impl Gateway {
    /// Builds a gateway from a validated configuration. `seed` feeds the random number
    /// generator used for sub-query IDs; the driver takes it from the OS.
    pub fn new(config: Config, now: Instant, seed: [u8; 32]) -> Result<Gateway, ConfigError> {
        let _ = (config, now, seed);
        todo!()
    }

    /// The addresses to listen on (UDP and TCP); a [`crate::ListenerId`] indexes this list.
    pub fn listeners(&self) -> &[SocketAddr] {
        &self.listeners
    }

    /// A message from a client.
    pub fn handle_client_message(&mut self, now: Instant, from: ClientAddr, msg: Bytes) {
        let _ = (now, from, msg);
        todo!()
    }

    /// A message from an upstream server.
    pub fn handle_upstream_message(&mut self, now: Instant, from: SocketAddr, transport: UpstreamTransport, msg: Bytes) {
        let _ = (now, from, transport, msg);
        todo!()
    }

    /// An attempt that the driver could not complete.
    pub fn handle_upstream_failure(&mut self, now: Instant, attempt: AttemptId, failure: UpstreamFailure) {
        let _ = (now, attempt, failure);
        todo!()
    }

    /// Time has passed. Calling it early or repeatedly is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        todo!()
    }

    /// The next event to log or count.
    pub fn poll_event(&mut self) -> Option<Event> {
        todo!()
    }

    /// When [`Gateway::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!()
    }
}
