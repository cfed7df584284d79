//! Observability output of the core: query log lines and errors. Nothing here affects replies.

use std::time::Duration;

use crate::transmit::ClientAddr;

/// Something worth logging or counting.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A reply was sent (emitted only for server blocks with `log`).
    QueryLogged(QueryLog),
    /// An upstream was marked down after `max_fails` failures, or answered a probe again.
    UpstreamHealth {
        /// The upstream.
        upstream: std::net::SocketAddr,
        /// True when it came back.
        healthy: bool,
    },
    /// The server must stop: the `loop` plugin saw its probe come back (a forwarding loop).
    /// The driver logs `[FATAL] plugin/PLUGIN: MESSAGE` and exits with status 1, as
    /// CoreDNS's `log.Fatal` does.
    Fatal {
        /// The plugin that stops the server.
        plugin: &'static str,
        /// What it found.
        message: String,
    },
    /// Something failed while answering (emitted only for server blocks with `errors`).
    Error {
        /// The query it concerns, as `NAME TYPE`.
        query: String,
        /// What went wrong.
        message: String,
    },
}

/// The fields of CoreDNS's default `log` line.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryLog {
    /// Client.
    pub client: ClientAddr,
    /// Query ID.
    pub id: u16,
    /// Query type, presentation format.
    pub qtype: String,
    /// Query name, presentation format.
    pub qname: String,
    /// Query size in bytes.
    pub request_size: usize,
    /// DO bit.
    pub dnssec_ok: bool,
    /// Advertised UDP size (512 without EDNS).
    pub bufsize: u16,
    /// Reply RCODE, presentation format.
    pub rcode: String,
    /// Reply flags as CoreDNS prints them (`qr,aa,rd`).
    pub flags: String,
    /// Reply size in bytes.
    pub response_size: usize,
    /// Time from query to reply.
    pub duration: Duration,
}

impl QueryLog {
    /// Formats the line as CoreDNS's `log` plugin does by default.
    pub fn line(&self) -> String {
        let proto = match self.client.transport {
            crate::transmit::ClientTransport::Udp => "udp",
            crate::transmit::ClientTransport::Tcp(_) => "tcp",
        };
        format!(
            // The duration as Go's strconv.FormatFloat(d, 'f', -1, 64): shortest, no exponent.
            "{} - {} \"{} IN {} {} {} {} {}\" {} {} {} {}s",
            self.client.remote,
            self.id,
            self.qtype,
            self.qname,
            proto,
            self.request_size,
            self.dnssec_ok,
            self.bufsize,
            self.rcode,
            self.flags,
            self.response_size,
            self.duration.as_secs_f64()
        )
    }
}
