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

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::Context;

    /// Whether `take` gives a slot now, and the slot.
    fn try_take(slots: &Rc<Slots>) -> Option<Slot> {
        let mut take = pin!(slots.take());
        match take.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(slot) => Some(slot),
            Poll::Pending => None,
        }
    }

    #[test]
    fn past_the_cap_a_slot_waits_for_one_given_back() {
        let slots = Slots::new(2);
        let first = try_take(&slots).unwrap();
        let _second = try_take(&slots).unwrap();
        assert!(slots.full());
        assert!(try_take(&slots).is_none());
        drop(first);
        assert!(try_take(&slots).is_some());
    }

    #[test]
    fn a_lowered_cap_keeps_the_open_ones_and_takes_none_until_under_it() {
        let slots = Slots::new(100);
        let mut held: Vec<Slot> = (0..40).map(|_| try_take(&slots).unwrap()).collect();
        slots.lower_to_fit(16);
        assert_eq!((slots.cap(), slots.open()), (24, 40));
        assert!(try_take(&slots).is_none());
        held.truncate(24);
        assert!(try_take(&slots).is_none(), "at the lowered cap");
        held.pop();
        assert!(try_take(&slots).is_some());
        slots.raise();
        assert_eq!(slots.cap(), 25);
        slots.lower_to_fit(1000);
        assert_eq!(slots.cap(), 1, "never below one");
    }
}
