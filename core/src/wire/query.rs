//! Client queries: the header, the sole question and EDNS, validated in full (every section
//! must parse, every record's data too) so that the rest of the core never re-parses client
//! bytes.

use bytes::Bytes;
use domain::base::iana::{Class, Opcode, OptRcode, Rcode, Rtype};
use domain::base::opt::Opt;

use super::name::NameArena;
use super::read::{counts, frame_at, name_at, name_from, rdata, NameAt};
use super::Name;

/// The EDNS parameters of a query (RFC 6891).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    /// The requestor's UDP payload size.
    pub udp_size: u16,
    /// The DO bit.
    pub dnssec_ok: bool,
    /// EDNS version.
    pub version: u8,
}

/// A validated client query.
#[derive(Clone, Debug)]
pub struct ClientQuery {
    /// Message ID.
    pub id: u16,
    /// Recursion desired.
    pub rd: bool,
    /// Checking disabled.
    pub cd: bool,
    /// The question name, byte for byte as the client sent it.
    pub qname: Name,
    /// The question type.
    pub qtype: Rtype,
    /// The question class.
    pub qclass: Class,
    /// EDNS, if the query carried an OPT record.
    pub edns: Option<Edns>,
    /// Size of the query on the wire.
    pub size: usize,
}

/// Why a client message is not a query we can answer normally.
#[derive(Clone, Debug)]
pub enum QueryError {
    /// Not worth a reply: too short for a header, or a response rather than a query.
    Drop(&'static str),
    /// Worth an error reply with this RCODE (possibly extended, e.g. BADVERS).
    Reply {
        /// The header of the offending message, for the reply.
        id: u16,
        /// Opcode, echoed.
        opcode: Opcode,
        /// RD, echoed.
        rd: bool,
        /// CD, echoed.
        cd: bool,
        /// The question, when it could be parsed and there was exactly one.
        question: Option<(Name, Rtype, Class)>,
        /// EDNS of the query, when it was well formed.
        edns: Option<Edns>,
        /// The RCODE to answer with (12-bit extended value).
        rcode: u16,
        /// What was wrong, for logs.
        reason: &'static str,
    },
}

impl ClientQuery {
    /// Validates a client message. Never panics, whatever the bytes.
    pub fn parse(bytes: Bytes) -> Result<ClientQuery, QueryError> {
        let size = bytes.len();
        let msg = &bytes[..];
        if msg.len() < 12 {
            return Err(QueryError::Drop("shorter than a DNS header"));
        }
        if msg[2] & 0x80 != 0 {
            return Err(QueryError::Drop("a response where a query was expected"));
        }
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        let opcode = Opcode::from_int((msg[2] >> 3) & 0x0f);
        let (rd, cd) = (msg[2] & 0x01 != 0, msg[3] & 0x10 != 0);
        let reply = |question, edns, rcode: Rcode, reason| QueryError::Reply {
            id,
            opcode,
            rd,
            cd,
            question,
            edns,
            rcode: rcode.to_int().into(),
            reason,
        };
        if counts(msg)[0] != 1 {
            let rcode = if opcode == Opcode::QUERY {
                Rcode::FORMERR
            } else {
                Rcode::NOTIMP
            };
            return Err(reply(None, None, rcode, "QDCOUNT is not 1"));
        }
        let Some((question, records)) = question(&bytes) else {
            return Err(reply(None, None, Rcode::FORMERR, "malformed question"));
        };
        if opcode != Opcode::QUERY {
            return Err(reply(
                Some(question),
                None,
                Rcode::NOTIMP,
                "opcode is not QUERY",
            ));
        }
        let edns = match validate_sections(&bytes, records) {
            Ok(edns) => edns,
            Err(reason) => return Err(reply(Some(question), None, Rcode::FORMERR, reason)),
        };
        if let Some(e) = edns {
            if e.version > 0 {
                return Err(QueryError::Reply {
                    id,
                    opcode,
                    rd,
                    cd,
                    question: Some(question),
                    edns: Some(e),
                    rcode: OptRcode::BADVERS.to_int(),
                    reason: "EDNS version above 0",
                });
            }
        }
        let (qname, qtype, qclass) = question;
        if qclass != Class::IN {
            return Err(reply(
                Some((qname, qtype, qclass)),
                edns,
                Rcode::REFUSED,
                "class is not IN",
            ));
        }
        if matches!(qtype, Rtype::OPT | Rtype::TSIG | Rtype::TKEY) {
            return Err(reply(
                Some((qname, qtype, qclass)),
                edns,
                Rcode::FORMERR,
                "meta type in question",
            ));
        }
        Ok(ClientQuery {
            id,
            rd,
            cd,
            qname,
            qtype,
            qclass,
            edns,
            size,
        })
    }

    /// The largest UDP reply this client accepts: 512 without EDNS, else its EDNS size
    /// clamped to 512..=`cap`.
    pub fn udp_limit(&self, cap: u16) -> usize {
        match self.edns {
            None => super::PLAIN_UDP_LIMIT,
            Some(e) => usize::from(e.udp_size.clamp(512, cap.max(512))),
        }
    }
}

/// The sole question and where the records start.
fn question(msg: &Bytes) -> Option<((Name, Rtype, Class), usize)> {
    let (at, pos) = name_at(msg, 12).ok()?;
    let fixed = msg.get(pos..pos + 4)?;
    let qtype = Rtype::from_int(u16::from_be_bytes([fixed[0], fixed[1]]));
    let qclass = Class::from_int(u16::from_be_bytes([fixed[2], fixed[3]]));
    let qname = name_from(msg, &at, &mut NameArena::default());
    Some(((qname, qtype, qclass), pos + 4))
}

/// Walks every record of every section (from `pos`); returns the EDNS parameters of the
/// single OPT record, if any.
fn validate_sections(msg: &Bytes, mut pos: usize) -> Result<Option<Edns>, &'static str> {
    let [_, an, ns, ar] = counts(msg);
    let mut edns = None;
    let mut arena = NameArena::default();
    for (index, count) in [an, ns, ar].into_iter().enumerate() {
        for _ in 0..count {
            let (owner, after) = name_at(msg, pos).map_err(|_| "malformed record")?;
            let frame = frame_at(msg, after).map_err(|_| "malformed record")?;
            pos = frame.rdata.end;
            let rtype = Rtype::from_int(frame.rtype);
            if rtype == Rtype::OPT {
                if index != 2 {
                    return Err("OPT record outside the additional section");
                }
                if edns.is_some() {
                    return Err("more than one OPT record");
                }
                if !matches!(owner, NameAt::Flat { len: 1, .. }) {
                    return Err("OPT record with a non-root owner");
                }
                Opt::from_slice(&msg[frame.rdata.clone()]).map_err(|_| "malformed OPT record")?;
                edns = Some(Edns {
                    udp_size: frame.class,
                    dnssec_ok: frame.ttl & 0x8000 != 0,
                    version: (frame.ttl >> 16) as u8,
                });
            } else {
                rdata(msg, rtype, &frame, &mut arena).ok_or("malformed record data")?;
            }
        }
    }
    Ok(edns)
}
