//! Channels as the shard and front loops read and write them.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};

use crate::real::error::RealError;

/// Messages received by a forwarding task, for a loop that must not park on a channel.
///
/// Polling a pending `recv()` future over and over registers a new waker each time (glommio
/// keeps them until the channel is written to, and a task's waker count is bounded), so each
/// receiver gets one task that awaits it and queues what arrives; `None` means closed.
pub(crate) type Inbox<T> = Rc<RefCell<VecDeque<Option<T>>>>;

pub(crate) fn forward<T: Send + 'static>(rx: ConnectedReceiver<T>) -> Inbox<T> {
    let inbox: Inbox<T> = Rc::default();
    let queue = inbox.clone();
    glommio::spawn_local(async move {
        loop {
            let msg = rx.recv().await;
            let closed = msg.is_none();
            queue.borrow_mut().push_back(msg);
            if closed {
                break;
            }
        }
    })
    .detach();
    inbox
}

/// Like [`Inbox`], with each message tagged by the receiver it came from.
pub(crate) type TaggedInbox<T> = Rc<RefCell<VecDeque<(usize, Option<T>)>>>;

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
            queue.borrow_mut().push_back((tag, msg));
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
