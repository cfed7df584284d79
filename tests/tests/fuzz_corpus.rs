//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the same functions the
//! fuzz targets call, so a plain `cargo test` catches a regression on any input a fuzzer ever
//! kept, without cargo-fuzz or a nightly toolchain.
//!
//! The hand-made seeds (`seed-*` files) are written by the ignored `regenerate_seed_corpus`:
//! `cargo test -p gatherdns-tests --test fuzz_corpus -- --ignored regenerate_seed_corpus`.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use bytes::BytesMut;
use gatherdns_core::fuzzing;
use gatherdns_core::wire::{
    write_reply, Class, Ede, Name, Opcode, Record, ReplyHeader, Rtype, SoaFields, EDNS_UDP_SIZE,
};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

/// Runs `check` on every file of the target's corpus; a failure names the file and shows the
/// input in hex, ready for a unit test.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no corpus", dir.display());
    for path in files {
        let data = fs::read(&path).unwrap();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            let shown: String = data.iter().take(512).map(|b| format!("{b:02x}")).collect();
            panic!(
                "{target}: {} fails: {why}\ninput ({} bytes): {shown}",
                path.display(),
                data.len()
            );
        }
    }
}

#[test]
fn client_query() {
    replay("client_query", fuzzing::client_query);
}

#[test]
fn upstream_reply() {
    replay("upstream_reply", fuzzing::upstream_reply);
}

#[test]
fn roundtrip() {
    replay("roundtrip", fuzzing::roundtrip);
}

#[test]
fn corefile() {
    replay("corefile", fuzzing::corefile);
}

#[test]
fn tcp_framing() {
    replay("tcp_framing", fuzzing::tcp_framing);
}

#[test]
fn zonefile() {
    replay("zonefile", fuzzing::zonefile);
}

#[test]
fn gateway_ops() {
    replay("gateway_ops", fuzzing::gateway_ops);
}

// ---- the seed corpus ----

/// Writes the `seed-*` files of every target (leaving inputs the fuzzers found alone) and
/// checks each with its target on the way, so a seed that fails is never committed.
#[test]
#[ignore = "writes fuzz/corpus; run by hand after changing the seeds"]
fn regenerate_seed_corpus() {
    write_seeds("client_query", fuzzing::client_query, client_query_seeds());
    write_seeds(
        "upstream_reply",
        fuzzing::upstream_reply,
        upstream_reply_seeds(),
    );
    write_seeds("roundtrip", fuzzing::roundtrip, roundtrip_seeds());
    write_seeds("corefile", fuzzing::corefile, corefile_seeds());
    write_seeds("tcp_framing", fuzzing::tcp_framing, tcp_framing_seeds());
    write_seeds("zonefile", fuzzing::zonefile, zonefile_seeds());
    write_seeds("gateway_ops", fuzzing::gateway_ops, gateway_ops_seeds());
}

fn write_seeds(target: &str, check: fn(&[u8]), seeds: Seeds) {
    let dir = corpus_dir(target);
    fs::create_dir_all(&dir).unwrap();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            fs::remove_file(path).unwrap();
        }
    }
    for (name, data) in seeds {
        check(&data);
        fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    }
}

/// Named inputs for one target.
type Seeds = Vec<(&'static str, Vec<u8>)>;

fn name(text: &str) -> Name {
    Name::parse(text).unwrap()
}

/// A message from raw parts: header flags and counts follow the sections given.
fn message(id: u16, flags: u16, questions: &[&[u8]], sections: [&[&[u8]]; 3]) -> Vec<u8> {
    let mut msg = Vec::new();
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&flags.to_be_bytes());
    msg.extend_from_slice(&(questions.len() as u16).to_be_bytes());
    for section in sections {
        msg.extend_from_slice(&(section.len() as u16).to_be_bytes());
    }
    for part in questions
        .iter()
        .chain(sections.iter().flat_map(|s| s.iter()))
    {
        msg.extend_from_slice(part);
    }
    msg
}

