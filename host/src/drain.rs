//! The one drain loop: after every input, everything the gateway has to say goes out —
//! events first, then connection commands, then transmits — within a budget, and the
//! sub-queries that could not be sent go back in as failures. The driver supplies the
//! [`Outputs`] (sockets, log); only moving bytes and sleeping are the runtime's.

use std::time::Instant;

use gatherdns_core::{AttemptId, ConnectionCommand, Event, Gateway, Transmit, UpstreamFailure};

/// Transmits sent per drain before the rest is left for later, so that one burst of replies
/// cannot starve the sockets (firezone's `MAX_EVENTLOOP_ITERS`).
pub const TRANSMIT_BUDGET: usize = 256;

/// Events handed out per drain; the rest waits for the next drain.
pub const EVENT_BUDGET: usize = 256;

/// Rounds of "send, report what could not be sent, drain again" per drain; each is budgeted.
const ROUNDS: usize = 4;

/// Where a drain's output goes: the runtime's sockets and the log.
pub trait Outputs {
    /// Logs or forwards one event.
    fn event(&mut self, event: Event);

    /// Opens or closes an upstream TCP connection.
    fn connection(&mut self, command: ConnectionCommand);

    /// Takes one transmit, without waiting: UDP datagrams wait in an outbox for `flush`.
    fn transmit(&mut self, transmit: Transmit);

    /// Sends what `transmit` queued (a batch per socket) and appends the sub-queries that
    /// could not be sent at all.
    fn flush(&mut self, failed: &mut Vec<(AttemptId, UpstreamFailure)>);
}

/// Drains the gateway into `outputs` (see the module documentation); send failures are
/// reported at `now`, the time of this wake. Returns `true` when output was left behind,
/// which the driver must drain soon from its own task rather than wait for the next input.
pub fn drain(gateway: &mut Gateway, now: Instant, outputs: &mut impl Outputs) -> bool {
    let mut transmits = TRANSMIT_BUDGET;
    let mut events = EVENT_BUDGET;
    let mut failed = Vec::new();
    for _ in 0..ROUNDS {
        // Events first: an upstream health verdict then leaves (for a runtime's sibling
        // gateways) before the reply that follows it reaches its client.
        while events > 0 {
            let Some(event) = gateway.poll_event() else {
                break;
            };
            events -= 1;
            outputs.event(event);
        }
        // A connection is opened before anything is written on it (the gateway writes only
        // on connections it was told are open), and the pool bounds how many there are.
        while let Some(command) = gateway.poll_connection() {
            outputs.connection(command);
        }
        while transmits > 0 {
            let Some(transmit) = gateway.poll_transmit() else {
                break;
            };
            transmits -= 1;
            outputs.transmit(transmit);
        }
        outputs.flush(&mut failed);
        if failed.is_empty() {
            return transmits == 0 || events == 0;
        }
        for (attempt, failure) in failed.drain(..) {
            gateway.handle_upstream_failure(now, attempt, failure);
        }
    }
    // The last round's failures produced output that nobody has drained yet.
    true
}

/// The deadline a runtime's timer sleeps towards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// When the timer should fire, if at all.
    pub fn at(self) -> Option<Instant> {
        self.0
    }

    /// Takes the gateway's new [`Gateway::poll_timeout`]. Returns `true` when the sleeper
    /// must be woken to sleep towards it: only when it is earlier than the one it sleeps
    /// towards (a later one costs one early, harmless `handle_timeout`).
    pub fn rearm(&mut self, next: Option<Instant>) -> bool {
        let earlier = match (next, self.0) {
            (Some(new), Some(old)) => new < old,
            (Some(_), None) => true,
            (None, _) => false,
        };
        self.0 = next;
        earlier
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_an_earlier_deadline_wakes_the_sleeper() {
        let t = Instant::now();
        let mut d = Deadline::default();
        assert!(!d.rearm(None));
        assert!(d.rearm(Some(t + Duration::from_secs(2))));
        assert!(!d.rearm(Some(t + Duration::from_secs(3))), "later: no wake");
        assert!(d.rearm(Some(t + Duration::from_secs(1))), "earlier: wake");
        assert!(!d.rearm(None));
        assert_eq!(d.at(), None);
    }
}
