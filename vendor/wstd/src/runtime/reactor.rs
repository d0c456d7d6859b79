use super::REACTOR;

use async_task::{Runnable, Task};
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use slab::Slab;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use wasip2::io::poll::Pollable;

/// A key for a `Pollable`, which is an index into the `Slab<Pollable>` in `Reactor`.
#[repr(transparent)]
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Clone, Copy)]
pub(crate) struct EventKey(pub(crate) usize);

/// A Registration is a reference to the Reactor's owned Pollable. When the registration is
/// dropped, the reactor will drop the Pollable resource.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Registration {
    key: EventKey,
}

impl Drop for Registration {
    fn drop(&mut self) {
        Reactor::current().deregister_event(self.key)
    }
}

/// An AsyncPollable is a reference counted Registration. It can be cloned, and used to create
/// as many WaitFor futures on a Pollable that the user needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsyncPollable(Arc<Registration>);

impl AsyncPollable {
    /// Create an `AsyncPollable` from a Wasi `Pollable`. Schedules the `Pollable` with the current
    /// `Reactor`.
    pub fn new(pollable: Pollable) -> Self {
        Reactor::current().schedule(pollable)
    }
    /// Create a Future that waits for the Pollable's readiness.
    pub fn wait_for(&self) -> WaitFor {
        WaitFor {
            pollable: self.clone(),
            registered: None,
        }
    }
}

/// A Future that waits for the Pollable's readiness.
///
/// Patched (spin-visits, see `PATCHED.md`): the wait completes when the reactor's `poll`
/// reports its pollable ready, without asking the host `ready()` again. The host answers at
/// most a budget's worth of readiness checks between two suspensions (wasmtime runs the guest
/// in one tokio task), so a second check can say "not ready" spuriously and livelock a busy
/// guest; and the check on first registration almost never finds the pollable ready.
#[must_use = "futures do nothing unless polled or .awaited"]
#[derive(Debug)]
pub struct WaitFor {
    pollable: AsyncPollable,
    /// This wait's place in the reactor's waiting list, while it is registered.
    registered: Option<u64>,
}
impl Future for WaitFor {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let reactor = Reactor::current();
        match self.registered {
            None => {
                let seq = reactor.register(&self.pollable, cx.waker());
                self.registered = Some(seq);
                Poll::Pending
            }
            Some(seq) if reactor.rewake(seq, cx.waker()) => Poll::Pending,
            // The reactor took it off the waiting list: `poll` reported it ready.
            Some(_) => {
                self.registered = None;
                Poll::Ready(())
            }
        }
    }
}
impl Drop for WaitFor {
    fn drop(&mut self) {
        if let Some(seq) = self.registered {
            Reactor::current().deregister_wait(seq)
        }
    }
}

/// A registered wait: which pollable, and whom to wake.
#[derive(Debug)]
struct Wait {
    pollable: AsyncPollable,
    waker: Waker,
}

/// Waits not reported ready yet, oldest first. Readiness answers are rationed by the host and
/// handed out in list order, so the longest waits go first; waits older than `IDLE_AFTER`
/// (idle connections, mostly) are only passed to the host every `COLD_EVERY` while others
/// are busy, so their cost does not grow with every turn of the loop.
#[derive(Debug, Default)]
struct Waits {
    next_seq: u64,
    by_seq: BTreeMap<u64, Wait>,
    /// `(since, first seq registered at that time)`, oldest first: finds the idle prefix.
    marks: VecDeque<(u64, u64)>,
    /// The first seq that is not idle.
    hot_from: u64,
    /// The round clock: the monotonic clock when the pollables were last checked.
    now: u64,
    /// When idle waits are next included in a check.
    cold_due: u64,
    /// A clock pollable for `cold_due`, so a blocking poll wakes up for the idle waits.
    cold_timer: Option<(u64, Pollable)>,
    /// Counts checks; picks the window that goes first.
    turn: usize,
}