fn question(qname: &str, qtype: Rtype, qclass: Class) -> Vec<u8> {
    let mut q = name(qname).as_wire().to_vec();
    q.extend_from_slice(&qtype.to_int().to_be_bytes());
    q.extend_from_slice(&qclass.to_int().to_be_bytes());
    q
}

/// An OPT pseudo-record (RFC 6891 §6.1.2).
fn opt(udp_size: u16, version: u8, dnssec_ok: bool, options: &[u8]) -> Vec<u8> {
    let mut rr = vec![0, 0, 41];
    rr.extend_from_slice(&udp_size.to_be_bytes());
    rr.extend_from_slice(&[0, version, if dnssec_ok { 0x80 } else { 0 }, 0]);
    rr.extend_from_slice(&(options.len() as u16).to_be_bytes());
    rr.extend_from_slice(options);
    rr
}

/// Flags of a query with RD.
const RD: u16 = 0x0100;
/// Flags of an authoritative reply (QR, AA).
const QR_AA: u16 = 0x8400;

fn client_query_seeds() -> Seeds {
    let srv = question(fuzzing::GATHERED_SRV_NAME, Rtype::SRV, Class::IN);
    let big = question("big.default.svc.distributed.local.", Rtype::A, Class::IN);
    vec![
        ("srv-plain", message(1, RD, &[&srv], [&[], &[], &[]])),
        (
            "srv-edns",
            message(2, RD, &[&srv], [&[], &[], &[&opt(1232, 0, false, &[])]]),
        ),
        (
            "srv-edns-do",
            message(
                3,
                RD | 0x0010,
                &[&srv],
                [&[], &[], &[&opt(4096, 0, true, &[])]],
            ),
        ),
        (
            "srv-0x20",
            message(
                4,
                RD,
                &[&question(
                    "_dEmO._TcP.DeMo-SeRvIcE.default.SVC.Distributed.LOCAL.",
                    Rtype::SRV,
                    Class::IN,
                )],
                [&[], &[], &[]],
            ),
        ),
        (
            "prefixed-a",
            message(
                5,
                RD,
                &[&question(
                    "a-demo-service-0.default.svc.distributed.local.",
                    Rtype::A,
                    Class::IN,
                )],
                [&[], &[], &[]],
            ),
        ),
        (
            "service-txt",
            message(
                6,
                0,
                &[&question(
                    "demo-service.default.svc.distributed.local.",
                    Rtype::TXT,
                    Class::IN,
                )],
                [&[], &[], &[]],
            ),
        ),
        (
            "alias-cname",
            message(
                7,
                RD,
                &[&question(
                    "alias.default.svc.distributed.local.",
                    Rtype::A,
                    Class::IN,
                )],
                [&[], &[], &[]],
            ),
        ),
        (
            "wildcard",
            message(
                8,
                RD,
                &[&question(
                    "x.wild.default.svc.distributed.local.",
                    Rtype::A,
                    Class::IN,
                )],
                [&[], &[], &[]],
            ),
        ),
        (
            "nxdomain",
            message(
                9,
                RD,
                &[&question(
                    "missing.default.svc.distributed.local.",
                    Rtype::A,
                    Class::IN,
                )],
                [&[], &[], &[]],
            ),
        ),
        ("big-plain-tc", message(10, RD, &[&big], [&[], &[], &[]])),
        (
            "big-edns",
            message(11, RD, &[&big], [&[], &[], &[&opt(1232, 0, false, &[])]]),
        ),
        (
            "big-edns-small",
            message(12, RD, &[&big], [&[], &[], &[&opt(600, 0, false, &[])]]),
        ),
        (
            "apex-soa",
            message(
                13,
                RD,
                &[&question("distributed.local.", Rtype::SOA, Class::IN)],
                [&[], &[], &[]],
            ),
        ),
        (
            "apex-ns",
            message(
                14,
                RD,
                &[&question("Distributed.Local.", Rtype::NS, Class::IN)],
                [&[], &[], &[]],
            ),
        ),
        (
            "any",
            message(
                15,
                RD,
                &[&question(
                    "demo-service.default.svc.distributed.local.",
                    Rtype::ANY,
                    Class::IN,
                )],
                [&[], &[], &[]],
            ),
        ),
        (
            "cluster-zone",
            message(
                16,
                RD,
                &[&question(
                    "demo-service.default.svc.cluster-a.local.",
                    Rtype::A,
                    Class::IN,
                )],
                [&[], &[], &[]],
            ),
        ),
        (
            "refused",
            message(
                17,
                RD,
                &[&question("example.com.", Rtype::A, Class::IN)],
                [&[], &[], &[]],
            ),
        ),
        (
            "two-questions",
            message(
                18,
                RD,
                &[&srv, &question("distributed.local.", Rtype::SOA, Class::IN)],
                [&[], &[], &[]],
            ),
        ),
        (
            "no-question",
            message(19, RD, &[], [&[], &[], &[&opt(1232, 0, false, &[])]]),
        ),
        ("notify", message(20, 0x2000, &[&srv], [&[], &[], &[]])),
        (
            "class-ch",
            message(
                21,
                RD,
                &[&question("version.bind.", Rtype::TXT, Class::CH)],
                [&[], &[], &[]],
            ),
        ),
        (
            "qtype-opt",
            message(
                22,
                RD,
                &[&question("distributed.local.", Rtype::OPT, Class::IN)],
                [&[], &[], &[]],
            ),
        ),
        (
            "badvers",
            message(23, RD, &[&srv], [&[], &[], &[&opt(1232, 1, false, &[])]]),
        ),
        (
            "two-opts",
            message(
                24,
                RD,
                &[&srv],
                [
                    &[],
                    &[],
                    &[&opt(1232, 0, false, &[]), &opt(512, 0, false, &[])],
                ],
            ),
        ),
        (
            "opt-in-answer",
            message(25, RD, &[&srv], [&[&opt(1232, 0, false, &[])], &[], &[]]),
        ),
        // EDNS cookie option (code 10, 8-byte client cookie): must not be passed on.
        (
            "edns-cookie",
            message(
                26,
                RD,
                &[&srv],
                [
                    &[],
                    &[],
                    &[&opt(1232, 0, false, &[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8])],
                ],
            ),
        ),
        ("response", message(27, 0x8000, &[&srv], [&[], &[], &[]])),
        ("header-only", message(28, RD, &[], [&[], &[], &[]])),
        ("short", vec![0, 29, 1, 0, 0]),
        // A question name that points at itself: a compression loop.
        ("pointer-loop", {
            let mut m = message(30, RD, &[], [&[], &[], &[]]);
            m[5] = 1;
            m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
            m
        }),
        (
            "truncated-question",
            message(31, RD, &[&srv[..10]], [&[], &[], &[]]),
        ),
    ]
}

