//! Client queries: the header, the sole question and EDNS, validated in full (every section
//! must parse) so that the rest of the core never re-parses client bytes.

use bytes::Bytes;
use domain::base::iana::{Class, Opcode, OptRcode, Rcode, Rtype};
use domain::base::message::Message;
use domain::base::name::{FlattenInto, Name as DName};

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
        let msg = Message::from_octets(bytes)
            .map_err(|_| QueryError::Drop("shorter than a DNS header"))?;
        let header = msg.header();
        if header.qr() {
            return Err(QueryError::Drop("a response where a query was expected"));
        }
        let reply = |question, edns, rcode: Rcode, reason| QueryError::Reply {
            id: header.id(),
            opcode: header.opcode(),
            rd: header.rd(),
            cd: header.cd(),
            question,
            edns,
            rcode: rcode.to_int().into(),
            reason,
        };
        let counts = msg.header_counts();
        if counts.qdcount() != 1 {
            let question = None;
            let rcode = if header.opcode() == Opcode::QUERY {
                Rcode::FORMERR
            } else {
                Rcode::NOTIMP
            };
            return Err(reply(question, None, rcode, "QDCOUNT is not 1"));
        }
        let question = match msg.sole_question() {
            Ok(q) => {
                let qname: DName<Bytes> = q.qname().clone().flatten_into();
                (Name(qname), q.qtype(), q.qclass())
            }
            Err(_) => return Err(reply(None, None, Rcode::FORMERR, "malformed question")),
        };
        if header.opcode() != Opcode::QUERY {
            return Err(reply(
                Some(question),
                None,
                Rcode::NOTIMP,
                "opcode is not QUERY",
            ));
        }
        let edns = match validate_sections(&msg) {
            Ok(edns) => edns,
            Err(reason) => return Err(reply(Some(question), None, Rcode::FORMERR, reason)),
        };
        if let Some(e) = edns {
            if e.version > 0 {
                return Err(QueryError::Reply {
                    id: header.id(),
                    opcode: header.opcode(),
                    rd: header.rd(),
                    cd: header.cd(),
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
            id: header.id(),
            rd: header.rd(),
            cd: header.cd(),
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

/// Walks every record of every section; returns the EDNS parameters of the single OPT record,
/// if any.
fn validate_sections(msg: &Message<Bytes>) -> Result<Option<Edns>, &'static str> {
    let mut section = msg.answer().map_err(|_| "malformed question section")?;
    let mut index = 0;
    let mut edns = None;
    loop {
        for record in &mut section {
            let record = record.map_err(|_| "malformed record")?;
            if record.rtype() == Rtype::OPT {
                if index != 2 {
                    return Err("OPT record outside the additional section");
                }
                if edns.is_some() {
                    return Err("more than one OPT record");
                }
                if !record.owner().is_root() {
                    return Err("OPT record with a non-root owner");
                }
                let opt = record
                    .to_record::<domain::base::opt::Opt<Bytes>>()
                    .map_err(|_| "malformed OPT record")?
                    .ok_or("malformed OPT record")?;
                let opt = domain::base::opt::OptRecord::from_record(opt);
                edns = Some(Edns {
                    udp_size: opt.udp_payload_size(),
                    dnssec_ok: opt.dnssec_ok(),
                    version: opt.version(),
                });
            } else {
                record
                    .to_any_record::<domain::rdata::AllRecordData<Bytes, domain::base::name::ParsedName<Bytes>>>()
                    .map_err(|_| "malformed record data")?;
            }
        }
        match section.next_section() {
            Ok(Some(next)) => {
                section = next;
                index += 1;
            }
            Ok(None) => return Ok(edns),
            Err(_) => return Err("malformed record"),
        }
    }
}
