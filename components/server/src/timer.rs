//! The connections' deadlines (`connection.rs`) on wstd's clock, as hyper's `Timer`.
//!
//! A connection arms a deadline for most requests. One wasi pollable per arm cost host calls and a slot
//! in every reactor poll: about 40% of a small request's time. A timeout of seconds needs no
//! finer grain than a tick, so all pending sleeps share one ticker task and one pollable; arming
//! a sleep is a push onto a list, timed by the ticker's own clock.

use hyper::rt::{Sleep, Timer};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How late a sleep may wake: the ticker's period.
const TICK: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, Debug)]
pub struct WstdTimer;

impl Timer for WstdTimer {
    /// Sleeps at least `duration`: measured from the ticker's clock, which may be up to a
    /// tick old, so one tick is added.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(now() + duration + TICK)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(TickSleep {
            deadline,
            waker: None,
        })
    }
}

/// A sleeping task's waker, shared with the ticker until the sleep is done or dropped.
type SharedWaker = Rc<RefCell<Option<Waker>>>;

struct TickSleep {
    deadline: Instant,
    waker: Option<SharedWaker>,
}

// hyper asks for Send + Sync sleeps because most hosts have threads; a WASI 0.2 component
// has exactly one, so nothing can ever observe this value from another thread.
unsafe impl Send for TickSleep {}
unsafe impl Sync for TickSleep {}

impl Sleep for TickSleep {}

impl Future for TickSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if now() >= self.deadline {
            return Poll::Ready(());
        }
        match &self.waker {
            Some(shared) => *shared.borrow_mut() = Some(cx.waker().clone()),
            None => {
                let shared = Rc::new(RefCell::new(Some(cx.waker().clone())));
                TICKER.with(|ticker| ticker.register(self.deadline, shared.clone()));
                self.waker = Some(shared);
            }
        }
        Poll::Pending
    }
}

impl Drop for TickSleep {
    fn drop(&mut self) {
        // The ticker forgets entries whose waker is gone at its next tick.
        if let Some(shared) = &self.waker {
            shared.borrow_mut().take();
        }
    }
}

#[derive(Default)]
struct Ticker {
    sleepers: RefCell<Vec<(Instant, SharedWaker)>>,
    running: Cell<bool>,
    /// The clock at the last tick, while the ticker runs.
    now: Cell<Option<Instant>>,
}

/// The time, to a tick (also the connections' progress clock): read from the ticker while it runs (a connection arms and checks a
/// deadline on every request, and each clock read is a host call), else from the host.
pub fn now() -> Instant {
    TICKER
        .with(|ticker| ticker.now.get())
        .unwrap_or_else(Instant::now)
}

thread_local! {
    static TICKER: Rc<Ticker> = Rc::default();
}

impl Ticker {
    fn register(self: &Rc<Self>, deadline: Instant, waker: SharedWaker) {
        self.sleepers.borrow_mut().push((deadline, waker));
        if !self.running.replace(true) {
            self.now.set(Some(Instant::now()));
            let ticker = self.clone();
            wstd::runtime::spawn(async move { ticker.run().await }).detach();
        }
    }

    /// Wakes due sleeps every tick; stops when none are left.
    async fn run(&self) {
        loop {
            wstd::task::sleep(wstd::time::Duration::from_millis(TICK.as_millis() as u64)).await;
            let now = Instant::now();
            self.now.set(Some(now));
            self.sleepers.borrow_mut().retain(|(deadline, shared)| {
                let mut waker = shared.borrow_mut();
                match waker.as_ref() {
                    None => false, // dropped
                    Some(_) if *deadline <= now => {
                        waker.take().unwrap().wake();
                        false
                    }
                    Some(_) => true,
                }
            });
            if self.sleepers.borrow().is_empty() {
                self.running.set(false);
                self.now.set(None);
                return;
            }
        }
    }
}