/// Cluster A's sub-query name for the SPEC §1 query. The fuzz target rewrites `cluster-a` to
/// `cluster-b` for cluster B's sub-query, so the seeds only need cluster A's replies.
const SUB_A: &str = "_demo._tcp.demo-service.default.svc.cluster-a.local.";

fn cluster_a_reply(
    rcode: u16,
    aa: bool,
    sections: [&[Record]; 3],
    edns: bool,
    ede: &[Ede],
) -> Vec<u8> {
    let qname = name(SUB_A);
    let header = ReplyHeader {
        id: 0,
        opcode: Opcode::QUERY,
        rd: true,
        cd: false,
        aa,
        ra: true,
        rcode,
        question: Some((&qname, Rtype::SRV, Class::IN)),
        edns_do: edns.then_some(false),
        udp_size: EDNS_UDP_SIZE,
        ede,
    };
    let mut buf = BytesMut::with_capacity(4096);
    write_reply(&mut buf, &header, sections, 65535).0.to_vec()
}

fn spec_records(cluster: char) -> (Vec<Record>, Vec<Record>) {
    let net = if cluster == 'a' { 8 } else { 9 };
    let owner = name(&format!(
        "_demo._tcp.demo-service.default.svc.cluster-{cluster}.local."
    ));
    let host = |i: u32| {
        name(&format!(
            "demo-service-{i}.default.svc.cluster-{cluster}.local."
        ))
    };
    let answer = (0..2)
        .map(|i| Record::srv(owner.clone(), 30, 0, 50, 8080, host(i)))
        .collect();
    let additional = (0..2)
        .map(|i| Record::a(host(i), 30, [10, net, 1, 2].into()))
        .collect();
    (answer, additional)
}

