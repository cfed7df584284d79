//! CoreDNS's cache for one server block: a success cache (positive answers, referrals) and a
//! denial cache (NXDOMAIN, NODATA, SERVFAIL), keyed by the question (case-insensitively), DO
//! and CD; CoreDNS's classification, TTL arithmetic (one TTL for every record, counting down
//! from the time of storing, clamped to the configured bounds), prefetch of popular entries
//! and serving of expired ones. Time is passed in; nothing here knows about queries in flight.

use std::time::{Duration, Instant};

use crate::answer::Answer;
use crate::config::{Cache, ServeStale};
use crate::seeded::Seeded;
use crate::wire::{compact, Ede, Name, Rcode, Record, Rtype};

use super::lru::Lru;

/// What an entry is stored under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    /// Compared and hashed without regard to case.
    pub(crate) qname: Name,
    pub(crate) qtype: u16,
    pub(crate) dnssec_ok: bool,
    pub(crate) cd: bool,
}

/// The two caches, as CoreDNS's metrics name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Success,
    Denial,
}

/// CoreDNS's `response.Type` of a reply, for what the cache does with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    NoError,
    NameError,
    NoData,
    Delegation,
    ServerError,
    /// Zone transfers: never cached.
    Meta,
    /// REFUSED, FORMERR and the like: never cached.
    OtherError,
}

/// A stored reply.
pub(crate) struct Entry {
    /// Its records, each with the entry's TTL, in buffers of their own.
    answer: Answer,
    ede: Vec<Ede>,
    ra: bool,
    /// The question name as first asked (the owner names that echo it are the client's).
    qname: Name,
    stored: Instant,
    /// Seconds it is fresh for.
    ttl: u32,
    /// Prefetch bookkeeping (CoreDNS's `freq`): queries seen without a gap of the window.
    last_seen: Instant,
    hits: u32,
    /// A background query is refreshing it.
    refreshing: bool,
    /// No refresh of this expired entry before then (`serve_stale`'s failure recheck).
    retry_after: Option<Instant>,
}

impl Entry {
    /// Seconds of freshness left: negative once expired (CoreDNS's `item.ttl`).
    pub(crate) fn ttl_left(&self, now: Instant) -> i64 {
        i64::from(self.ttl) - now.saturating_duration_since(self.stored).as_secs() as i64
    }

    /// The stored reply for a client asking `qname`: every record with `ttl`, and the owner
    /// names that echoed the question spelled as this client spelled it.
    pub(crate) fn answer_for(&self, qname: &Name, ttl: u32) -> Answer {
        let respell = !self.qname.eq_exact(qname);
        let copy = |records: &[Record]| -> Vec<Record> {
            records
                .iter()
                .map(|r| {
                    let r = if respell && r.owner().eq_exact(&self.qname) {
                        r.with_owner(qname.clone())
                    } else {
                        r.clone()
                    };
                    r.with_ttl(ttl)
                })
                .collect()
        };
        Answer {
            rcode: self.answer.rcode,
            aa: self.answer.aa,
            answer: copy(&self.answer.answer),
            authority: copy(&self.answer.authority),
            additional: copy(&self.answer.additional),
            sources: self.answer.sources.clone(),
        }
    }
}

/// What a lookup found.
pub(crate) enum Found {
    /// Nothing usable: ask.
    Miss,
    /// A fresh entry with this many seconds left.
    Fresh { kind: Kind, ttl: u32 },
    /// An expired entry that `serve_stale` still allows.
    Stale { kind: Kind },
}

/// One block's cache.
pub(crate) struct ResponseCache {
    pub(crate) settings: Cache,
    /// The block's first listening address: the `server` label of what the gateway's own
    /// queries change.
    pub(crate) server: Option<std::net::SocketAddr>,
    /// `zones` label of the metrics: the zones joined with commas, as CoreDNS writes it.
    pub(crate) zones_label: String,
    success: Lru<Key, Entry>,
    denial: Lru<Key, Entry>,
}

/// What storing a reply did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Stored {
    /// The cache it went into.
    pub(crate) kind: Option<Kind>,
    /// An entry was dropped to make room.
    pub(crate) evicted: bool,
    /// It should have been stored but does not fit in one message (CoreDNS's drops).
    pub(crate) dropped: bool,
}