/// A wait with no answer for this long counts as idle.
const IDLE_AFTER: u64 = 20_000_000;
/// How often idle waits are checked while others are busy.
const COLD_EVERY: u64 = 5_000_000;
/// Waits per `poll`: a ready TCP pollable spends two units of tokio's budget of 128 in
/// wasmtime (a lock and the readiness), and each call also carries a clock pollable.
const WINDOW: usize = 63;
/// How long a blocking poll waits on one window of many busy waits (tokio's timer grain).
const BLOCK_TICK: u64 = 1_000_000;

/// Manage async system resources for WASI 0.2
#[derive(Debug, Clone)]
pub struct Reactor {
    inner: Arc<InnerReactor>,
}

/// The private, internal `Reactor` implementation - factored out so we can take
/// a lock of the whole.
#[derive(Debug)]
struct InnerReactor {
    pollables: Mutex<Slab<Pollable>>,
    waits: Mutex<Waits>,
    ready_list: Mutex<VecDeque<Runnable>>,
}

impl Reactor {
    /// Return a `Reactor` for the currently running `wstd::runtime::block_on`.
    ///
    /// # Panic
    /// This will panic if called outside of `wstd::runtime::block_on`.
    pub fn current() -> Self {
        REACTOR.with(|r| {
            r.borrow()
                .as_ref()
                .expect("Reactor::current must be called within a wstd runtime")
                .clone()
        })
    }

    /// Create a new instance of `Reactor`
    pub(crate) fn new() -> Self {
        Self {
            inner: Arc::new(InnerReactor {
                pollables: Mutex::new(Slab::new()),
                waits: Mutex::new(Waits::default()),
                ready_list: Mutex::new(VecDeque::new()),
            }),
        }
    }

    /// The reactor tracks the set of WASI pollables which have an associated
    /// Future pending on their readiness. This function returns indicating
    /// that set of pollables is not empty.
    pub(crate) fn pending_pollables_is_empty(&self) -> bool {
        self.inner.waits.lock().unwrap().by_seq.is_empty()
    }

    /// Block until at least one pending pollable is ready, waking a pending future.
    /// Precondition: self.nonempty_pending_pollables() is true.
    pub(crate) fn block_on_pollables(&self) {
        self.check_pollables(true)
    }

    /// Without blocking, check for any ready pollables and wake the
    /// associated futures.
    pub(crate) fn nonblock_check_pollables(&self) {
        if self.pending_pollables_is_empty() {
            return;
        }
        self.check_pollables(false)
    }

