//! Authoritative zones for the `file` directive: the records of one zone, indexed by name,
//! and the RFC 1034 §4.3.2 lookup over them (CNAME chains, wildcards per RFC 4592,
//! referrals at zone cuts, and RFC 2308 negative answers carrying the SOA).

use std::collections::{BTreeMap, BTreeSet};

use crate::answer::Answer;
use crate::wire::{Name, Rcode, Record, Rtype};

/// The most CNAMEs one answer follows; longer chains are cut off (and loops stopped) so a
/// badly written zone cannot make one query do unbounded work.
const MAX_CNAME_HOPS: usize = 8;

/// An authoritative zone, immutable once built.
#[derive(Clone, Debug)]
pub struct Zone {
    origin: Name,
    soa: Record,
    /// The SOA as it goes into negative answers: TTL = min(SOA TTL, MINIMUM) (RFC 2308 §5).
    negative_soa: Record,
    /// Every name that exists, keyed by its lower-case form, with its records in file
    /// order. Empty non-terminals (names with descendants but no records) are present with
    /// no records, so "does this name exist" is one map lookup. Keys and lookups are both
    /// lower-cased: that, not `Name`'s ordering, is what makes lookups ignore case.
    nodes: BTreeMap<Name, Vec<Record>>,
    /// Some name below the apex has NS records, so lookups must look for a zone cut.
    has_cuts: bool,
}

/// What looking up one name (one link of a CNAME chain) found.
enum Step {
    /// Records of the wanted type, owners already set.
    Records(Vec<Record>),
    /// A CNAME (owner already set) and its target, to be followed.
    Alias(Record, Name),
    /// The name exists but has no records of the type.
    NoData,
    /// The name does not exist and no wildcard covers it.
    NxDomain,
    /// The name is at or below a delegation; these are the NS records of the cut.
    Referral(Vec<Record>),
}

impl Zone {
    /// Builds a zone from its records (as `parse_zonefile` returns them). There must be
    /// exactly one SOA and it must be at `origin`; every record must be at or below
    /// `origin`; a name with a CNAME may hold nothing else (RFC 1034 §3.6.2, RFC 2181
    /// §10.1). Identical records are kept once.
    pub fn new(origin: Name, records: Vec<Record>) -> Result<Zone, String> {
        let mut soa = None;
        let mut nodes: BTreeMap<Name, Vec<Record>> = BTreeMap::new();
        nodes.insert(origin.to_lowercase(), Vec::new());
        for record in records {
            let owner = record.owner().clone();
            if !owner.is_at_or_below(&origin) {
                return Err(format!("`{owner}` is outside the zone `{origin}`"));
            }
            let key = owner.to_lowercase();
            let node = nodes.entry(key.clone()).or_default();
            if node.iter().any(|r| r.same_rr(&record)) {
                continue;
            }
            if record.rtype() == Rtype::SOA {
                if owner != origin {
                    return Err(format!(
                        "the SOA record is at `{owner}`, not at the apex `{origin}`"
                    ));
                }
                if soa.is_some() {
                    return Err(format!("`{origin}` has more than one SOA record"));
                }
                soa = Some(record.clone());
            }
            node.push(record);
            // Make the ancestors exist (empty non-terminals). A name already present has
            // had its own ancestors added, so the walk stops there.
            let mut up = key.parent();
            while let Some(name) = up {
                if !name.is_at_or_below(&origin) || nodes.contains_key(&name) {
                    break;
                }
                up = name.parent();
                nodes.insert(name, Vec::new());
            }
        }
        let soa = soa.ok_or_else(|| format!("`{origin}` has no SOA record"))?;

        for records in nodes.values() {
            let cnames = records.iter().filter(|r| r.rtype() == Rtype::CNAME).count();
            let others = records
                .iter()
                .filter(|r| !coexists_with_cname(r.rtype()))
                .count();
            if let Some(first) = records.first() {
                if cnames > 1 {
                    return Err(format!(
                        "`{}` has more than one CNAME record",
                        first.owner()
                    ));
                }
                if cnames == 1 && others > 0 {
                    return Err(format!(
                        "`{}` has a CNAME record and other data",
                        first.owner()
                    ));
                }
            }
        }

        let has_cuts = nodes.iter().any(|(name, records)| {
            *name != origin && records.iter().any(|r| r.rtype() == Rtype::NS)
        });
        let negative_ttl = soa.ttl().min(soa.soa_minimum().unwrap_or(u32::MAX));
        let negative_soa = soa.clone().with_ttl(negative_ttl);
        Ok(Zone {
            origin,
            soa,
            negative_soa,
            nodes,
            has_cuts,
        })
    }

