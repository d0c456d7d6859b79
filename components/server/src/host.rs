//! The handler's port on the server: visits go through group commit, `/visits/all` through
//! the shared fan-out, and `/readyz` says so while the replica drains.

use crate::commit::Committer;
use crate::drain::Drain;
use crate::fanout::Fanout;
use crate::registry::Registry;
use crate::stats::Stats;
use spin_visits::cluster::PeerReport;
use spin_visits::host::{Appended, Host};
use spin_visits::record::RECORD_LEN;
use std::rc::Rc;

pub struct ServerHost<'a> {
    pub committer: &'a Rc<Committer>,
    pub fanout: &'a Rc<Fanout>,
    pub stats: &'a Stats,
    pub registry: &'a Registry,
    pub drain: &'a Drain,
}

impl Host for ServerHost<'_> {
    async fn append(&self, record: [u8; RECORD_LEN]) -> Appended {
        self.committer.append(record).await
    }

    async fn ask_peers(&self, configured: &[String]) -> Vec<PeerReport> {
        let asked = self.fanout.ask(configured).await;
        let age = asked.at.elapsed();
        asked
            .reports
            .iter()
            .map(|report| report.clone().asked_ago(age))
            .collect()
    }

    fn unready_reason(&self) -> Option<String> {
        self.drain
            .draining()
            .then(|| "draining: this replica is shutting down".to_owned())
    }

    fn metrics(&self, pod: &str, out: &mut String) {
        self.stats.render(out, pod, self.registry);
    }
}
