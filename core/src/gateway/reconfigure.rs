//! Taking a new configuration while serving (a reload): the new server blocks and pools are
//! built and checked in full before anything changes, then new queries use them while queries
//! in flight finish under the configuration they started with, which is dropped after them.

use std::time::Instant;

use super::Gateway;
use crate::block::Block;
use crate::config::Config;
use crate::error::ConfigError;
use crate::timers::TimerKey;

impl Gateway {
    /// Replaces the configuration. On `Err` (the same errors [`Gateway::new`] reports) nothing
    /// has changed. On `Ok`, queries from now on are routed and answered by `config`; queries
    /// in flight finish under the configuration they started with, whose blocks and pools are
    /// dropped once the last of them ends. [`Gateway::listeners`] and
    /// [`Gateway::listener_ids`] give the new listeners; an address that stays keeps its
    /// [`crate::ListenerId`]. An upstream that stays in a `forward` of the same zone keeps its
    /// health (down stays down, and is probed by the new pool).
    pub fn reconfigure(&mut self, now: Instant, config: Config) -> Result<(), ConfigError> {
        // The generation number doubles as the serial of synthesised SOA records, so that a
        // new configuration is visible as a new zone version.
        let serial = self.blocks.current_gen() + 1;
        let mut pools = Vec::new();
        let seed = self.pending.hash_seed.rotate_left(serial % 64);
        let mut blocks = config
            .servers
            .iter()
            .map(|b| Block::new(b, serial, &mut pools, seed))
            .collect::<Result<Vec<_>, _>>()?;
        // Nothing below can fail.
        self.attach_kubernetes_views(&mut blocks);
        self.carry_stale_parts(&mut blocks);
        for pool in &mut pools {
            if let Some(old) = self.pools.current().iter().find(|p| p.from == pool.from) {
                pool.inherit_health(old);
            }
        }
        self.router = self.router.successor(&config.servers);
        self.blocks.install(blocks);
        self.pools.install(pools);
        self.max_inflight = config.max_inflight;
        for (index, pool) in self.pools.current().iter().enumerate() {
            for (upstream, u) in pool.upstreams.iter().enumerate() {
                if u.down {
                    let key = TimerKey::Probe {
                        pool: self.pools.at(index),
                        upstream,
                    };
                    self.timers.insert(now + pool.health_check.interval, key);
                }
            }
        }
        // CoreDNS starts its plugins again on a reload: so does the loop check.
        self.handle_start(now);
        self.release_retired();
        Ok(())
    }

    /// Configurations kept besides the one in force, for queries started under them.
    pub fn retired_configurations(&self) -> usize {
        self.blocks.retired()
    }

    /// Drops the retired configurations that no query or attempt refers to any more. Called
    /// at the end of every input that can end one.
    pub(super) fn release_retired(&mut self) {
        if self.blocks.retired() == 0 && self.pools.retired() == 0 {
            return;
        }
        let pending = &self.pending;
        self.blocks.release(|gen| pending.holds(gen));
        self.pools.release(|gen| pending.holds(gen));
    }
}
