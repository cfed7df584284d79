//! A cluster DNS that shows what gatherdns sends it: it answers every query with an empty
//! NOERROR (the query echoed with QR set) after holding it for a while, and records the most
//! queries it held at once, how many it got, and from which source ports.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// What an [`EchoCluster`] saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// The most queries held at once.
    pub most_held: usize,
    /// Queries received.
    pub total: usize,
    /// Queries received per source port.
    pub ports: BTreeMap<u16, u32>,
}

pub struct EchoCluster {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<Seen>>,
}

impl EchoCluster {
    /// Starts it on a loopback port of its own; it answers each query `hold` after it came.
    /// Bounded: it stops by itself after two minutes.
    pub fn start(hold: Duration) -> EchoCluster {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = thread::spawn(move || {
            let mut held: Vec<(Instant, SocketAddr, Vec<u8>)> = Vec::new();
            let mut seen = Seen::default();
            let mut buf = vec![0u8; 65535];
            let end = Instant::now() + Duration::from_secs(120);
            while !stopping.load(Ordering::Relaxed) && Instant::now() < end {
                if let Ok((len, from)) = socket.recv_from(&mut buf) {
                    if len >= 12 {
                        let mut reply = buf[..len].to_vec();
                        reply[2] |= 0x80;
                        held.push((Instant::now() + hold, from, reply));
                        seen.total += 1;
                        *seen.ports.entry(from.port()).or_insert(0) += 1;
                        seen.most_held = seen.most_held.max(held.len());
                    }
                }
                let now = Instant::now();
                held.retain(|(due, to, reply)| {
                    if *due > now {
                        return true;
                    }
                    let _ = socket.send_to(reply, to);
                    false
                });
            }
            seen
        });
        EchoCluster {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops it and returns what it saw.
    pub fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().expect("once").join().expect("no panic")
    }
}

impl Drop for EchoCluster {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
