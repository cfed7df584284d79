//! A fixed number of gathered queries through the socket-less driver, for profilers that want
//! a plain binary rather than criterion's harness: `valgrind --tool=callgrind
//! --collect-atstart=no --toggle-collect='*Driver::gathered_queries*'
//! target/release/examples/profile_gateway 1000 [endpoints] [udp]` gives instructions and
//! allocator calls per query (`udp`: the clients ask over UDP, so a large reply is truncated).

use std::hint::black_box;

use gatherdns_benches::Driver;
use gatherdns_core::ClientTransport;

fn main() {
    let mut args = std::env::args().skip(1);
    let count: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let endpoints: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let mut driver = match args.next().as_deref() {
        Some("udp") => Driver::with_endpoints_over(endpoints, ClientTransport::Udp),
        _ => Driver::with_endpoints(endpoints),
    };
    // Warm up: the first queries create metric series and grow the gateway's tables.
    for _ in 0..100 {
        black_box(driver.gathered_queries(1));
    }
    let mut bytes = 0;
    for _ in 0..count {
        bytes += black_box(driver.gathered_queries(1));
    }
    assert_eq!(driver.in_flight(), 0, "every query must have been answered");
    println!("{count} queries, {bytes} reply bytes");
}
