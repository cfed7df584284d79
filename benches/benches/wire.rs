//! The wire boundary alone: parsing a client query and an upstream reply, and writing the
//! merged SPEC §1 reply (the static-compressor path) and a 120-record TCP reply (the tree
//! compressor path), plus a sub-query.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion};
use gatherdns_benches::{cluster_reply, merged_records, srv_query, SRV_NAME};
use gatherdns_core::wire::{
    write_query, write_reply, Class, ClientQuery, Name, Opcode, Record, ReplyHeader, Rtype,
    SubQuery, UpstreamReply, EDNS_UDP_SIZE,
};

fn header(qname: &Name, qtype: Rtype) -> ReplyHeader<'_> {
    ReplyHeader {
        id: 0x1234,
        opcode: Opcode::QUERY,
        rd: true,
        cd: false,
        aa: true,
        ra: true,
        rcode: 0,
        question: Some((qname, qtype, Class::IN)),
        edns_do: Some(false),
        udp_size: EDNS_UDP_SIZE,
        ede: &[],
    }
}

fn parse(c: &mut Criterion) {
    let query = srv_query(0x1234);
    c.bench_function("wire/parse_client_query", |b| {
        b.iter(|| black_box(ClientQuery::parse(query.clone()).is_ok()))
    });
    let reply = cluster_reply('a');
    c.bench_function("wire/parse_upstream_reply", |b| {
        b.iter(|| {
            let Ok((reply, _head)) = UpstreamReply::parse(reply.clone()) else {
                panic!("canned reply does not parse")
            };
            black_box(reply.sections().map(|s| s[0].len()))
        })
    });
}

fn write(c: &mut Criterion) {
    let qname = Name::parse(SRV_NAME).expect("valid name");
    let [answer, authority, additional] = merged_records();
    let mut buf = BytesMut::with_capacity(65535);
    c.bench_function("wire/write_reply_9_records", |b| {
        b.iter(|| {
            // As the gateway does: reserve, so the scratch buffer is reclaimed once the
            // previous reply has been dropped.
            buf.reserve(4096);
            black_box(write_reply(
                &mut buf,
                &header(&qname, Rtype::SRV),
                [&answer, &authority, &additional],
                1232,
            ))
        })
    });

    let big = Name::parse("big.default.svc.distributed.local.").expect("valid name");
    let many: Vec<Record> = (0..120u8)
        .map(|i| Record::a(big.clone(), 30, [10, 8 + i / 60, 2, i % 60 + 1].into()))
        .collect();
    c.bench_function("wire/write_reply_120_records_tcp", |b| {
        b.iter(|| {
            buf.reserve(4096);
            black_box(write_reply(
                &mut buf,
                &header(&big, Rtype::A),
                [&many, &[], &[]],
                65535,
            ))
        })
    });

    let sub =
        Name::parse("_demo._tcp.demo-service.default.svc.cluster-a.local.").expect("valid name");
    let subquery = SubQuery {
        id: 0x4321,
        qname: &sub,
        qtype: Rtype::SRV,
        rd: true,
        cd: false,
        dnssec_ok: false,
        udp_size: EDNS_UDP_SIZE,
    };
    c.bench_function("wire/write_query", |b| {
        b.iter(|| {
            buf.reserve(512);
            black_box(write_query(&mut buf, &subquery))
        })
    });
}

criterion_group!(benches, parse, write);
criterion_main!(benches);
