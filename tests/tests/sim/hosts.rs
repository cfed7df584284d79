//! `hosts`: A/AAAA and PTR from a hosts file and inline lines, the `*.parent` wildcard
//! fallback, SOA-carrying negatives, a new file text taken in at once or not at all, and the
//! plugin chain `hosts` → `multicluster` → `forward` held together by `fallthrough`.

use std::path::Path;
use std::time::Duration;

use domain::base::iana::Rtype;
use gatherdns_core::WatchedFile;
use gatherdns_tests::message::{QuerySpec, Reply};
use gatherdns_tests::sim::Sim;

use crate::multicluster::{ZONE_A, ZONE_B};

const HOSTS: &str = include_str!("../../../examples/hosts/example.hosts");

const SOA: &str =
    "example.org. 5 SOA ns.dns.example.org. hostmaster.example.org. 1 7200 1800 86400 5";

fn hosts_sim(options: &str) -> Sim {
    let corefile = format!(
        "example.org.:53 10.in-addr.arpa.:53 {{
  hosts example.hosts {{
    10.0.0.100 inline.example.org
{options}
  }}
}}
"
    );
    Sim::new(&corefile, &[("example.hosts", HOSTS)])
}

fn ask(sim: &mut Sim, name: &str, qtype: Rtype) -> Reply {
    sim.ask(&QuerySpec::new(name, qtype))
}

#[test]
fn names_from_the_file_and_inline() {
    let mut sim = hosts_sim("");
    let reply = ask(&mut sim, "WEB.example.org.", Rtype::A);
    assert_eq!((reply.rcode.as_str(), reply.aa), ("NOERROR", true));
    assert_eq!(reply.answer, vec!["WEB.example.org. 3600 A 10.0.0.1"]);
    let reply = ask(&mut sim, "web.example.org.", Rtype::AAAA);
    assert_eq!(reply.answer, vec!["web.example.org. 3600 AAAA fd00::1"]);
    let reply = ask(&mut sim, "inline.example.org.", Rtype::A);
    assert_eq!(reply.answer, vec!["inline.example.org. 3600 A 10.0.0.100"]);
}

#[test]
fn ttl_option_sets_the_answer_ttl() {
    let mut sim = hosts_sim("    ttl 60");
    let reply = ask(&mut sim, "db.example.org.", Rtype::A);
    assert_eq!(reply.answer, vec!["db.example.org. 60 A 10.0.0.2"]);
}

#[test]
fn wildcard_entries_answer_names_below_their_parent() {
    let mut sim = hosts_sim("");
    for q in [
        "api.gateway.cluster-a.example.org.",
        "a.b.gateway.cluster-a.example.org.",
    ] {
        let reply = ask(&mut sim, q, Rtype::A);
        assert_eq!(reply.answer, vec![format!("{q} 3600 A 10.0.0.9")]);
    }
    let reply = ask(&mut sim, "gateway.cluster-a.example.org.", Rtype::A);
    assert_eq!(reply.rcode, "NXDOMAIN");
}

#[test]
fn negatives_carry_an_soa() {
    let mut sim = hosts_sim("");
    let reply = ask(&mut sim, "nope.example.org.", Rtype::A);
    assert_eq!(
        (reply.rcode.as_str(), reply.authority.clone()),
        ("NXDOMAIN", vec![SOA.to_string()])
    );
    let reply = ask(&mut sim, "db.example.org.", Rtype::AAAA);
    assert_eq!(
        (
            reply.rcode.as_str(),
            reply.answer.len(),
            reply.authority.clone()
        ),
        ("NOERROR", 0, vec![SOA.to_string()])
    );
    // localhost is outside the zones: it was never loaded.
    let reply = ask(&mut sim, "localhost.example.org.", Rtype::A);
    assert_eq!(reply.rcode, "NXDOMAIN");
}

#[test]
fn ptr_from_the_table_unless_no_reverse() {
    let mut sim = hosts_sim("");
    let reply = ask(&mut sim, "1.0.0.10.in-addr.arpa.", Rtype::PTR);
    assert_eq!(
        reply.answer,
        vec![
            "1.0.0.10.in-addr.arpa. 3600 PTR web.example.org.",
            "1.0.0.10.in-addr.arpa. 3600 PTR www.example.org."
        ]
    );
    let mut sim = hosts_sim("    no_reverse");
    let reply = ask(&mut sim, "1.0.0.10.in-addr.arpa.", Rtype::PTR);
    // Not the plugin's to answer, and nothing else in the block takes it.
    assert_eq!(reply.rcode, "REFUSED");
}