    /// One `poll` of the waiting pollables: those it reports ready leave the waiting list and
    /// their futures are woken. Idle waits are left out unless due (or nothing else waits).
    fn check_pollables(&self, blocking: bool) {
        use wasip2::clocks::monotonic_clock;

        let mut waits = self.inner.waits.lock().unwrap();
        let now = monotonic_clock::now();
        waits.now = now;
        // Waits registered before `now - IDLE_AFTER` are idle: drop their marks.
        while waits
            .marks
            .front()
            .is_some_and(|&(since, _)| since.saturating_add(IDLE_AFTER) <= now)
        {
            waits.marks.pop_front();
            waits.hot_from = waits.marks.front().map_or(waits.next_seq, |&(_, seq)| seq);
        }
        let hot_from = waits.hot_from;
        let has_cold = waits.by_seq.range(..hot_from).next().is_some();
        let has_hot = waits.by_seq.range(hot_from..).next().is_some();
        let with_cold = has_cold && (now >= waits.cold_due || !has_hot);
        if with_cold {
            waits.cold_due = now + COLD_EVERY;
        }
        let start = if with_cold { 0 } else { hot_from };

        let pollables = self.inner.pollables.lock().unwrap();
        let candidates: Vec<(u64, &Pollable)> = waits
            .by_seq
            .range(start..)
            .map(|(&seq, wait)| (seq, &pollables[wait.pollable.0.key.0]))
            .collect();
        let mut fired_seqs = Vec::new();
        // wasmtime answers a `poll` within tokio's cooperative budget (128 units, and a TCP
        // pollable spends one or two), examining pollables lowest resource index first: one
        // call over every wait would never look at the newest connections. So the waits go in
        // windows that fit the budget, in an order that turns with every check, each with a
        // fresh zero-duration clock pollable: it makes the call return at once, and makes
        // wasmtime yield to tokio first, which refreshes the budget (wasmtime #13511).
        let windows = candidates.chunks(WINDOW).collect::<Vec<_>>();
        let first = waits.turn % windows.len().max(1);
        waits.turn = waits.turn.wrapping_add(1);
        for window in windows[first..].iter().chain(&windows[..first]) {
            let now_ready = monotonic_clock::subscribe_duration(0);
            let mut targets: Vec<&Pollable> = window.iter().map(|&(_, p)| p).collect();
            targets.push(&now_ready);
            for index in wasip2::io::poll::poll(&targets) {
                if let Some(&(seq, _)) = window.get(index as usize) {
                    fired_seqs.push(seq);
                }
            }
        }
        if blocking && fired_seqs.is_empty() {
            // Before wasmtime 46 a zero-duration clock does not yield, so on such hosts the
            // windows after the budget ran out saw nothing, and a blocking poll over every
            // wait would hand the fresh budget to the oldest connections again. With more
            // busy waits than a window, block on one window at a time, for at most a tick.
            let hot = candidates.iter().filter(|&&(seq, _)| seq >= hot_from).count();
            let rotating = hot > WINDOW;
            let tick;
            let blocked_on: &[(u64, &Pollable)] = if rotating {
                windows[first]
            } else {
                &candidates
            };
            let mut targets: Vec<&Pollable> = blocked_on.iter().map(|&(_, p)| p).collect();
            if rotating {
                tick = monotonic_clock::subscribe_duration(BLOCK_TICK);
                targets.push(&tick);
            }
            if has_cold && !with_cold {
                let due = waits.cold_due;
                if waits.cold_timer.as_ref().is_none_or(|(at, _)| *at != due) {
                    waits.cold_timer = Some((due, monotonic_clock::subscribe_instant(due)));
                }
                targets.push(&waits.cold_timer.as_ref().unwrap().1);
            }
            for index in wasip2::io::poll::poll(&targets) {
                if let Some(&(seq, _)) = blocked_on.get(index as usize) {
                    fired_seqs.push(seq);
                }
            }
        }
        drop(windows);
        drop(candidates);
        drop(pollables);

        let fired: Vec<Wait> = fired_seqs
            .into_iter()
            .filter_map(|seq| waits.by_seq.remove(&seq))
            .collect();
        drop(waits);
        // Woken (and dropped) outside the locks.
        for wait in fired {
            wait.waker.wake();
        }
    }

    /// Adds a wait for `pollable`; returns its place in the waiting list.
    fn register(&self, pollable: &AsyncPollable, waker: &Waker) -> u64 {
        let mut waits = self.inner.waits.lock().unwrap();
        let seq = waits.next_seq;
        waits.next_seq += 1;
        let since = waits.now;
        if waits.marks.back().is_none_or(|&(at, _)| at != since) {
            waits.marks.push_back((since, seq));
        }
        waits.by_seq.insert(
            seq,
            Wait {
                pollable: pollable.clone(),
                waker: waker.clone(),
            },
        );
        seq
    }

    /// Updates a registered wait's waker; false once `poll` has reported it ready.
    fn rewake(&self, seq: u64, waker: &Waker) -> bool {
        let mut waits = self.inner.waits.lock().unwrap();
        match waits.by_seq.get_mut(&seq) {
            Some(wait) => {
                if !wait.waker.will_wake(waker) {
                    wait.waker = waker.clone();
                }
                true
            }
            None => false,
        }
    }

