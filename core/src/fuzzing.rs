//! Entry points of the fuzz targets in `fuzz/`: each takes arbitrary bytes, drives one part of
//! the core and checks its invariants with `assert!`, so a violation is a crash the fuzzer keeps.
//!
//! Unlike quinn's `#[cfg(fuzzing)] pub mod fuzzing`, this module is always compiled and only
//! hidden from the docs: `tests/tests/fuzz_corpus.rs` replays the committed corpus through these
//! same functions in a plain `cargo test`, which does not set `--cfg fuzzing`. Nothing else may
//! depend on it.

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::corefile::{parse_corefile_text, ParseOptions};
use crate::framing::{FrameDecoder, FramingError};
use crate::loader::MemLoader;
use crate::transmit::{
    ClientAddr, ClientTransport, ConnId, ConnectionCommand, Destination, ListenerId, Transmit,
};
use crate::wire::{
    parse_zonefile, write_reply, Class, ClientQuery, Name, Opcode, QueryError, Record, ReplyHeader,
    Rtype, UpstreamHead, UpstreamReply, EDNS_UDP_SIZE, MAX_MESSAGE_LEN, PLAIN_UDP_LIMIT,
};
use crate::{Config, Gateway};

mod fixtures;
mod model;
mod ops;
mod reply;

pub use crate::gateway::{Census, PoolLoad, TIMER_HORIZON};
pub use fixtures::MAX_INFLIGHT;
pub use model::run;
pub use ops::{decode_ops, gateway_ops, Op, ReplyKind, Target};
pub use reply::{encode_with_domain, Encode, ReplySpec};

/// The gathering Corefile of [`client_query`]: both clusters are `file` zones in the block, so
/// every query is answered synchronously and "exactly one reply" can be checked at once. The
/// cluster zones are block keys too, because a `file` zone must be reachable through its block.
pub const ZONE_COREFILE: &str = "\
distributed.local.:53 cluster-a.local.:53 cluster-b.local.:53 {
    gathersrv distributed.local. {
        cluster-a.local. a-
        cluster-b.local. b-
    }
    file zones/cluster-a.local.zone cluster-a.local.
    file zones/cluster-b.local.zone cluster-b.local.
}
";

/// The gathering Corefile of [`upstream_reply`] (SPEC §1): clusters behind `forward`. The
/// addresses are documentation ranges; nothing is ever sent to them, the core is sans-IO.
pub const FORWARD_COREFILE: &str = "\
distributed.local.:53 {
    gathersrv distributed.local. {
        cluster-a.local. a-
        cluster-b.local. b-
    }
    forward cluster-a.local. 192.0.2.1:53 192.0.2.2:53
    forward cluster-b.local. 198.51.100.1:53
}
";

/// The question every [`upstream_reply`] run asks: the SPEC §1 SRV query, answered by both
/// clusters.
pub const GATHERED_SRV_NAME: &str = "_demo._tcp.demo-service.default.svc.distributed.local.";

/// Zone text of a demo cluster (`a` or `b`): SOA, NS, the SPEC §1 service, a CNAME chain and a
/// headless service large enough to need truncation over UDP.
pub fn demo_zone(cluster: char) -> String {
    let net = if cluster == 'a' { 8 } else { 9 };
    let mut zone = format!(
        "$ORIGIN cluster-{cluster}.local.\n$TTL 30\n\
         @ 3600 IN SOA ns hostmaster 1 7200 3600 1209600 30\n\
         @ 3600 IN NS ns\n\
         ns IN A 10.{net}.0.1\n\
         _demo._tcp.demo-service.default.svc IN SRV 0 50 8080 demo-service-0.default.svc\n\
         _demo._tcp.demo-service.default.svc IN SRV 0 50 8080 demo-service-1.default.svc\n\
         demo-service-0.default.svc IN A 10.{net}.1.2\n\
         demo-service-1.default.svc IN A 10.{net}.1.2\n\
         demo-service.default.svc IN A 10.{net}.0.10\n\
         demo-service.default.svc IN AAAA fd00::{net}\n\
         demo-service.default.svc IN TXT \"cluster={cluster}\"\n\
         alias.default.svc IN CNAME demo-service.default.svc\n\
         *.wild.default.svc IN A 10.{net}.3.1\n"
    );
    // 40 addresses: too many for 512 bytes, few enough for 1232 with compression.
    for host in 1..=40 {
        zone.push_str(&format!("big.default.svc IN A 10.{net}.2.{host}\n"));
    }
    zone
}