#[test]
fn a_new_file_text_replaces_the_table_and_a_bad_one_changes_nothing() {
    let mut sim = hosts_sim("");
    assert_eq!(
        sim.gw.watched_files(),
        vec![WatchedFile {
            path: "example.hosts".into(),
            interval: Duration::from_secs(5)
        }]
    );
    let path = Path::new("example.hosts");
    sim.gw
        .update_file(path, "10.0.0.77 new.example.org\n")
        .expect("valid text");
    assert_eq!(
        ask(&mut sim, "new.example.org.", Rtype::A).answer,
        vec!["new.example.org. 3600 A 10.0.0.77"]
    );
    assert_eq!(
        ask(&mut sim, "web.example.org.", Rtype::A).rcode,
        "NXDOMAIN"
    );
    assert_eq!(
        ask(&mut sim, "inline.example.org.", Rtype::A).answer.len(),
        1,
        "inline entries stay"
    );

    let err = sim.gw.update_file(
        path,
        "10.0.0.78 newer.example.org\n10.0.0.300 bad.example.org\n",
    );
    assert_eq!(
        err.expect_err("malformed").to_string(),
        "example.hosts:2: hosts: \"10.0.0.300\" is not an IP address (a hosts line is \"IP NAME…\", e.g. \"10.0.0.1 web.example.org\")"
    );
    assert_eq!(ask(&mut sim, "new.example.org.", Rtype::A).answer.len(), 1);
    assert_eq!(
        ask(&mut sim, "newer.example.org.", Rtype::A).rcode,
        "NXDOMAIN"
    );
    assert!(sim.gw.update_file(Path::new("other.hosts"), "").is_err());
}

#[test]
fn reload_zero_watches_nothing() {
    let sim = hosts_sim("    reload 0");
    assert!(sim.gw.watched_files().is_empty());
}

/// A block stacking the three: CoreDNS's order puts hosts first, then multicluster, then
/// forward, whatever the order in the file.
const STACK: &str = "clusterset.local.:53 {
  forward . 10.7.0.1:53
  multicluster {
    cluster-a.local. cluster-a
    cluster-b.local. cluster-b
    fallthrough
  }
  forward cluster-a.local. 10.8.0.1:53
  forward cluster-b.local. 10.9.0.1:53
  hosts stack.hosts {
    fallthrough
  }
}
";

const STACK_HOSTS: &str =
    "10.5.5.5 web.default.svc.clusterset.local\n10.5.5.6 pinned.default.svc.clusterset.local\n";

const UPSTREAM_ZONE: &str = "$ORIGIN clusterset.local.
@ 60 IN SOA ns hostmaster 7 7200 1800 86400 60
legacy.default.svc 60 IN A 10.7.7.7
";

fn stack_sim() -> Sim {
    let mut sim = Sim::new(STACK, &[("stack.hosts", STACK_HOSTS)]);
    sim.upstream("10.8.0.1:53", "cluster-a.local.", ZONE_A);
    sim.upstream("10.9.0.1:53", "cluster-b.local.", ZONE_B);
    sim.upstream("10.7.0.1:53", "clusterset.local.", UPSTREAM_ZONE);
    sim
}

#[test]
fn hosts_over_multicluster_over_forward() {
    let mut sim = stack_sim();
    // hosts has the name: it answers, the clusters are not asked.
    let reply = ask(&mut sim, "web.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(
        reply.answer,
        vec!["web.default.svc.clusterset.local. 3600 A 10.5.5.5"]
    );
    // hosts has it not: multicluster gathers.
    let reply = ask(&mut sim, "db.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(reply.answer.len(), 4);
    // Neither has it: forward.
    let reply = ask(&mut sim, "legacy.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(
        reply.answer,
        vec!["legacy.default.svc.clusterset.local. 60 A 10.7.7.7"]
    );
    // Nobody has it: the forward's NXDOMAIN, with the upstream's SOA.
    let reply = ask(&mut sim, "gone.default.svc.clusterset.local.", Rtype::A);
    assert_eq!(reply.rcode, "NXDOMAIN");
    assert!(
        reply.authority[0].starts_with("clusterset.local. 60 SOA "),
        "{:?}",
        reply.authority
    );
    let count = |addr: &str| sim.upstreams[&addr.parse().expect("addr")].received.len();
    assert_eq!(
        (
            count("10.8.0.1:53"),
            count("10.9.0.1:53"),
            count("10.7.0.1:53")
        ),
        (3, 3, 2)
    );
}

#[test]
fn nodata_from_hosts_does_not_fall_through() {
    let mut sim = stack_sim();
    let reply = ask(
        &mut sim,
        "pinned.default.svc.clusterset.local.",
        Rtype::AAAA,
    );
    assert_eq!((reply.rcode.as_str(), reply.answer.len()), ("NOERROR", 0));
    let count = |addr: &str| sim.upstreams[&addr.parse().expect("addr")].received.len();
    assert_eq!((count("10.8.0.1:53"), count("10.7.0.1:53")), (0, 0));
}