impl ResponseCache {
    pub(crate) fn new(
        settings: Cache,
        seed: u64,
        server: Option<std::net::SocketAddr>,
    ) -> ResponseCache {
        let zones_label = settings
            .zones
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        ResponseCache {
            success: Lru::new(settings.success.capacity, Seeded::new(seed)),
            denial: Lru::new(settings.denial.capacity, Seeded::new(seed.rotate_left(23))),
            settings,
            server,
            zones_label,
        }
    }

    /// True if answers for `qname` are cached here.
    pub(crate) fn covers(&self, qname: &Name) -> bool {
        self.settings.zones.iter().any(|z| qname.is_at_or_below(z))
    }

    /// Entries in the cache of `kind`.
    pub(crate) fn len(&self, kind: Kind) -> usize {
        match kind {
            Kind::Success => self.success.len(),
            Kind::Denial => self.denial.len(),
        }
    }

    fn lru(&mut self, kind: Kind) -> &mut Lru<Key, Entry> {
        match kind {
            Kind::Success => &mut self.success,
            Kind::Denial => &mut self.denial,
        }
    }

    /// Looks `key` up as CoreDNS's `getIfNotStale` does: the denial cache first, where a
    /// SERVFAIL gives way to a usable positive answer, then the success cache.
    pub(crate) fn find(&mut self, now: Instant, key: &Key) -> Found {
        let stale_up_to = self.settings.serve_stale.map(|s| s.up_to);
        let usable =
            |ttl: i64| ttl > 0 || stale_up_to.is_some_and(|up_to| (-ttl) < up_to.as_secs() as i64);
        let found = |kind: Kind, ttl: i64| match u32::try_from(ttl) {
            Ok(ttl) if ttl > 0 => Found::Fresh { kind, ttl },
            _ => Found::Stale { kind },
        };
        if let Some(entry) = self.denial.get_mut(key) {
            let ttl = entry.ttl_left(now);
            if usable(ttl) {
                if entry.answer.rcode == Rcode::SERVFAIL {
                    if let Some(positive) = self.success.get_mut(key) {
                        let pttl = positive.ttl_left(now);
                        if usable(pttl) {
                            return found(Kind::Success, pttl);
                        }
                    }
                }
                return found(Kind::Denial, ttl);
            }
        }
        if let Some(entry) = self.success.get_mut(key) {
            let ttl = entry.ttl_left(now);
            if usable(ttl) {
                return found(Kind::Success, ttl);
            }
        }
        Found::Miss
    }

    /// The reply an entry `find` returned gives a client asking `qname`: its answer, EDEs
    /// and RA. `fresh` is the TTL left of a fresh entry, `None` for an expired one, which is
    /// served with `serve_stale`'s response TTL (CoreDNS's default 0). With `keepttl` the
    /// TTL is the one the entry was stored with.
    pub(crate) fn reply(
        &mut self,
        kind: Kind,
        key: &Key,
        qname: &Name,
        fresh: Option<u32>,
    ) -> Option<(Answer, Vec<Ede>, bool)> {
        let keepttl = self.settings.keepttl;
        let response_ttl = match self.settings.serve_stale {
            Some(ServeStale { response_ttl, .. }) => response_ttl,
            None => 0,
        };
        let entry = self.lru(kind).peek_mut(key)?;
        let ttl = match fresh {
            _ if fresh.is_none() && response_ttl > 0 => response_ttl,
            _ if keepttl => entry.ttl,
            Some(ttl) => ttl,
            None => 0,
        };
        Some((entry.answer_for(qname, ttl), entry.ede.clone(), entry.ra))
    }

    /// CoreDNS's `shouldPrefetch`, counting this query: popular (AMOUNT queries without a gap
    /// of the window) and down to PERCENTAGE of its TTL. Never while a refresh is running.
    pub(crate) fn wants_prefetch(&mut self, now: Instant, kind: Kind, key: &Key) -> bool {
        let Some(prefetch) = self.settings.prefetch else {
            return false;
        };
        let Some(entry) = self.lru(kind).peek_mut(key) else {
            return false;
        };
        if now.saturating_duration_since(entry.last_seen) > prefetch.window {
            entry.hits = 1;
        } else {
            entry.hits = entry.hits.saturating_add(1);
        }
        entry.last_seen = now;
        let threshold = (u64::from(prefetch.percentage) * u64::from(entry.ttl)).div_ceil(100);
        let due = entry.hits >= prefetch.amount && entry.ttl_left(now) <= threshold as i64;
        due && !entry.refreshing
    }