    /// The apex name.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The zone's SOA record, as loaded.
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// Answers `qname`/`qtype` from the zone (RFC 1034 §4.3.2). The caller guarantees that
    /// `qname` is at or below the origin; anything else is REFUSED.
    ///
    /// Answers are authoritative except referrals. Records owned by `qname` itself, or
    /// synthesised from a wildcard, carry `qname` exactly as given (case included); later
    /// links of a CNAME chain carry the zone's own names.
    pub fn lookup(&self, qname: &Name, qtype: Rtype) -> Answer {
        if !qname.is_at_or_below(&self.origin) {
            return Answer::empty(Rcode::REFUSED, false);
        }
        let mut answer = Answer::empty(Rcode::NOERROR, true);
        let mut name = qname.clone();
        let mut seen = vec![qname.clone()];
        let mut first = true;
        loop {
            match self.step(&name, qtype, first) {
                Step::Records(records) => {
                    answer.answer.extend(records);
                    break;
                }
                Step::Alias(cname, target) => {
                    answer.answer.push(cname);
                    let stop = seen.len() >= MAX_CNAME_HOPS
                        || !target.is_at_or_below(&self.origin)
                        || seen.contains(&target);
                    if stop {
                        break;
                    }
                    seen.push(target.clone());
                    name = target;
                    first = false;
                }
                Step::NoData => {
                    answer.authority.push(self.negative_soa.clone());
                    break;
                }
                Step::NxDomain => {
                    answer.rcode = Rcode::NXDOMAIN;
                    answer.authority.push(self.negative_soa.clone());
                    break;
                }
                Step::Referral(ns) => {
                    // Only the CNAMEs leading here (if any) are ours to vouch for.
                    answer.aa = !answer.answer.is_empty();
                    answer.additional = self.addresses_for(&ns, &[]);
                    answer.authority = ns;
                    return answer;
                }
            }
        }
        answer.additional = self.addresses_for(&answer.answer, &answer.answer);
        answer
    }

    /// Looks up one name. `first` is true for the query name itself, whose exact-match
    /// records take its spelling; later links of a chain keep the zone's.
    fn step(&self, name: &Name, qtype: Rtype, first: bool) -> Step {
        let key = name.to_lowercase();
        if let Some(ns) = self.cut_above(&key, qtype) {
            return Step::Referral(ns);
        }
        if let Some(records) = self.nodes.get(&key) {
            return answer_from(records, qtype, first.then_some(name));
        }
        // RFC 4592 §3.3.1: the closest encloser is the nearest existing ancestor (the apex
        // always exists); only `*.<closest encloser>` may stand in for the name.
        let mut up = key.parent();
        while let Some(encloser) = up {
            if self.nodes.contains_key(&encloser) {
                let wildcard = Name::from_labels([&b"*"[..]], &encloser);
                return match wildcard.ok().and_then(|w| self.nodes.get(&w)) {
                    Some(records) => answer_from(records, qtype, Some(name)),
                    None => Step::NxDomain,
                };
            }
            if encloser == self.origin {
                break;
            }
            up = encloser.parent();
        }
        Step::NxDomain
    }

    /// The NS records of the highest zone cut strictly below the apex at or above `key` (a
    /// lower-cased name). DS at the cut itself belongs to this (the parent) side
    /// (RFC 4035 §3.1.4.1).
    fn cut_above(&self, key: &Name, qtype: Rtype) -> Option<Vec<Record>> {
        if !self.has_cuts {
            return None;
        }
        let mut highest = None;
        let mut current = Some(key.clone());
        while let Some(at) = current {
            if at.label_count() <= self.origin.label_count() {
                break;
            }
            let is_ds_at_cut = qtype == Rtype::DS && at == *key;
            if let Some(records) = self.nodes.get(&at) {
                if !is_ds_at_cut && records.iter().any(|r| r.rtype() == Rtype::NS) {
                    highest = Some(records);
                }
            }
            current = at.parent();
        }
        highest.map(|records| {
            records
                .iter()
                .filter(|r| r.rtype() == Rtype::NS)
                .cloned()
                .collect()
        })
    }

