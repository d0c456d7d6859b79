//! The connection registry: every connection holding a slot, counted here and nowhere else,
//! against the cap. At the cap a newcomer does not simply wait: the connection making the
//! least progress yields its slot ([`crate::progress`]), and a connection whose last answer
//! said `Connection: close` gives its slot back as that answer ends, not when the client
//! gets round to closing.
//!
//! The cap can be lowered while connections are open (the process ran out of descriptors):
//! those already open are served to their end, and no new one is taken until the count is
//! under the new cap.

use crate::connection::Tracker;
use crate::progress::{Reason, Standing};
use crate::timer;
use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// After a look through the open connections found none to yield, how long before the next
/// look: connections become idle or slow on a scale of seconds, and each look visits every
/// one of up to `MAX_CONNECTIONS` (a newcomer arriving at a full registry with every client
/// busy would otherwise pay for one).
const LOOK_AGAIN_AFTER: Duration = Duration::from_millis(100);

pub struct Registry {
    max: usize,
    cap: Cell<usize>,
    /// The connections holding a slot, at the index their registration holds; `None` where
    /// one was given back (and listed in `free`).
    slots: RefCell<Vec<Option<Rc<Tracker>>>>,
    free: RefCell<Vec<usize>>,
    /// How many connections hold a slot: the one count of open connections.
    open: Cell<usize>,
    /// No connection could yield at the last look; none is taken before this.
    next_look: Cell<Option<Instant>>,
    /// A newcomer is accepted and waits for a slot: answers close their connections.
    newcomer_waiting: Cell<bool>,
    /// The accept loop, waiting for a slot.
    waiter: RefCell<Option<Waker>>,
    /// Connections closed for a newcomer, by reason (in `Reason::ALL` order).
    shed: [Cell<u64>; 3],
}

/// One connection's slot, given back when released or dropped.
pub struct Registration {
    registry: Rc<Registry>,
    index: usize,
}

impl Registration {
    /// Gives the slot back now (the connection's last answer is done); again is a no-op.
    pub fn release(&self) {
        self.registry.release(self.index);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.release();
    }
}

impl Registry {
    pub fn new(max: usize) -> Rc<Self> {
        Rc::new(Self {
            max,
            cap: Cell::new(max),
            slots: RefCell::default(),
            free: RefCell::default(),
            open: Cell::new(0),
            next_look: Cell::new(None),
            newcomer_waiting: Cell::new(false),
            waiter: RefCell::default(),
            shed: Default::default(),
        })
    }

    /// Connections holding a slot.
    pub fn open(&self) -> usize {
        self.open.get()
    }

    /// The connections taken at most now.
    pub fn cap(&self) -> usize {
        self.cap.get()
    }

    fn has_room(&self) -> bool {
        self.open() < self.cap.get()
    }

    /// Whether an answer should end its connection so that a slot turns over: a newcomer
    /// waits for one, no connection having yielded. At the cap with idle connections, the
    /// busy ones keep theirs: an idle one yields to the next newcomer instead.
    pub fn pressed(&self) -> bool {
        self.newcomer_waiting.get()
    }

    pub fn shed(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL.into_iter().zip(self.shed.iter().map(Cell::get))
    }

    /// Every connection holding a slot, for a drain.
    pub fn each(&self, mut f: impl FnMut(&Tracker)) {
        for tracker in self.slots.borrow().iter().flatten() {
            f(tracker);
        }
    }

    /// A slot for the connection `tracker` belongs to, once one is free: the connection
    /// making the least progress yields one if it may; otherwise this waits until one is
    /// given back (or `recheck` passes, as a connection may have become idle since).
    pub async fn admit(
        self: &Rc<Self>,
        tracker: Rc<Tracker>,
        recheck: std::time::Duration,
    ) -> Registration {
        while !self.has_room() && !self.shed_one() {
            self.newcomer_waiting.set(true);
            // Woken by a slot given back, or after `recheck` to look for one to yield.
            let mut tick = std::pin::pin!(wstd::task::sleep(recheck.into()));
            poll_fn(|cx| {
                if self.has_room() || tick.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                *self.waiter.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            })
            .await;
        }
        self.newcomer_waiting.set(false);
        let index = match self.free.borrow_mut().pop() {
            Some(index) => {
                self.slots.borrow_mut()[index] = Some(tracker);
                index
            }
            None => {
                let mut slots = self.slots.borrow_mut();
                slots.push(Some(tracker));
                slots.len() - 1
            }
        };
        self.open.set(self.open.get() + 1);
        Registration {
            registry: self.clone(),
            index,
        }
    }

    /// Closes the connection that yields most readily, if any may, and frees its slot now.
    fn shed_one(&self) -> bool {
        let now = timer::now();
        if self.next_look.get().is_some_and(|at| now < at) {
            return false;
        }
        let victim = self
            .slots
            .borrow()
            .iter()
            .enumerate()
            .filter_map(|(index, tracker)| Some((tracker.as_ref()?.standing(), index)))
            .filter(|(standing, _)| *standing != Standing::Keeps)
            .min_by_key(|(standing, _)| *standing);
        let Some((Standing::Yields(reason, ..), index)) = victim else {
            self.next_look.set(Some(now + LOOK_AGAIN_AFTER));
            return false;
        };
        self.next_look.set(None);
        let counter = &self.shed[reason as usize];
        counter.set(counter.get() + 1);
        if let Some(victim) = self.release(index) {
            victim.evict();
        }
        true
    }

    /// Gives back slot `index`; the connection that held it, if it still did.
    fn release(&self, index: usize) -> Option<Rc<Tracker>> {
        let tracker = self.slots.borrow_mut()[index].take()?;
        self.free.borrow_mut().push(index);
        self.open.set(self.open.get() - 1);
        if self.has_room() {
            if let Some(waker) = self.waiter.borrow_mut().take() {
                waker.wake();
            }
        }
        Some(tracker)
    }

    /// Out of descriptors: keep `reserve` of the open connections' for the log, the peer
    /// requests and reads of the log.
    pub fn lower_to_fit(&self, reserve: usize) {
        self.cap
            .set(self.open().saturating_sub(reserve).clamp(1, self.max));
    }

    /// Tries one more slot, up to the configured maximum.
    pub fn raise(&self) {
        self.cap.set((self.cap.get() + 1).min(self.max));
    }
}
