//! Putting a reply on the wire for a client: header flags, our OPT, the size limit of the
//! client's transport, and the query log line.

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::answer::Answer;
use crate::event::QueryLog;
use crate::metrics::Stats;
use crate::transmit::{ClientAddr, ClientTransport};
use crate::truncate::write_fitting;
use crate::wire::{ClientQuery, Ede, Opcode, ReplyHeader, MAX_MESSAGE_LEN};

/// What the reply says besides its records.
pub(crate) struct ReplyMeta<'a> {
    pub(crate) ra: bool,
    pub(crate) ede: &'a [Ede],
    /// Our EDNS UDP size (`bufsize`): advertised, and the cap on UDP replies.
    pub(crate) udp_size: u16,
}

/// Serialises `answer` for `query`, truncated to what the client's transport takes (keeping
/// records of every cluster, see `truncate.rs`).
pub(crate) fn encode(
    scratch: &mut BytesMut,
    client: &ClientAddr,
    query: &ClientQuery,
    answer: &Answer,
    meta: &ReplyMeta<'_>,
    stats: &mut Stats,
) -> (Bytes, bool) {
    let limit = match client.transport {
        ClientTransport::Udp => query.udp_limit(meta.udp_size),
        ClientTransport::Tcp(_) => MAX_MESSAGE_LEN,
    };
    let header = ReplyHeader {
        id: query.id,
        opcode: Opcode::QUERY,
        rd: query.rd,
        cd: query.cd,
        aa: answer.aa,
        ra: meta.ra,
        rcode: u16::from(answer.rcode.to_int()),
        question: Some((&query.qname, query.qtype, query.qclass)),
        edns_do: query.edns.map(|e| e.dnssec_ok),
        udp_size: meta.udp_size,
        ede: meta.ede,
    };
    scratch.reserve(4096);
    let (bytes, truncated) = write_fitting(scratch, &header, answer, limit);
    stats.replies += 1;
    if truncated {
        stats.truncated_replies += 1;
    }
    (bytes, truncated)
}

/// The CoreDNS `log` line fields for a reply.
pub(crate) fn query_log(
    client: &ClientAddr,
    query: &ClientQuery,
    answer: &Answer,
    ra: bool,
    truncated: bool,
    size: usize,
    duration: Duration,
) -> QueryLog {
    let mut flags = vec!["qr"];
    if answer.aa {
        flags.push("aa");
    }
    if truncated {
        flags.push("tc");
    }
    if query.rd {
        flags.push("rd");
    }
    if ra {
        flags.push("ra");
    }
    // CoreDNS's order: qr, aa, tc, rd, ra, z, ad, cd (AD is never set on our replies).
    if query.cd {
        flags.push("cd");
    }
    QueryLog {
        client: *client,
        id: query.id,
        qtype: query.qtype.to_string(),
        qname: query.qname.to_string(),
        request_size: query.size,
        dnssec_ok: query.edns.is_some_and(|e| e.dnssec_ok),
        bufsize: query.edns.map_or(512, |e| e.udp_size),
        rcode: answer.rcode.to_string(),
        flags: flags.join(","),
        response_size: size,
        duration,
    }
}
