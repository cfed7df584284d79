//! Shared fixtures of the criterion benches: the SPEC §1 configuration, the client query, the
//! two clusters' canned replies, and a socket-less driver that moves bytes between them the way
//! a runtime would. Everything is built once, outside the measured loops.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use domain::base::iana::{Class, Rtype};
use domain::base::{MessageBuilder, Name as DName, Question};
use gatherdns_core::corefile::{parse_corefile_text, ParseOptions};
use gatherdns_core::loader::MemLoader;
use gatherdns_core::wire::{write_reply, Name, Opcode, Record, ReplyHeader};
use gatherdns_core::{ClientAddr, ClientTransport, Config, Destination, Gateway, ListenerId};

/// The SPEC §1 configuration. The upstream addresses are only labels here: the core is sans-IO
/// and the benches answer its sub-queries themselves.
pub const COREFILE: &str = "\
distributed.local. {
  gathersrv distributed.local. {
    cluster-a.local. a-
    cluster-b.local. b-
  }
  forward cluster-a.local. 10.8.0.1:53
  forward cluster-b.local. 10.9.0.1:53
}
";

/// The gathered question of SPEC §1.
pub const SRV_NAME: &str = "_demo._tcp.demo-service.default.svc.distributed.local.";

/// The parsed [`COREFILE`].
pub fn config() -> Config {
    let options = ParseOptions { default_port: 53 };
    match parse_corefile_text(Path::new("Corefile"), COREFILE, &MemLoader::new(), &options) {
        Ok(config) => config,
        Err(e) => panic!("the bench Corefile is invalid: {e}"),
    }
}

fn name(text: &str) -> Name {
    match Name::parse(text) {
        Ok(name) => name,
        Err(e) => panic!("{text}: {e}"),
    }
}

/// The SPEC §1 SRV query as `dig` sends it: RD and an OPT record advertising 1232 bytes. Built
/// with `domain`, not with the core's own writer, so the core parses something it did not make.
pub fn srv_query(id: u16) -> Bytes {
    let mut msg = MessageBuilder::new_vec();
    msg.header_mut().set_id(id);
    msg.header_mut().set_rd(true);
    let mut question = msg.question();
    let qname: DName<Vec<u8>> = match DName::vec_from_str(SRV_NAME) {
        Ok(n) => n,
        Err(e) => panic!("{SRV_NAME}: {e}"),
    };
    if let Err(e) = question.push(Question::new(qname, Rtype::SRV, Class::IN)) {
        panic!("question: {e}");
    }
    let mut additional = question.additional();
    if let Err(e) = additional.opt(|opt| {
        opt.set_udp_payload_size(1232);
        Ok(())
    }) {
        panic!("OPT: {e}");
    }
    Bytes::from(additional.finish())
}

/// A cluster's SPEC §1 records: two SRV answers and their two A records.
pub fn cluster_records(cluster: char) -> (Vec<Record>, Vec<Record>) {
    service_records(cluster, 2)
}

/// A cluster's records for a service with `endpoints` pods, as a Kubernetes headless service
/// gives them: one SRV answer per endpoint and each endpoint's A record.
pub fn service_records(cluster: char, endpoints: u32) -> (Vec<Record>, Vec<Record>) {
    let net = if cluster == 'a' { 8 } else { 9 };
    let owner = name(&format!(
        "_demo._tcp.demo-service.default.svc.cluster-{cluster}.local."
    ));
    let host = |i: u32| {
        name(&format!(
            "demo-service-{i}.default.svc.cluster-{cluster}.local."
        ))
    };
    let answer = (0..endpoints)
        .map(|i| Record::srv(owner.clone(), 30, 0, 50, 8080, host(i)))
        .collect();
    let additional = (0..endpoints)
        .map(|i| {
            Record::a(
                host(i),
                30,
                [10, net, (i / 250) as u8, (i % 250 + 2) as u8].into(),
            )
        })
        .collect();
    (answer, additional)
}

/// A cluster DNS's reply to the sub-query for the SPEC §1 question, with ID 0 (the driver
/// writes each sub-query's ID over it).
pub fn cluster_reply(cluster: char) -> Bytes {
    service_reply(cluster, 2)
}

/// A cluster DNS's reply for a service with `endpoints` pods ([`service_records`]), with ID 0.
/// It is not truncated, whatever its size: it stands for the reply the TCP retry would get.
pub fn service_reply(cluster: char, endpoints: u32) -> Bytes {
    let qname = name(&format!(
        "_demo._tcp.demo-service.default.svc.cluster-{cluster}.local."
    ));
    let (answer, additional) = service_records(cluster, endpoints);
    let header = ReplyHeader {
        id: 0,
        opcode: Opcode::QUERY,
        rd: true,
        cd: false,
        aa: true,
        ra: true,
        rcode: 0,
        question: Some((&qname, Rtype::SRV, Class::IN)),
        edns_do: Some(false),
        udp_size: 1232,
        ede: &[],
    };
    let mut buf = BytesMut::with_capacity(65535);
    write_reply(&mut buf, &header, [&answer, &[], &additional], 65535).0
}

