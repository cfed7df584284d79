//! Upstream pools: the servers of one `forward`, which of them to try (policy), and their
//! health — an upstream that fails `max_fails` times in a row is down, skipped at once, and
//! probed every `health_check` until it answers again.

use std::net::SocketAddr;
use std::time::Duration;

use crate::concurrency::SharedCount;
use crate::config::{Forward, HealthCheck, Policy};
use crate::wire::Name;

pub(crate) struct Upstream {
    pub(crate) addr: SocketAddr,
    /// Failures since the last success.
    fails: u32,
    pub(crate) down: bool,
    /// Marked down on a sibling gateway's verdict: coming back is then news for that
    /// sibling to tell (it probes too), not for this gateway's log.
    down_by_verdict: bool,
}

/// What a health update changed, for the log.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HealthChange {
    None,
    WentDown,
    CameBack,
}

pub(crate) struct Pool {
    pub(crate) from: Name,
    pub(crate) upstreams: Vec<Upstream>,
    pub(crate) force_tcp: bool,
    pub(crate) prefer_udp: bool,
    policy: Policy,
    max_fails: u32,
    pub(crate) health_check: HealthCheck,
    max_concurrent: Option<u32>,
    /// `max_concurrent`'s count, shared with the other executors' gateways.
    shared: SharedCount,
    /// Attempts of client queries in flight through this pool, in this gateway.
    pub(crate) in_flight: u32,
    cursor: usize,
}

impl Pool {
    pub(crate) fn new(f: &Forward) -> Pool {
        Pool {
            from: f.from.clone(),
            upstreams: f
                .to
                .iter()
                .map(|addr| Upstream {
                    addr: *addr,
                    fails: 0,
                    down: false,
                    down_by_verdict: false,
                })
                .collect(),
            force_tcp: f.force_tcp,
            prefer_udp: f.prefer_udp,
            policy: f.policy,
            max_fails: f.max_fails,
            health_check: f.health_check.clone(),
            max_concurrent: f.max_concurrent,
            shared: f.in_flight.clone(),
            in_flight: 0,
            cursor: 0,
        }
    }

    /// Takes a place for an attempt of a client query — first attempt, retry or TCP retry
    /// alike: false when `max_concurrent` places are taken, counting every executor's
    /// gateway. Health probes take none, as CoreDNS's health checks bypass its limit.
    pub(crate) fn acquire(&mut self) -> bool {
        if let Some(max) = self.max_concurrent {
            if !self.shared.try_acquire(max) {
                return false;
            }
        }
        self.in_flight += 1;
        true
    }

    /// Gives back the place of an attempt that ended.
    pub(crate) fn release(&mut self) {
        debug_assert!(self.in_flight > 0, "released more places than acquired");
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.max_concurrent.is_some() {
            self.shared.release();
        }
    }

