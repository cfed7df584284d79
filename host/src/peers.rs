//! Health verdicts between executors. Each executor's gateway finds out on its own that an
//! upstream stopped answering (or answers again); left at that, a dead cluster would cost one
//! slow reply per executor. So an executor that reaches a verdict tells the others, and they
//! take it over (`Gateway::handle_upstream_health`) without a slow query of their own.
//! Verdicts are rare (a state change, not a query), so an unbounded channel per executor is
//! enough and the query path never waits on it. An executor takes its verdicts before every
//! input it handles: an idle one needs none, and a busy one has them before the next query.

use std::net::SocketAddr;
use std::time::Instant;

use async_channel::{Receiver, Sender};
use gatherdns_core::Gateway;

/// One executor's verdict about one upstream.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Verdict {
    pub(crate) upstream: SocketAddr,
    pub(crate) healthy: bool,
}

/// One executor's ends: the other executors' inboxes and its own.
pub(crate) struct Peers {
    others: Vec<Sender<Verdict>>,
    inbox: Receiver<Verdict>,
}

impl Peers {
    /// Tells every other executor; one that has stopped is skipped (the process is ending).
    pub(crate) fn tell(&self, verdict: Verdict) {
        for peer in &self.others {
            let _ = peer.try_send(verdict);
        }
    }

    /// Hands the verdicts that arrived to `gateway`, without waiting.
    pub(crate) fn take_verdicts(&self, gateway: &mut Gateway, now: Instant) {
        while let Ok(v) = self.inbox.try_recv() {
            gateway.handle_upstream_health(now, v.upstream, v.healthy);
        }
    }
}

/// The ends of every executor, one `Peers` each.
pub(crate) fn mesh(executors: usize) -> Vec<Peers> {
    let (senders, inboxes): (Vec<_>, Vec<_>) =
        (0..executors).map(|_| async_channel::unbounded()).unzip();
    inboxes
        .into_iter()
        .enumerate()
        .map(|(me, inbox)| {
            let others = senders
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != me)
                .map(|(_, s)| s.clone())
                .collect();
            Peers { others, inbox }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_executor_hears_every_other_but_not_itself() {
        let mesh = mesh(3);
        let verdict = Verdict {
            upstream: "127.0.0.1:53".parse().unwrap(),
            healthy: false,
        };
        mesh[1].tell(verdict);
        assert_eq!(mesh[0].inbox.len(), 1);
        assert_eq!(mesh[1].inbox.len(), 0);
        assert_eq!(mesh[2].inbox.len(), 1);
    }
}
