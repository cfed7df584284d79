//! Unit and property tests of the response cache and the stale part store: CoreDNS's
//! classification and TTL arithmetic, the capacity bound whatever the query mix, prefetch
//! and serving expired entries.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::parts::{PartKey, StaleStore};
use super::response::{classify, Class, Found, Key, Kind, ResponseCache};
use crate::answer::Answer;
use crate::config::{cache_defaults as d, Cache, CacheKind, Prefetch, ServeStale, StaleParts};
use crate::gather::ClusterReply;
use crate::wire::{Name, Rcode, Record, Rtype, SoaFields};

fn n(s: &str) -> Name {
    Name::parse(s).expect("valid")
}

fn settings() -> Cache {
    let kind = |max| CacheKind {
        capacity: 1024,
        max_ttl: max,
        min_ttl: d::MIN_TTL,
    };
    Cache {
        zones: vec![Name::root()],
        success: kind(d::SUCCESS_MAX_TTL),
        denial: kind(d::DENIAL_MAX_TTL),
        prefetch: None,
        serve_stale: None,
        servfail: d::SERVFAIL,
        disable_success: Vec::new(),
        disable_denial: Vec::new(),
        keepttl: false,
        location: Default::default(),
    }
}

fn soa(ttl: u32) -> Record {
    Record::soa(
        n("example."),
        ttl,
        &SoaFields {
            mname: n("ns.example."),
            rname: n("h.example."),
            serial: 1,
            refresh: 2,
            retry: 3,
            expire: 4,
            minimum: ttl,
        },
    )
}

fn positive(name: &str, ttls: &[u32]) -> Answer {
    let mut a = Answer::empty(Rcode::NOERROR, true);
    a.answer = ttls
        .iter()
        .enumerate()
        .map(|(i, t)| Record::a(n(name), *t, [10, 0, 0, i as u8].into()))
        .collect();
    a
}

fn key(name: &str) -> Key {
    Key {
        qname: n(name),
        qtype: Rtype::A.to_int(),
        dnssec_ok: false,
        cd: false,
    }
}

/// Stores `answer` for `name` as the gateway does: TTL computed, then stored.
fn put(cache: &mut ResponseCache, at: Instant, name: &str, answer: &Answer) -> u32 {
    let (ttl, class) = cache.duration(answer, Rtype::A, false);
    cache.store(at, key(name), answer, &[], true, ttl, class);
    ttl
}

#[allow(clippy::disallowed_methods)] // any epoch will do for a test
fn t0() -> Instant {
    Instant::now()
}

#[test]
fn classification_is_coredns_typify() {
    let mut nx = Answer::empty(Rcode::NXDOMAIN, true);
    nx.authority.push(soa(5));
    let mut nodata = Answer::empty(Rcode::NOERROR, true);
    nodata.authority.push(soa(5));
    let mut referral = Answer::empty(Rcode::NOERROR, false);
    referral
        .authority
        .push(Record::ns(n("sub.example."), 60, n("ns.sub.example.")));
    assert_eq!(classify(&positive("x.", &[30]), Rtype::A), Class::NoError);
    assert_eq!(classify(&nx, Rtype::A), Class::NameError);
    assert_eq!(classify(&nodata, Rtype::A), Class::NoData);
    assert_eq!(classify(&referral, Rtype::A), Class::Delegation);
    assert_eq!(
        classify(&Answer::empty(Rcode::SERVFAIL, true), Rtype::A),
        Class::ServerError
    );
    assert_eq!(
        classify(&Answer::empty(Rcode::NOTIMP, true), Rtype::A),
        Class::ServerError
    );
    assert_eq!(
        classify(&Answer::empty(Rcode::REFUSED, true), Rtype::A),
        Class::OtherError
    );
    assert_eq!(classify(&positive("x.", &[30]), Rtype::AXFR), Class::Meta);
}

