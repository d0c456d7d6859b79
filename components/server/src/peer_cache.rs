//! The cluster view's peers on the server: which peers to ask (`PEERS`, or `PEER_SERVICE`'s
//! addresses), and one round of asks in flight at a time.
//!
//! Every request asking every peer would make N requests a second to one replica N × peers
//! across the StatefulSet. Concurrent requests share the round in flight, and its answers
//! serve the requests of the next `window` too (`PEER_CACHE_MILLISECONDS`), so a peer sees at
//! most about one ask per window from each replica, whatever the request rate.

use crate::lookup::resolve_all_ipv4;
use crate::peer_transport::SocketTransport;
use futures_channel::oneshot;
use spin_visits::config::PeerService;
use spin_visits::peers::{ask_all, discovered_peers, sort_by_pod, PeerReport};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// One round's answers and when they were asked.
#[derive(Clone)]
pub struct Asked {
    pub at: Instant,
    pub reports: Rc<Vec<PeerReport>>,
}

pub struct PeerCache {
    /// `PEER_SERVICE`, from the config; used when `PEERS` is empty.
    service: Option<PeerService>,
    window: Duration,
    last: RefCell<Option<Asked>>,
    /// Requests waiting for the round in flight; `None` while none is.
    waiting: RefCell<Option<Vec<oneshot::Sender<Asked>>>>,
}

impl PeerCache {
    pub fn new(service: Option<PeerService>, window: Duration) -> Rc<Self> {
        Rc::new(Self {
            service,
            window,
            last: RefCell::default(),
            waiting: RefCell::default(),
        })
    }

    /// The peers' reports: from the last round if it is younger than the window, else from
    /// the one in flight, else from a new one, each peer given `timeout`.
    pub async fn ask(self: &Rc<Self>, configured: &[String], timeout: Duration) -> Asked {
        if let Some(last) = self.last.borrow().as_ref() {
            if last.at.elapsed() < self.window {
                return last.clone();
            }
        }
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut waiting = self.waiting.borrow_mut();
            let start = waiting.is_none();
            waiting.get_or_insert_with(Vec::new).push(reply);
            start
        };
        if start {
            // Its own task, so a client that hangs up cannot strand the others waiting.
            let (cache, configured) = (self.clone(), configured.to_vec());
            wstd::runtime::spawn(async move {
                let reports = Rc::new(cache.gather(&configured, timeout).await);
                let asked = Asked {
                    at: Instant::now(),
                    reports,
                };
                *cache.last.borrow_mut() = Some(asked.clone());
                for reply in cache.waiting.borrow_mut().take().unwrap_or_default() {
                    let _ = reply.send(asked.clone());
                }
            })
            .detach();
        }
        answer
            .await
            .expect("the round answers every waiting request")
    }

    /// The reports for the cluster view: the configured `PEERS`, or else every address
    /// behind `PEER_SERVICE` (looked up again each time, so a scaled StatefulSet is seen), in
    /// pod order.
    async fn gather(&self, configured: &[String], timeout: Duration) -> Vec<PeerReport> {
        if !configured.is_empty() {
            return ask_all(&SocketTransport, configured, timeout).await;
        }
        let Some(service) = &self.service else {
            return Vec::new();
        };
        let name = format!("{}:{}", service.host, service.port);
        match resolve_all_ipv4(&service.host).await {
            Ok(addresses) if addresses.is_empty() => {
                vec![PeerReport::down(&name, "the name has no IPv4 address")]
            }
            Ok(addresses) => {
                let peers = discovered_peers(&addresses, service.port);
                let mut reports = ask_all(&SocketTransport, &peers, timeout).await;
                sort_by_pod(&mut reports);
                reports
            }
            Err(err) => vec![PeerReport::down(&name, err.to_string())],
        }
    }
}
