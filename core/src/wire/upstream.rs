//! Upstream replies: parsed in two steps so that a spoofed or unexpected reply is rejected on
//! its header and question alone, before any record is decoded.

use bytes::Bytes;
use domain::base::iana::{Class, Rtype};
use domain::base::message::Message;
use domain::base::name::{FlattenInto, Name as DName};
use domain::rdata::AllRecordData;

use super::{Name, Record};

/// What identifies an upstream reply: enough to match it to a pending sub-query.
#[derive(Clone, Debug)]
pub struct UpstreamHead {
    /// Message ID.
    pub id: u16,
    /// Truncated.
    pub tc: bool,
    /// Authoritative answer.
    pub aa: bool,
    /// Recursion available.
    pub ra: bool,
    /// RCODE including the EDNS extension bits.
    pub rcode: u16,
    /// The sole question.
    pub qname: Name,
    /// Question type.
    pub qtype: Rtype,
    /// Question class.
    pub qclass: Class,
}

/// A reply from an upstream whose header and question have been checked.
#[derive(Clone, Debug)]
pub struct UpstreamReply {
    msg: Message<Bytes>,
}

impl UpstreamReply {
    /// Checks the header and the question. Never panics, whatever the bytes.
    pub fn parse(bytes: Bytes) -> Result<(UpstreamReply, UpstreamHead), &'static str> {
        let msg = Message::from_octets(bytes).map_err(|_| "shorter than a DNS header")?;
        let header = msg.header();
        if !header.qr() {
            return Err("a query where a reply was expected");
        }
        let question = msg
            .sole_question()
            .map_err(|_| "not exactly one well-formed question")?;
        let qname: DName<Bytes> = question.qname().clone().flatten_into();
        let head = UpstreamHead {
            id: header.id(),
            tc: header.tc(),
            aa: header.aa(),
            ra: header.ra(),
            rcode: msg.opt_rcode().to_int(),
            qname: Name(qname),
            qtype: question.qtype(),
            qclass: question.qclass(),
        };
        Ok((UpstreamReply { msg }, head))
    }

    /// Decodes answer, authority and additional, dropping OPT. Fails if any record is
    /// malformed or not of class IN.
    pub fn sections(&self) -> Result<[Vec<Record>; 3], &'static str> {
        let mut out: [Vec<Record>; 3] = Default::default();
        let mut section = self
            .msg
            .answer()
            .map_err(|_| "malformed question section")?;
        let mut index = 0;
        loop {
            for record in &mut section {
                let record = record.map_err(|_| "malformed record")?;
                if record.rtype() == Rtype::OPT {
                    continue;
                }
                if record.class() != Class::IN {
                    return Err("a record of a class other than IN");
                }
                let parsed = record
                    .to_any_record::<AllRecordData<Bytes, domain::base::name::ParsedName<Bytes>>>()
                    .map_err(|_| "malformed record data")?;
                let owner: DName<Bytes> = parsed.owner().clone().flatten_into();
                let data: AllRecordData<Bytes, DName<Bytes>> = parsed.data().clone().flatten_into();
                out[index].push(Record {
                    owner: Name(owner),
                    class: Class::IN,
                    ttl: parsed.ttl().as_secs(),
                    data,
                });
            }
            match section.next_section() {
                Ok(Some(next)) if index < 2 => {
                    section = next;
                    index += 1;
                }
                Ok(_) => return Ok(out),
                Err(_) => return Err("malformed record"),
            }
        }
    }
}