#[test]
fn durations_are_the_smallest_ttl_within_the_bounds() {
    let cache = ResponseCache::new(settings(), 1, None);
    assert_eq!(
        cache
            .duration(&positive("x.", &[300, 60]), Rtype::A, false)
            .0,
        60
    );
    assert_eq!(
        cache.duration(&positive("x.", &[2]), Rtype::A, false).0,
        5,
        "MINTTL"
    );
    assert_eq!(
        cache.duration(&positive("x.", &[9000]), Rtype::A, false).0,
        3600
    );
    let mut nx = Answer::empty(Rcode::NXDOMAIN, true);
    nx.authority.push(soa(7200));
    assert_eq!(
        cache.duration(&nx, Rtype::A, false).0,
        1800,
        "denials: 1800 at most"
    );
    let servfail = Answer::empty(Rcode::SERVFAIL, true);
    assert_eq!(cache.duration(&servfail, Rtype::A, false).0, 5, "servfail");
    assert_eq!(
        cache.duration(&positive("x.", &[300]), Rtype::A, true).0,
        5,
        "an answer missing a cluster: no longer than a SERVFAIL"
    );
    assert_eq!(
        cache
            .duration(&Answer::empty(Rcode::NOERROR, true), Rtype::A, false)
            .0,
        5,
        "no records at all: CoreDNS's fail-safe 5 s"
    );
}

#[test]
fn what_is_never_cached() {
    let at = t0();
    let mut cache = ResponseCache::new(settings(), 1, None);
    // NXDOMAIN without an SOA to bound it.
    let nx = Answer::empty(Rcode::NXDOMAIN, true);
    put(&mut cache, at, "nx.", &nx);
    assert!(matches!(cache.find(at, &key("nx.")), Found::Miss));
    // A CNAME that leads nowhere, without an SOA: an SOA-less NODATA.
    let mut dangling = Answer::empty(Rcode::NOERROR, true);
    dangling
        .answer
        .push(Record::cname(n("c."), 60, n("elsewhere.")));
    put(&mut cache, at, "c.", &dangling);
    assert!(matches!(cache.find(at, &key("c.")), Found::Miss));
    // The same chain ending in an A record answers the question.
    dangling
        .answer
        .push(Record::a(n("elsewhere."), 60, [10, 0, 0, 1].into()));
    put(&mut cache, at, "c.", &dangling);
    assert!(matches!(cache.find(at, &key("c.")), Found::Fresh { .. }));
    // REFUSED.
    put(&mut cache, at, "r.", &Answer::empty(Rcode::REFUSED, true));
    assert!(matches!(cache.find(at, &key("r.")), Found::Miss));
    // `disable success` for a zone.
    let mut s = settings();
    s.disable_success = vec![n("off.")];
    let mut cache = ResponseCache::new(s, 1, None);
    put(&mut cache, at, "x.off.", &positive("x.off.", &[60]));
    put(&mut cache, at, "x.on.", &positive("x.on.", &[60]));
    assert!(matches!(cache.find(at, &key("x.off.")), Found::Miss));
    assert!(matches!(cache.find(at, &key("x.on.")), Found::Fresh { .. }));
}

#[test]
fn a_servfail_does_not_shadow_a_usable_positive_answer() {
    let at = t0();
    let mut cache = ResponseCache::new(settings(), 1, None);
    put(&mut cache, at, "x.", &positive("x.", &[60]));
    put(&mut cache, at, "x.", &Answer::empty(Rcode::SERVFAIL, true));
    assert!(matches!(
        cache.find(at, &key("x.")),
        Found::Fresh {
            kind: Kind::Success,
            ..
        }
    ));
    // Once the positive answer is gone, the SERVFAIL answers.
    let later = at + Duration::from_secs(61);
    put(
        &mut cache,
        later,
        "x.",
        &Answer::empty(Rcode::SERVFAIL, true),
    );
    assert!(matches!(
        cache.find(later, &key("x.")),
        Found::Fresh {
            kind: Kind::Denial,
            ..
        }
    ));
}

#[test]
fn replies_from_an_entry_carry_one_ttl_and_the_clients_spelling() {
    let at = t0();
    let mut cache = ResponseCache::new(settings(), 1, None);
    let ttl = put(
        &mut cache,
        at,
        "Host.Example.",
        &positive("Host.Example.", &[60, 30]),
    );
    assert_eq!(ttl, 30);
    let Found::Fresh { kind, ttl } =
        cache.find(at + Duration::from_secs(12), &key("host.example."))
    else {
        panic!("fresh");
    };
    assert_eq!(ttl, 18);
    let (answer, _, ra) = cache
        .reply(kind, &key("host.example."), &n("hOST.example."), Some(ttl))
        .expect("stored");
    assert!(ra);
    assert!(answer.answer.iter().all(|r| r.ttl() == 18));
    assert!(answer
        .answer
        .iter()
        .all(|r| r.owner().eq_exact(&n("hOST.example."))));
}