    /// The zone's A/AAAA records for the in-zone SRV, MX and NS targets in `records`,
    /// each target once, leaving out records already in `answer`.
    fn addresses_for(&self, records: &[Record], answer: &[Record]) -> Vec<Record> {
        let answer_has_addresses = answer.iter().any(|r| is_address(r.rtype()));
        let mut done = BTreeSet::new();
        let mut additional = Vec::new();
        for target in records.iter().filter_map(Record::additional_target) {
            if !target.is_at_or_below(&self.origin) {
                continue;
            }
            let target = target.to_lowercase();
            let Some(node) = self.nodes.get(&target) else {
                continue;
            };
            if !done.insert(target) {
                continue;
            }
            for address in node.iter().filter(|r| is_address(r.rtype())) {
                if answer_has_addresses && answer.iter().any(|r| r.same_rr(address)) {
                    continue;
                }
                additional.push(address.clone());
            }
        }
        additional
    }
}

/// The answer a node gives for `qtype`; `owner` replaces the records' owners (the query
/// name's own spelling, or the name a wildcard stands in for).
fn answer_from(records: &[Record], qtype: Rtype, owner: Option<&Name>) -> Step {
    let named = |r: &Record| match owner {
        Some(owner) => r.with_owner(owner.clone()),
        None => r.clone(),
    };
    if qtype == Rtype::ANY {
        if records.is_empty() {
            return Step::NoData;
        }
        return Step::Records(records.iter().map(named).collect());
    }
    let matching: Vec<Record> = records
        .iter()
        .filter(|r| r.rtype() == qtype)
        .map(named)
        .collect();
    if !matching.is_empty() {
        return Step::Records(matching);
    }
    if qtype != Rtype::CNAME {
        let alias = records.iter().find_map(|r| Some((r, r.cname_target()?)));
        if let Some((cname, target)) = alias {
            return Step::Alias(named(cname), target);
        }
    }
    Step::NoData
}

/// Types allowed next to a CNAME: the DNSSEC records that sign and deny it (RFC 4035 §2.5).
fn coexists_with_cname(rtype: Rtype) -> bool {
    [Rtype::CNAME, Rtype::RRSIG, Rtype::NSEC].contains(&rtype)
}