    /// Whether an expired entry may be refreshed now (not already refreshing, not within a
    /// failed refresh's recheck period); if so it is marked as refreshing.
    pub(crate) fn begin_refresh(&mut self, now: Instant, kind: Kind, key: &Key) -> bool {
        let Some(entry) = self.lru(kind).peek_mut(key) else {
            return false;
        };
        if entry.refreshing || entry.retry_after.is_some_and(|t| now < t) {
            return false;
        }
        entry.refreshing = true;
        true
    }

    /// A refresh of `key` ended; `refreshed` if it stored a new answer.
    pub(crate) fn end_refresh(&mut self, now: Instant, key: &Key, refreshed: bool) {
        let recheck = self
            .settings
            .serve_stale
            .map_or(Duration::ZERO, |s| s.failure_recheck);
        for kind in [Kind::Success, Kind::Denial] {
            if let Some(entry) = self.lru(kind).peek_mut(key) {
                entry.refreshing = false;
                entry.retry_after = (!refreshed && !recheck.is_zero()).then(|| now + recheck);
            }
        }
    }

    /// How long CoreDNS caches `answer` (its TTL for every record of the reply), and its
    /// class. An answer missing a cluster (an EDE about it) is kept no longer than a SERVFAIL.
    pub(crate) fn duration(&self, answer: &Answer, qtype: Rtype, partial: bool) -> (u32, Class) {
        let class = classify(answer, qtype);
        let s = &self.settings;
        let servfail = s.servfail.as_secs().min(u64::from(u32::MAX)) as u32;
        let ttl = match class {
            Class::NameError | Class::NoData => clamp(
                minimal_ttl(answer, class, s.denial.max_ttl),
                s.denial.min_ttl,
                s.denial.max_ttl,
            ),
            Class::ServerError => servfail,
            _ => clamp(
                minimal_ttl(answer, class, s.success.max_ttl),
                s.success.min_ttl,
                s.success.max_ttl,
            ),
        };
        (if partial { ttl.min(servfail) } else { ttl }, class)
    }

    /// Stores `answer` (whose records already carry `ttl`) as the reply to `key` at `now`,
    /// if CoreDNS would. A fresher answer replaces whatever the other cache held for the key.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn store(
        &mut self,
        now: Instant,
        key: Key,
        answer: &Answer,
        ede: &[Ede],
        ra: bool,
        ttl: u32,
        class: Class,
    ) -> Stored {
        let mut stored = Stored::default();
        if ttl == 0 || !cacheable(answer, class, &key.qname, key.qtype) {
            return stored;
        }
        let (kind, except) = match class {
            Class::NoError | Class::Delegation => (Kind::Success, &self.settings.disable_success),
            _ => (Kind::Denial, &self.settings.disable_denial),
        };
        if except.iter().any(|z| key.qname.is_at_or_below(z)) {
            return stored;
        }
        let Some([a, auth, add]) = compact([&answer.answer, &answer.authority, &answer.additional])
        else {
            stored.dropped = true;
            return stored;
        };
        // Popularity carries over to the new entry, as CoreDNS's prefetch keeps `freq`.
        let previous = self.lru(kind).peek_mut(&key).map(|e| (e.last_seen, e.hits));
        let (last_seen, hits) = previous.unwrap_or((now, 0));
        let entry = Entry {
            answer: Answer {
                rcode: answer.rcode,
                aa: answer.aa,
                answer: a,
                authority: auth,
                additional: add,
                sources: answer.sources.clone(),
            },
            ede: ede.to_vec(),
            ra,
            qname: key.qname.clone(),
            stored: now,
            ttl,
            last_seen,
            hits,
            refreshing: false,
            retry_after: None,
        };
        // A fresher answer replaces what the other cache held, but a SERVFAIL never pushes
        // out a positive answer (the lookup prefers that over it while it lasts).
        if class != Class::ServerError {
            let other = match kind {
                Kind::Success => Kind::Denial,
                Kind::Denial => Kind::Success,
            };
            self.lru(other).remove(&key);
        }
        stored.evicted = self.lru(kind).insert(key, entry).is_some();
        stored.kind = Some(kind);
        stored
    }
}

