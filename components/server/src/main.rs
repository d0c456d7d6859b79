//! The server component: a WASI command that listens on `LISTEN_ADDR` through wasi:sockets
//! and serves the shared handler with hyper's HTTP/1.1 server, one task per connection.
//!
//! This is what Kubernetes runs: runwasi's wasmtime shim gives a command component the
//! container root preopened read-write (so the claim at `/data`), the pod's env and TCP
//! sockets, while it gives a wasi-http component no directory at all. It must therefore not
//! link the Spin entry, whose `incoming-handler` export would make runwasi run it as a proxy.

mod body;
mod commit;
mod lookup;
mod peers;
mod socket;
mod timer;

use anyhow::Context as _;
use async_lock::Semaphore;
use body::HyperBody;
use commit::Committer;
use http_body::Body as _;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use socket::{Connection, Listener, Timeouts};
use spin_visits::server_config::ServerConfig;
use spin_visits::{App, Body, Prepared, RequestBody};
use std::convert::Infallible;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

#[wstd::main]
async fn main() -> anyhow::Result<()> {
    let config = ServerConfig::from_env().map_err(anyhow::Error::msg)?;
    let addr = config.listen_addr;
    let listener = Listener::bind(addr, config.listen_backlog)
        .await
        .with_context(|| format!("cannot listen on LISTEN_ADDR={addr}"))?;
    let app = Rc::new(App::from_env());
    // A replica's volume is its own (one pod per claim) and the committer writes one batch
    // at a time, so no twin visit can race ours.
    let committer = Committer::new(app.log.clone().sole_writer());
    // Tests and operators read the bound address from this line (port 0 picks a free one).
    println!(
        "spin-visits-server: pod {} serving {} on http://{} (APPEND_FSYNC={}, MAX_CONNECTIONS={})",
        app.config.pod_name,
        app.config.data_dir.display(),
        listener.local_addr()?,
        app.log.fsync().name(),
        config.max_connections,
    );

    let timeouts = Timeouts {
        idle: config.idle_timeout,
        request: config.header_read_timeout,
    };
    // Past the limit, new connections wait in the listen backlog, not in the served set.
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let slot = slots.acquire_arc().await;
        match listener.accept(timeouts).await {
            Ok(connection) => {
                backoff = ACCEPT_BACKOFF_MIN;
                let (app, committer) = (app.clone(), committer.clone());
                wstd::runtime::spawn(async move {
                    serve(connection, app, committer).await;
                    drop(slot);
                })
                .detach()
            }
            // Out of file descriptors, say (MAX_CONNECTIONS above the pod's RLIMIT_NOFILE):
            // retrying at once would spin, so wait, longer each time, as Go's net/http does.
            Err(err) => {
                eprintln!("spin-visits-server: accept failed: {err}; retrying in {backoff:?}");
                wstd::task::sleep(backoff.into()).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
}

async fn serve(connection: Connection, app: Rc<App>, committer: Rc<Committer>) {
    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let request = request.map(|body| RequestBody::from_end_of_stream(body.is_end_stream()));
        let prepared = spin_visits::prepare(&request, &app);
        let (app, committer) = (app.clone(), committer.clone());
        async move {
            let (parts, body) = match prepared {
                Prepared::Done(response) => response,
                Prepared::Visit(visit) => {
                    let appended = committer.append(*visit.record()).await;
                    visit.answer(appended.as_ref().copied().map_err(Rc::as_ref), &app)
                }
            }
            .into_parts();
            // /visits/all waits for the peers before rendering.
            let body = match body {
                Body::Cluster(view) => Body::Full(view.render(&lookup::gather(view.peers()).await)),
                other => other,
            };
            Ok::<_, Infallible>(hyper::Response::from_parts(parts, HyperBody::from(body)))
        }
    });
    // The connection enforces the idle and header-read timeouts itself (see `Timeouts`).
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
