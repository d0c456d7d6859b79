//! The accept loop and its cap. Connections are taken in arrival order: the listen backlog
//! is first in, first out, and the loop accepts the next connection only once the one before
//! has a slot. At the cap the accepted newcomer does not wait while a connection making no
//! progress holds a slot: the registry closes that one for it (`registry.rs`), and while the
//! newcomer waits a connection that has had its turn ends with its next answer, so slots
//! turn over in turn.
//!
//! A newcomer held while it waits costs one descriptor beyond the cap; running out of
//! descriptors lowers the cap to keep a reserve, makes room for the newcomer still in the
//! backlog as the cap does, and a quiet spell raises the cap back.

use crate::adapter;
use crate::connection::{Connection, Tracker};
use crate::listener::{AcceptError, Listener};
use crate::server::Server;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// After running out of descriptors, how long the lowered cap holds before it climbs back.
const CAP_PROBE_AFTER: Duration = Duration::from_secs(5);
/// Descriptors kept free when the cap is lowered: the log's reads, a probe, the peers.
const DESCRIPTOR_RESERVE: usize = 16;
/// While a newcomer waits at the cap, how often the open connections are judged again (one
/// may have gone idle or slow since).
const RECHECK: Duration = Duration::from_millis(100);

/// The wait between failed accepts: doubling from 5 ms to 1 s, reset by a success.
pub struct Backoff(Cell<Duration>);

impl Backoff {
    const MIN: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    pub fn new() -> Self {
        Self(Cell::new(Self::MIN))
    }

    pub fn reset(&self) {
        self.0.set(Self::MIN);
    }

    /// Logs the failure on `port` and waits before the next try, so as not to spin.
    pub async fn failed(&self, port: &str, err: &std::io::Error) {
        self.failed_within(port, err, Self::MAX).await;
    }

    /// [`Backoff::failed`], waiting at most `longest`.
    pub async fn failed_within(&self, port: &str, err: &std::io::Error, longest: Duration) {
        let wait = self.0.get().min(longest);
        eprintln!(
            "spin-visits-server: accept on the {port} port failed: {err}; retrying in {wait:?}"
        );
        wstd::task::sleep(wait.into()).await;
        self.0.set((wait * 2).min(Self::MAX));
    }
}

/// Accepts and serves connections of the service port forever.
pub async fn run(server: Rc<Server>, listener: Listener) {
    let backoff = Backoff::new();
    let mut last_out_of_descriptors: Option<Instant> = None;
    let registry = &server.registry;
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            // Out of descriptors (more connections than the pod's RLIMIT_NOFILE allows):
            // serve the connections held, and take no more until a reserve is free for the
            // log and the peer requests.
            Err(AcceptError::OutOfDescriptors(err)) => {
                server.stats.accept_failed();
                registry.lower_to_fit(DESCRIPTOR_RESERVE);
                registry.make_room();
                last_out_of_descriptors = Some(Instant::now());
                eprintln!(
                    "spin-visits-server: out of descriptors, serving at most {} connections",
                    registry.cap()
                );
                // Descriptors come back as the connections chosen to yield end: try again
                // as soon as one may have, not after a backoff grown to a second.
                backoff.failed_within("service", &err, RECHECK).await;
                continue;
            }
            Err(AcceptError::Other(err)) => {
                server.stats.accept_failed();
                backoff.failed("service", &err).await;
                continue;
            }
        };
        backoff.reset();
        // Once descriptors have not run out for a while, each accepted connection raises a
        // lowered cap by one slot, back towards `MAX_CONNECTIONS`; running out again lowers it.
        if last_out_of_descriptors.is_some_and(|at| at.elapsed() > CAP_PROBE_AFTER) {
            registry.raise();
        }
        let tracker = Tracker::new(server.timeouts);
        // While draining, a new connection still gets its answer, with `Connection: close`.
        let registration = Rc::new(registry.admit(tracker.clone(), RECHECK).await);
        let service = adapter::service(server.clone(), tracker.clone(), registration.clone());
        let serving = server
            .http1
            .serve(Connection::new(stream, tracker), service);
        wstd::runtime::spawn(async move {
            serving.await;
            drop(registration);
        })
        .detach();
    }
}