    /// Turn a Wasi [`Pollable`] into an [`AsyncPollable`]
    pub fn schedule(&self, pollable: Pollable) -> AsyncPollable {
        let mut pollables = self.inner.pollables.lock().unwrap();
        let key = EventKey(pollables.insert(pollable));
        AsyncPollable(Arc::new(Registration { key }))
    }

    fn deregister_event(&self, key: EventKey) {
        let mut pollables = self.inner.pollables.lock().unwrap();
        pollables.remove(key.0);
    }

    fn deregister_wait(&self, seq: u64) {
        let removed = self.inner.waits.lock().unwrap().by_seq.remove(&seq);
        // Dropped outside the lock: it may hold the last reference to its pollable.
        drop(removed);
    }

    /// We need an unchecked spawn for implementing `block_on`, where the
    /// implementation does not expose the resulting Task and does not return
    /// until all tasks have finished execution.
    ///
    /// # Safety
    /// Caller must ensure that the Task<T> does not outlive the Future F or
    /// F::Output T.
    #[allow(unsafe_code)]
    pub(crate) unsafe fn spawn_unchecked<F, T>(&self, fut: F) -> Task<T>
    where
        F: Future<Output = T>,
    {
        let this = self.clone();
        let schedule = move |runnable| this.inner.ready_list.lock().unwrap().push_back(runnable);

        // SAFETY:
        // we're using this exactly like async_task::spawn_local, except that
        // the schedule function is not Send or Sync, because Runnable is not
        // Send or Sync. This is safe because wasm32-wasip2 is always
        // single-threaded.
        #[allow(unsafe_code)]
        let (runnable, task) = unsafe { async_task::spawn_unchecked(fut, schedule) };
        self.inner.ready_list.lock().unwrap().push_back(runnable);
        task
    }

    /// Spawn a `Task` on the `Reactor`.
    pub fn spawn<F, T>(&self, fut: F) -> Task<T>
    where
        F: Future<Output = T> + 'static,
        T: 'static,
    {
        // Safety: 'static constraints satisfy the lifetime requirements
        #[allow(unsafe_code)]
        unsafe {
            self.spawn_unchecked(fut)
        }
    }

    pub(super) fn pop_ready_list(&self) -> Option<Runnable> {
        self.inner.ready_list.lock().unwrap().pop_front()
    }

    pub(super) fn ready_list_len(&self) -> usize {
        self.inner.ready_list.lock().unwrap().len()
    }