#[test]
fn keepttl_and_stale_ttls() {
    let at = t0();
    let mut s = settings();
    s.keepttl = true;
    s.serve_stale = Some(ServeStale {
        up_to: Duration::from_secs(100),
        verify: false,
        response_ttl: 0,
        failure_recheck: Duration::ZERO,
    });
    let mut cache = ResponseCache::new(s, 1, None);
    put(&mut cache, at, "x.", &positive("x.", &[40]));
    let k = key("x.");
    let (a, _, _) = cache
        .reply(Kind::Success, &k, &n("x."), Some(3))
        .expect("stored");
    assert_eq!(a.answer[0].ttl(), 40, "keepttl: the stored TTL");
    assert!(matches!(
        cache.find(at + Duration::from_secs(60), &k),
        Found::Stale { .. }
    ));
    let (a, _, _) = cache
        .reply(Kind::Success, &k, &n("x."), None)
        .expect("stored");
    assert_eq!(
        a.answer[0].ttl(),
        40,
        "keepttl wins for stale too, as in CoreDNS"
    );
    assert!(
        matches!(cache.find(at + Duration::from_secs(140), &k), Found::Miss),
        "100 s past expiry"
    );
}

#[test]
fn prefetch_wants_popular_entries_near_their_end_once() {
    let at = t0();
    let mut s = settings();
    s.prefetch = Some(Prefetch {
        amount: 2,
        window: Duration::from_secs(60),
        percentage: 10,
    });
    let mut cache = ResponseCache::new(s, 1, None);
    put(&mut cache, at, "x.", &positive("x.", &[100]));
    let k = key("x.");
    let s = |secs| at + Duration::from_secs(secs);
    assert!(
        !cache.wants_prefetch(s(1), Kind::Success, &k),
        "one query, 99 s left"
    );
    assert!(
        !cache.wants_prefetch(s(40), Kind::Success, &k),
        "two, but 60 s left"
    );
    assert!(
        cache.wants_prefetch(s(90), Kind::Success, &k),
        "three, 10 s left"
    );
    assert!(cache.begin_refresh(s(90), Kind::Success, &k));
    assert!(
        !cache.wants_prefetch(s(91), Kind::Success, &k),
        "one refresh at a time"
    );
    cache.end_refresh(s(92), &k, true);
    assert!(cache.wants_prefetch(s(93), Kind::Success, &k));
    // A gap longer than the window: popularity starts over.
    put(&mut cache, at, "y.", &positive("y.", &[100]));
    let y = key("y.");
    assert!(!cache.wants_prefetch(s(1), Kind::Success, &y));
    assert!(!cache.wants_prefetch(s(2), Kind::Success, &y));
    assert!(
        !cache.wants_prefetch(s(91), Kind::Success, &y),
        "89 s since the last query"
    );
    assert!(cache.wants_prefetch(s(92), Kind::Success, &y));
}

#[test]
fn a_failed_refresh_waits_for_the_recheck() {
    let at = t0();
    let mut s = settings();
    s.serve_stale = Some(ServeStale {
        up_to: Duration::from_secs(3600),
        verify: false,
        response_ttl: 30,
        failure_recheck: Duration::from_secs(10),
    });
    let mut cache = ResponseCache::new(s, 1, None);
    put(&mut cache, at, "x.", &positive("x.", &[30]));
    let k = key("x.");
    let s = |secs| at + Duration::from_secs(secs);
    assert!(cache.begin_refresh(s(40), Kind::Success, &k));
    cache.end_refresh(s(41), &k, false);
    assert!(
        !cache.begin_refresh(s(50), Kind::Success, &k),
        "within 10 s of the failure"
    );
    assert!(cache.begin_refresh(s(52), Kind::Success, &k));
    let (a, _, _) = cache
        .reply(Kind::Success, &k, &n("x."), None)
        .expect("stored");
    assert_eq!(a.answer[0].ttl(), 30, "RESPONSE_TTL");
}

