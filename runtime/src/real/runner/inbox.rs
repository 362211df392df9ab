//! Channels as the shard and front loops read and write them.
//!
//! Each loop reads its messages from an [`Inbox`] and, when it has nothing to do, waits on it
//! with a deadline ([`Inbox::wait`]): it wakes when a message arrives or the deadline passes,
//! not on a fixed poll. Polling was what the in-process runtime did before, every 1 ms or
//! less in the front and in idle shards, and each of those sleeps went through glommio's
//! parking path, whose memory barrier (`membarrier`) interrupts every core the process runs
//! on, the busy shards' included: in-process runs decoded about a third slower than the same
//! shards behind `fastlibra serve`, whose loops wait on their channels (docs/http-bench.md).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_lite::future;
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};

use crate::real::error::RealError;

/// Messages received by forwarding tasks, for a loop that must not park on a channel.
///
/// Polling a pending `recv()` future over and over registers a new waker each time (glommio
/// keeps them until the channel is written to, and a task's waker count is bounded), so each
/// receiver gets one task that awaits it and queues what arrives, then wakes the loop; `None`
/// means closed.
pub(crate) struct Inbox<T> {
    queue: RefCell<VecDeque<T>>,
    /// The waiting loop's waker, while it waits.
    waker: Cell<Option<Waker>>,
}

impl<T> Default for Inbox<T> {
    fn default() -> Self {
        Self {
            queue: RefCell::default(),
            waker: Cell::new(None),
        }
    }
}

impl<T> Inbox<T> {
    /// The oldest message, if any.
    pub(crate) fn pop(&self) -> Option<T> {
        self.queue.borrow_mut().pop_front()
    }

    /// Whether no message waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.borrow().is_empty()
    }

    fn push(&self, msg: T) {
        self.queue.borrow_mut().push_back(msg);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Returns when a message waits or `timeout` has passed, whichever comes first.
    pub(crate) async fn wait(&self, timeout: Duration) {
        // Only the forwarding tasks touch the queue while the loop waits, and only to push.
        let message = poll_fn(|cx| {
            if !self.is_empty() {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        });
        future::or(message, glommio::timer::sleep(timeout)).await;
        self.waker.set(None);
    }
}

/// A shard's inbox: the front's messages, `None` once the front is gone.
pub(crate) type ShardInbox<T> = Rc<Inbox<Option<T>>>;

pub(crate) fn forward<T: Send + 'static>(rx: ConnectedReceiver<T>) -> ShardInbox<T> {
    let inbox: ShardInbox<T> = Rc::default();
    let queue = inbox.clone();
    glommio::spawn_local(async move {
        loop {
            let msg = rx.recv().await;
            let closed = msg.is_none();
            queue.push(msg);
            if closed {
                break;
            }
        }
    })
    .detach();
    inbox
}

/// The front's inbox: each message tagged by the shard it came from, `None` once that shard is
/// gone.
pub(crate) type TaggedInbox<T> = Rc<Inbox<(usize, Option<T>)>>;

pub(crate) fn forward_tagged<T: Send + 'static>(
    rx: ConnectedReceiver<T>,
    tag: usize,
    inbox: &TaggedInbox<T>,
) {
    let queue = inbox.clone();
    glommio::spawn_local(async move {
        loop {
            let msg = rx.recv().await;
            let closed = msg.is_none();
            queue.push((tag, msg));
            if closed {
                break;
            }
        }
    })
    .detach();
}

/// Sends, or says the other side is gone.
pub(crate) async fn send<T: Send>(tx: &ConnectedSender<T>, msg: T) -> Result<(), RealError> {
    tx.send(msg)
        .await
        .map_err(|_| RealError::Runtime("the other side of a channel is gone".into()))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use glommio::LocalExecutorBuilder;

    use super::*;

    #[test]
    fn a_message_ends_the_wait_and_an_empty_inbox_waits_for_its_deadline() {
        LocalExecutorBuilder::default()
            .make()
            .expect("an executor")
            .run(async {
                let inbox: Rc<Inbox<u32>> = Rc::default();
                let sender = inbox.clone();
                glommio::spawn_local(async move {
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                    sender.push(7);
                })
                .detach();
                let t = Instant::now();
                inbox.wait(Duration::from_secs(10)).await;
                assert!(
                    t.elapsed() < Duration::from_secs(10),
                    "woken by the message"
                );
                assert_eq!(inbox.pop(), Some(7));

                let t = Instant::now();
                inbox.wait(Duration::from_millis(20)).await;
                assert!(
                    t.elapsed() >= Duration::from_millis(20),
                    "waited for the deadline"
                );
                assert_eq!(inbox.pop(), None);

                // A message queued before the wait returns at once.
                inbox.push(8);
                inbox.wait(Duration::from_secs(10)).await;
                assert_eq!(inbox.pop(), Some(8));
            });
    }
}
