//! The server: accepts connections up to a cap, serves each with hyper's HTTP/1.1, and
//! drains for a rollout. After tokio's mini-redis `Listener`: a slot per connection, taken
//! before the accept, so past the cap new connections wait in the listen backlog.

use crate::body::HyperBody;
use crate::commit::Committer;
use crate::connection::{Connection, Timeouts, Tracker};
use crate::fanout::Fanout;
use crate::host::ServerHost;
use crate::listener::{AcceptError, Listener};
use crate::slots::Slots;
use crate::stats::Stats;
use crate::timer;
use http::header::{HeaderValue, CONNECTION};
use http_body::Body as _;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use spin_visits::server_config::ServerConfig;
use spin_visits::{App, RequestBody};
use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// After running out of descriptors, how long the lowered cap holds before it climbs back.
const CAP_PROBE_AFTER: Duration = Duration::from_secs(5);
/// Descriptors kept free when the cap is lowered: the log's reads, a probe, the peers.
const DESCRIPTOR_RESERVE: usize = 16;

pub struct Server {
    pub app: App,
    pub committer: Rc<Committer>,
    pub fanout: Rc<Fanout>,
    pub stats: Rc<Stats>,
    config: ServerConfig,
    slots: Rc<Slots>,
    last_out_of_descriptors: Cell<Option<Instant>>,
    /// Every open connection, for a drain to close the idle ones.
    connections: RefCell<Vec<Weak<Tracker>>>,
    /// Requests being answered.
    in_flight: Cell<usize>,
    /// Set by `/drain`: `/readyz` fails from then on.
    drain_started: Cell<Option<Instant>>,
    /// Set once the drain's delay has passed: connections close after their answer.
    closing: Cell<bool>,
}

impl Server {
    pub fn new(config: ServerConfig) -> Rc<Self> {
        let mut app = App::new(config.app.clone());
        // A replica's volume is its own (one pod per claim) and the committer writes one
        // batch at a time: the log is held open, and the handler's probes share it.
        app.log = app.log.sole_writer();
        let stats = Rc::new(Stats::default());
        Rc::new(Self {
            committer: Committer::new(app.log.clone(), stats.clone()),
            stats,
            fanout: Fanout::new(config.peer_cache),
            app,
            slots: Slots::new(config.max_connections),
            last_out_of_descriptors: Cell::new(None),
            connections: RefCell::default(),
            in_flight: Cell::new(0),
            drain_started: Cell::new(None),
            closing: Cell::new(false),
            config,
        })
    }

    pub fn draining(&self) -> bool {
        self.drain_started.get().is_some()
    }

    /// Connections the server takes now: `MAX_CONNECTIONS`, or fewer after running out of
    /// descriptors.
    pub fn working_cap(&self) -> usize {
        self.slots.cap()
    }

    /// Connections being served (the accept loop's slot, taken before the accept, is not one).
    pub fn open_connections(&self) -> usize {
        self.connections
            .borrow()
            .iter()
            .filter(|tracker| tracker.strong_count() > 0)
            .count()
    }