    /// The upstream for a first attempt: by policy among the healthy ones, `None` when all
    /// are down. `random` is a fresh random number from the gateway's generator.
    pub(crate) fn first(&mut self, random: u32) -> Option<usize> {
        let n = self.upstreams.len();
        let start = match self.policy {
            Policy::Sequential => 0,
            Policy::RoundRobin => {
                self.cursor = (self.cursor + 1) % n;
                self.cursor
            }
            Policy::Random => random as usize % n,
        };
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| !self.upstreams[i].down)
    }

    /// The upstream for a retry after `previous`: the next healthy one in list order,
    /// `previous` itself if it is the only healthy one, else the next one at all.
    pub(crate) fn after(&self, previous: usize) -> usize {
        let n = self.upstreams.len();
        (1..=n)
            .map(|i| (previous + i) % n)
            .find(|&i| !self.upstreams[i].down)
            .unwrap_or((previous + 1) % n)
    }

    pub(crate) fn record_success(&mut self, index: usize) -> HealthChange {
        let u = &mut self.upstreams[index];
        u.fails = 0;
        if u.down {
            u.down = false;
            if !std::mem::take(&mut u.down_by_verdict) {
                return HealthChange::CameBack;
            }
        }
        HealthChange::None
    }

    /// Takes over what `old` (the pool of the same forward in the previous configuration)
    /// learnt about the upstreams both have: failure counts, and down marks where this pool
    /// can mark down at all (else nothing would bring the upstream back).
    pub(crate) fn inherit_health(&mut self, old: &Pool) {
        // The old configuration's attempts still hold places and give them back to the old
        // count: counting on in it keeps `max_concurrent` across a reload.
        if self.max_concurrent.is_some() && old.max_concurrent.is_some() {
            self.shared = old.shared.clone();
        }
        let can_mark = self.can_mark_down();
        for upstream in &mut self.upstreams {
            if let Some(before) = old.upstreams.iter().find(|u| u.addr == upstream.addr) {
                upstream.fails = before.fails;
                upstream.down = before.down && can_mark;
                upstream.down_by_verdict = before.down_by_verdict && upstream.down;
            }
        }
    }

    fn can_mark_down(&self) -> bool {
        self.max_fails > 0 && self.health_check.interval > Duration::ZERO
    }

    /// Applies a verdict reached elsewhere (another executor's gateway) about `index`: down
    /// as if it had failed `max_fails` times here, or back as if it had answered. A pool that
    /// cannot mark down (no `max_fails` or no probing) ignores a down verdict, as it would
    /// its own failures.
    pub(crate) fn apply_verdict(&mut self, index: usize, healthy: bool) -> HealthChange {
        if healthy {
            return self.record_success(index);
        }
        let can_mark = self.can_mark_down();
        let max_fails = self.max_fails;
        let u = &mut self.upstreams[index];
        if !can_mark || u.down {
            return HealthChange::None;
        }
        u.fails = u.fails.max(max_fails);
        u.down = true;
        u.down_by_verdict = true;
        HealthChange::WentDown
    }

    /// Counts a failure. Marking down needs both `max_fails` and probing: without probes
    /// nothing would ever bring the upstream back.
    pub(crate) fn record_failure(&mut self, index: usize) -> HealthChange {
        let can_mark = self.can_mark_down();
        let max_fails = self.max_fails;
        let u = &mut self.upstreams[index];
        u.fails = u.fails.saturating_add(1);
        if can_mark && !u.down && u.fails >= max_fails {
            u.down = true;
            return HealthChange::WentDown;
        }
        HealthChange::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{defaults, Location};

    fn pool(policy: Policy, n: u8, max_fails: u32) -> Pool {
        Pool::new(&Forward {
            from: Name::root(),
            to: (1..=n)
                .map(|i| SocketAddr::from(([10, 0, 0, i], 53)))
                .collect(),
            force_tcp: false,
            prefer_udp: false,
            policy,
            max_fails,
            health_check: HealthCheck {
                interval: defaults::HEALTH_CHECK,
                recursion_desired: true,
                domain: Name::root(),
            },
            expire: defaults::EXPIRE,
            max_concurrent: Some(2),
            in_flight: SharedCount::default(),
            location: Location::default(),
        })
    }

    #[test]
    fn policies_pick_the_first_upstream() {
        let mut p = pool(Policy::Sequential, 3, 2);
        assert_eq!((p.first(7), p.first(8)), (Some(0), Some(0)));
        let mut p = pool(Policy::RoundRobin, 3, 2);
        assert_eq!(
            [p.first(0), p.first(0), p.first(0)],
            [Some(1), Some(2), Some(0)]
        );
        let mut p = pool(Policy::Random, 3, 2);
        assert_eq!((p.first(4), p.first(5)), (Some(1), Some(2)));
    }

    #[test]
    fn down_upstreams_are_skipped_and_come_back() {
        let mut p = pool(Policy::Sequential, 2, 2);
        assert_eq!(p.record_failure(0), HealthChange::None);
        assert_eq!(p.record_failure(0), HealthChange::WentDown);
        assert_eq!(p.first(0), Some(1));
        assert_eq!(p.after(1), 1, "the only healthy one is retried");
        assert_eq!(p.record_failure(1), HealthChange::None);
        assert_eq!(p.record_failure(1), HealthChange::WentDown);
        assert_eq!(p.first(0), None, "every upstream is down");
        assert_eq!(p.record_success(0), HealthChange::CameBack);
        assert_eq!(p.first(0), Some(0));
    }

    #[test]
    fn success_resets_the_failure_count_and_zero_never_marks_down() {
        let mut p = pool(Policy::Sequential, 1, 2);
        p.record_failure(0);
        p.record_success(0);
        assert_eq!(p.record_failure(0), HealthChange::None);
        let mut p = pool(Policy::Sequential, 1, 0);
        for _ in 0..10 {
            assert_eq!(p.record_failure(0), HealthChange::None);
        }
        assert_eq!(p.first(0), Some(0));
    }

    #[test]
    fn places_follow_max_concurrent_across_clones() {
        // Two executors' pools of one configuration share the limit of 2.
        let (mut a, mut b) = (
            pool(Policy::Sequential, 1, 2),
            pool(Policy::Sequential, 1, 2),
        );
        b.shared = a.shared.clone();
        assert!(a.acquire() && b.acquire());
        assert!(
            !a.acquire() && !b.acquire(),
            "a third place beyond max_concurrent 2"
        );
        assert_eq!((a.in_flight, b.in_flight), (1, 1));
        a.release();
        assert!(b.acquire());
        assert_eq!((a.in_flight, b.in_flight, a.shared.get()), (0, 2, 2));
    }

    #[test]
    fn a_reloaded_pool_counts_on_in_the_old_count() {
        let mut old = pool(Policy::Sequential, 1, 2);
        assert!(old.acquire() && old.acquire());
        let mut new = pool(Policy::Sequential, 1, 2);
        new.inherit_health(&old);
        assert!(!new.acquire(), "the old attempts still hold both places");
        old.release();
        assert!(new.acquire());
    }

    #[test]
    fn without_max_concurrent_nothing_is_shared() {
        let mut p = pool(Policy::Sequential, 1, 2);
        p.max_concurrent = None;
        assert!((0..100).all(|_| p.acquire()));
        assert_eq!((p.in_flight, p.shared.get()), (100, 0));
    }
}
