//! Building messages: replies to clients (with truncation to the client's limit, our own OPT
//! and Extended DNS Errors) and sub-queries to upstreams.

use bytes::{Bytes, BytesMut};
use domain::base::iana::{Class, Opcode, Rcode, Rtype};
use domain::base::rdata::ComposeRecordData;
use domain::rdata::AllRecordData;

use super::compress::{Compressor, SMALL_TABLE};
use super::record::{named_head, Rdata};
use super::{Name, Record};

/// An Extended DNS Error (RFC 8914) to attach to a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ede {
    /// INFO-CODE.
    pub code: u16,
    /// EXTRA-TEXT.
    pub text: String,
}

/// Everything about a reply except its records.
#[derive(Clone, Debug)]
pub struct ReplyHeader<'a> {
    /// Message ID, echoed.
    pub id: u16,
    /// Opcode, echoed.
    pub opcode: Opcode,
    /// RD, echoed.
    pub rd: bool,
    /// CD, echoed.
    pub cd: bool,
    /// Authoritative answer.
    pub aa: bool,
    /// Recursion available.
    pub ra: bool,
    /// RCODE, 12-bit extended value.
    pub rcode: u16,
    /// The question to echo, if any.
    pub question: Option<(&'a Name, Rtype, Class)>,
    /// `Some(do_bit)` if the reply carries an OPT record.
    pub edns_do: Option<bool>,
    /// The UDP payload size in our OPT record.
    pub udp_size: u16,
    /// Extended DNS Errors (only sent when the reply carries OPT).
    pub ede: &'a [Ede],
}

/// Builds a reply into `buf` no larger than `limit` bytes. Records are added in section order
/// and the first one that does not fit ends the adding: the rest (additional first, since it
/// comes last) is dropped and TC is set. Returns the message and whether it was truncated.
pub fn write_reply(
    buf: &mut BytesMut,
    header: &ReplyHeader<'_>,
    sections: [&[Record]; 3],
    limit: usize,
) -> (Bytes, bool) {
    write_selected(buf, header, sections, None, limit)
}

/// Which records of each section a reply that leaves some out keeps (`true` to keep).
pub type Kept<'a> = [&'a [bool]; 3];

/// Builds a reply of the records `kept` selects, in section order, no larger than `limit`
/// bytes, with TC set: the caller has left records out. Returns the message and whether
/// every kept record fitted.
pub fn write_reply_kept(
    buf: &mut BytesMut,
    header: &ReplyHeader<'_>,
    sections: [&[Record]; 3],
    kept: Kept<'_>,
    limit: usize,
) -> (Bytes, bool) {
    let (bytes, overflowed) = write_selected(buf, header, sections, Some(kept), limit);
    (bytes, !overflowed)
}

/// True if the records `kept` selects fit in `limit` bytes; `buf` is left empty.
pub fn kept_fits(
    buf: &mut BytesMut,
    header: &ReplyHeader<'_>,
    sections: [&[Record]; 3],
    kept: Kept<'_>,
    limit: usize,
) -> bool {
    let fits = with_compressor(kept_count(kept), |names| {
        build(buf, names, header, sections, Some(kept), limit) == Some(false)
    });
    buf.clear();
    fits
}

/// How many records `kept` keeps.
fn kept_count(kept: Kept<'_>) -> usize {
    kept.iter()
        .map(|section| section.iter().filter(|k| **k).count())
        .sum()
}

/// Runs `f` with a compression table sized for `total` records.
fn with_compressor<'n, T>(total: usize, f: impl FnOnce(&mut Compressor<'_, 'n>) -> T) -> T {
    let slots = Compressor::slots_for(total);
    let mut small = [0u32; SMALL_TABLE];
    let mut large = Vec::new();
    let table = if slots <= SMALL_TABLE {
        &mut small[..]
    } else {
        large.resize(slots, 0);
        &mut large[..]
    };
    f(&mut Compressor::new(table))
}

/// [`write_reply`] or [`write_reply_kept`]; returns whether a record was left out for size.
fn write_selected(
    buf: &mut BytesMut,
    header: &ReplyHeader<'_>,
    sections: [&[Record]; 3],
    kept: Option<Kept<'_>>,
    limit: usize,
) -> (Bytes, bool) {
    let total = match kept {
        Some(kept) => kept_count(kept),
        None => sections.iter().map(|s| s.len()).sum(),
    };
    let built = with_compressor(total, |names| {
        build(buf, names, header, sections, kept, limit)
    });
    match built {
        Some(truncated) => (buf.split().freeze(), truncated),
        None => {
            // Only a question that cannot fit at all gets here: answer with the bare header.
            let minimal = ReplyHeader {
                question: None,
                ede: &[],
                rcode: u16::from(Rcode::SERVFAIL.to_int()),
                ..header.clone()
            };
            let mut slots = [0u32; 1];
            let tc = build(
                buf,
                &mut Compressor::new(&mut slots),
                &minimal,
                [&[]; 3],
                None,
                limit,
            )
            .unwrap_or(true);
            (buf.split().freeze(), tc)
        }
    }
}

