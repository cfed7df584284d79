//! Client replies waiting for room in a full socket send buffer: one queue per socket, sent
//! oldest first by one task, so a reply waits only for those before it. (A task per reply,
//! all woken at once when room appears, let some lose every race until their time ran out.)
//! Bounded in number and in time; what is given up is counted.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use futures_lite::future;

use crate::runtime::{Runtime, UdpSocket};
use crate::udp::{MAX_BACKLOG, SEND_WAIT};

/// The waiting replies of every client socket of one executor.
pub(crate) struct WaitingReplies<R: Runtime> {
    queues: Rc<RefCell<Vec<Rc<Queue<R>>>>>,
    /// Replies in the queues, or being sent from them.
    waiting: Rc<Cell<usize>>,
    /// Given up: the queues were full, or a reply's wait ran out.
    dropped: Rc<Cell<u64>>,
    /// Replies that had to wait at all.
    waited: Cell<u64>,
}

struct Queue<R: Runtime> {
    socket: Rc<R::Udp>,
    /// Destination (`None` on a connected socket), payload, and when it started waiting.
    replies: RefCell<VecDeque<(Option<SocketAddr>, Bytes, Instant)>>,
}

impl<R: Runtime> Default for WaitingReplies<R> {
    fn default() -> Self {
        WaitingReplies {
            queues: Rc::default(),
            waiting: Rc::default(),
            dropped: Rc::default(),
            waited: Cell::new(0),
        }
    }
}

impl<R: Runtime> WaitingReplies<R> {
    /// True while `socket` has replies waiting: a new reply must queue behind them.
    pub(crate) fn holds(&self, socket: &Rc<R::Udp>) -> bool {
        self.queues
            .borrow()
            .iter()
            .any(|q| Rc::ptr_eq(&q.socket, socket))
    }

    pub(crate) fn waiting(&self) -> usize {
        self.waiting.get()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    pub(crate) fn waited(&self) -> u64 {
        self.waited.get()
    }

    /// Queues a reply the socket could not take now; starts the socket's sender if it has
    /// none. Beyond [`MAX_BACKLOG`] waiting replies it is given up at once.
    pub(crate) fn push(&self, socket: &Rc<R::Udp>, to: Option<SocketAddr>, payload: Bytes) {
        self.waited.set(self.waited.get() + 1);
        if self.waiting.get() >= MAX_BACKLOG {
            self.dropped.set(self.dropped.get() + 1);
            return;
        }
        self.waiting.set(self.waiting.get() + 1);
        let entry = (to, payload, Instant::now());
        let mut queues = self.queues.borrow_mut();
        if let Some(queue) = queues.iter().find(|q| Rc::ptr_eq(&q.socket, socket)) {
            queue.replies.borrow_mut().push_back(entry);
            return;
        }
        let queue = Rc::new(Queue {
            socket: socket.clone(),
            replies: RefCell::new(VecDeque::from([entry])),
        });
        queues.push(queue.clone());
        let (queues, waiting, dropped) = (
            self.queues.clone(),
            self.waiting.clone(),
            self.dropped.clone(),
        );
        R::detach(R::spawn(async move {
            loop {
                let next = queue.replies.borrow_mut().pop_front();
                let Some((to, payload, since)) = next else {
                    // Nothing awaits between the empty queue and this: no reply is left behind.
                    queues.borrow_mut().retain(|q| !Rc::ptr_eq(q, &queue));
                    break;
                };
                let deadline = since + SEND_WAIT;
                let send = async { queue.socket.send(&payload, to).await.is_ok() };
                let timeout = async {
                    R::sleep_until(deadline).await;
                    false
                };
                let sent = Instant::now() < deadline && future::or(send, timeout).await;
                waiting.set(waiting.get() - 1);
                if !sent {
                    dropped.set(dropped.get() + 1);
                }
            }
        }));
    }
}
