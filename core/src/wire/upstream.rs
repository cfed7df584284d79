//! Upstream replies: parsed in two steps so that a spoofed or unexpected reply is rejected on
//! its header and question alone, before any record is decoded. Records are decoded by hand
//! for the types a gathered answer is made of (names stay slices of the reply where they are
//! not compressed); every other type goes through `domain`'s decoder, as all did before.

use bytes::Bytes;
use domain::base::iana::{Class, Rtype};
use domain::base::opt::Opt;

use super::name::NameArena;
use super::read::{counts, frame_at, name_at, name_from, rdata, skip_name};
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
    msg: Bytes,
    /// Where the answer section starts.
    records: usize,
}

impl UpstreamReply {
    /// Checks the header and the question. Never panics, whatever the bytes.
    pub fn parse(bytes: Bytes) -> Result<(UpstreamReply, UpstreamHead), &'static str> {
        let msg = &bytes[..];
        if msg.len() < 12 {
            return Err("shorter than a DNS header");
        }
        if msg[2] & 0x80 == 0 {
            return Err("a query where a reply was expected");
        }
        let one_question = "not exactly one well-formed question";
        if counts(msg)[0] != 1 {
            return Err(one_question);
        }
        let (at, pos) = name_at(msg, 12).map_err(|_| one_question)?;
        let fixed = msg.get(pos..pos + 4).ok_or(one_question)?;
        let qtype = Rtype::from_int(u16::from_be_bytes([fixed[0], fixed[1]]));
        let qclass = Class::from_int(u16::from_be_bytes([fixed[2], fixed[3]]));
        let records = pos + 4;
        let qname = name_from(&bytes, &at, &mut NameArena::default());
        let extended = opt_ext_rcode(msg, records).unwrap_or(0);
        let head = UpstreamHead {
            id: u16::from_be_bytes([msg[0], msg[1]]),
            tc: msg[2] & 0x02 != 0,
            aa: msg[2] & 0x04 != 0,
            ra: msg[3] & 0x80 != 0,
            rcode: u16::from(extended) << 4 | u16::from(msg[3] & 0x0f),
            qname,
            qtype,
            qclass,
        };
        Ok((
            UpstreamReply {
                msg: bytes,
                records,
            },
            head,
        ))
    }

    /// Decodes answer, authority and additional, dropping OPT. Fails if any record is
    /// malformed or not of class IN.
    pub fn sections(&self) -> Result<[Vec<Record>; 3], &'static str> {
        self.sections_into(Vec::with_capacity)
    }

    /// [`UpstreamReply::sections`], in vectors that `take` gives with room for N records.
    pub(crate) fn sections_into(
        &self,
        mut take: impl FnMut(usize) -> Vec<Record>,
    ) -> Result<[Vec<Record>; 3], &'static str> {
        let msg = &self.msg[..];
        let [_, an, ns, ar] = counts(msg);
        let mut out: [Vec<Record>; 3] = [
            take(usize::from(an)),
            take(usize::from(ns)),
            // Less the OPT record, usually.
            take(usize::from(ar.saturating_sub(1))),
        ];
        // Compressed names are copied out once each; a reply rarely holds more of them
        // than its own size (and small blocks come from the allocator's fast path).
        let mut arena = NameArena::with_chunk(msg.len().clamp(256, 4096));
        let mut pos = self.records;
        for (index, count) in [an, ns, ar].into_iter().enumerate() {
            for _ in 0..count {
                let (owner, after) = name_at(msg, pos).map_err(|_| "malformed record")?;
                let frame = frame_at(msg, after).map_err(|_| "malformed record")?;
                pos = frame.rdata.end;
                let rtype = Rtype::from_int(frame.rtype);
                if rtype == Rtype::OPT {
                    continue;
                }
                if frame.class != Class::IN.to_int() {
                    return Err("a record of a class other than IN");
                }
                let data =
                    rdata(&self.msg, rtype, &frame, &mut arena).ok_or("malformed record data")?;
                let owner = name_from(&self.msg, &owner, &mut arena);
                out[index].push(Record {
                    owner,
                    rtype,
                    class: Class::IN,
                    ttl: frame.ttl,
                    data,
                });
            }
        }
        Ok(out)
    }
}

/// The extended RCODE bits of the first OPT record in the additional section, as
/// `domain`'s `Message::opt_rcode` finds them: `None` if there is none, or a record before
/// it (or its own data) does not parse. Owners are skipped, not followed: `sections` checks
/// them, and a reply whose records fail it fails whatever its RCODE.
fn opt_ext_rcode(msg: &[u8], mut pos: usize) -> Option<u8> {
    let [_, an, ns, ar] = counts(msg);
    let before = usize::from(an) + usize::from(ns);
    for index in 0..before + usize::from(ar) {
        let after = skip_name(msg, pos)?;
        let frame = frame_at(msg, after).ok()?;
        pos = frame.rdata.end;
        if index >= before && frame.rtype == Rtype::OPT.to_int() {
            Opt::from_slice(&msg[frame.rdata]).ok()?;
            return Some((frame.ttl >> 24) as u8);
        }
    }
    None
}
