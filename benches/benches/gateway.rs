//! The whole core without sockets: the SPEC §1 gathered SRV query from client bytes in, the two
//! sub-queries out, the clusters' canned replies in, the merged reply out. Criterion reports the
//! time per client query (throughput is counted in queries).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gatherdns_benches::Driver;
use gatherdns_core::ClientTransport;

fn gathered_srv(c: &mut Criterion) {
    let mut group = c.benchmark_group("gateway");
    // 1: one query at a time, the latency path. 64: a burst in flight together, so the
    // pending-query tables and the timer heap hold more than one entry.
    for batch in [1u16, 64] {
        group.throughput(Throughput::Elements(u64::from(batch)));
        group.bench_function(BenchmarkId::new("gathered_srv_2_clusters", batch), |b| {
            let mut driver = Driver::new();
            b.iter(|| black_box(driver.gathered_queries(batch)));
            assert_eq!(driver.in_flight(), 0, "every query must have been answered");
        });
    }
    // A Kubernetes headless service with 50 pods in each cluster: 100 SRV answers and 100 A
    // records in the merged reply (over TCP), so that per-record costs dominate.
    group.throughput(Throughput::Elements(1));
    group.bench_function(
        BenchmarkId::new("gathered_srv_2_clusters_50_endpoints", 1),
        |b| {
            let mut driver = Driver::with_endpoints(50);
            b.iter(|| black_box(driver.gathered_queries(1)));
            assert_eq!(driver.in_flight(), 0, "every query must have been answered");
        },
    );
    // The same over plain UDP: the reply is truncated to 512 bytes, keeping records of both
    // clusters with their addresses, which costs a few trial writes of the reply.
    group.bench_function(
        BenchmarkId::new("gathered_srv_2_clusters_50_endpoints_udp_truncated", 1),
        |b| {
            let mut driver = Driver::with_endpoints_over(50, ClientTransport::Udp);
            b.iter(|| black_box(driver.gathered_queries(1)));
            assert_eq!(driver.in_flight(), 0, "every query must have been answered");
        },
    );
    group.finish();
}

criterion_group!(benches, gathered_srv);
criterion_main!(benches);
