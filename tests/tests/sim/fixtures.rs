//! The SPEC §1 setup: two clusters behind `forward`, answered by simulated upstreams.

use gatherdns_tests::sim::Sim;

pub(crate) const COREFILE: &str = "
distributed.local.:53 {
  gathersrv distributed.local. {
    cluster-a.local. a-
    cluster-b.local. b-
  }
  forward cluster-a.local. 10.8.0.1:53
  forward cluster-b.local. 10.9.0.1:53
  log
  errors
}
";

pub(crate) const UPSTREAM_A: &str = "10.8.0.1:53";
pub(crate) const UPSTREAM_B: &str = "10.9.0.1:53";

/// Cluster zone text; `net` is 8 for cluster A and 9 for B.
pub(crate) fn zone(cluster: &str, net: u8, extra: &str) -> String {
    format!(
        "$ORIGIN cluster-{cluster}.local.
$TTL 30
@ IN SOA ns.cluster-{cluster}.local. hostmaster.cluster-{cluster}.local. 1 7200 1800 86400 30
@ IN NS ns
ns IN A 10.{net}.0.1
_demo._tcp.demo-service.default.svc IN SRV 0 50 8080 demo-service-0.default.svc
_demo._tcp.demo-service.default.svc IN SRV 0 50 8080 demo-service-1.default.svc
demo-service-0.default.svc IN A 10.{net}.1.2
demo-service-1.default.svc IN A 10.{net}.1.2
demo-service.default.svc IN A 10.{net}.0.10
demo-service.default.svc IN TXT \"cluster={cluster}\"
alias.default.svc IN CNAME demo-service.default.svc
{extra}
"
    )
}

/// Cluster A's and B's upstreams, answering from their zones.
pub(crate) fn add_clusters(sim: &mut Sim) {
    sim.upstream(UPSTREAM_A, "cluster-a.local.", &zone("a", 8, ""));
    sim.upstream(UPSTREAM_B, "cluster-b.local.", &zone("b", 9, ""));
}

/// The SPEC §1 simulation with extra zone lines per cluster.
pub(crate) fn sim_with(extra_a: &str, extra_b: &str) -> Sim {
    let mut sim = Sim::new(COREFILE, &[]);
    sim.upstream(UPSTREAM_A, "cluster-a.local.", &zone("a", 8, extra_a));
    sim.upstream(UPSTREAM_B, "cluster-b.local.", &zone("b", 9, extra_b));
    sim
}

pub(crate) fn sim() -> Sim {
    sim_with("", "")
}
