//! The part of a runtime's run loop that is the same whatever the sockets: draining the
//! gateway's output within a budget, and deciding when the timer must be re-armed. Both
//! binaries call [`drain`] after every input and keep their single timer with a [`Deadline`];
//! only moving bytes and sleeping are theirs.

use std::time::Instant;

use crate::event::Event;
use crate::gateway::Gateway;
use crate::transmit::{AttemptId, ConnectionCommand, Transmit, UpstreamFailure};

/// Transmits sent per drain before the rest is left for later, so that one burst of replies
/// cannot starve the sockets (firezone's `MAX_EVENTLOOP_ITERS`).
pub const TRANSMIT_BUDGET: usize = 256;

/// Events handed out per drain; the rest waits for the next drain.
pub const EVENT_BUDGET: usize = 256;

/// Rounds of "report send failures, drain again" per drain; each round is itself budgeted.
const FAILURE_ROUNDS: usize = 4;

/// Where a drain's output goes: the runtime's sockets and log.
pub trait Outputs {
    /// Hands one transmit to its socket without waiting (anything that would wait becomes a
    /// bounded background send). An upstream send that fails at once returns the attempt
    /// and why, which the gateway then hears of.
    fn transmit(&mut self, transmit: Transmit) -> Result<(), (AttemptId, UpstreamFailure)>;

    /// Opens or closes an upstream TCP connection without waiting; what becomes of it is
    /// reported later with the gateway's `handle_connection_*` inputs.
    fn connection(&mut self, command: ConnectionCommand);

    /// Logs or forwards one event.
    fn event(&mut self, event: Event);
}

/// Sends what the gateway wants sent and hands out its events, within the budgets. Events go
/// first: an upstream health verdict then leaves (for a runtime's sibling gateways) before
/// the reply that follows it reaches its client. Connection commands (a few per connection's
/// life, so outside the budgets) go before the transmits. Send failures are reported to the gateway
/// at `now` (the time of this wake), which may queue more: a few rounds of that. Returns
/// `true` when output was left behind, which the runtime must drain soon from its own task
/// rather than wait for the next input.
pub fn drain(gateway: &mut Gateway, now: Instant, outputs: &mut impl Outputs) -> bool {
    let mut transmits = TRANSMIT_BUDGET;
    let mut events = EVENT_BUDGET;
    for _ in 0..FAILURE_ROUNDS {
        while events > 0 {
            let Some(event) = gateway.poll_event() else {
                break;
            };
            events -= 1;
            outputs.event(event);
        }
        while let Some(command) = gateway.poll_connection() {
            outputs.connection(command);
        }
        let mut failures = Vec::new();
        while transmits > 0 {
            let Some(transmit) = gateway.poll_transmit() else {
                break;
            };
            transmits -= 1;
            if let Err(failure) = outputs.transmit(transmit) {
                failures.push(failure);
            }
        }
        if failures.is_empty() {
            return transmits == 0 || events == 0;
        }
        for (attempt, failure) in failures {
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
    #[allow(clippy::disallowed_methods)] // any epoch will do for a test
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
