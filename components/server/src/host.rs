//! The handler's port on the server: visits go through group commit, the cluster view
//! through the shared round of asks (`peer_cache`), and `/readyz` fails while the replica
//! drains or while another server writes its data directory (`presence`).

use crate::commit::Committer;
use crate::drain::Drain;
use crate::peer_cache::PeerCache;
use crate::presence::Watch;
use crate::registry::Registry;
use crate::stats::Stats;
use spin_visits::host::{Appended, Host};
use spin_visits::peers::PeerReport;
use spin_visits::record::RECORD_LEN;
use std::rc::Rc;
use std::time::Duration;

pub struct ServerHost<'a> {
    pub committer: &'a Rc<Committer>,
    pub peer_cache: &'a Rc<PeerCache>,
    pub stats: &'a Stats,
    pub registry: &'a Registry,
    pub drain: &'a Drain,
    pub watch: &'a Watch,
}

impl Host for ServerHost<'_> {
    async fn append(&self, record: [u8; RECORD_LEN]) -> Appended {
        self.committer.append(record).await
    }

    async fn ask_peers(&self, configured: &[String], timeout: Duration) -> Vec<PeerReport> {
        let asked = self.peer_cache.ask(configured, timeout).await;
        let age = asked.at.elapsed();
        asked
            .reports
            .iter()
            .map(|report| report.clone().asked_ago(age))
            .collect()
    }

    fn unready_reason(&self) -> Option<String> {
        match self.drain.draining() {
            true => Some("draining: this replica is shutting down".to_owned()),
            false => self.watch.unready_reason(),
        }
    }

    fn metrics(&self, pod: &str, out: &mut String) {
        self.stats.render(out, pod, self.registry);
    }
}