/// The loader behind the fuzzed Corefiles: the demo zones, a snippet file and an environment
/// variable, so that `file`, `import` and `{$ENV}` reach real content.
pub fn demo_loader() -> MemLoader {
    MemLoader::new()
        .file("zones/cluster-a.local.zone", demo_zone('a'))
        .file("zones/cluster-b.local.zone", demo_zone('b'))
        // Where `examples/demo/Corefile` looks for them: beside the Corefile.
        .file("cluster-a.local.zone", demo_zone('a'))
        .file("cluster-b.local.zone", demo_zone('b'))
        .file("snippets/common.conf", "log\nerrors\n")
        .file("snippets/forward.conf", "forward . 192.0.2.53\n")
        .env("UPSTREAM", "192.0.2.1:53")
}

/// Feeds `data` as a client message, once over UDP and once over TCP, to a gateway answering
/// from zones. Checks: at most one reply per message and exactly one for anything with a query
/// header; the reply echoes the ID (and the question, byte for byte, of a valid query); it
/// re-parses in full; over UDP it fits the client's limit.
pub fn client_query(data: &[u8]) {
    ZONE_GATEWAY.with(|gateway| {
        let mut gateway = gateway.borrow_mut();
        let gateway = gateway.get_or_insert_with(|| {
            Gateway::new(zone_config().clone(), [7; 32]).expect("the fixed Corefile is valid")
        });
        client_query_on(gateway, data);
    });
}

thread_local! {
    /// Building the zones costs far more than answering a query (about 30 times, which made
    /// the target crawl), so one gateway serves every input. It keeps no state between
    /// inputs: zone-backed queries finish at once, which `client_query_on` asserts.
    static ZONE_GATEWAY: RefCell<Option<Gateway>> = const { RefCell::new(None) };
}

fn client_query_on(gateway: &mut Gateway, data: &[u8]) {
    let now = epoch();
    let msg = Bytes::copy_from_slice(data);
    let expect_reply = data.len() >= 12 && data[2] & 0x80 == 0;
    // What the query parser says, checked against what the gateway does: the EDNS that sets
    // the UDP limit, and for a query refused at the boundary the RCODE it must get.
    let (parsed, edns, error_rcode) = match ClientQuery::parse(msg.clone()) {
        Ok(q) => {
            let edns = q.edns;
            (Some(q), edns, None)
        }
        Err(QueryError::Reply { edns, rcode, .. }) => (None, edns, Some(rcode)),
        Err(QueryError::Drop(_)) => (None, None, None),
    };
    for (index, transport) in [ClientTransport::Udp, ClientTransport::Tcp(1)]
        .into_iter()
        .enumerate()
    {
        let client = ClientAddr {
            listener: ListenerId(0),
            remote: client_addr(),
            transport,
        };
        let at = now + Duration::from_millis(index as u64);
        gateway.handle_client_message(at, client, msg.clone());
        let replies = drain_client(gateway, at, client);
        assert!(
            replies.len() <= 1,
            "{} replies to one message",
            replies.len()
        );
        assert_eq!(
            replies.len(),
            usize::from(expect_reply),
            "a query header must get exactly one reply"
        );
        let Some(reply) = replies.first() else {
            continue;
        };
        let limit = match transport {
            // Independent of the gateway's own arithmetic: RFC 1035 §4.2.1 and RFC 6891 §6.2.5,
            // capped at the DNS flag day size.
            ClientTransport::Udp => edns.map_or(PLAIN_UDP_LIMIT, |e| {
                usize::from(e.udp_size.clamp(512, EDNS_UDP_SIZE))
            }),
            ClientTransport::Tcp(_) => MAX_MESSAGE_LEN,
        };
        assert!(
            reply.len() <= limit,
            "a {}-byte reply over {transport:?} exceeds the limit {limit}",
            reply.len()
        );
        let (head, _) = reparse_reply(reply);
        assert_eq!(
            head.id,
            u16::from_be_bytes([data[0], data[1]]),
            "the reply must echo the query ID"
        );
        if let Some(rcode) = error_rcode {
            assert_eq!(
                head.rcode, rcode,
                "a query refused at the boundary gets the parser's RCODE"
            );
        }
        if let Some(query) = &parsed {
            assert_eq!(
                head.qname.as_wire(),
                query.qname.as_wire(),
                "the question must be echoed byte for byte"
            );
            assert_eq!(head.qtype, query.qtype);
            if matches!(transport, ClientTransport::Tcp(_)) {
                assert!(!head.tc, "the demo zones always fit a TCP reply");
            }
        }
    }
    assert_eq!(
        gateway.queries_in_flight(),
        0,
        "zone-backed queries are answered at once"
    );
    assert_eq!(
        gateway.poll_timeout(),
        None,
        "zone-backed queries set no deadline"
    );
}