fn clamp(ttl: u32, min: u32, max: u32) -> u32 {
    ttl.max(min).min(max)
}

/// CoreDNS's `response.Typify` for our replies.
pub(crate) fn classify(answer: &Answer, qtype: Rtype) -> Class {
    if qtype == Rtype::AXFR || qtype == Rtype::IXFR {
        return Class::Meta;
    }
    let rcode = answer.rcode;
    let has = |rtype: Rtype| answer.authority.iter().any(|r| r.rtype() == rtype);
    if !answer.answer.is_empty() && rcode == Rcode::NOERROR {
        return Class::NoError;
    }
    if !answer.answer.is_empty() && rcode == Rcode::NXDOMAIN {
        return Class::OtherError;
    }
    if has(Rtype::SOA) && rcode == Rcode::NOERROR {
        return Class::NoData;
    }
    if rcode == Rcode::NXDOMAIN {
        return Class::NameError;
    }
    if rcode == Rcode::SERVFAIL || rcode == Rcode::NOTIMP {
        return Class::ServerError;
    }
    if has(Rtype::NS) && rcode == Rcode::NOERROR {
        return Class::Delegation;
    }
    if rcode == Rcode::NOERROR {
        return Class::NoError;
    }
    Class::OtherError
}

/// CoreDNS's `key`: whether a reply of `class` may be cached at all. A negative answer needs
/// an SOA to bound it, and a NOERROR whose answer does not reach the question without one is
/// an SOA-less NODATA (RFC 2308 §5).
fn cacheable(answer: &Answer, class: Class, qname: &Name, qtype: u16) -> bool {
    let soa = answer.authority.iter().any(|r| r.rtype() == Rtype::SOA);
    match class {
        Class::Meta | Class::OtherError => false,
        Class::NameError => soa,
        Class::NoError => soa || answers_question(&answer.answer, qname, Rtype::from_int(qtype)),
        _ => true,
    }
}

/// True if `records` answer `qname`/`qtype`, following CNAMEs from the question name (an
/// empty answer counts as answering: its data may be elsewhere).
fn answers_question(records: &[Record], qname: &Name, qtype: Rtype) -> bool {
    if records.is_empty() {
        return true;
    }
    if qtype == Rtype::ANY {
        return records.iter().any(|r| r.owner() == qname);
    }
    let cname_of = |owner: &Name| -> Result<Option<Name>, ()> {
        let mut target: Option<Name> = None;
        for r in records
            .iter()
            .filter(|r| r.rtype() == Rtype::CNAME && r.owner() == owner)
        {
            let t = r.cname_target();
            match (&target, t) {
                (Some(a), Some(b)) if *a != b => return Err(()),
                (None, t) => target = t,
                _ => {}
            }
        }
        Ok(target)
    };
    if qtype == Rtype::CNAME {
        return matches!(cname_of(qname), Ok(Some(_)));
    }
    let mut name = qname.clone();
    let mut seen: Vec<Name> = Vec::new();
    loop {
        if seen.contains(&name) {
            return false;
        }
        seen.push(name.clone());
        match cname_of(&name) {
            Err(()) => return false,
            Ok(Some(next)) => name = next,
            Ok(None) => break,
        }
    }
    records
        .iter()
        .any(|r| r.rtype() == qtype && *r.owner() == name)
}

/// CoreDNS's `MinimalTTLWithMaximum`: the smallest TTL of the reply's records, at most
/// `max`; 5 s for other kinds of replies and for replies with no records.
fn minimal_ttl(answer: &Answer, class: Class, max: u32) -> u32 {
    const MINIMAL_DEFAULT: u32 = 5;
    if !matches!(class, Class::NoError | Class::NameError | Class::NoData) {
        return MINIMAL_DEFAULT;
    }
    let all = answer
        .answer
        .iter()
        .chain(&answer.authority)
        .chain(&answer.additional);
    if answer.answer.is_empty() && answer.authority.is_empty() && answer.additional.is_empty() {
        return MINIMAL_DEFAULT;
    }
    all.map(Record::ttl).fold(max, u32::min)
}
