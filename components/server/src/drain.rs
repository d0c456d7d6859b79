//! `/drain`, for the kubelet's preStop hook: fail readiness at once, keep serving while the
//! endpoint leaves the Service, then close connections as they go idle, and end once no
//! request is in flight and no connection open (or the timeout passes). The admin port then
//! answers and the process exits 0 (see `admin.rs`): a pod being deleted stops at once, and
//! a replica drained by anyone else is restarted by the kubelet instead of staying unready.

use crate::in_flight::Requests;
use crate::registry::Registry;
use std::cell::Cell;
use std::time::{Duration, Instant};

pub struct Drain {
    delay: Duration,
    timeout: Duration,
    /// Set by `/drain`: `/readyz` fails from then on.
    started: Cell<Option<Instant>>,
    /// Set once the delay has passed: connections close after their answer.
    closing: Cell<bool>,
}

impl Drain {
    pub fn new(delay: Duration, timeout: Duration) -> Self {
        Self {
            delay,
            timeout,
            started: Cell::new(None),
            closing: Cell::new(false),
        }
    }

    pub fn draining(&self) -> bool {
        self.started.get().is_some()
    }

    /// Whether answers end their connections now.
    pub fn closing(&self) -> bool {
        self.closing.get()
    }

    /// Drains and says how it ended. Calling it again waits the same way.
    pub async fn run(&self, registry: &Registry, requests: &Requests) -> String {
        let started = *self.started.get().get_or_insert_with(|| {
            let now = Instant::now();
            self.started.set(Some(now));
            eprintln!("spin-visits-server: draining");
            now
        });
        let delay = self.delay.saturating_sub(started.elapsed());
        if !delay.is_zero() {
            wstd::task::sleep(delay.into()).await;
        }
        if !self.closing.replace(true) {
            registry.each(|tracker| tracker.close_when_idle());
        }
        let deadline = started + self.delay + self.timeout;
        // Visits in flight include those queued for the next group commit. Connections are
        // waited for too: busy ones end with their next answer, idle ones a second after the
        // drain reaches them, and one still open when the process exits would be reset under
        // its client's next request.
        while (requests.in_flight() > 0 || registry.open() > 0) && Instant::now() < deadline {
            wstd::task::sleep(Duration::from_millis(20).into()).await;
        }
        format!(
            "drained: {} requests in flight, {} connections open\n",
            requests.in_flight(),
            registry.open()
        )
    }
}
