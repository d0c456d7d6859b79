use super::{REACTOR, Reactor};

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Start the event loop. Blocks until the future
pub fn block_on<F>(fut: F) -> F::Output
where
    F: Future,
{
    // Construct the reactor
    let reactor = Reactor::new();
    // Store a copy as a singleton to be used elsewhere:
    let prev = REACTOR.replace(Some(reactor.clone()));
    if prev.is_some() {
        panic!("cannot wstd::runtime::block_on inside an existing block_on!")
    }

    // Spawn the task onto the reactor.
    // Safety: The execution loop below, concluding with pulling the Ready out
    // of the root_task, ensures that it does not outlive the Future or its
    // output.
    #[allow(unsafe_code)]
    let root_task = unsafe { reactor.spawn_unchecked(fut) };

    // Rounds: run the tasks that were ready when the round began, then check the pollables
    // once. Tasks woken during a round run in the next one, after that check. (Patched for
    // spin-visits, see `PATCHED.md`: 0.6.8 checked every pending pollable after each task it
    // ran, host work that grew with connections times requests.)
    loop {
        for _ in 0..reactor.ready_list_len() {
            match reactor.pop_ready_list() {
                Some(runnable) => {
                    runnable.run();
                }
                None => break,
            }
        }
        let idle = reactor.ready_list_is_empty();
        if reactor.pending_pollables_is_empty() {
            // No more work is possible - only a pending pollable could
            // possibly create a runnable, and there are none.
            if idle {
                break;
            }
        } else if idle {
            // Block until a pending pollable puts something on the ready list.
            reactor.block_on_pollables();
        } else {
            // Give tasks waiting on a pollable a chance to wake before the next round.
            reactor.nonblock_check_pollables();
        }
    }
    // Clear the singleton
    REACTOR.replace(None);
    // Get the result out of the root task
    let mut root_task = pin!(root_task);
    let mut noop_context = Context::from_waker(Waker::noop());
    match root_task.as_mut().poll(&mut noop_context) {
        Poll::Ready(res) => res,
        Poll::Pending => {
            unreachable!(
                "ready list empty, therefore root task should be ready. malformed root task?"
            )
        }
    }
}
