//! The handler's port on the server: visits go through group commit, `/visits/all` through
//! the shared fan-out, and `/readyz` says so while the replica drains.

use crate::server::Server;
use spin_visits::cluster::PeerReport;
use spin_visits::host::{Appended, Host};
use spin_visits::record::RECORD_LEN;

pub struct ServerHost<'a>(pub &'a Server);

impl Host for ServerHost<'_> {
    async fn append(&self, record: [u8; RECORD_LEN]) -> Appended {
        self.0.committer.append(record).await
    }

    async fn ask_peers(&self, configured: &[String]) -> Vec<PeerReport> {
        let asked = self.0.fanout.ask(configured).await;
        let age = asked.at.elapsed();
        asked
            .reports
            .iter()
            .map(|report| report.clone().asked_ago(age))
            .collect()
    }

    fn unready_reason(&self) -> Option<String> {
        self.0
            .draining()
            .then(|| "draining: this replica is shutting down".to_owned())
    }

    fn metrics(&self, pod: &str, out: &mut String) {
        let server = self.0;
        server
            .stats
            .render(out, pod, server.open_connections(), server.working_cap());
    }
}
