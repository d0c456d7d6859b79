//! The connection cap: a slot per open connection, taken before the accept, so past the cap
//! new connections wait in the listen backlog. The cap can be lowered while connections are
//! open (the process ran out of descriptors): those already open are served to their end,
//! and no new one is taken until the count is under the new cap.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

pub struct Slots {
    max: usize,
    cap: Cell<usize>,
    open: Cell<usize>,
    /// The accept loop, waiting for a slot.
    waiter: RefCell<Option<Waker>>,
}

/// One open connection's slot, given back when dropped.
pub struct Slot(Rc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        let slots = &self.0;
        slots.open.set(slots.open.get() - 1);
        if slots.open.get() < slots.cap.get() {
            if let Some(waker) = slots.waiter.borrow_mut().take() {
                waker.wake();
            }
        }
    }
}

impl Slots {
    pub fn new(max: usize) -> Rc<Self> {
        Rc::new(Self {
            max,
            cap: Cell::new(max),
            open: Cell::new(0),
            waiter: RefCell::default(),
        })
    }

    /// Waits until a connection may be taken, and takes its slot.
    pub async fn take(self: &Rc<Self>) -> Slot {
        poll_fn(|cx| {
            if self.open.get() < self.cap.get() {
                return Poll::Ready(());
            }
            *self.waiter.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        self.open.set(self.open.get() + 1);
        Slot(self.clone())
    }

    pub fn open(&self) -> usize {
        self.open.get()
    }

    /// The connections taken at most now.
    pub fn cap(&self) -> usize {
        self.cap.get()
    }

    /// Whether every slot is taken (so others may be waiting in the backlog).
    pub fn full(&self) -> bool {
        self.open.get() >= self.cap.get()
    }

    /// Out of descriptors with `open` connections: keep `reserve` of theirs for the log, the
    /// peer requests and reads of the log.
    pub fn lower_to_fit(&self, reserve: usize) {
        self.cap
            .set(self.open.get().saturating_sub(reserve).clamp(1, self.max));
    }

    /// Tries one more slot, up to the configured maximum.
    pub fn raise(&self) {
        self.cap.set((self.cap.get() + 1).min(self.max));
    }
}