/// Sends the SPEC §1 SRV query to a gateway whose clusters are behind `forward`, then answers
/// every sub-query with `data`: as is, and with the sub-query's ID written over its first two
/// bytes (and `cluster-a` read as `cluster-b` for cluster B), so the fuzzer gets past ID and
/// question matching. TCP retries are answered the same way, then the deadline passes. Checks:
/// exactly one reply reaches the client, it re-parses and echoes the query, and nothing is left
/// in flight.
pub fn upstream_reply(data: &[u8]) {
    let now = epoch();
    let mut gateway =
        Gateway::new(forward_config().clone(), [9; 32]).expect("the fixed Corefile is valid");
    let client = ClientAddr {
        listener: ListenerId(0),
        remote: client_addr(),
        transport: ClientTransport::Udp,
    };
    let qname = Name::parse(GATHERED_SRV_NAME).expect("a valid name");
    gateway.handle_client_message(now, client, plain_query(0x4242, &qname, Rtype::SRV));

    let mut replies = Vec::new();
    let mut open = Vec::new();
    let mut outgoing = drain(&mut gateway, now, client, &mut replies, &mut open);
    assert_eq!(outgoing.len(), 2, "one sub-query per cluster");
    let at = now + Duration::from_millis(1);
    // Each round answers the attempts of the previous one; a TC reply over UDP starts a TCP
    // retry, which the next round answers. The bound keeps a run short whatever happens.
    for _ in 0..4 {
        if outgoing.is_empty() {
            break;
        }
        for (via, subquery) in std::mem::take(&mut outgoing) {
            let mut patched = data.to_vec();
            if subquery.windows(9).any(|w| w == b"cluster-b") {
                replace_all(&mut patched, b"cluster-a", b"cluster-b");
            }
            if patched.len() >= 2 {
                patched[..2].copy_from_slice(&subquery[..2]);
            }
            for msg in [Bytes::copy_from_slice(data), Bytes::from(patched)] {
                match via {
                    Via::Udp(addr, socket) => {
                        gateway.handle_upstream_message(at, addr, socket, msg)
                    }
                    Via::Connection(conn) => gateway.handle_connection_message(at, conn, msg),
                }
            }
            outgoing.extend(drain(&mut gateway, at, client, &mut replies, &mut open));
        }
    }
    let later = now + Duration::from_secs(3600);
    gateway.handle_timeout(later);
    let _ = drain(&mut gateway, later, client, &mut replies, &mut open);

    assert_eq!(replies.len(), 1, "exactly one reply per client query");
    assert!(
        replies[0].len() <= PLAIN_UDP_LIMIT,
        "the client sent no EDNS: 512 bytes at most"
    );
    let (head, _) = reparse_reply(&replies[0]);
    assert_eq!(head.id, 0x4242);
    assert_eq!(head.qname.as_wire(), qname.as_wire());
    assert_eq!(
        gateway.queries_in_flight(),
        0,
        "the deadline has passed: nothing may stay in flight"
    );
    // Health probes may keep a deadline, but none may be due already: the driver would wake
    // at once, call handle_timeout, and find the same deadline again, forever.
    assert!(
        gateway.poll_timeout().is_none_or(|at| at > later),
        "handle_timeout left a deadline that is already due"
    );
}