fn cluster_soa() -> Record {
    let soa = SoaFields {
        mname: name("ns.cluster-a.local."),
        rname: name("hostmaster.cluster-a.local."),
        serial: 2024010101,
        refresh: 7200,
        retry: 3600,
        expire: 1209600,
        minimum: 30,
    };
    Record::soa(name("cluster-a.local."), 3600, &soa)
}

fn upstream_reply_seeds() -> Seeds {
    let (answer, additional) = spec_records('a');
    let owner = name(SUB_A);
    let many: Vec<Record> = (0..30)
        .map(|i| {
            Record::srv(
                owner.clone(),
                30,
                0,
                50,
                8080,
                name(&format!("demo-service-{i}.default.svc.cluster-a.local.")),
            )
        })
        .collect();
    let cname = vec![
        Record::cname(
            owner.clone(),
            30,
            name("other.default.svc.cluster-a.local."),
        ),
        Record::srv(
            name("other.default.svc.cluster-a.local."),
            30,
            1,
            10,
            53,
            name("ns.example.org."),
        ),
    ];
    let mut tc = cluster_a_reply(0, true, [&[], &[], &[]], true, &[]);
    tc[2] |= 0x02;
    let wrong_question = {
        let mut m = cluster_a_reply(0, true, [&answer, &[], &[]], false, &[]);
        // Same length, another cluster's name: matches on ID and source but not question.
        let at = m.windows(9).position(|w| w == b"cluster-a").unwrap();
        m[at..at + 9].copy_from_slice(b"cluster-z");
        m
    };
    // An answer of class CH: right ID and question, records the core refuses.
    let chaos = {
        let mut rr = name(SUB_A).as_wire().to_vec();
        rr.extend_from_slice(&[0, 16, 0, 3, 0, 0, 0, 30, 0, 4, 3, b'a', b'b', b'c']);
        message(
            0,
            QR_AA,
            &[&question(SUB_A, Rtype::SRV, Class::IN)],
            [&[&rr], &[], &[]],
        )
    };
    let servfail_ede = cluster_a_reply(
        2,
        false,
        [&[], &[], &[]],
        true,
        &[Ede {
            code: 23,
            text: "upstream down".into(),
        }],
    );
    vec![
        (
            "spec-cluster-a",
            cluster_a_reply(0, true, [&answer, &[], &additional], true, &[]),
        ),
        (
            "spec-no-edns",
            cluster_a_reply(0, true, [&answer, &[], &additional], false, &[]),
        ),
        (
            "nxdomain-soa",
            cluster_a_reply(3, true, [&[], &[cluster_soa()], &[]], true, &[]),
        ),
        (
            "nodata-soa",
            cluster_a_reply(0, true, [&[], &[cluster_soa()], &[]], false, &[]),
        ),
        (
            "servfail",
            cluster_a_reply(2, false, [&[], &[], &[]], false, &[]),
        ),
        ("servfail-ede", servfail_ede),
        (
            "badvers-extended",
            cluster_a_reply(16, false, [&[], &[], &[]], true, &[]),
        ),
        ("truncated", tc),
        (
            "many-srv",
            cluster_a_reply(0, true, [&many, &[], &[]], true, &[]),
        ),
        (
            "cname-out-of-zone",
            cluster_a_reply(0, true, [&cname, &[], &[]], false, &[]),
        ),
        ("wrong-question", wrong_question),
        ("class-ch-answer", chaos),
        ("header-only", message(0, QR_AA, &[], [&[], &[], &[]])),
        (
            "query-not-reply",
            message(
                0,
                RD,
                &[&question(SUB_A, Rtype::SRV, Class::IN)],
                [&[], &[], &[]],
            ),
        ),
    ]
}

