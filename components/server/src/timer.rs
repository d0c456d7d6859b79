//! hyper's timer (for the header-read timeout) on wstd's monotonic clock.

use hyper::rt::{Sleep, Timer};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct WstdTimer;

impl Timer for WstdTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Box::pin(WstdSleep(wstd::task::sleep(
            wstd::time::Duration::from_nanos(nanos),
        )))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        self.sleep(deadline.saturating_duration_since(Instant::now()))
    }
}

struct WstdSleep(wstd::time::Wait);

// hyper asks for Send + Sync sleeps because most hosts have threads; a WASI 0.2 component
// has exactly one, so nothing can ever observe this value from another thread.
unsafe impl Send for WstdSleep {}
unsafe impl Sync for WstdSleep {}

impl Sleep for WstdSleep {}

impl Future for WstdSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: structural pinning of the only field; it is never moved out.
        let wait = unsafe { self.map_unchecked_mut(|sleep| &mut sleep.0) };
        wait.poll(cx).map(|_woke_at| ())
    }
}
