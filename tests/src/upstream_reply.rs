//! Replies of simulated upstreams, encoded with `domain`'s message builder and never with the
//! core's writer: a bug in the core's encoder must not be able to cancel out one in its
//! parser. The records may come from the core's `Zone`; they cross over in presentation
//! format, which `domain`'s zone file reader turns back into records.
//!
//! Names are not compressed: `domain` compresses case-insensitively, so a reply would spell
//! names after the question's case, and tests that compare the gateway's replies byte for
//! byte across spellings of a question would compare the upstream's compression instead.

use bytes::Bytes;
use domain::base::iana::{Class, Opcode, Rcode, Rtype};
use domain::base::message_builder::{MessageBuilder, PushError};
use domain::base::name::Name as DName;
use domain::zonefile::inplace::{Entry, ScannedRecord, Zonefile};
use gatherdns_core::fuzzing::ReplySpec;
use gatherdns_core::wire::{Name, Record};

/// The header and question of a reply.
#[derive(Clone, Debug)]
pub struct Head<'a> {
    pub id: u16,
    pub rd: bool,
    pub cd: bool,
    pub aa: bool,
    pub ra: bool,
    pub tc: bool,
    pub rcode: Rcode,
    pub question: (&'a Name, Rtype, Class),
    /// `Some((udp_size, dnssec_ok))` adds an OPT record.
    pub edns: Option<(u16, bool)>,
}

/// A reply of at most `limit` bytes: when the records do not fit, it goes out with TC=1
/// and none of them.
pub fn build(head: &Head<'_>, sections: [&[Record]; 3], limit: usize) -> Bytes {
    let sections = sections.map(to_domain);
    let full = compose(head, &sections, limit).ok();
    let reply = full.unwrap_or_else(|| {
        let truncated = Head {
            tc: true,
            ..head.clone()
        };
        compose(&truncated, &[vec![], vec![], vec![]], usize::MAX).expect("a header fits")
    });
    Bytes::from(reply)
}

/// A reply as `gateway_ops` and the model test describe it.
pub fn from_spec(spec: &ReplySpec) -> Vec<u8> {
    let answers: Vec<Record> = spec
        .answers
        .iter()
        .map(|addr| Record::a(spec.qname.clone(), 30, *addr))
        .collect();
    let head = Head {
        id: spec.id,
        rd: spec.rd,
        cd: false,
        aa: false,
        ra: true,
        tc: spec.tc,
        rcode: spec.rcode,
        question: (&spec.qname, spec.qtype, Class::IN),
        edns: None,
    };
    build(&head, [&answers, &[], &[]], usize::MAX).to_vec()
}

fn compose(
    head: &Head<'_>,
    sections: &[Vec<ScannedRecord>; 3],
    limit: usize,
) -> Result<Vec<u8>, PushError> {
    let mut msg = MessageBuilder::new_vec();
    msg.set_push_limit(limit);
    let header = msg.header_mut();
    header.set_id(head.id);
    header.set_qr(true);
    header.set_opcode(Opcode::QUERY);
    header.set_rd(head.rd);
    header.set_cd(head.cd);
    header.set_aa(head.aa);
    header.set_ra(head.ra);
    header.set_tc(head.tc);
    header.set_rcode(head.rcode);
    let mut question = msg.question();
    let (qname, qtype, qclass) = head.question;
    question.push((dname(qname), qtype, qclass))?;
    let mut answer = question.answer();
    for record in &sections[0] {
        answer.push(record)?;
    }
    let mut authority = answer.authority();
    for record in &sections[1] {
        authority.push(record)?;
    }
    let mut additional = authority.additional();
    for record in &sections[2] {
        additional.push(record)?;
    }
    if let Some((size, dnssec_ok)) = head.edns {
        additional.opt(|opt| {
            opt.set_udp_payload_size(size);
            opt.set_dnssec_ok(dnssec_ok);
            Ok(())
        })?;
    }
    Ok(additional.finish())
}

fn dname(name: &Name) -> DName<Bytes> {
    DName::from_octets(Bytes::copy_from_slice(name.as_wire())).expect("a core name is valid")
}

/// The core's records, written out as zone file lines and read back by `domain`.
fn to_domain(records: &[Record]) -> Vec<ScannedRecord> {
    let text: String = records
        .iter()
        .map(|r| {
            let (owner, ttl, rtype) = (r.owner(), r.ttl(), r.rtype());
            format!("{owner} {ttl} IN {rtype} {}\n", r.data_text())
        })
        .collect();
    let mut reader = Zonefile::new();
    reader.extend_from_slice(text.as_bytes());
    reader.set_origin(DName::root_bytes());
    reader.set_default_class(Class::IN);
    let mut out = Vec::with_capacity(records.len());
    while let Some(entry) = reader
        .next_entry()
        .unwrap_or_else(|e| panic!("domain cannot read {text:?}: {e}"))
    {
        match entry {
            Entry::Record(record) => out.push(record),
            Entry::Include { .. } => unreachable!("no $INCLUDE is written"),
        }
    }
    assert_eq!(out.len(), records.len(), "every record read back: {text}");
    out
}