fn roundtrip_seeds() -> Seeds {
    let mut seeds = upstream_reply_seeds();
    seeds.retain(|(n, _)| !matches!(*n, "header-only" | "query-not-reply"));
    // Every record type the core builds, in one message.
    let owner = name("x.example.");
    let soa = cluster_soa();
    let records = vec![
        Record::a(owner.clone(), 1, [192, 0, 2, 1].into()),
        Record::aaaa(owner.clone(), 2, "2001:db8::1".parse().unwrap()),
        Record::ns(owner.clone(), 3, name("ns.example.")),
        Record::ptr(owner.clone(), 4, name("host.example.")),
        Record::cname(name("alias.example."), 5, owner.clone()),
        Record::txt(owner.clone(), 6, "v=spf1 -all"),
        Record::rfc8482_hinfo(owner.clone(), 7),
        soa,
    ];
    let qname = name("X.Example.");
    let header = ReplyHeader {
        id: 77,
        opcode: Opcode::QUERY,
        rd: false,
        cd: false,
        aa: true,
        ra: false,
        rcode: 0,
        question: Some((&qname, Rtype::ANY, Class::IN)),
        edns_do: Some(true),
        udp_size: EDNS_UDP_SIZE,
        ede: &[],
    };
    let mut buf = BytesMut::with_capacity(4096);
    seeds.push((
        "all-types",
        write_reply(&mut buf, &header, [&records, &[], &[]], 65535)
            .0
            .to_vec(),
    ));
    // A generic (RFC 3597) record of an unassigned type.
    let mut unknown = name("x.example.").as_wire().to_vec();
    unknown.extend_from_slice(&[0xff, 0x00, 0, 1, 0, 0, 0, 60, 0, 3, 1, 2, 3]);
    seeds.push((
        "unknown-type",
        message(
            5,
            QR_AA,
            &[&question("x.example.", Rtype::A, Class::IN)],
            [&[&unknown], &[], &[]],
        ),
    ));
    seeds
}

fn corefile_seeds() -> Seeds {
    let mut seeds = vec![
        ("zone-gather", fuzzing::ZONE_COREFILE.as_bytes().to_vec()),
        ("forward-gather", fuzzing::FORWARD_COREFILE.as_bytes().to_vec()),
        (
            "options",
            b"dns://distributed.local.:1053 other.local. {\n  gathersrv distributed.local. {\n    cluster-a.local. a-\n    cluster-b.local. b-\n    timeout 3s\n    cluster_timeout 250ms\n    negative_ttl 10\n  }\n  forward cluster-a.local. {$UPSTREAM} {\n    force_tcp\n  }\n  forward cluster-b.local. 198.51.100.1 198.51.100.2:5353 {\n    prefer_udp\n  }\n  log\n  errors\n}\n"
                .to_vec(),
        ),
        (
            "snippets-import",
            b"(common) {\n  log\n  errors\n}\n\nexample.org {\n  import common\n  import snippets/forward.conf\n}\n\n. {\n  bind 127.0.0.1 ::1\n  forward . 192.0.2.53:53\n}\n"
                .to_vec(),
        ),
        (
            "file-zones",
            b"cluster-a.local. cluster-b.local. {\n  file zones/cluster-a.local.zone cluster-a.local.\n  file zones/cluster-b.local.zone cluster-b.local.\n}\n# a comment\n\"quoted.example\":5300 {\n  forward . 192.0.2.1\n}\n"
                .to_vec(),
        ),
        ("unknown-directive", b"example.org {\n  nosuchplugin arg\n}\n".to_vec()),
        ("unclosed", b"example.org {\n  forward . 192.0.2.1 {\n".to_vec()),
        ("missing-file", b"example.org {\n  file /nonexistent.zone\n}\n".to_vec()),
        ("empty", Vec::new()),
    ];
    // The demo Corefile the project ships, when it is there.
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo/Corefile");
    if let Ok(text) = fs::read(demo) {
        seeds.push(("examples-demo", text));
    }
    seeds
}