/// Parse → build → parse → compare (hickory's `message` target): a reply that parses, written
/// back with [`write_reply`], must parse to the same header fields and records.
pub fn roundtrip(data: &[u8]) {
    let Ok((reply, head)) = UpstreamReply::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    let Ok(sections) = reply.sections() else {
        return;
    };
    let [answer, authority, additional] = &sections;
    let header = ReplyHeader {
        id: head.id,
        opcode: Opcode::QUERY,
        rd: false,
        cd: false,
        aa: head.aa,
        ra: head.ra,
        rcode: head.rcode,
        question: Some((&head.qname, head.qtype, head.qclass)),
        // Always with OPT so that extended RCODEs survive; the OPT record itself is not
        // among the sections compared.
        edns_do: Some(false),
        udp_size: EDNS_UDP_SIZE,
        ede: &[],
    };
    let mut buf = BytesMut::with_capacity(data.len() + 512);
    let (written, truncated) = write_reply(
        &mut buf,
        &header,
        [answer, authority, additional],
        MAX_MESSAGE_LEN,
    );
    let (again, records) = reparse_reply(&written);
    assert_eq!(again.id, head.id);
    assert_eq!(
        again.qname.as_wire(),
        head.qname.as_wire(),
        "the question is written as parsed"
    );
    assert_eq!((again.qtype, again.qclass), (head.qtype, head.qclass));
    assert_eq!((again.aa, again.ra), (head.aa, head.ra));
    assert_eq!(again.rcode, head.rcode);
    assert_eq!(again.tc, truncated);
    if truncated {
        // Our compression can be weaker than the sender's, so a message near 64 KiB may not
        // fit again; then what was written must be a prefix of what was read.
        let original: Vec<&Record> = sections.iter().flatten().collect();
        let kept: Vec<&Record> = records.iter().flatten().collect();
        assert!(
            kept.len() < original.len()
                && same_records(original[..kept.len()].iter().copied(), kept.iter().copied())
        );
    } else {
        for (read, written) in sections.iter().zip(&records) {
            assert!(
                same_records(read, written),
                "records changed on the way through write_reply:\n{read:?}\n{written:?}"
            );
        }
    }
}

/// Parses `data` (lossy UTF-8) as a Corefile with [`demo_loader`]. The parser must return Ok or
/// Err; a configuration it accepts must build a gateway (or be refused by it) and answer a
/// query for each of its zones on each listener.
pub fn corefile(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let options = ParseOptions { default_port: 53 };
    let Ok(config) = parse_corefile_text(Path::new("Corefile"), &text, &demo_loader(), &options)
    else {
        return;
    };
    let zones: Vec<Name> = config
        .servers
        .iter()
        .flat_map(|s| s.zones.iter().cloned())
        .take(8)
        .collect();
    let now = epoch();
    let Ok(mut gateway) = Gateway::new(config, [3; 32]) else {
        return;
    };
    let listeners = gateway.listeners().len().min(8);
    for listener in 0..listeners {
        for zone in &zones {
            let client = ClientAddr {
                listener: ListenerId(listener),
                remote: client_addr(),
                transport: ClientTransport::Udp,
            };
            gateway.handle_client_message(now, client, plain_query(1, zone, Rtype::A));
            let mut replies = Vec::new();
            let _ = drain(&mut gateway, now, client, &mut replies, &mut Vec::new());
            assert!(replies.len() <= 1, "{} replies to one query", replies.len());
        }
    }
    let later = now + Duration::from_secs(3600);
    gateway.handle_timeout(later);
    assert_eq!(gateway.queries_in_flight(), 0);
    assert!(gateway.poll_timeout().is_none_or(|at| at > later));
}

/// Splits `data` into a control prefix and a stream, feeds the stream to a [`FrameDecoder`] in
/// chunks whose sizes the control bytes choose, and checks the messages (and the final error,
/// if any) against a one-shot push and against a reference decoding.
pub fn tcp_framing(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let control_len = usize::from(first % 8) + 1;
    let (control, stream) = rest.split_at(control_len.min(rest.len()));
    let chunk_sizes: Vec<usize> = if control.is_empty() {
        vec![1]
    } else {
        control.iter().map(|&b| usize::from(b) + 1).collect()
    };

    let expected = reference_frames(stream);
    let one_shot = decode(stream, &[stream.len().max(1)]);
    let chunked = decode(stream, &chunk_sizes);
    assert_eq!(
        one_shot, expected,
        "one-shot decoding differs from the reference"
    );
    assert_eq!(
        chunked, expected,
        "chunked decoding ({chunk_sizes:?}) differs from the reference"
    );
}