/// The size of our OPT record: fixed header plus an optional EDE option.
fn opt_len(header: &ReplyHeader<'_>) -> usize {
    match header.edns_do {
        None => 0,
        Some(_) => {
            11 + header
                .ede
                .iter()
                .map(|e| 4 + 2 + e.text.len().min(EDE_TEXT_MAX))
                .sum::<usize>()
        }
    }
}

/// EDE text is kept short enough that two of them always fit in a 512-byte reply.
const EDE_TEXT_MAX: usize = 150;

/// Writes the message of the records `kept` selects (all without it, else with TC set);
/// `None` if the question does not fit, else whether a record was left out for size.
fn build<'n>(
    buf: &mut BytesMut,
    names: &mut Compressor<'_, 'n>,
    header: &ReplyHeader<'n>,
    sections: [&'n [Record]; 3],
    kept: Option<Kept<'_>>,
    limit: usize,
) -> Option<bool> {
    buf.clear();
    let rcode = header.rcode & 0x0fff;
    let mut flags = 0x8000 | u16::from(header.opcode.to_int() & 0x0f) << 11;
    flags |= u16::from(header.aa) << 10 | u16::from(header.rd) << 8;
    flags |= u16::from(header.ra) << 7 | u16::from(header.cd) << 4 | rcode & 0x0f;
    let [id0, id1] = header.id.to_be_bytes();
    let [f0, f1] = flags.to_be_bytes();
    buf.extend_from_slice(&[id0, id1, f0, f1, 0, 0, 0, 0, 0, 0, 0, 0]);
    let push_limit = limit.saturating_sub(opt_len(header));
    let mut counts = [0u16; 4];
    if let Some((name, qtype, qclass)) = header.question {
        names.write_owner(buf, name.as_wire());
        let ([t0, t1], [c0, c1]) = (qtype.to_int().to_be_bytes(), qclass.to_int().to_be_bytes());
        buf.extend_from_slice(&[t0, t1, c0, c1]);
        if buf.len() > push_limit {
            return None;
        }
        counts[0] = 1;
    }
    let mut truncated = false;
    'sections: for (index, section) in sections.into_iter().enumerate() {
        for (at, record) in section.iter().enumerate() {
            if kept.is_some_and(|k| !k[index].get(at).copied().unwrap_or(false)) {
                continue;
            }
            let mark = buf.len();
            write_record(buf, names, record);
            if buf.len() > push_limit {
                // No name is written after this, so the compressor may keep the suffixes
                // of the record taken back.
                buf.truncate(mark);
                truncated = true;
                break 'sections;
            }
            counts[index + 1] += 1;
        }
    }
    if let Some(dnssec_ok) = header.edns_do {
        write_opt(buf, header, rcode, dnssec_ok);
        if buf.len() > limit {
            return None;
        }
        counts[3] += 1;
    }
    if truncated || kept.is_some() {
        buf[2] |= 0x02;
    }
    for (i, count) in counts.iter().enumerate() {
        buf[4 + 2 * i..6 + 2 * i].copy_from_slice(&count.to_be_bytes());
    }
    Some(truncated)
}

fn write_record<'n>(buf: &mut BytesMut, names: &mut Compressor<'_, 'n>, record: &'n Record) {
    names.write_owner(buf, record.owner.as_wire());
    let [t0, t1] = record.rtype.to_int().to_be_bytes();
    let [c0, c1] = record.class.to_int().to_be_bytes();
    let [l0, l1, l2, l3] = record.ttl.to_be_bytes();
    // The RDATA length is filled in once the RDATA is written.
    buf.extend_from_slice(&[t0, t1, c0, c1, l0, l1, l2, l3, 0, 0]);
    let length_at = buf.len() - 2;
    match &record.data {
        Rdata::Addr { len, octets } => buf.extend_from_slice(&octets[..usize::from(*len)]),
        Rdata::Named { head, name } => {
            buf.extend_from_slice(&head[..named_head(record.rtype).unwrap_or(0)]);
            // RFC 3597 §4: only the names of RFC 1035's types may be compressed.
            let compress = matches!(
                record.rtype,
                Rtype::CNAME | Rtype::NS | Rtype::PTR | Rtype::MX
            );
            names.write_name(buf, name.as_wire(), compress);
        }
        Rdata::Other(data) => match &**data {
            AllRecordData::Soa(soa) => {
                names.write_name(buf, soa.mname().as_slice(), true);
                names.write_name(buf, soa.rname().as_slice(), true);
                for field in [
                    soa.serial().into_int(),
                    soa.refresh().as_secs(),
                    soa.retry().as_secs(),
                    soa.expire().as_secs(),
                    soa.minimum().as_secs(),
                ] {
                    buf.extend_from_slice(&field.to_be_bytes());
                }
            }
            other => match other.compose_rdata(buf) {
                Ok(()) => {}
                Err(never) => match never {},
            },
        },
    }
    let len = (buf.len() - length_at - 2) as u16;
    buf[length_at..length_at + 2].copy_from_slice(&len.to_be_bytes());
}