/// A TCP stream: each message behind its two-byte length.
fn framed(messages: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

fn tcp_framing_seeds() -> Seeds {
    let a = message(
        1,
        RD,
        &[&question(fuzzing::GATHERED_SRV_NAME, Rtype::SRV, Class::IN)],
        [&[], &[], &[]],
    );
    let b = message(
        2,
        RD,
        &[&question("distributed.local.", Rtype::SOA, Class::IN)],
        [&[], &[], &[&opt(1232, 0, false, &[])]],
    );
    let with = |control: &[u8], stream: Vec<u8>| [control, &stream].concat();
    let two = framed(&[&a, &b]);
    vec![
        // First byte: how many chunk-size bytes follow (minus one); then the sizes.
        ("two-bytewise", with(&[0, 0], two.clone())),
        ("two-oneshot", with(&[0, 255], two.clone())),
        ("two-mixed", with(&[2, 1, 6, 40], two.clone())),
        (
            "partial-tail",
            with(&[0, 3], [two.clone(), vec![0, 40, 1, 2]].concat()),
        ),
        (
            "zero-length",
            with(&[0, 4], [framed(&[&a]), vec![0, 0], framed(&[&b])].concat()),
        ),
        ("prefix-only", with(&[0, 0], vec![0x01])),
        (
            "big-frame",
            with(&[1, 255, 17], framed(&[&vec![0xab; 3000]])),
        ),
    ]
}

fn zonefile_seeds() -> Seeds {
    vec![
        ("demo-cluster-a", fuzzing::demo_zone('a').replace("cluster-a.local.", "example.").into_bytes()),
        (
            "many-types",
            b"$ORIGIN example.\n$TTL 3600\n@ IN SOA ns hostmaster ( 1 7200 3600\n    1209600 ; expire\n    300 )\n@ NS ns\nns A 192.0.2.1\n   AAAA 2001:db8::1\nwww CNAME @\nmail MX 10 mx.example.\n_sip._udp SRV 0 5 5060 sip\ntxt TXT \"hello world\" \"second \\\"string\\\"\"\nptr PTR host.example.\n*.wild A 192.0.2.9\nesc\\.aped A 192.0.2.10\n\\065bc A 192.0.2.11\ngeneric TYPE65280 \\# 3 010203\ncaa CAA 0 issue \"ca.example\"\n"
                .to_vec(),
        ),
        ("relative-origin", b"$ORIGIN sub\nhost 60 IN A 192.0.2.3\n$TTL 1h\nother A 192.0.2.4\n".to_vec()),
        ("out-of-zone", b"www.example.com. A 192.0.2.1\n".to_vec()),
        ("class-ch", b"@ 60 CH TXT \"x\"\n".to_vec()),
        ("include", b"$INCLUDE other.zone\n".to_vec()),
        ("bad-line", b"@ 60 IN A 300.1.2.3\n".to_vec()),
        ("unbalanced", b"@ SOA ns hostmaster ( 1 2 3 4\n".to_vec()),
        ("max-ttl", b"@ 2147483647 A 192.0.2.1\nx 4294967295 A 192.0.2.2\n".to_vec()),
    ]
}

/// Steps of `fuzzing::decode_ops`: a selector byte (its value mod 12) and its arguments.
mod step {
    /// A query: target 0 gather, 1 proxy, 2 hosts, 3 refused; over TCP; for SRV.
    pub(super) fn query(target: u8, tcp: bool, srv: bool) -> Vec<u8> {
        vec![0, target | u8::from(tcp) << 2 | if srv { 0x18 } else { 0 }]
    }
    /// A reply to the sub-query `pick` back from the newest: 0 right, 3 SERVFAIL, 4 wrong
    /// ID, 5 wrong question, 6 wrong source, 7 wrong socket, 8 truncated.
    pub(super) fn reply(kind: u8, pick: u8) -> Vec<u8> {
        vec![3, kind, pick]
    }
    pub(super) fn malformed(pick: u8, bytes: &[u8]) -> Vec<u8> {
        [&[3, 9, pick, bytes.len() as u8][..], bytes].concat()
    }
    pub(super) fn fail(pick: u8) -> Vec<u8> {
        vec![6, pick]
    }
    pub(super) fn open(pick: u8) -> Vec<u8> {
        vec![7, pick]
    }
    /// 0 connect failed, 1 lost, 2 broken.
    pub(super) fn close(how: u8, pick: u8) -> Vec<u8> {
        vec![8, how, pick]
    }
    /// Time passes, 16 ms per unit.
    pub(super) fn advance(units: u8) -> Vec<u8> {
        vec![9, units]
    }
    pub(super) fn next_timeout() -> Vec<u8> {
        vec![10]
    }
    pub(super) fn reconfigure(variant: u8) -> Vec<u8> {
        vec![11, variant << 1 | 1]
    }
    /// Hosts texts 0 to 2, 3 malformed, 4 another path.
    pub(super) fn update_file(variant: u8) -> Vec<u8> {
        vec![11, variant << 1]
    }
}

fn gateway_ops_seeds() -> Seeds {
    use step::*;
    let (gather, proxy, hosts, refused) = (0, 1, 2, 3);
    let ops = |steps: Vec<Vec<u8>>| steps.concat();
    let overload = (0..9).map(|i| query(proxy, i % 2 == 0, false)).collect();
    vec![
        (
            "proxy-answered",
            ops(vec![query(proxy, false, false), reply(0, 0)]),
        ),
        (
            "gather-truncated-then-tcp",
            ops(vec![
                query(gather, false, false),
                reply(8, 0),
                open(0),
                reply(0, 0),
                reply(0, 1),
                reply(0, 2),
                advance(200),
            ]),
        ),
        (
            "forged-replies",
            ops(vec![
                query(proxy, false, false),
                reply(4, 0),
                reply(5, 0),
                reply(6, 0),
                reply(7, 0),
                malformed(0, &[0, 0, 0x81, 0x80, 0, 1]),
                reply(0, 0),
                advance(200),
            ]),
        ),
        (
            "timeouts-and-retries",
            ops(vec![
                query(gather, false, false),
                query(proxy, false, true),
                next_timeout(),
                fail(0),
                advance(40),
                next_timeout(),
                advance(250),
            ]),
        ),
        ("overload", ops([overload, vec![advance(200)]].concat())),
        (
            "reload-in-flight",
            ops(vec![
                query(gather, false, false),
                query(proxy, true, false),
                reconfigure(1),
                query(proxy, false, false),
                reply(0, 0),
                open(0),
                reconfigure(2),
                query(proxy, true, false),
                advance(250),
            ]),
        ),
        (
            "hosts-changes",
            ops(vec![
                query(hosts, false, false),
                update_file(1),
                query(hosts, true, false),
                update_file(3),
                update_file(4),
                query(hosts, false, true),
                update_file(2),
                reconfigure(0),
                query(hosts, false, false),
                query(refused, false, false),
            ]),
        ),
        (
            "connections",
            ops(vec![
                query(proxy, true, false),
                query(gather, true, false),
                open(0),
                close(1, 0),
                open(0),
                close(2, 0),
                close(0, 0),
                query(proxy, true, false),
                open(0),
                reply(0, 0),
                advance(250),
                advance(250),
            ]),
        ),
    ]
}
