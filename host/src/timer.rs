//! The gateway's single timer and the driver's "pump": one task that sleeps until the core's
//! next deadline, or until it is kicked to finish a drain that ran out of budget. A runtime
//! with a heartbeat also wakes at least that often (see [`Runtime::HEARTBEAT`]).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use async_channel::{Receiver, Sender};
use futures_lite::future;

use crate::drain::Deadline;
use crate::driver::Driver;
use crate::runtime::Runtime;

/// The deadline the pump sleeps towards, and the means to wake it earlier.
pub(crate) struct Alarm {
    armed: Cell<Deadline>,
    kick_tx: Sender<()>,
    kick_rx: Receiver<()>,
}

impl Alarm {
    pub(crate) fn new() -> Alarm {
        // One slot is enough: a kick only says "look again", and looking once covers many.
        let (kick_tx, kick_rx) = async_channel::bounded(1);
        Alarm {
            armed: Cell::new(Deadline::default()),
            kick_tx,
            kick_rx,
        }
    }

    /// Sets the deadline from `poll_timeout`. The pump is woken only when the new deadline
    /// is earlier than the one it sleeps towards; a later one makes it wake early once, and
    /// an early `handle_timeout` is harmless.
    pub(crate) fn rearm(&self, deadline: Option<Instant>) {
        let mut armed = self.armed.get();
        let earlier = armed.rearm(deadline);
        self.armed.set(armed);
        if earlier {
            self.kick();
        }
    }

    /// Asks the pump to run a drain soon, from its own task. A full slot means a kick is
    /// already pending; the alarm holds both ends, so the channel never closes.
    pub(crate) fn kick(&self) {
        let _ = self.kick_tx.try_send(());
    }
}

/// The pump task: calls `handle_timeout` when the deadline passes and continues drains that
/// were cut short, one `handle_*` call per wake.
pub(crate) async fn pump<R: Runtime>(driver: Rc<Driver<R>>) {
    loop {
        let deadline = driver.alarm().armed.get().at();
        let wake = match (deadline, R::HEARTBEAT) {
            (Some(at), Some(beat)) => Some(at.min(Instant::now() + beat)),
            (Some(at), None) => Some(at),
            (None, Some(beat)) => Some(Instant::now() + beat),
            (None, None) => None,
        };
        let kicked = async {
            let _ = driver.alarm().kick_rx.recv().await;
            true
        };
        let kicked = match wake {
            Some(at) => {
                let timer = async {
                    R::sleep_until(at).await;
                    false
                };
                future::or(kicked, timer).await
            }
            None => kicked.await,
        };
        if deadline.is_some_and(|at| at <= Instant::now()) {
            driver.handle(|gateway, now| gateway.handle_timeout(now));
        } else if kicked {
            driver.drain();
        } else {
            // A heartbeat: the wake-up itself was the point.
            continue;
        }
        // Let the sockets run between rounds, so that a long backlog is drained in slices.
        R::yield_now().await;
    }
}