/// Our OPT record (RFC 6891 §6.1.2), with the upper RCODE bits and any EDEs.
fn write_opt(buf: &mut BytesMut, header: &ReplyHeader<'_>, rcode: u16, dnssec_ok: bool) {
    let [t0, t1] = Rtype::OPT.to_int().to_be_bytes();
    let [u0, u1] = header.udp_size.to_be_bytes();
    let flags = if dnssec_ok { 0x80 } else { 0 };
    // Root owner, type, UDP size, extended RCODE, version 0, flags, RDATA length.
    buf.extend_from_slice(&[0, t0, t1, u0, u1, (rcode >> 4) as u8, 0, flags, 0, 0, 0]);
    let length_at = buf.len() - 2;
    for ede in header.ede {
        let text = truncate_utf8(&ede.text, EDE_TEXT_MAX);
        buf.extend_from_slice(&OPTION_EDE.to_be_bytes());
        buf.extend_from_slice(&(2 + text.len() as u16).to_be_bytes());
        buf.extend_from_slice(&ede.code.to_be_bytes());
        buf.extend_from_slice(text.as_bytes());
    }
    let len = (buf.len() - length_at - 2) as u16;
    buf[length_at..length_at + 2].copy_from_slice(&len.to_be_bytes());
}

/// The EDNS option code of Extended DNS Errors (RFC 8914 §2).
const OPTION_EDE: u16 = 15;

fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A query we send upstream.
#[derive(Clone, Debug)]
pub struct SubQuery<'a> {
    /// Message ID.
    pub id: u16,
    /// Question name.
    pub qname: &'a Name,
    /// Question type.
    pub qtype: Rtype,
    /// RD, as the client sent it.
    pub rd: bool,
    /// CD, as the client sent it.
    pub cd: bool,
    /// DO, as the client sent it.
    pub dnssec_ok: bool,
    /// The UDP payload size we advertise.
    pub udp_size: u16,
}

/// Builds a sub-query: RD, CD and DO as given, our own OPT and no other options.
pub fn write_query(buf: &mut BytesMut, query: &SubQuery<'_>) -> Bytes {
    buf.clear();
    let [id0, id1] = query.id.to_be_bytes();
    let flags = u8::from(query.rd);
    let cd = u8::from(query.cd) << 4;
    buf.extend_from_slice(&[id0, id1, flags, cd, 0, 1, 0, 0, 0, 0, 0, 1]);
    buf.extend_from_slice(query.qname.as_wire());
    let ([t0, t1], [c0, c1]) = (
        query.qtype.to_int().to_be_bytes(),
        Class::IN.to_int().to_be_bytes(),
    );
    buf.extend_from_slice(&[t0, t1, c0, c1]);
    let header = ReplyHeader {
        id: query.id,
        opcode: Opcode::QUERY,
        rd: query.rd,
        cd: query.cd,
        aa: false,
        ra: false,
        rcode: 0,
        question: None,
        edns_do: Some(query.dnssec_ok),
        udp_size: query.udp_size,
        ede: &[],
    };
    write_opt(buf, &header, 0, query.dnssec_ok);
    buf.split().freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::base::iana::Rcode;

    #[test]
    fn empty_refused_reply_keeps_its_rcode() {
        let name = Name::parse("example.com.").unwrap();
        let header = ReplyHeader {
            id: 7,
            opcode: Opcode::QUERY,
            rd: true,
            cd: false,
            aa: false,
            ra: false,
            rcode: u16::from(Rcode::REFUSED.to_int()),
            question: Some((&name, Rtype::A, Class::IN)),
            edns_do: None,
            udp_size: 1232,
            ede: &[],
        };
        let mut buf = BytesMut::new();
        let (bytes, tc) = write_reply(&mut buf, &header, [&[], &[], &[]], 512);
        assert!(!tc);
        assert_eq!(bytes[3] & 0x0f, 5);
    }
}
