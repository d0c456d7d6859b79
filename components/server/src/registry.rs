//! The connection registry: every connection holding a slot, counted here and nowhere else,
//! against the cap. At the cap a newcomer does not simply wait: the connection making the
//! least progress yields its slot ([`crate::progress`]), and a connection whose last answer
//! said `Connection: close` gives its slot back as that answer ends, not when the client
//! gets round to closing.
//!
//! A connection chosen to yield keeps its slot until it has ended: the cap bounds open
//! sockets, hence descriptors, and a burst of newcomers each closing one for itself must not
//! hold more sockets than the cap while the closed ones are still being torn down.
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
/// How long a connection chosen to yield may take to end before another is chosen in its
/// place: an idle one ends at once, but one whose request had already come is answered first.
const YIELD_WITHIN: Duration = Duration::from_secs(1);
/// At most this many connections are on their way out at once. One at a time, admitting a
/// newcomer took a few passes of the reactor over every connection (some 50 ms at 1 000), so
/// a stream of newcomers (slowhttptest's 200 a second) queued behind each other for seconds;
/// the descriptors of up to this many closing sockets fit beside the cap.
const YIELD_AT_ONCE: usize = 8;

pub struct Registry {
    max: usize,
    cap: Cell<usize>,
    /// The connections holding a slot, at the index their registration holds, with the
    /// registration's id; `None` where one was given back (and listed in `free`).
    slots: RefCell<Vec<Option<Held>>>,
    /// The id of the next registration: a slot given back (a connection closed for a
    /// newcomer, or its last answer done) is soon taken again, and only the registration
    /// that holds it now may give it back.
    next_id: Cell<u64>,
    free: RefCell<Vec<usize>>,
    /// How many connections hold a slot: the one count of open connections.
    open: Cell<usize>,
    /// No connection could yield at the last look; none is taken before this.
    next_look: Cell<Option<Instant>>,
    /// The registrations of the connections chosen to yield, until they end, and since when.
    yielding: RefCell<Vec<(u64, Instant)>>,
    /// A newcomer is accepted and waits for a slot, and no connection is on its way out:
    /// connections that have had their turn end with their next answer.
    newcomer_waiting: Cell<bool>,
    /// The accept loop, waiting for a slot.
    waiter: RefCell<Option<Waker>>,
    /// Connections closed for a newcomer, by reason (in `Reason::ALL` order).
    shed: [Cell<u64>; 3],
}

/// A held slot: the id of the registration that holds it, and its connection.
type Held = (u64, Rc<Tracker>);

/// One connection's slot, given back when released or dropped.
pub struct Registration {
    registry: Rc<Registry>,
    index: usize,
    id: u64,
}

