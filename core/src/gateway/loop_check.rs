//! The `loop` plugin on the gateway: at startup (and after a reload) each block with `loop`
//! sends its probe to its own listening address as a datagram of the gateway's own, counts
//! the probe each time it comes in as a query, and reports a third sighting as a fatal
//! event, which the server turns into exit status 1 as CoreDNS's `log.Fatal` does.

use std::net::SocketAddr;
use std::time::Instant;

use super::Gateway;
use crate::event::Event;
use crate::generation::Ref;
use crate::loop_detect::{State, PROBE_TIMEOUT};
use crate::timers::TimerKey;
use crate::transmit::{AttemptId, ClientAddr, Destination, Transmit};
use crate::wire::{write_query, ClientQuery, Rtype, SubQuery, EDNS_UDP_SIZE};

impl Gateway {
    /// The server is up and its listeners are bound: starts what CoreDNS starts at startup,
    /// the `loop` plugin's probes. Drain the outputs after it, as after any input.
    pub fn handle_start(&mut self, now: Instant) {
        let gen = self.blocks.current_gen();
        for index in 0..self.blocks.current().len() {
            self.start_loop_check(now, Ref { gen, index });
        }
    }

    /// Starts the loop check of `block`, if it has one that has not started.
    pub(super) fn start_loop_check(&mut self, now: Instant, block: Ref) {
        let mut random =
            || u64::from(self.pending.random()) << 32 | u64::from(self.pending.random());
        let (a, b) = (random(), random());
        let Some(check) = self.blocks[block].loop_check.as_mut() else {
            return;
        };
        if check.state != State::Idle {
            return;
        }
        if check.start(now, a, b).is_err() {
            // A zone too long for two more labels: nothing can be probed.
            check.state = State::Off;
            return;
        }
        self.send_loop_probe(now, block);
    }

    fn send_loop_probe(&mut self, now: Instant, block: Ref) {
        let attempt = self.pending.fresh_attempt_id();
        let dns_id = self.pending.random() as u16;
        let Some(check) = self.blocks[block].loop_check.as_mut() else {
            return;
        };
        let Some(qname) = check.qname.clone() else {
            return;
        };
        let until = now + PROBE_TIMEOUT;
        check.state = State::Waiting {
            attempt,
            dns_id,
            until,
        };
        let target = check.target;
        self.scratch.reserve(512);
        let probe = SubQuery {
            id: dns_id,
            qname: &qname,
            qtype: Rtype::HINFO,
            rd: true,
            cd: false,
            dnssec_ok: false,
            udp_size: EDNS_UDP_SIZE,
        };
        let payload = write_query(&mut self.scratch, &probe);
        self.transmits.push_back(Transmit {
            destination: Destination::Upstream {
                attempt,
                addr: target,
                socket: self.pending.udp_socket(),
            },
            payload,
        });
        self.timers.insert(until, TimerKey::Loop(block));
    }

    /// A query entered `block`: if it is the block's loop probe, it is counted, and a third
    /// sighting stops the server.
    pub(super) fn observe_loop(&mut self, client: &ClientAddr, query: &ClientQuery, block: Ref) {
        if query.qtype != Rtype::HINFO {
            return;
        }
        let Some(check) = self.blocks[block].loop_check.as_mut() else {
            return;
        };
        let Some(seen) = check.sighting(&query.qname) else {
            return;
        };
        if seen > 2 {
            check.state = State::Off;
            let message = format!(
                "Loop ({} -> {}) detected for zone {:?}, see https://coredns.io/plugins/loop#troubleshooting. Query: \"HINFO {}\"",
                client.remote,
                check.shown,
                check.zone.to_string(),
                query.qname
            );
            self.events.push_back(Event::Fatal {
                plugin: "loop",
                message,
            });
        }
    }

    /// A datagram that matched no attempt: `true` if it is the reply to a loop probe, which
    /// ends that block's check (the probe went out and came back without looping).
    pub(super) fn loop_reply(&mut self, from: SocketAddr, id: u16) -> bool {
        for block in self.blocks.current_mut() {
            let Some(check) = block.loop_check.as_mut() else {
                continue;
            };
            if let State::Waiting { dns_id, .. } = check.state {
                if dns_id == id && check.target == from {
                    check.state = State::Off;
                    return true;
                }
            }
        }
        false
    }

    /// The driver could not send a datagram that is no sub-query: `true` if it was a loop
    /// probe, which is tried again after a pause.
    pub(super) fn loop_failure(&mut self, now: Instant, attempt: AttemptId) -> bool {
        let gen = self.blocks.current_gen();
        for index in 0..self.blocks.current().len() {
            let block = Ref { gen, index };
            let Some(check) = self.blocks[block].loop_check.as_mut() else {
                continue;
            };
            if matches!(check.state, State::Waiting { attempt: a, .. } if a == attempt) {
                check.failed(now);
                if let State::Pausing { until } = check.state {
                    self.timers.insert(until, TimerKey::Loop(block));
                }
                return true;
            }
        }
        false
    }

    /// The loop check timer of `block`: a probe without a reply failed, or a pause is over.
    pub(super) fn loop_timer(&mut self, now: Instant, block: Ref) {
        let Some(check) = self
            .blocks
            .get_mut(block)
            .and_then(|b| b.loop_check.as_mut())
        else {
            return;
        };
        match check.state {
            State::Waiting { until, .. } if now >= until => {
                check.failed(now);
                if let State::Pausing { until } = check.state {
                    self.timers.insert(until, TimerKey::Loop(block));
                }
            }
            State::Pausing { until } if now >= until => self.send_loop_probe(now, block),
            _ => {}
        }
    }

    /// True while `block`'s loop check waits for a timer.
    pub(super) fn loop_timer_live(&self, block: Ref) -> bool {
        self.blocks
            .get(block)
            .and_then(|b| b.loop_check.as_ref())
            .is_some_and(|c| matches!(c.state, State::Waiting { .. } | State::Pausing { .. }))
    }
}
