//! What a GSO send saves: sends batches of 32 alike 60-byte datagrams over loopback to a
//! socket that a thread drains, through `batch::Sender` as the servers do (one GSO send per
//! batch), then the same with GSO off (one `sendmmsg` of 32 datagrams), and prints the CPU per
//! datagram of this process and of the whole machine (from `/proc/stat`: on loopback the
//! receiver's side of a datagram runs partly in the sender's system call, partly elsewhere).
//!
//! `cargo run --release -p gatherdns-host --example gso_cost [batches]` (default 20000).

use std::net::UdpSocket;
use std::thread;
use std::time::{Duration, Instant};

use gatherdns_host::batch::{Receiver, Sender, BATCH};
use nix::sys::socket::{setsockopt, sockopt};

fn main() {
    let batches: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let payloads: Vec<Vec<u8>> = (0..BATCH).map(|i| vec![i as u8; 60]).collect();
    for (name, mut sender) in [
        ("GSO", Sender::new()),
        ("sendmmsg, GSO off", Sender::one_by_one()),
    ] {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        // Room for the bursts, so that the drain loses none (beyond the limit: as root only).
        let room = 16 << 20;
        if setsockopt(&rx, sockopt::RcvBufForce, &room).is_err() {
            let _ = setsockopt(&rx, sockopt::RcvBuf, &room);
        }
        rx.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        tx.connect(rx.local_addr().expect("address"))
            .expect("connect");
        let drain = thread::spawn(move || {
            let mut receiver = Receiver::new();
            let mut got = 0usize;
            let mut buf = [0u8; 2048];
            // Blocks for the first datagram of each wait, then takes what came in batches.
            while rx.recv(&mut buf).is_ok() {
                got += 1;
                while let Ok(n) = receiver.recv(&rx) {
                    got += n;
                }
            }
            got
        });
        let (machine, process, started) = (busy_ticks(), process_ticks(), Instant::now());
        let mut sent = 0;
        for round in 0..batches {
            let batch = payloads.iter().map(|p| (None, &p[..]));
            match sender.send(&tx, batch) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("send: {e}"),
            }
            // Now and then a pause, so that the drain keeps up and nothing is lost.
            if round % 16 == 15 {
                thread::sleep(Duration::from_micros(100));
            }
        }
        let elapsed = started.elapsed();
        let (machine, process) = (busy_ticks() - machine, process_ticks() - process);
        let received = drain.join().expect("drain");
        let per = |ticks: u64| ticks as f64 * 1e6 / ticks_per_second() / sent as f64;
        println!(
            "{name}: {sent} datagrams sent, {received} received in {elapsed:.2?}; CPU per \
             datagram: this process {:.2} µs, the whole machine {:.2} µs",
            per(process),
            per(machine)
        );
    }
}

/// This process's user and system time so far, in clock ticks.
fn process_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split(' ')
        .collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// The machine's busy time so far (all but idle and iowait), in clock ticks.
fn busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let cpu = stat.lines().next().expect("cpu line");
    cpu.split_whitespace()
        .skip(1)
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v.parse::<u64>().expect("ticks"))
        .sum()
}

/// USER_HZ, the unit of `/proc`'s times: 100 on Linux, whatever the kernel's own tick.
fn ticks_per_second() -> f64 {
    100.0
}
