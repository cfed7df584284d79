//! TCP sub-queries reuse a few persistent connections per upstream (as CoreDNS's `forward`
//! does) instead of opening one per attempt: a fake upstream counts the connections it
//! accepts. An upstream that closes after every reply is still fully answered.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use domain::base::iana::Rcode;
use domain::base::message::Message;
use domain::base::message_builder::MessageBuilder;
use domain::rdata::A;

use crate::common::*;

/// Connections per upstream the pool opens at most (per executor).
const POOL_LIMIT: usize = 4;

/// Executors of gatherdns-glommio in these tests; each has its own pool.
const GLOMMIO_THREADS: usize = 2;

/// A framed-DNS upstream on loopback that answers every A query with 192.0.2.1, in order,
/// pipelined queries included.
struct FakeUpstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    answered: Arc<AtomicUsize>,
}

impl FakeUpstream {
    /// `close_after_reply`: close every connection after its first reply, as some servers do.
    fn start(close_after_reply: bool) -> FakeUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let answered = Arc::new(AtomicUsize::new(0));
        let (acc, ans) = (accepted.clone(), answered.clone());
        // The threads end with the test process.
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                acc.fetch_add(1, Ordering::SeqCst);
                let ans = ans.clone();
                thread::spawn(move || serve(stream, close_after_reply, &ans));
            }
        });
        FakeUpstream {
            addr,
            accepted,
            answered,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }
}

fn serve(mut stream: TcpStream, close_after_reply: bool, answered: &AtomicUsize) {
    let _ = stream.set_nodelay(true);
    loop {
        let mut prefix = [0u8; 2];
        if stream.read_exact(&mut prefix).is_err() {
            return;
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        if stream.read_exact(&mut query).is_err() {
            return;
        }
        let Some(reply) = answer(query) else { return };
        if stream
            .write_all(&gatherdns_core::framing::frame(&reply))
            .is_err()
        {
            return;
        }
        answered.fetch_add(1, Ordering::SeqCst);
        if close_after_reply {
            return;
        }
    }
}

/// The reply to `query`: its question and one A record.
fn answer(query: Vec<u8>) -> Option<Vec<u8>> {
    let query = Message::from_octets(query).ok()?;
    let question = query.first_question()?;
    let qname = question.qname();
    let mut reply = MessageBuilder::new_vec()
        .start_answer(&query, Rcode::NOERROR)
        .ok()?;
    reply.header_mut().set_aa(true);
    reply.push((qname, 30, A::from_octets(192, 0, 2, 1))).ok()?;
    Some(reply.finish())
}

fn start(binary: &str, upstream: SocketAddr) -> Server {
    let corefile = format!(
        "cluster-x.local.:@PORT0@ {{\n    bind 127.0.0.1\n    forward cluster-x.local. {upstream} {{\n        \
         force_tcp\n    }}\n}}\n"
    );
    let mut builder = ServerBuilder::new(binary, &corefile);
    if binary == "gatherdns-glommio" {
        builder = builder.args(&["-threads", &GLOMMIO_THREADS.to_string()]);
    }
    builder.start()
}

/// Connections the server may open to one upstream.
fn connection_limit(binary: &str) -> usize {
    if binary == "gatherdns-glommio" {
        POOL_LIMIT * GLOMMIO_THREADS
    } else {
        POOL_LIMIT
    }
}

/// `clients` UDP clients each send `per_client` queries at once, then collect the replies;
/// every query must get its NOERROR answer.
fn burst(server: SocketAddr, clients: u16, per_client: u16) {
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            thread::spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
                socket
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                let mut ids = Vec::new();
                for i in 0..per_client {
                    let id = client * 1000 + i;
                    let name = format!("host-{id}.cluster-x.local.");
                    let query = QuerySpec::new(&name, Rtype::A).id(id).build();
                    socket.send_to(&query, server).expect("send");
                    ids.push(id);
                }
                for reply in one_reply_each(&socket, ids, "the client") {
                    assert_eq!(reply.rcode, "NOERROR", "{reply:#?}");
                    assert_eq!(reply.answer.len(), 1, "{reply:#?}");
                    assert_eq!(
                        reply.question,
                        vec![format!("host-{}.cluster-x.local A", reply.id)]
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("client thread");
    }
}

#[test]
fn two_hundred_tcp_sub_queries_share_a_few_connections() {
    for_each_binary(|binary| {
        let upstream = FakeUpstream::start(false);
        let server = start(binary, upstream.addr);
        burst(server.addr(), 8, 25);
        // A second round reuses the connections of the first.
        burst(server.addr(), 8, 25);
        let accepted = upstream.accepted();
        eprintln!(
            "{binary}: {} upstream answers over {accepted} connections",
            upstream.answered()
        );
        assert!(upstream.answered() >= 400);
        assert!(
            accepted <= connection_limit(binary),
            "{accepted} connections for 400 sub-queries"
        );
    });
}

#[test]
fn an_upstream_that_closes_after_every_reply_still_answers_everything() {
    for_each_binary(|binary| {
        let upstream = FakeUpstream::start(true);
        let server = start(binary, upstream.addr);
        burst(server.addr(), 4, 25);
        // Queries one at a time: each finds the previous connection closed.
        for _ in 0..21 {
            burst(server.addr(), 1, 1);
        }
        eprintln!(
            "{binary}: {} upstream answers over {} connections",
            upstream.answered(),
            upstream.accepted()
        );
        assert!(upstream.answered() >= 121);
    });
}
