//! Upstream replies for `gateway_ops`, built with `domain`'s message builder rather than the
//! core's own writer, so that a bug in the core's encoder cannot cancel out one in its parser.

use std::net::Ipv4Addr;

use bytes::Bytes;
use domain::base::iana::Class;
use domain::base::name::Name as DName;
use domain::base::MessageBuilder;
use domain::rdata::A;

use crate::wire::{Name, Rcode, Rtype};

/// What a simulated upstream puts in its reply.
#[derive(Clone, Debug)]
pub struct ReplySpec {
    pub id: u16,
    pub qname: Name,
    pub qtype: Rtype,
    pub rd: bool,
    pub tc: bool,
    pub rcode: Rcode,
    /// A records owned by `qname`.
    pub answers: Vec<Ipv4Addr>,
}

/// How a test turns a [`ReplySpec`] into bytes.
pub type Encode = fn(&ReplySpec) -> Vec<u8>;

/// Encodes a reply with `domain`'s builder.
pub fn encode_with_domain(spec: &ReplySpec) -> Vec<u8> {
    let owner = DName::<Bytes>::from_octets(Bytes::copy_from_slice(spec.qname.as_wire()))
        .expect("a core name is a valid name");
    let mut msg = MessageBuilder::new_vec();
    let header = msg.header_mut();
    header.set_id(spec.id);
    header.set_qr(true);
    header.set_rd(spec.rd);
    header.set_ra(true);
    header.set_tc(spec.tc);
    header.set_rcode(spec.rcode);
    let mut question = msg.question();
    question
        .push((&owner, spec.qtype, Class::IN))
        .expect("a Vec has room");
    let mut answer = question.answer();
    for addr in &spec.answers {
        answer
            .push((&owner, 30, A::new(*addr)))
            .expect("a Vec has room");
    }
    answer.finish()
}