fn is_address(rtype: Rtype) -> bool {
    rtype == Rtype::A || rtype == Rtype::AAAA
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_zonefile;

    const EXAMPLE: &str = "\
$ORIGIN example.test.
$TTL 300
@ 3600 IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 60
@ IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.10
www IN A 192.0.2.11
www IN AAAA 2001:db8::10
alias IN CNAME www
chain1 IN CNAME chain2
chain2 IN CNAME Alias
loop1 IN CNAME loop2
loop2 IN CNAME loop1
dangling IN CNAME nowhere
out IN CNAME www.elsewhere.test.
mail IN MX 10 mx1
mx1 IN A 192.0.2.25
_sip._tcp IN SRV 0 5 5060 sip1
_sip._tcp IN SRV 1 5 5060 sip1
sip1 IN A 192.0.2.40
sip1 IN AAAA 2001:db8::40
host.sub IN A 192.0.2.50
*.wild IN A 192.0.2.60
*.wild IN TXT \"wild\"
exists.wild IN TXT \"real\"
*.cw IN CNAME www
child IN NS ns.child
child IN NS ns.other.test.
ns.child IN A 192.0.2.53
";

    /// The SPEC §1 cluster A data, as its DNS serves it.
    const CLUSTER_A: &str = "\
$ORIGIN cluster-a.local.
@ 30 IN SOA ns hostmaster 1 7200 3600 1209600 30
@ 30 IN NS ns
ns 30 IN A 10.8.0.1
_demo._tcp.demo-service.default.svc.cluster-a.local. 30 IN SRV 0 50 8080 demo-service-0.default.svc.cluster-a.local.
_demo._tcp.demo-service.default.svc.cluster-a.local. 30 IN SRV 0 50 8080 demo-service-1.default.svc.cluster-a.local.
demo-service-0.default.svc.cluster-a.local. 30 IN A 10.8.1.2
demo-service-1.default.svc.cluster-a.local. 30 IN A 10.8.1.2
";

    fn n(s: &str) -> Name {
        Name::parse(s).expect("valid name")
    }

    fn zone_from(origin: &str, text: &str) -> Zone {
        let origin = n(origin);
        let records = parse_zonefile(text, &origin).expect("valid zone file");
        Zone::new(origin, records).expect("valid zone")
    }

    fn example() -> Zone {
        zone_from("example.test.", EXAMPLE)
    }

    fn shown(records: &[Record]) -> Vec<String> {
        records.iter().map(ToString::to_string).collect()
    }

    fn ask(zone: &Zone, qname: &str, qtype: Rtype) -> Answer {
        zone.lookup(&n(qname), qtype)
    }

    const NEGATIVE_SOA: &str =
        "example.test. 60 IN SOA ns1.example.test. hostmaster.example.test. 2024010101 7200 3600 1209600 60";

    #[test]
    fn zone_exact_match_in_file_order() {
        let answer = ask(&example(), "www.example.test.", Rtype::A);
        assert_eq!(answer.rcode, Rcode::NOERROR);
        assert!(answer.aa);
        assert_eq!(
            shown(&answer.answer),
            [
                "www.example.test. 300 IN A 192.0.2.10",
                "www.example.test. 300 IN A 192.0.2.11"
            ]
        );
        assert!(answer.authority.is_empty());
        assert!(answer.additional.is_empty());
    }

    #[test]
    fn zone_lookup_ignores_case_and_echoes_the_query_spelling() {
        let qname = n("WWW.Example.TEST.");
        let answer = example().lookup(&qname, Rtype::AAAA);
        assert_eq!(
            shown(&answer.answer),
            ["WWW.Example.TEST. 300 IN AAAA 2001:db8::10"]
        );
        assert!(answer.answer[0].owner().eq_exact(&qname));
    }

    #[test]
    fn zone_apex_soa_and_ns_are_data() {
        let zone = example();
        let soa = ask(&zone, "example.test.", Rtype::SOA);
        assert_eq!(
            shown(&soa.answer),
            ["example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 2024010101 7200 3600 1209600 60"]
        );
        assert!(soa.aa && soa.authority.is_empty());
        let ns = ask(&zone, "Example.Test.", Rtype::NS);
        assert_eq!(ns.rcode, Rcode::NOERROR);
        assert!(ns.aa);
        assert_eq!(
            shown(&ns.answer),
            ["Example.Test. 300 IN NS ns1.example.test."]
        );
        assert_eq!(
            shown(&ns.additional),
            ["ns1.example.test. 300 IN A 192.0.2.1"]
        );
        assert_eq!(zone.origin(), &n("example.test."));
        assert_eq!(zone.soa().ttl(), 3600);
    }

    #[test]
    fn zone_additional_addresses_for_srv_and_mx_targets() {
        let zone = example();
        let srv = ask(&zone, "_sip._tcp.example.test.", Rtype::SRV);
        assert_eq!(srv.answer.len(), 2);
        // Both SRV records name sip1: its addresses come once.
        assert_eq!(
            shown(&srv.additional),
            [
                "sip1.example.test. 300 IN A 192.0.2.40",
                "sip1.example.test. 300 IN AAAA 2001:db8::40"
            ]
        );
        let mx = ask(&zone, "mail.example.test.", Rtype::MX);
        assert_eq!(
            shown(&mx.answer),
            ["mail.example.test. 300 IN MX 10 mx1.example.test."]
        );
        assert_eq!(
            shown(&mx.additional),
            ["mx1.example.test. 300 IN A 192.0.2.25"]
        );
    }

    #[test]
    fn zone_nodata_carries_the_soa_with_the_negative_ttl() {
        let answer = ask(&example(), "mx1.example.test.", Rtype::AAAA);
        assert_eq!(answer.rcode, Rcode::NOERROR);
        assert!(answer.aa);
        assert!(answer.answer.is_empty());
        // min(SOA TTL 3600, MINIMUM 60) = 60.
        assert_eq!(shown(&answer.authority), [NEGATIVE_SOA]);
    }

    #[test]
    fn zone_nxdomain_carries_the_soa_with_the_negative_ttl() {
        let answer = ask(&example(), "nope.example.test.", Rtype::A);
        assert_eq!(answer.rcode, Rcode::NXDOMAIN);
        assert!(answer.aa);
        assert!(answer.answer.is_empty());
        assert_eq!(shown(&answer.authority), [NEGATIVE_SOA]);
        // Below an existing name too.
        assert_eq!(
            ask(&example(), "x.www.example.test.", Rtype::A).rcode,
            Rcode::NXDOMAIN
        );
    }

    #[test]
    fn zone_negative_ttl_is_the_soa_ttl_when_that_is_lower() {
        let zone = zone_from("low.test.", "@ 30 IN SOA ns hm 1 2 3 4 300\n");
        let answer = ask(&zone, "x.low.test.", Rtype::A);
        assert_eq!(answer.rcode, Rcode::NXDOMAIN);
        assert_eq!(answer.authority[0].ttl(), 30);
        assert_eq!(ask(&zone, "low.test.", Rtype::A).authority[0].ttl(), 30);
    }

    #[test]
    fn zone_empty_non_terminal_is_nodata_not_nxdomain() {
        let zone = example();
        for qtype in [Rtype::A, Rtype::ANY] {
            let answer = ask(&zone, "sub.example.test.", qtype);
            assert_eq!(answer.rcode, Rcode::NOERROR, "{qtype}");
            assert!(answer.answer.is_empty());
            assert_eq!(shown(&answer.authority), [NEGATIVE_SOA]);
        }
        // `_tcp` exists only because `_sip._tcp` does.
        assert_eq!(
            ask(&zone, "_tcp.example.test.", Rtype::SRV).rcode,
            Rcode::NOERROR
        );
    }

    #[test]
    fn zone_any_returns_every_record_at_the_name() {
        let answer = ask(&example(), "www.example.test.", Rtype::ANY);
        assert_eq!(
            shown(&answer.answer),
            [
                "www.example.test. 300 IN A 192.0.2.10",
                "www.example.test. 300 IN A 192.0.2.11",
                "www.example.test. 300 IN AAAA 2001:db8::10",
            ]
        );
    }

    #[test]
    fn zone_cname_is_followed_inside_the_zone() {
        let answer = ask(&example(), "ALIAS.example.test.", Rtype::A);
        assert_eq!(answer.rcode, Rcode::NOERROR);
        assert!(answer.aa);
        assert_eq!(
            shown(&answer.answer),
            [
                "ALIAS.example.test. 300 IN CNAME www.example.test.",
                "www.example.test. 300 IN A 192.0.2.10",
                "www.example.test. 300 IN A 192.0.2.11",
            ]
        );
        // Asking for the CNAME itself does not follow it.
        let cname = ask(&example(), "alias.example.test.", Rtype::CNAME);
        assert_eq!(
            shown(&cname.answer),
            ["alias.example.test. 300 IN CNAME www.example.test."]
        );
    }

    #[test]
    fn zone_cname_chain_keeps_the_zone_names_after_the_first_link() {
        let answer = ask(&example(), "Chain1.example.test.", Rtype::AAAA);
        assert_eq!(answer.rcode, Rcode::NOERROR);
        assert_eq!(
            shown(&answer.answer),
            [
                "Chain1.example.test. 300 IN CNAME chain2.example.test.",
                "chain2.example.test. 300 IN CNAME Alias.example.test.",
                "alias.example.test. 300 IN CNAME www.example.test.",
                "www.example.test. 300 IN AAAA 2001:db8::10",
            ]
        );
    }

    #[test]
    fn zone_cname_chain_ending_in_nodata_or_nxdomain_takes_the_last_rcode() {
        let zone = example();
        let nodata = ask(&zone, "alias.example.test.", Rtype::MX);
        assert_eq!(nodata.rcode, Rcode::NOERROR);
        assert_eq!(
            shown(&nodata.answer),
            ["alias.example.test. 300 IN CNAME www.example.test."]
        );
        assert_eq!(shown(&nodata.authority), [NEGATIVE_SOA]);
        let nx = ask(&zone, "dangling.example.test.", Rtype::A);
        assert_eq!(nx.rcode, Rcode::NXDOMAIN);
        assert!(nx.aa);
        assert_eq!(
            shown(&nx.answer),
            ["dangling.example.test. 300 IN CNAME nowhere.example.test."]
        );
        assert_eq!(shown(&nx.authority), [NEGATIVE_SOA]);
    }

    #[test]
    fn zone_cname_leaving_the_zone_stops_with_noerror() {
        let answer = ask(&example(), "out.example.test.", Rtype::A);
        assert_eq!(answer.rcode, Rcode::NOERROR);
        assert!(answer.aa);
        assert_eq!(
            shown(&answer.answer),
            ["out.example.test. 300 IN CNAME www.elsewhere.test."]
        );
        assert!(answer.authority.is_empty());
    }

    #[test]
    fn zone_cname_loop_stops() {
        let answer = ask(&example(), "loop1.example.test.", Rtype::A);
        assert_eq!(answer.rcode, Rcode::NOERROR);
        assert_eq!(
            shown(&answer.answer),
            [
                "loop1.example.test. 300 IN CNAME loop2.example.test.",
                "loop2.example.test. 300 IN CNAME loop1.example.test."
            ]
        );
    }

    #[test]
    fn zone_cname_chain_is_cut_after_eight_links() {
        let mut text = String::from("@ IN SOA ns hm 1 2 3 4 5\n");
        for i in 0..12 {
            text.push_str(&format!("c{i} IN CNAME c{}\n", i + 1));
        }
        text.push_str("c12 IN A 192.0.2.1\n");
        let zone = zone_from("long.test.", &text);
        let answer = ask(&zone, "c0.long.test.", Rtype::A);
        assert_eq!(answer.rcode, Rcode::NOERROR);
        assert_eq!(answer.answer.len(), MAX_CNAME_HOPS);
        assert_eq!(
            answer.answer[7].to_string(),
            "c7.long.test. 3600 IN CNAME c8.long.test."
        );
        // A chain of exactly eight links still reaches its data.
        let answer = ask(&zone, "c5.long.test.", Rtype::A);
        assert_eq!(answer.answer.len(), 8);
        assert_eq!(
            answer.answer[7].to_string(),
            "c12.long.test. 3600 IN A 192.0.2.1"
        );
    }

    #[test]
    fn zone_wildcard_synthesises_with_the_query_name() {
        let zone = example();
        let answer = ask(&zone, "Any.Thing.wild.example.test.", Rtype::A);
        assert_eq!(answer.rcode, Rcode::NOERROR);
        assert!(answer.aa);
        assert_eq!(
            shown(&answer.answer),
            ["Any.Thing.wild.example.test. 300 IN A 192.0.2.60"]
        );
        let txt = ask(&zone, "other.wild.example.test.", Rtype::TXT);
        assert_eq!(
            shown(&txt.answer),
            ["other.wild.example.test. 300 IN TXT \"wild\""]
        );
        // The wildcard exists, so a type it lacks is NODATA.
        let nodata = ask(&zone, "other.wild.example.test.", Rtype::MX);
        assert_eq!(nodata.rcode, Rcode::NOERROR);
        assert!(nodata.answer.is_empty());
        assert_eq!(shown(&nodata.authority), [NEGATIVE_SOA]);
    }

    #[test]
    fn zone_wildcard_does_not_cover_existing_names_or_their_descendants() {
        let zone = example();
        // `exists.wild` has a TXT only: no A from the wildcard.
        let answer = ask(&zone, "exists.wild.example.test.", Rtype::A);
        assert_eq!(answer.rcode, Rcode::NOERROR);
        assert!(answer.answer.is_empty());
        assert_eq!(shown(&answer.authority), [NEGATIVE_SOA]);
        let txt = ask(&zone, "exists.wild.example.test.", Rtype::TXT);
        assert_eq!(
            shown(&txt.answer),
            ["exists.wild.example.test. 300 IN TXT \"real\""]
        );
        // Below `exists.wild` the closest encloser is `exists.wild`, which has no wildcard.
        assert_eq!(
            ask(&zone, "x.exists.wild.example.test.", Rtype::A).rcode,
            Rcode::NXDOMAIN
        );
        // `*.wild` does not reach `wild` itself, an empty non-terminal.
        assert_eq!(
            ask(&zone, "wild.example.test.", Rtype::A).rcode,
            Rcode::NOERROR
        );
        assert!(ask(&zone, "wild.example.test.", Rtype::A).answer.is_empty());
    }

    #[test]
    fn zone_wildcard_cname_is_synthesised_and_followed() {
        let answer = ask(&example(), "foo.cw.example.test.", Rtype::A);
        assert_eq!(answer.rcode, Rcode::NOERROR);
        assert_eq!(
            shown(&answer.answer),
            [
                "foo.cw.example.test. 300 IN CNAME www.example.test.",
                "www.example.test. 300 IN A 192.0.2.10",
                "www.example.test. 300 IN A 192.0.2.11",
            ]
        );
    }

    #[test]
    fn zone_referral_at_and_below_a_delegation() {
        let zone = example();
        for (qname, qtype) in [
            ("host.child.example.test.", Rtype::A),
            ("child.example.test.", Rtype::NS),
        ] {
            let answer = ask(&zone, qname, qtype);
            assert_eq!(answer.rcode, Rcode::NOERROR, "{qname}");
            assert!(!answer.aa, "{qname}");
            assert!(answer.answer.is_empty(), "{qname}");
            assert_eq!(
                shown(&answer.authority),
                [
                    "child.example.test. 300 IN NS ns.child.example.test.",
                    "child.example.test. 300 IN NS ns.other.test."
                ]
            );
            // Glue for the in-zone name server only.
            assert_eq!(
                shown(&answer.additional),
                ["ns.child.example.test. 300 IN A 192.0.2.53"]
            );
        }
        // Glue itself is below the cut: also a referral.
        assert!(!ask(&zone, "ns.child.example.test.", Rtype::A).aa);
    }

    #[test]
    fn zone_ds_at_a_delegation_is_answered_by_the_parent() {
        let answer = ask(&example(), "child.example.test.", Rtype::DS);
        assert_eq!(answer.rcode, Rcode::NOERROR);
        assert!(answer.aa);
        assert!(answer.answer.is_empty());
        assert_eq!(shown(&answer.authority), [NEGATIVE_SOA]);
    }

    #[test]
    fn zone_outside_names_are_refused() {
        let answer = ask(&example(), "www.other.test.", Rtype::A);
        assert_eq!(answer.rcode, Rcode::REFUSED);
        assert!(!answer.aa);
    }

    #[test]
    fn zone_spec_cluster_a_srv_answer() {
        let zone = zone_from("cluster-a.local.", CLUSTER_A);
        let answer = ask(
            &zone,
            "_demo._tcp.demo-service.default.svc.cluster-a.local.",
            Rtype::SRV,
        );
        assert_eq!(answer.rcode, Rcode::NOERROR);
        assert!(answer.aa);
        let targets: Vec<Option<Name>> = answer
            .answer
            .iter()
            .map(Record::additional_target)
            .collect();
        assert_eq!(
            targets,
            [
                Some(n("demo-service-0.default.svc.cluster-a.local.")),
                Some(n("demo-service-1.default.svc.cluster-a.local."))
            ]
        );
        assert!(answer
            .answer
            .iter()
            .all(|r| r.ttl() == 30 && r.rtype() == Rtype::SRV));
        assert_eq!(
            shown(&answer.additional),
            [
                "demo-service-0.default.svc.cluster-a.local. 30 IN A 10.8.1.2",
                "demo-service-1.default.svc.cluster-a.local. 30 IN A 10.8.1.2",
            ]
        );
        let a = ask(
            &zone,
            "demo-service-0.default.svc.cluster-a.local.",
            Rtype::A,
        );
        assert_eq!(
            shown(&a.answer),
            ["demo-service-0.default.svc.cluster-a.local. 30 IN A 10.8.1.2"]
        );
    }

    #[test]
    fn zone_demo_files_load_and_answer() {
        for (origin, text, net) in [
            (
                "cluster-a.local.",
                include_str!("../../examples/demo/cluster-a.local.zone"),
                8,
            ),
            (
                "cluster-b.local.",
                include_str!("../../examples/demo/cluster-b.local.zone"),
                9,
            ),
        ] {
            let zone = zone_from(origin, text);
            let cluster = &origin[8..9];
            let srv = ask(
                &zone,
                &format!("_demo._tcp.demo-service.default.svc.{origin}"),
                Rtype::SRV,
            );
            assert_eq!(srv.answer.len(), 2);
            assert_eq!(
                shown(&srv.additional),
                [
                    format!("demo-service-0.default.svc.{origin} 30 IN A 10.{net}.1.2"),
                    format!("demo-service-1.default.svc.{origin} 30 IN A 10.{net}.1.2"),
                ]
            );
            let a = ask(
                &zone,
                &format!("demo-service.default.svc.{origin}"),
                Rtype::A,
            );
            assert_eq!(
                shown(&a.answer),
                [format!(
                    "demo-service.default.svc.{origin} 30 IN A 10.{net}.0.10"
                )]
            );
            let txt = ask(
                &zone,
                &format!("demo-service.default.svc.{origin}"),
                Rtype::TXT,
            );
            assert_eq!(
                shown(&txt.answer),
                [format!(
                    "demo-service.default.svc.{origin} 30 IN TXT \"cluster={cluster}\""
                )]
            );
            let big = ask(&zone, &format!("big.default.svc.{origin}"), Rtype::A);
            assert_eq!(big.answer.len(), 60);
            assert_eq!(
                big.answer[59].to_string(),
                format!("big.default.svc.{origin} 30 IN A 10.{net}.2.60")
            );
            let big_srv = ask(
                &zone,
                &format!("_http._tcp.big.default.svc.{origin}"),
                Rtype::SRV,
            );
            assert_eq!(big_srv.answer.len(), 60);
            assert_eq!(big_srv.additional.len(), 60);
            assert_eq!(
                big_srv.additional[0].to_string(),
                format!("big-0.default.svc.{origin} 30 IN A 10.{net}.2.1")
            );
            let nx = ask(&zone, &format!("missing.default.svc.{origin}"), Rtype::A);
            assert_eq!(nx.rcode, Rcode::NXDOMAIN);
            assert_eq!(nx.authority[0].ttl(), 30);
        }
    }

    #[test]
    fn zone_new_requires_one_soa_at_the_apex() {
        let origin = n("example.test.");
        let parse = |text: &str| parse_zonefile(text, &origin).expect("valid zone file");
        assert_eq!(
            Zone::new(origin.clone(), parse("www A 192.0.2.1\n")).err(),
            Some("`example.test.` has no SOA record".into())
        );
        assert_eq!(
            Zone::new(
                origin.clone(),
                parse("@ SOA ns hm 1 2 3 4 5\n@ SOA ns hm 2 2 3 4 5\n")
            )
            .err(),
            Some("`example.test.` has more than one SOA record".into())
        );
        assert_eq!(
            Zone::new(origin.clone(), parse("www SOA ns hm 1 2 3 4 5\n")).err(),
            Some(
                "the SOA record is at `www.example.test.`, not at the apex `example.test.`".into()
            )
        );
        // The same SOA twice is one record.
        let twice = parse("@ SOA ns hm 1 2 3 4 5\n@ SOA ns hm 1 2 3 4 5\n");
        let zone = Zone::new(origin.clone(), twice).expect("a repeated record is kept once");
        assert_eq!(ask(&zone, "example.test.", Rtype::SOA).answer.len(), 1);
    }

    #[test]
    fn zone_new_rejects_cname_with_other_data() {
        let origin = n("example.test.");
        let parse = |text: &str| parse_zonefile(text, &origin).expect("valid zone file");
        let soa = "@ SOA ns hm 1 2 3 4 5\n";
        assert_eq!(
            Zone::new(
                origin.clone(),
                parse(&format!("{soa}Www CNAME x\nwww A 192.0.2.1\n"))
            )
            .err(),
            Some("`Www.example.test.` has a CNAME record and other data".into())
        );
        assert_eq!(
            Zone::new(
                origin.clone(),
                parse(&format!("{soa}www CNAME x\nwww CNAME y\n"))
            )
            .err(),
            Some("`www.example.test.` has more than one CNAME record".into())
        );
        assert_eq!(
            Zone::new(origin.clone(), parse(&format!("{soa}@ CNAME x\n"))).err(),
            Some("`example.test.` has a CNAME record and other data".into())
        );
    }

    #[test]
    fn zone_new_rejects_records_outside_the_origin() {
        let soa = parse_zonefile("@ SOA ns hm 1 2 3 4 5\n", &n("example.test.")).expect("valid");
        let mut records = soa.clone();
        records.extend(parse_zonefile("www A 192.0.2.1\n", &n("other.test.")).expect("valid"));
        assert_eq!(
            Zone::new(n("example.test."), records).err(),
            Some("`www.other.test.` is outside the zone `example.test.`".into())
        );
    }

    #[test]
    fn zone_duplicate_records_are_kept_once() {
        let zone = zone_from(
            "dup.test.",
            "@ SOA ns hm 1 2 3 4 5\na A 192.0.2.1\na A 192.0.2.1\na 60 A 192.0.2.1\n",
        );
        assert_eq!(ask(&zone, "a.dup.test.", Rtype::A).answer.len(), 1);
    }
}
