//! The gateway's single timer and the driver's "pump": one task that sleeps until the core's
//! next deadline, or until it is kicked to finish a drain that ran out of budget.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;
use gatherdns_core::drive::Deadline;
use smol::channel::{self, Receiver, Sender};
use smol::Timer;

use crate::driver::Driver;

/// The deadline the pump sleeps towards, and the means to wake it earlier.
pub(crate) struct Alarm {
    armed: Cell<Deadline>,
    kick_tx: Sender<()>,
    kick_rx: Receiver<()>,
}

impl Alarm {
    pub(crate) fn new() -> Alarm {
        // One slot is enough: a kick only says "look again", and looking once covers many.
        let (kick_tx, kick_rx) = channel::bounded(1);
        Alarm {
            armed: Cell::new(Deadline::default()),
            kick_tx,
            kick_rx,
        }
    }

    /// Sets the deadline from `poll_timeout`. The pump is only woken when the new deadline
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

    /// Asks the pump to run a drain soon, from its own task.
    pub(crate) fn kick(&self) {
        // A full slot means a kick is already pending; a closed one cannot happen while the
        // alarm (which holds both ends) lives.
        let _ = self.kick_tx.try_send(());
    }
}

/// The pump task: calls `handle_timeout` when the deadline passes and continues drains that
/// were cut short, one `handle_*` call per wake.
pub(crate) async fn pump(driver: Rc<Driver>) {
    loop {
        let deadline = driver.alarm().armed.get().at();
        let kicked = driver.alarm().kick_rx.recv();
        let fired = match deadline {
            Some(at) => {
                future::or(
                    async {
                        Timer::at(at).await;
                        true
                    },
                    async {
                        let _ = kicked.await;
                        false
                    },
                )
                .await
            }
            None => {
                let _ = kicked.await;
                false
            }
        };
        let now = Instant::now();
        if fired || deadline.is_some_and(|at| at <= now) {
            driver.handle(|gateway, now| gateway.handle_timeout(now));
        } else {
            driver.drain();
        }
        // Let the sockets run between rounds, so that a long backlog is drained in slices.
        future::yield_now().await;
    }
}

/// Waits `duration`; for races against I/O (`future::or(io, sleep(d))`).
pub(crate) async fn sleep(duration: Duration) {
    Timer::after(duration).await;
}
