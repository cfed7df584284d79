//! The gateway's single timer and the executor's "pump": one task that sleeps (on glommio's
//! timer) until the core's next deadline, or until it is kicked to finish a drain that ran out
//! of budget, and wakes the executor at least every heartbeat (see `HEARTBEAT`).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;
use gatherdns_core::drive::Deadline;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::timer::Timer;

use crate::budget::Budget;
use crate::driver::Driver;

/// The longest the executor sleeps. glommio 0.9 (seen on Linux 6.18) sometimes parks while a
/// socket's readiness completion is pending, and notices it only at its next wake-up: a TCP
/// query then waited until the next connection or timer, seconds under load (reproduced with
/// 1000 sequential connections on a busy 2-CPU host; a timer wake ended every stall). Waking
/// this often bounds such a stall and costs an idle executor a few microseconds per beat.
const HEARTBEAT: Duration = Duration::from_millis(10);

/// The deadline the pump sleeps towards, and the means to wake it earlier.
pub(crate) struct Alarm {
    armed: Cell<Deadline>,
    kick_tx: LocalSender<()>,
    kick_rx: LocalReceiver<()>,
}

impl Alarm {
    pub(crate) fn new() -> Alarm {
        // One slot is enough: a kick only says "look again", and looking once covers many.
        let (kick_tx, kick_rx) = local_channel::new_bounded(1);
        Alarm {
            armed: Cell::new(Deadline::default()),
            kick_tx,
            kick_rx,
        }
    }

    /// Sets the deadline from `poll_timeout`; the pump is woken only when it is earlier than
    /// the one it sleeps towards (a later one costs one early, harmless `handle_timeout`).
    pub(crate) fn rearm(&self, deadline: Option<Instant>) {
        let mut armed = self.armed.get();
        let earlier = armed.rearm(deadline);
        self.armed.set(armed);
        if earlier {
            self.kick();
        }
    }

    /// Asks the pump to run a drain soon, from its own task. A full slot means a kick is
    /// already pending.
    pub(crate) fn kick(&self) {
        let _ = self.kick_tx.try_send(());
    }
}

/// The pump task: calls `handle_timeout` when the deadline passes and continues drains that
/// were cut short, one `handle_*` call per wake.
pub(crate) async fn pump(driver: Rc<Driver>) {
    let mut budget = Budget::new();
    loop {
        let deadline = driver.alarm().armed.get().at();
        let now = Instant::now();
        let wake = deadline.map_or(HEARTBEAT, |at| {
            at.saturating_duration_since(now).min(HEARTBEAT)
        });
        let kicked = async {
            let _ = driver.alarm().kick_rx.recv().await;
            true
        };
        let timer = async {
            sleep(wake).await;
            false
        };
        let kicked = future::or(kicked, timer).await;
        if deadline.is_some_and(|at| at <= Instant::now()) {
            driver.handle(|gateway, now| gateway.handle_timeout(now));
        } else if kicked {
            driver.drain();
        } else {
            // A heartbeat: the wake-up itself was the point.
            continue;
        }
        budget.spend().await;
    }
}

/// Waits `duration` on glommio's timer; for races against I/O (`future::or(io, sleep(d))`).
pub(crate) async fn sleep(duration: Duration) {
    Timer::new(duration).await;
}
