//! Records copied out of the buffers they were read from, for what the core keeps past a
//! query (the cache, stale cluster parts): a record read from an upstream reply points into
//! that reply's buffer, so keeping it would keep the whole buffer alive. Written into one
//! message of their own and read back, they hold only what they need.

use bytes::{Bytes, BytesMut};
use domain::base::iana::{Class, Opcode, Rtype};

use super::reply::{write_reply, ReplyHeader};
use super::upstream::UpstreamReply;
use super::{Name, Record, MAX_MESSAGE_LEN};

/// The three sections as records that share one buffer of about their wire size, or `None`
/// if they do not fit in one message.
pub(crate) fn compact(sections: [&[Record]; 3]) -> Option<[Vec<Record>; 3]> {
    let root = Name::root();
    let header = ReplyHeader {
        id: 0,
        opcode: Opcode::QUERY,
        rd: false,
        cd: false,
        aa: false,
        ra: false,
        rcode: 0,
        question: Some((&root, Rtype::NULL, Class::IN)),
        edns_do: None,
        udp_size: 0,
        ede: &[],
    };
    let mut buf = BytesMut::new();
    let (wire, truncated) = write_reply(&mut buf, &header, sections, MAX_MESSAGE_LEN);
    if truncated {
        return None;
    }
    // An allocation of its own, exactly the message's size.
    let wire = Bytes::copy_from_slice(&wire);
    let (reply, _) = UpstreamReply::parse(wire).ok()?;
    reply.sections().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_the_copy_ttls_and_case_included() {
        let n = |s: &str| Name::parse(s).expect("valid");
        let records = vec![
            Record::srv(n("_x._tcp.Demo.example."), 30, 0, 50, 80, n("a-0.example.")),
            Record::a(n("a-0.example."), 17, "10.0.0.1".parse().expect("ip")),
        ];
        let soa = Record::soa(
            n("example."),
            5,
            &super::super::SoaFields {
                mname: n("ns.example."),
                rname: n("hostmaster.example."),
                serial: 1,
                refresh: 2,
                retry: 3,
                expire: 4,
                minimum: 5,
            },
        );
        let [answer, authority, additional] =
            compact([&records, std::slice::from_ref(&soa), &[]]).expect("fits");
        assert_eq!(answer, records);
        assert!(answer[0].owner().eq_exact(records[0].owner()));
        assert_eq!(authority, vec![soa]);
        assert!(additional.is_empty());
    }
}
