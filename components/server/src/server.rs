//! The server's parts, wired once: the handler's app, group commit, the peer cache, the
//! counters, the connection registry, the drain, the watch for another server on the data
//! directory. Each room takes what it needs from here;
//! none of them imports another's internals.

use crate::commit::Committer;
use crate::connection::Timeouts;
use crate::drain::Drain;
use crate::host::ServerHost;
use crate::http1::Http1;
use crate::in_flight::Requests;
use crate::peer_cache::PeerCache;
use crate::presence::Watch;
use crate::registry::Registry;
use crate::stats::Stats;
use http::HeaderMap;
use spin_visits::server_config::ServerConfig;
use spin_visits::App;
use std::rc::Rc;

pub struct Server {
    pub app: App,
    pub committer: Rc<Committer>,
    pub peer_cache: Rc<PeerCache>,
    pub stats: Rc<Stats>,
    pub registry: Rc<Registry>,
    pub drain: Drain,
    pub watch: Rc<Watch>,
    pub requests: Requests,
    pub timeouts: Timeouts,
    /// What every answer carries, the ones the handler does not make included.
    pub promised_headers: HeaderMap,
    /// The connection setup of both ports.
    pub http1: Http1,
}

impl Server {
    /// `about` names this server to another on the same data directory.
    pub fn new(config: &ServerConfig, about: &str) -> Rc<Self> {
        let mut app = App::new(config.app.clone());
        // A replica's volume is its own (one pod per claim) and the committer writes one
        // batch at a time: the log is held open, and the handler's probes share it.
        app.log = app.log.sole_writer();
        let stats = Rc::new(Stats::default());
        let promised_headers = spin_visits::routes::promised_headers(&app.config.pod_name);
        Rc::new(Self {
            http1: Http1::new(promised_headers.clone()),
            promised_headers,
            committer: Committer::new(app.log.clone(), stats.clone()),
            stats,
            peer_cache: PeerCache::new(config.peer_service.clone(), config.peer_cache),
            app,
            registry: Registry::new(config.max_connections),
            drain: Drain::new(config.drain_delay, config.drain_timeout),
            watch: Watch::new(&config.app.data_dir, about),
            requests: Requests::default(),
            timeouts: Timeouts {
                idle: config.idle_timeout,
                header_read: config.header_read_timeout,
                write: config.write_timeout,
                min_rate: config.min_rate,
            },
        })
    }

    /// The handler's port onto these parts.
    pub fn host(&self) -> ServerHost<'_> {
        ServerHost {
            committer: &self.committer,
            peer_cache: &self.peer_cache,
            stats: &self.stats,
            registry: &self.registry,
            drain: &self.drain,
            watch: &self.watch,
        }
    }

    /// `/drain`; the process exits after it, so this server leaves the data directory.
    pub async fn drain(&self) -> String {
        let said = self.drain.run(&self.registry, &self.requests).await;
        self.watch.leave();
        said
    }
}
