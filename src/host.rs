//! The port between the handler and the entry point it runs in: the two things a request may
//! wait for. Each entry point implements [`Host`] with what its runtime gives it; the handler
//! awaits them and knows nothing of Spin, sockets or batching.

use crate::peers::PeerReport;
use crate::record::RECORD_LEN;
use crate::store::VisitStore;
use crate::visit_log::{LogError, VisitLog};
use std::rc::Rc;
use std::time::Duration;

/// A visit's append: its count (its own record's number), or why it was not recorded. Shared
/// (`Rc`) because a batch that fails gives every visit in it the same error.
pub type Appended = Result<u64, Rc<LogError>>;

/// What the handler asks of the entry point.
// Components are single-threaded, so the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Host {
    /// Appends one visit's record: alone (the Spin component) or with others in one write
    /// (the server's group commit). Returns once the record is written (and synced).
    async fn append(&self, record: [u8; RECORD_LEN]) -> Appended;

    /// One report per peer for the cluster view: `configured` is `PEERS`; a host may find
    /// the peers itself when it is empty (the server through `PEER_SERVICE`). Each is asked
    /// through [`crate::peers::ask_all`] with `timeout` (`PEER_TIMEOUT_MILLISECONDS`).
    async fn ask_peers(&self, configured: &[String], timeout: Duration) -> Vec<PeerReport>;

    /// Why this replica should not get traffic now (the server while it drains), checked by
    /// `/readyz` before the volume is.
    fn unready_reason(&self) -> Option<String> {
        None
    }

    /// The store visits are read from when it is not the app's file log (the Spin
    /// component's SQLite database); it must be the one [`Host::append`] writes to.
    fn store(&self) -> Option<&dyn VisitStore> {
        None
    }

    /// Appends the host's own series to `/metrics` (the server: requests, connections,
    /// commits), labelled with `pod`.
    fn metrics(&self, _pod: &str, _out: &mut String) {}
}

/// A host that appends each visit at once and asks no peers: for tests, the fuzz
/// target and the native benchmark baseline.
#[derive(Debug, Clone, Copy)]
pub struct Direct<'a>(pub &'a VisitLog);

impl Host for Direct<'_> {
    async fn append(&self, record: [u8; RECORD_LEN]) -> Appended {
        self.0.append(&record).map_err(Rc::new)
    }

    async fn ask_peers(&self, configured: &[String], _: Duration) -> Vec<PeerReport> {
        configured
            .iter()
            .map(|peer| PeerReport::down(peer, "this host asks no peers"))
            .collect()
    }
}

/// Runs a future that never waits (one whose host answers at once, like [`Direct`]) to its
/// end, for synchronous callers.
///
/// # Panics
/// If the future waits: nothing would ever wake it.
pub fn now<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("host::now: the future waited"),
    }
}