/// Parses `data` (lossy UTF-8) as a zone file for `example.`. It must return Ok or Err; the
/// records it accepts are IN, at or below the origin, and survive a trip through the wire.
pub fn zonefile(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let origin = Name::parse("example.").expect("a valid name");
    let Ok(records) = parse_zonefile(&text, &origin) else {
        return;
    };
    for record in &records {
        assert_eq!(record.class(), Class::IN);
        assert!(
            record.owner().is_at_or_below(&origin),
            "{} is outside the zone",
            record.owner()
        );
    }
    let header = ReplyHeader {
        id: 1,
        opcode: Opcode::QUERY,
        rd: false,
        cd: false,
        aa: true,
        ra: false,
        rcode: 0,
        question: Some((&origin, Rtype::SOA, Class::IN)),
        edns_do: None,
        udp_size: EDNS_UDP_SIZE,
        ede: &[],
    };
    let mut buf = BytesMut::with_capacity(4096);
    let (written, truncated) =
        write_reply(&mut buf, &header, [&records, &[], &[]], MAX_MESSAGE_LEN);
    let (_, [answer, _, _]) = reparse_reply(&written);
    if truncated {
        assert!(answer.len() < records.len() && same_records(&records[..answer.len()], &answer));
    } else {
        assert!(
            same_records(&records, &answer),
            "zone records changed on the way through the wire:\n{records:?}\n{answer:?}"
        );
    }
}

// ---- helpers ----

fn zone_config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| parse_fixed(ZONE_COREFILE))
}

fn forward_config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| parse_fixed(FORWARD_COREFILE))
}

fn parse_fixed(text: &str) -> Config {
    let options = ParseOptions { default_port: 53 };
    parse_corefile_text(Path::new("Corefile"), text, &demo_loader(), &options)
        .expect("the fixed Corefile is valid")
}

/// The start of simulated time. The harness plays the driver, and a driver is where the clock
/// is read; only durations from this instant matter, so one reading serves every input and
/// runs stay independent of when they happen.
#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn client_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(192, 0, 2, 200), 40000))
}

/// A query without EDNS: header with RD, one question of class IN.
fn plain_query(id: u16, qname: &Name, qtype: Rtype) -> Bytes {
    let mut msg = Vec::with_capacity(12 + qname.as_wire().len() + 4);
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    msg.extend_from_slice(qname.as_wire());
    msg.extend_from_slice(&qtype.to_int().to_be_bytes());
    msg.extend_from_slice(&Class::IN.to_int().to_be_bytes());
    Bytes::from(msg)
}

/// How a sub-query left, and so how its reply comes back.
#[derive(Clone, Copy)]
enum Via {
    Udp(SocketAddr, crate::SocketIndex),
    Connection(ConnId),
}

/// Drains the gateway at `now`: replies to `client` go to `replies`; every upstream
/// connection opens at once, and stays in `open` (kept by the caller across drains: the
/// gateway reuses pooled connections) until the gateway closes it; sub-queries are returned
/// with the way they went. Anything addressed to another client is a bug, and so is a write
/// on a connection that is not open.
fn drain(
    gateway: &mut Gateway,
    now: Instant,
    client: ClientAddr,
    replies: &mut Vec<Bytes>,
    open: &mut Vec<ConnId>,
) -> Vec<(Via, Bytes)> {
    let mut upstream = Vec::new();
    loop {
        while let Some(command) = gateway.poll_connection() {
            match command {
                ConnectionCommand::Open { conn, .. } => {
                    gateway.handle_connection_opened(now, conn);
                    open.push(conn);
                }
                ConnectionCommand::Close(conn) => open.retain(|c| *c != conn),
            }
        }
        let Some(Transmit {
            destination,
            payload,
        }) = gateway.poll_transmit()
        else {
            break;
        };
        match destination {
            Destination::Client(to) => {
                assert_eq!(to, client, "a reply to a client that never asked");
                replies.push(payload);
            }
            Destination::Upstream { addr, socket, .. } => {
                assert!(payload.len() >= 12, "a sub-query without a header");
                upstream.push((Via::Udp(addr, socket), payload));
            }
            Destination::Connection(conn) => {
                assert!(open.contains(&conn), "a write on a connection not open");
                let mut frames = FrameDecoder::new();
                let mut rest = &payload[..];
                while !rest.is_empty() {
                    rest = &rest[frames.push(rest)..];
                    while let Some(msg) = frames.next_message().expect("well framed") {
                        assert!(msg.len() >= 12, "a sub-query without a header");
                        upstream.push((Via::Connection(conn), msg));
                    }
                }
                assert!(!frames.is_mid_frame(), "whole frames only");
            }
        }
    }
    while gateway.poll_event().is_some() {}
    upstream
}

fn drain_client(gateway: &mut Gateway, now: Instant, client: ClientAddr) -> Vec<Bytes> {
    let mut replies = Vec::new();
    let upstream = drain(gateway, now, client, &mut replies, &mut Vec::new());
    assert!(upstream.is_empty(), "zone-backed clusters need no upstream");
    replies
}

