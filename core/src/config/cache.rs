//! What `cache` and gathersrv's answer options say, as plain validated data (re-exported by
//! [`crate::config`]); the Corefile parsers fill them in, the gateway compiles them.

use std::time::Duration;

use super::Location;
use crate::wire::Name;

/// CoreDNS's cache defaults (`plugin/cache/cache.go`, `plugin/pkg/dnsutil/ttl.go`).
pub mod cache_defaults {
    use std::time::Duration;
    /// Entries of each cache before CoreDNS's rounding to 256 shards.
    pub const CAPACITY: usize = 10_000;
    /// Shards of CoreDNS's cache: capacities are whole shards of at least 4 entries.
    pub const SHARDS: usize = 256;
    /// The longest a positive answer is cached, seconds.
    pub const SUCCESS_MAX_TTL: u32 = 3600;
    /// The longest a denial is cached, seconds.
    pub const DENIAL_MAX_TTL: u32 = 1800;
    /// The shortest anything is cached, seconds.
    pub const MIN_TTL: u32 = 5;
    /// How long a SERVFAIL is cached.
    pub const SERVFAIL: Duration = Duration::from_secs(5);
    /// The longest `servfail` may say (RFC 2308 §7.1).
    pub const SERVFAIL_MAX: Duration = Duration::from_secs(300);
    /// `prefetch`'s window between queries that keeps an entry popular.
    pub const PREFETCH_WINDOW: Duration = Duration::from_secs(60);
    /// `prefetch`'s share of the TTL left when it fetches again.
    pub const PREFETCH_PERCENTAGE: u8 = 10;
    /// `serve_stale`'s longest age past expiry.
    pub const STALE_UP_TO: Duration = Duration::from_secs(3600);
    /// The longest `serve_stale`'s failure recheck may be.
    pub const STALE_RECHECK_MAX: Duration = Duration::from_secs(300);
}

/// `cache [TTL] [ZONES…] { … }`: CoreDNS's cache in front of a server block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cache {
    /// Names at or below these are cached (default: the block's zones).
    pub zones: Vec<Name>,
    /// Positive answers and referrals.
    pub success: CacheKind,
    /// NXDOMAIN, NODATA and SERVFAIL.
    pub denial: CacheKind,
    /// `prefetch AMOUNT [[DURATION] [PERCENTAGE%]]`.
    pub prefetch: Option<Prefetch>,
    /// `serve_stale [DURATION] [immediate|verify …]`.
    pub serve_stale: Option<ServeStale>,
    /// `servfail DURATION`: how long a SERVFAIL is cached (zero: not at all).
    pub servfail: Duration,
    /// `disable success [ZONES…]`: positive answers for names at or below these are not cached.
    pub disable_success: Vec<Name>,
    /// `disable denial [ZONES…]`.
    pub disable_denial: Vec<Name>,
    /// `keepttl`: answers from the cache carry the TTL they were stored with.
    pub keepttl: bool,
    /// Where the directive is.
    pub location: Location,
}

/// The settings of one of the two caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheKind {
    /// Entries kept at most (CoreDNS's rounding to whole shards applied).
    pub capacity: usize,
    /// The longest an entry is kept, seconds.
    pub max_ttl: u32,
    /// The shortest an entry is kept, seconds.
    pub min_ttl: u32,
}

/// `prefetch AMOUNT [[DURATION] [PERCENTAGE%]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefetch {
    /// Queries without a gap of `window` that make an entry popular.
    pub amount: u32,
    /// The longest gap between two queries of a popular entry.
    pub window: Duration,
    /// A popular entry is fetched again once its TTL falls to this share of the original.
    pub percentage: u8,
}

/// `serve_stale [DURATION] [immediate [RESPONSE_TTL [FAILURE_RECHECK]] | verify [0 [RESPONSE_TTL [FAILURE_RECHECK]]]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeStale {
    /// How long past its expiry an entry may still be served.
    pub up_to: Duration,
    /// `verify`: ask again first and serve the expired entry only if that fails;
    /// `immediate` (false): serve it at once and refresh it in the background.
    pub verify: bool,
    /// The TTL of answers served from expired entries (CoreDNS's default 0).
    pub response_ttl: u32,
    /// After a failed refresh, expired entries are served without asking again for this long.
    pub failure_recheck: Duration,
}

/// The answer options of a `gathersrv` block: which clusters' records a reply holds, SRV
/// priorities by cluster, and stale parts for clusters that do not answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AnswerOptions {
    /// `policy union|prefer PREFIX…|first_positive`.
    pub policy: AnswerPolicy,
    /// `srv_priority PREFIX N`: added to the priority of that cluster's SRV records.
    pub srv_priority: Vec<(String, u16)>,
    /// `serve_stale DURATION [CAPACITY]`.
    pub stale_parts: Option<StaleParts>,
}

/// Which clusters' records make up a gathered reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AnswerPolicy {
    /// Every cluster's (gathersrv's behaviour).
    #[default]
    Union,
    /// Only the listed clusters' (by prefix) when one of them answers positively; otherwise
    /// the others'.
    Prefer(Vec<String>),
    /// The first cluster to answer positively, alone.
    FirstPositive,
}

/// `serve_stale DURATION [CAPACITY]` of gathersrv: each cluster's last complete part of each
/// answer, served for a cluster that does not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaleParts {
    /// How long a part is kept after it was received.
    pub max_age: Duration,
    /// Parts kept at most; the least recently used goes first.
    pub capacity: usize,
}

/// Defaults of gathersrv's `serve_stale`.
pub mod stale_defaults {
    /// Parts kept at most.
    pub const CAPACITY: usize = 4096;
    /// The TTL of a stale part's records (RFC 8767 §4).
    pub const TTL: u32 = 30;
}