impl Registration {
    /// Gives the slot back now (the connection's last answer is done); again (the slot may
    /// be another connection's by then) is a no-op.
    pub fn release(&self) {
        self.registry.release(self.index, self.id);
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
            next_id: Cell::new(0),
            free: RefCell::default(),
            open: Cell::new(0),
            next_look: Cell::new(None),
            yielding: RefCell::default(),
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

    /// Whether connections that have had their turn should end with their next answer so
    /// that a slot turns over: a newcomer waits for one, no connection having yielded. At the
    /// cap with idle connections, the busy ones keep theirs: an idle one yields instead.
    pub fn pressed(&self) -> bool {
        self.newcomer_waiting.get()
    }

    pub fn shed(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL.into_iter().zip(self.shed.iter().map(Cell::get))
    }

    /// Every connection holding a slot, for a drain.
    pub fn each(&self, mut f: impl FnMut(&Tracker)) {
        for (_, tracker) in self.slots.borrow().iter().flatten() {
            f(tracker);
        }
    }

    /// A slot for the connection `tracker` belongs to, once one is free: the connection
    /// making the least progress yields one if it may; otherwise this waits until one is
    /// given back (or `recheck` passes, as a connection may have become idle since).
    pub async fn admit(self: &Rc<Self>, tracker: Rc<Tracker>, recheck: Duration) -> Registration {
        while !self.has_room() {
            self.make_room();
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
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let index = match self.free.borrow_mut().pop() {
            Some(index) => {
                self.slots.borrow_mut()[index] = Some((id, tracker));
                index
            }
            None => {
                let mut slots = self.slots.borrow_mut();
                slots.push(Some((id, tracker)));
                slots.len() - 1
            }
        };
        self.open.set(self.open.get() + 1);
        Registration {
            registry: self.clone(),
            index,
            id,
        }
    }

    /// For a newcomer waiting at the cap, or in the listen backlog once descriptors ran out
    /// (its accept failed): the connections making the least progress yield, or, while none
    /// is on its way out, those that have had their turn end with their next answer. Without
    /// it on a failed accept, a replica full of slow readers (each `/visits` stream holds the
    /// log open too) closed nobody until an accept happened to succeed.
    pub fn make_room(&self) {
        let coming = self.shed_least_progress();
        self.newcomer_waiting.set(!coming);
    }

    /// Whether a slot is on its way: connections chosen to yield have not ended yet, or
    /// those that yield most readily, if any may, are chosen now (and end soon), up to
    /// [`YIELD_AT_ONCE`] in all.
    fn shed_least_progress(&self) -> bool {
        let now = timer::now();
        let mut yielding = self.yielding.borrow_mut();
        yielding.retain(|(_, since)| now.saturating_duration_since(*since) < YIELD_WITHIN);
        let room = YIELD_AT_ONCE - yielding.len().min(YIELD_AT_ONCE);
        if room == 0 || self.next_look.get().is_some_and(|at| now < at) {
            return !yielding.is_empty();
        }
        let mut candidates: Vec<_> = self
            .slots
            .borrow()
            .iter()
            .flatten()
            .filter_map(|(id, tracker)| match tracker.standing() {
                Standing::Keeps => None,
                standing => Some((standing, *id, tracker.clone())),
            })
            .collect();
        if candidates.is_empty() {
            self.next_look.set(Some(now + LOOK_AGAIN_AFTER));
            return !yielding.is_empty();
        }
        self.next_look.set(None);
        candidates.sort_unstable_by_key(|(standing, ..)| *standing);
        for (standing, id, victim) in candidates.into_iter().take(room) {
            if let Standing::Yields(reason, ..) = standing {
                let counter = &self.shed[reason as usize];
                counter.set(counter.get() + 1);
            }
            yielding.push((id, now));
            victim.evict();
        }
        true
    }

    /// Gives back slot `index` if registration `id` still holds it.
    fn release(&self, index: usize, id: u64) {
        let mut slots = self.slots.borrow_mut();
        if !matches!(&slots[index], Some((holder, _)) if *holder == id) {
            return;
        }
        slots[index] = None;
        drop(slots);
        self.yielding
            .borrow_mut()
            .retain(|(yielding, _)| *yielding != id);
        self.free.borrow_mut().push(index);
        self.open.set(self.open.get() - 1);
        if self.has_room() {
            if let Some(waker) = self.waiter.borrow_mut().take() {
                waker.wake();
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::Timeouts;
    use spin_visits::server_config::MinRate;
    use std::pin::pin;
    use std::task::{Context, Waker};

    const TIMEOUTS: Timeouts = Timeouts {
        idle: Duration::from_secs(60),
        header_read: Duration::from_secs(10),
        write: Duration::from_secs(30),
        min_rate: MinRate {
            bytes_per_second: 500,
            window: Duration::from_secs(5),
        },
    };

    /// A slot when one is free now (admission that would wait is not these tests' concern).
    fn admit_now(registry: &Rc<Registry>) -> Registration {
        let admit = pin!(registry.admit(Tracker::new(TIMEOUTS), Duration::from_millis(100)));
        match admit.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(registration) => registration,
            Poll::Pending => panic!(
                "no free slot: {} open of {}",
                registry.open(),
                registry.cap()
            ),
        }
    }

    #[test]
    fn a_slot_given_back_early_stays_with_the_connection_that_took_it() {
        let registry = Registry::new(1);
        let first = admit_now(&registry);
        // Its last answer is done: the slot goes back before the connection ends.
        first.release();
        let second = admit_now(&registry);
        // The first connection ends: the slot is the second's now.
        drop(first);
        assert_eq!(registry.open(), 1);
        assert!(!registry.has_room());
        drop(second);
        assert_eq!(registry.open(), 0);
    }

    #[test]
    fn a_connection_chosen_to_yield_holds_its_slot_until_it_ends() {
        let registry = Registry::new(2);
        let idle = admit_now(&registry);
        let busy = admit_now(&registry);
        if let Some((_, tracker)) = &registry.slots.borrow()[busy.index] {
            tracker.answering();
        }
        std::thread::sleep(crate::progress::IDLE_GRACE + Duration::from_millis(50));
        assert!(registry.shed_least_progress(), "the idle connection yields");
        assert_eq!(
            registry.shed().map(|(_, n)| n).collect::<Vec<_>>(),
            [1, 0, 0]
        );
        // Its socket is not closed yet: the slot stays counted, and no second one is chosen.
        assert_eq!(registry.open(), 2);
        assert!(registry.shed_least_progress());
        assert_eq!(
            registry.shed().map(|(_, n)| n).collect::<Vec<_>>(),
            [1, 0, 0]
        );
        drop(idle);
        assert!(registry.has_room());
        assert!(registry.yielding.borrow().is_empty());
        drop(busy);
    }
}