/// Parses a reply we wrote, in full, and returns its head and records; panics if it does not
/// parse. A reply without a question (FORMERR to QDCOUNT ≠ 1) gets a root question spliced in
/// first, so that the same full parser checks the rest of it.
fn reparse_reply(reply: &[u8]) -> (UpstreamHead, [Vec<Record>; 3]) {
    assert!(reply.len() >= 12, "a reply shorter than a header");
    assert!(reply[2] & 0x80 != 0, "a reply without QR");
    let qdcount = u16::from_be_bytes([reply[4], reply[5]]);
    let bytes = if qdcount == 0 {
        assert_eq!(
            &reply[6..10],
            &[0, 0, 0, 0],
            "records in a reply without a question"
        );
        let mut spliced = reply[..12].to_vec();
        spliced[5] = 1;
        spliced.extend_from_slice(&[0, 0, 1, 0, 1]);
        spliced.extend_from_slice(&reply[12..]);
        Bytes::from(spliced)
    } else {
        Bytes::copy_from_slice(reply)
    };
    let (parsed, head) = match UpstreamReply::parse(bytes) {
        Ok(parsed) => parsed,
        Err(why) => panic!("a reply we wrote does not parse: {why}"),
    };
    match parsed.sections() {
        Ok(sections) => (head, sections),
        Err(why) => panic!("a reply we wrote has bad records: {why}"),
    }
}

/// Record-by-record equality. `Record`'s `==` cannot be used alone: `domain` 0.12's
/// `AllRecordData` equality has no arm for unknown types, so two identical `TYPE65280` records
/// compare unequal; for those the RFC 3597 presentation (`\# LEN HEX`) is compared instead.
fn same_records<'a>(
    left: impl IntoIterator<Item = &'a Record>,
    right: impl IntoIterator<Item = &'a Record>,
) -> bool {
    let (left, right): (Vec<&Record>, Vec<&Record>) =
        (left.into_iter().collect(), right.into_iter().collect());
    left.len() == right.len()
        && left.iter().zip(&right).all(|(a, b)| {
            a == b
                || (a.owner() == b.owner()
                    && a.rtype() == b.rtype()
                    && a.ttl() == b.ttl()
                    && a.data_text().starts_with("\\# ")
                    && a.data_text() == b.data_text())
        })
}

fn replace_all(haystack: &mut [u8], from: &[u8], to: &[u8]) {
    debug_assert_eq!(from.len(), to.len());
    let mut i = 0;
    while i + from.len() <= haystack.len() {
        if &haystack[i..i + from.len()] == from {
            haystack[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
}

/// What a decoder produced: the messages, then the error that stopped it, if any.
type Decoded = (Vec<Bytes>, Option<FramingError>);

fn decode(stream: &[u8], chunk_sizes: &[usize]) -> Decoded {
    let mut decoder = FrameDecoder::new();
    let mut messages = Vec::new();
    let mut rest = stream;
    let mut sizes = chunk_sizes.iter().cycle();
    while !rest.is_empty() {
        let size = (*sizes.next().expect("a cycle over a non-empty list")).min(rest.len());
        let mut chunk = &rest[..size];
        rest = &rest[size..];
        while !chunk.is_empty() {
            let used = decoder.push(chunk);
            assert!(used <= chunk.len());
            chunk = &chunk[used..];
            assert!(
                decoder.buffered() <= MAX_MESSAGE_LEN + 2,
                "the decoder holds more than one frame"
            );
            loop {
                match decoder.next_message() {
                    Ok(Some(msg)) => messages.push(msg),
                    Ok(None) => break,
                    Err(error) => return (messages, Some(error)),
                }
            }
            if used == 0 && !chunk.is_empty() {
                panic!("push took nothing although no frame was waiting");
            }
        }
    }
    (messages, None)
}

/// Frames decoded by hand, as RFC 1035 §4.2.2 describes them.
fn reference_frames(mut stream: &[u8]) -> Decoded {
    let mut messages = Vec::new();
    while stream.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([stream[0], stream[1]]));
        if len == 0 {
            return (messages, Some(FramingError::EmptyFrame));
        }
        if stream.len() < 2 + len {
            break;
        }
        messages.push(Bytes::copy_from_slice(&stream[2..2 + len]));
        stream = &stream[2 + len..];
    }
    (messages, None)
}
