//! Building messages: replies to clients (with truncation to the client's limit, our own OPT
//! and Extended DNS Errors) and sub-queries to upstreams.

use bytes::{Bytes, BytesMut};
use domain::base::iana::{Class, ExtendedErrorCode, Opcode, OptRcode, Rtype};
use domain::base::message_builder::{MessageBuilder, PushError, StaticCompressor, TreeCompressor};
use domain::base::opt::ExtendedError;
use domain::base::wire::Composer;
use domain::base::Question;

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

/// Replies holding more records than this use a tree compressor; smaller ones a static one
/// that does not allocate.
const STATIC_COMPRESSOR_RECORDS: usize = 16;

/// Builds a reply into `buf` no larger than `limit` bytes. Records are added in section order
/// and the first one that does not fit ends the adding: the rest (additional first, since it
/// comes last) is dropped and TC is set. Returns the message and whether it was truncated.
pub fn write_reply(
    buf: &mut BytesMut,
    header: &ReplyHeader<'_>,
    sections: [&[Record]; 3],
    limit: usize,
) -> (Bytes, bool) {
    buf.clear();
    let total: usize = sections.iter().map(|s| s.len()).sum();
    let result = if total <= STATIC_COMPRESSOR_RECORDS {
        MessageBuilder::from_target(StaticCompressor::new(&mut *buf))
            .map_err(|_| PushError::ShortBuf)
            .and_then(|m| build(m, header, sections, limit))
    } else {
        MessageBuilder::from_target(TreeCompressor::new(&mut *buf))
            .map_err(|_| PushError::ShortBuf)
            .and_then(|m| build(m, header, sections, limit))
    };
    match result {
        Ok(truncated) => (buf.split().freeze(), truncated),
        Err(_) => {
            // Only a question that cannot fit at all gets here: answer with the bare header.
            buf.clear();
            let minimal = ReplyHeader {
                question: None,
                ede: &[],
                rcode: u16::from(domain::base::iana::Rcode::SERVFAIL.to_int()),
                ..header.clone()
            };
            let tc = MessageBuilder::from_target(StaticCompressor::new(&mut *buf))
                .map_err(|_| PushError::ShortBuf)
                .and_then(|m| build(m, &minimal, [&[], &[], &[]], limit))
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

fn build<T: Composer>(
    mut msg: MessageBuilder<T>,
    header: &ReplyHeader<'_>,
    sections: [&[Record]; 3],
    limit: usize,
) -> Result<bool, PushError> {
    // `OptRcode::checked_from_int` in domain 0.12.3 rejects every non-zero value (its mask
    // test is inverted), so mask explicitly: RCODEs are 12 bits.
    let rcode = OptRcode::masked_from_int(header.rcode & 0x0fff);
    {
        let h = msg.header_mut();
        h.set_id(header.id);
        h.set_qr(true);
        h.set_opcode(header.opcode);
        h.set_rd(header.rd);
        h.set_cd(header.cd);
        h.set_aa(header.aa);
        h.set_ra(header.ra);
        h.set_ad(false);
        h.set_rcode(rcode.rcode());
    }
    msg.set_push_limit(limit.saturating_sub(opt_len(header)));
    let mut q = msg.question();
    if let Some((name, qtype, qclass)) = header.question {
        q.push(Question::new(&name.0, qtype, qclass))?;
    }
    let mut truncated = false;
    let mut answer = q.answer();
    for record in sections[0] {
        if answer
            .push((&record.owner.0, record.class, record.ttl, &record.data))
            .is_err()
        {
            truncated = true;
            break;
        }
    }
    let mut authority = answer.authority();
    if !truncated {
        for record in sections[1] {
            if authority
                .push((&record.owner.0, record.class, record.ttl, &record.data))
                .is_err()
            {
                truncated = true;
                break;
            }
        }
    }
    let mut additional = authority.additional();
    if !truncated {
        for record in sections[2] {
            if additional
                .push((&record.owner.0, record.class, record.ttl, &record.data))
                .is_err()
            {
                truncated = true;
                break;
            }
        }
    }
    additional.set_push_limit(limit);
    if let Some(dnssec_ok) = header.edns_do {
        additional.opt(|opt| {
            opt.set_udp_payload_size(header.udp_size);
            opt.set_dnssec_ok(dnssec_ok);
            opt.set_rcode(rcode);
            for ede in header.ede {
                let text = truncate_utf8(&ede.text, EDE_TEXT_MAX);
                if let Ok(e) = ExtendedError::<Vec<u8>>::new_with_str(
                    ExtendedErrorCode::from_int(ede.code),
                    text,
                ) {
                    opt.push(&e)?;
                }
            }
            Ok(())
        })?;
    }
    if truncated {
        additional.header_mut().set_tc(true);
    }
    let _ = additional.finish();
    Ok(truncated)
}

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
    let SubQuery {
        id,
        qname,
        qtype,
        rd,
        cd,
        dnssec_ok,
        udp_size,
    } = *query;
    buf.clear();
    let mut msg = MessageBuilder::from_target(&mut *buf).expect("an empty BytesMut takes a header");
    {
        let h = msg.header_mut();
        h.set_id(id);
        h.set_rd(rd);
        h.set_cd(cd);
    }
    let mut q = msg.question();
    q.push(Question::new(&qname.0, qtype, Class::IN))
        .expect("a name of at most 255 bytes fits");
    let mut additional = q.additional();
    additional
        .opt(|opt| {
            opt.set_udp_payload_size(udp_size);
            opt.set_dnssec_ok(dnssec_ok);
            Ok(())
        })
        .expect("an OPT header fits");
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