proptest! {
    /// TTLs count down by whole seconds from the time of storing, and the entry is gone
    /// (without serve_stale) when they reach zero.
    #[test]
    fn ttl_arithmetic(record_ttl in 0u32..10_000, elapsed_ms in 0u64..20_000_000) {
        let at = t0();
        let mut cache = ResponseCache::new(settings(), 1, None);
        let stored = put(&mut cache, at, "x.", &positive("x.", &[record_ttl]));
        prop_assert_eq!(stored, record_ttl.clamp(5, 3600));
        let left = i64::from(stored) - (elapsed_ms / 1000) as i64;
        match cache.find(at + Duration::from_millis(elapsed_ms), &key("x.")) {
            Found::Fresh { ttl, .. } => prop_assert_eq!(i64::from(ttl), left),
            Found::Miss => prop_assert!(left <= 0),
            Found::Stale { .. } => prop_assert!(false, "no serve_stale"),
        }
    }

    /// Whatever the mix of names, kinds and repeats, neither cache holds more than its
    /// capacity.
    #[test]
    fn bounded_whatever_the_query_mix(
        capacity in 1usize..40,
        ops in prop::collection::vec((0u16..200, 0u8..4), 0..400),
    ) {
        let at = t0();
        let mut s = settings();
        s.success.capacity = capacity;
        s.denial.capacity = capacity;
        let mut cache = ResponseCache::new(s, 9, None);
        for (name, kind) in ops {
            let name = format!("n{name}.example.");
            let answer = match kind {
                0 => positive(&name, &[60]),
                1 => {
                    let mut a = Answer::empty(Rcode::NXDOMAIN, true);
                    a.authority.push(soa(60));
                    a
                }
                2 => Answer::empty(Rcode::SERVFAIL, true),
                _ => {
                    let _ = cache.find(at, &key(&name));
                    continue;
                }
            };
            put(&mut cache, at, &name, &answer);
            prop_assert!(cache.len(Kind::Success) <= capacity);
            prop_assert!(cache.len(Kind::Denial) <= capacity);
        }
    }
}

fn part(rcode: Rcode, records: usize) -> ClusterReply {
    let answer = (0..records)
        .map(|i| Record::a(n("x.c."), 60, [10, 0, 0, i as u8].into()))
        .collect();
    ClusterReply {
        rcode,
        sections: [answer, Vec::new(), Vec::new()],
    }
}

fn part_key(name: &str) -> PartKey {
    PartKey {
        subname: n(name),
        qtype: 1,
        dnssec_ok: false,
        cd: false,
    }
}

#[test]
fn stale_parts_keep_positive_answers_for_their_age() {
    let at = t0();
    let mut store = StaleStore::new(
        StaleParts {
            max_age: Duration::from_secs(60),
            capacity: 10,
        },
        3,
    );
    store.keep(at, part_key("x.c."), &part(Rcode::NOERROR, 2));
    let recalled = store
        .recall(at + Duration::from_secs(60), &part_key("X.C."))
        .expect("kept, found whatever the case");
    assert_eq!(recalled.sections[0].len(), 2);
    assert!(
        recalled.sections[0].iter().all(|r| r.ttl() == 30),
        "RFC 8767"
    );
    assert!(store
        .recall(at + Duration::from_secs(61), &part_key("x.c."))
        .is_none());
    assert!(
        store.recall(at, &part_key("x.c.")).is_none(),
        "dropped once too old"
    );
    // An NXDOMAIN or NODATA answer leaves nothing to stand in.
    store.keep(at, part_key("y.c."), &part(Rcode::NOERROR, 1));
    store.keep(at, part_key("y.c."), &part(Rcode::NXDOMAIN, 0));
    assert!(store.recall(at, &part_key("y.c.")).is_none());
    store.keep(at, part_key("z.c."), &part(Rcode::NOERROR, 1));
    store.keep(at, part_key("z.c."), &part(Rcode::NOERROR, 0));
    assert!(store.recall(at, &part_key("z.c.")).is_none());
}