    /// Accepts and serves connections forever.
    pub async fn run(self: &Rc<Self>, listener: Listener) {
        let timeouts = Timeouts {
            idle: self.config.idle_timeout,
            header_read: self.config.header_read_timeout,
            write: self.config.write_timeout,
        };
        let mut backoff = ACCEPT_BACKOFF_MIN;
        loop {
            let slot = self.slots.take().await;
            match listener.accept().await {
                Ok(stream) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    self.probe_lowered_cap();
                    // While draining, a new connection still gets its answer, with
                    // `Connection: close` (see `close_after_answer`).
                    let tracker = Tracker::new(timeouts);
                    self.track(&tracker);
                    let server = self.clone();
                    wstd::runtime::spawn(async move {
                        server
                            .serve(Connection::new(stream, tracker.clone()), tracker)
                            .await;
                        drop(slot);
                    })
                    .detach()
                }
                // Out of descriptors (more connections than the pod's RLIMIT_NOFILE allows):
                // serve the connections held, take no more until a reserve is free for the
                // log and the peer requests, and wait before trying again so as not to spin.
                Err(AcceptError::OutOfDescriptors(err)) => {
                    drop(slot);
                    self.stats.accept_failed();
                    self.slots.lower_to_fit(DESCRIPTOR_RESERVE);
                    self.last_out_of_descriptors.set(Some(Instant::now()));
                    eprintln!(
                        "spin-visits-server: accept failed: {err}; out of descriptors, serving at most {} connections",
                        self.working_cap()
                    );
                    wstd::task::sleep(backoff.into()).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
                Err(AcceptError::Other(err)) => {
                    self.stats.accept_failed();
                    eprintln!("spin-visits-server: accept failed: {err}; retrying in {backoff:?}");
                    wstd::task::sleep(backoff.into()).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
            }
        }
    }

    /// Once descriptors have not run out for a while, each accepted connection raises a
    /// lowered cap by one slot, back towards `MAX_CONNECTIONS`; running out again lowers it.
    fn probe_lowered_cap(&self) {
        if let Some(at) = self.last_out_of_descriptors.get() {
            if at.elapsed() > CAP_PROBE_AFTER {
                self.slots.raise();
            }
        }
    }

    fn track(&self, tracker: &Rc<Tracker>) {
        let mut connections = self.connections.borrow_mut();
        if connections.len() >= 2 * self.slots.open() {
            connections.retain(|weak| weak.strong_count() > 0);
        }
        connections.push(Rc::downgrade(tracker));
    }

    /// Whether an answer should end its connection: while draining, or while every slot is
    /// taken, so keep-alive slots rotate and clients waiting in the backlog get their turn.
    fn close_after_answer(&self) -> bool {
        self.closing.get() || self.slots.full()
    }

    async fn serve(self: &Rc<Self>, connection: Connection, tracker: Rc<Tracker>) {
        let server = self.clone();
        let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            tracker.answering();
            let started = Instant::now();
            let in_flight = InFlight::new(server.clone());
            let request = request.map(|body| RequestBody::from_end_of_stream(body.is_end_stream()));
            let (server, tracker) = (server.clone(), tracker.clone());
            async move {
                let response =
                    spin_visits::handle(&request, &server.app, &ServerHost(&server)).await;
                let (mut parts, body) = response.into_parts();
                let route = spin_visits::routes::route_label(request.uri().path());
                server
                    .stats
                    .request(route, parts.status.as_u16(), started.elapsed());
                if server.close_after_answer() || tracker.closing() {
                    parts
                        .headers
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(hyper::Response::from_parts(
                    parts,
                    HyperBody::new(body, tracker, in_flight),
                ))
            }
        });
        // The connection enforces its deadlines itself (see `connection.rs`).
        let served = http1::Builder::new()
            .timer(timer::WstdTimer)
            .header_read_timeout(None)
            .serve_connection(connection, service)
            .await;
        if let Err(err) = served {
            // Clients that hang up mid-request are routine; anything else is worth a line.
            if !err.is_incomplete_message() {
                eprintln!("spin-visits-server: connection error: {err}");
            }
        }
    }

    /// `/drain`, for the kubelet's preStop: fail readiness at once, keep serving while the
    /// endpoint leaves the Service, then close connections as they go idle and return once
    /// no request is in flight and no connection open (or the timeout passes). Calling it
    /// again waits the same way.
    pub async fn drain(self: &Rc<Self>) -> String {
        let started = *self.drain_started.get().get_or_insert_with(|| {
            let now = Instant::now();
            self.drain_started.set(Some(now));
            eprintln!("spin-visits-server: draining");
            now
        });
        let delay = self.config.drain_delay.saturating_sub(started.elapsed());
        if !delay.is_zero() {
            wstd::task::sleep(delay.into()).await;
        }
        if !self.closing.replace(true) {
            for tracker in self.connections.borrow().iter().filter_map(Weak::upgrade) {
                tracker.close_when_idle();
            }
        }
        let deadline = started + self.config.drain_delay + self.config.drain_timeout;
        // Visits in flight include those queued for the next group commit. Connections are
        // waited for too: busy ones end with their next answer, idle ones a second after the
        // drain reaches them, and one still open when the container is killed would be reset
        // under its client's next request.
        while (self.in_flight.get() > 0 || self.open_connections() > 0) && Instant::now() < deadline
        {
            wstd::task::sleep(Duration::from_millis(20).into()).await;
        }
        format!(
            "drained: {} requests in flight, {} connections open\n",
            self.in_flight.get(),
            self.open_connections()
        )
    }
}

/// A request being answered, from the head's arrival until its body is done (or the
/// request is dropped).
pub struct InFlight(Rc<Server>);

impl InFlight {
    fn new(server: Rc<Server>) -> Self {
        server.in_flight.set(server.in_flight.get() + 1);
        Self(server)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
    }
}