    pub(super) fn ready_list_is_empty(&self) -> bool {
        self.inner.ready_list.lock().unwrap().is_empty()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    // Using WASMTIME_LOG, observe that this test doesn't even call poll() - the pollable is ready
    // immediately.
    #[test]
    fn subscribe_no_duration() {
        crate::runtime::block_on(async {
            let reactor = Reactor::current();
            let pollable = wasip2::clocks::monotonic_clock::subscribe_duration(0);
            let sched = reactor.schedule(pollable);
            sched.wait_for().await;
        })
    }
    // Using WASMTIME_LOG, observe that this test calls poll() until the timer is ready.
    #[test]
    fn subscribe_some_duration() {
        crate::runtime::block_on(async {
            let reactor = Reactor::current();
            let pollable = wasip2::clocks::monotonic_clock::subscribe_duration(10_000_000);
            let sched = reactor.schedule(pollable);
            sched.wait_for().await;
        })
    }

    // Using WASMTIME_LOG, observe that this test results in a single poll() on the second
    // subscription, rather than spinning in poll() with first subscription, which is instantly
    // ready, but not what the waker requests.
    #[test]
    fn subscribe_multiple_durations() {
        crate::runtime::block_on(async {
            let reactor = Reactor::current();
            let now = wasip2::clocks::monotonic_clock::subscribe_duration(0);
            let soon = wasip2::clocks::monotonic_clock::subscribe_duration(10_000_000);
            let now = reactor.schedule(now);
            let soon = reactor.schedule(soon);
            soon.wait_for().await;
            drop(now)
        })
    }

    // Using WASMTIME_LOG, observe that this test results in two calls to poll(), one with both
    // pollables because both are awaiting, and one with just the later pollable.
    #[test]
    fn subscribe_multiple_durations_zipped() {
        crate::runtime::block_on(async {
            let reactor = Reactor::current();
            let start = wasip2::clocks::monotonic_clock::now();
            let soon = wasip2::clocks::monotonic_clock::subscribe_duration(10_000_000);
            let later = wasip2::clocks::monotonic_clock::subscribe_duration(40_000_000);
            let soon = reactor.schedule(soon);
            let later = reactor.schedule(later);

            futures_lite::future::zip(
                async move {
                    soon.wait_for().await;
                    println!(
                        "*** subscribe_duration(soon) ready ({})",
                        wasip2::clocks::monotonic_clock::now() - start
                    );
                },
                async move {
                    later.wait_for().await;
                    println!(
                        "*** subscribe_duration(later) ready ({})",
                        wasip2::clocks::monotonic_clock::now() - start
                    );
                },
            )
            .await;
        })
    }

    #[test]
    fn progresses_wasi_independent_futures() {
        crate::runtime::block_on(async {
            let start = wasip2::clocks::monotonic_clock::now();

            let reactor = Reactor::current();
            const LONG_DURATION: u64 = 1_000_000_000;
            let later = wasip2::clocks::monotonic_clock::subscribe_duration(LONG_DURATION);
            let later = reactor.schedule(later);
            let mut polled_before = false;
            // This is basically futures_lite::future::yield_now, except with a boolean
            // `polled_before` so we can definitively observe what happened
            let wasi_independent_future = futures_lite::future::poll_fn(|cx| {
                if polled_before {
                    std::task::Poll::Ready(true)
                } else {
                    polled_before = true;
                    cx.waker().wake_by_ref();
                    std::task::Poll::Pending
                }
            });
            let later = async {
                later.wait_for().await;
                false
            };
            let wasi_independent_future_won =
                futures_lite::future::race(wasi_independent_future, later).await;
            assert!(
                wasi_independent_future_won,
                "wasi_independent_future should win the race"
            );
            const SHORT_DURATION: u64 = LONG_DURATION / 100;
            let soon = wasip2::clocks::monotonic_clock::subscribe_duration(SHORT_DURATION);
            let soon = reactor.schedule(soon);
            soon.wait_for().await;

            let end = wasip2::clocks::monotonic_clock::now();

            let duration = end - start;
            assert!(
                duration > SHORT_DURATION,
                "{duration} greater than short duration shows awaited for `soon` properly"
            );
            // Upper bound is high enough that even the very poor windows CI machines meet it
            assert!(
                duration < (5 * SHORT_DURATION),
                "{duration} less than a reasonable multiple of short duration {SHORT_DURATION} shows did not await for `later`"
            );
        })
    }

    #[test]
    fn cooperative_concurrency() {
        crate::runtime::block_on(async {
            let cpu_heavy = async move {
                // Simulating a CPU-heavy task that runs for 1 second and yields occasionally
                for _ in 0..10 {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    futures_lite::future::yield_now().await;
                }
                true
            };
            let timeout = async move {
                crate::time::Timer::after(crate::time::Duration::from_millis(200))
                    .wait()
                    .await;
                false
            };
            let mut future_group = futures_concurrency::future::FutureGroup::<
                Pin<Box<dyn std::future::Future<Output = bool>>>,
            >::new();
            future_group.insert(Box::pin(cpu_heavy));
            future_group.insert(Box::pin(timeout));
            let result = futures_lite::StreamExt::next(&mut future_group).await;
            assert_eq!(result, Some(false), "cpu_heavy task should have timed out");
        });
    }
}