/// The merged SPEC §1 reply's records: four SRV answers and four A records (with our OPT the
/// reply carries nine records).
pub fn merged_records() -> [Vec<Record>; 3] {
    let owner = name(SRV_NAME);
    let mut answer = Vec::new();
    let mut additional = Vec::new();
    for (prefix, net) in [('a', 8), ('b', 9)] {
        for i in 0..2 {
            let host = name(&format!(
                "{prefix}-demo-service-{i}.default.svc.distributed.local."
            ));
            answer.push(Record::srv(owner.clone(), 30, 0, 50, 8080, host.clone()));
            additional.push(Record::a(host, 30, [10, net, 1, 2].into()));
        }
    }
    [answer, Vec::new(), additional]
}

/// A gateway and a simulated clock, driven the way a runtime drives it, with the two cluster
/// DNS servers replaced by canned replies.
pub struct Driver {
    gateway: Gateway,
    now: Instant,
    query: Bytes,
    replies: [(SocketAddr, Bytes); 2],
    transport: ClientTransport,
    /// Sub-queries answered in this round (upstream, socket, canned reply, the sub-query's
    /// ID), reused so that the loop does not allocate it.
    inbox: Vec<(SocketAddr, gatherdns_core::SocketIndex, Bytes, [u8; 2])>,
}

/// Simulated time between two client queries: 10 µs, i.e. 100 000 queries per second. It only
/// matters for how many stale deadlines the timer heap holds.
const QUERY_SPACING: Duration = Duration::from_micros(10);

impl Driver {
    /// A gateway built from [`COREFILE`], ready for [`Driver::gathered_queries`].
    pub fn new() -> Driver {
        Driver::with_endpoints(2)
    }

    /// As [`Driver::new`], but the service has `endpoints` pods in each cluster. Beyond the
    /// two of SPEC §1 the clients ask over TCP, so that the whole merged reply is written.
    pub fn with_endpoints(endpoints: u32) -> Driver {
        let transport = if endpoints > 2 {
            ClientTransport::Tcp(1)
        } else {
            ClientTransport::Udp
        };
        Driver::with_endpoints_over(endpoints, transport)
    }

    /// As [`Driver::with_endpoints`], the clients asking over `transport` (UDP: the merged
    /// reply of more than a few endpoints is truncated to 512 bytes).
    pub fn with_endpoints_over(endpoints: u32, transport: ClientTransport) -> Driver {
        let now = Instant::now();
        let gateway = match Gateway::new(config(), [42; 32]) {
            Ok(gateway) => gateway,
            Err(e) => panic!("{e}"),
        };
        let a: SocketAddr = SocketAddr::from(([10, 8, 0, 1], 53));
        let b: SocketAddr = SocketAddr::from(([10, 9, 0, 1], 53));
        Driver {
            gateway,
            now,
            query: srv_query(0x1234),
            replies: [
                (a, service_reply('a', endpoints)),
                (b, service_reply('b', endpoints)),
            ],
            transport,
            inbox: Vec::with_capacity(128),
        }
    }

    /// `count` clients send the SPEC §1 query; every sub-query gets its cluster's canned reply
    /// (with the sub-query's ID patched in); returns the total size of the replies the clients
    /// get, so that the work cannot be optimised away.
    pub fn gathered_queries(&mut self, count: u16) -> usize {
        for port in 0..count {
            let client = ClientAddr {
                listener: ListenerId(0),
                remote: SocketAddr::from(([192, 0, 2, 1], 10000 + port)),
                transport: self.transport,
            };
            self.gateway
                .handle_client_message(self.now, client, self.query.clone());
            self.now += QUERY_SPACING;
        }
        let mut replied = 0;
        while let Some(t) = self.gateway.poll_transmit() {
            match t.destination {
                Destination::Upstream { addr, socket, .. } => {
                    let canned = if addr == self.replies[0].0 {
                        &self.replies[0].1
                    } else {
                        &self.replies[1].1
                    };
                    let id = [t.payload[0], t.payload[1]];
                    self.inbox.push((addr, socket, canned.clone(), id));
                }
                Destination::Client(_) => replied += t.payload.len(),
                Destination::Connection(_) => unreachable!("gathered sub-queries go over UDP"),
            }
        }
        // The runtime receives a batch into one buffer of its own (see
        // `gatherdns_host::batch`): one copy into one allocation, as here.
        let total = self
            .inbox
            .iter()
            .map(|(_, _, canned, _)| canned.len())
            .sum();
        let mut batch = BytesMut::with_capacity(total);
        for (addr, socket, canned, id) in self.inbox.drain(..) {
            batch.extend_from_slice(&canned);
            batch[..2].copy_from_slice(&id);
            let reply = batch.split().freeze();
            self.gateway
                .handle_upstream_message(self.now, addr, socket, reply);
        }
        while let Some(t) = self.gateway.poll_transmit() {
            replied += t.payload.len();
        }
        while self.gateway.poll_event().is_some() {}
        // As a runtime does when its timer fires: lets the gateway drop stale deadlines.
        if self.gateway.poll_timeout().is_some_and(|at| at <= self.now) {
            self.gateway.handle_timeout(self.now);
        }
        replied
    }

    /// Client queries still waiting for an upstream (zero between calls when all is well).
    pub fn in_flight(&self) -> usize {
        self.gateway.queries_in_flight()
    }
}

impl Default for Driver {
    fn default() -> Self {
        Self::new()
    }
}
