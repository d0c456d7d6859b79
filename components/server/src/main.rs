//! The server component: a WASI command that listens on `LISTEN_ADDR` through wasi:sockets
//! and serves the shared handler with hyper's HTTP/1.1 server, one task per connection.
//!
//! This is what Kubernetes runs: runwasi's wasmtime shim gives a command component the
//! container root preopened read-write (so the claim at `/data`), the pod's env and TCP
//! sockets, while it gives a wasi-http component no directory at all. It must therefore not
//! link the Spin entry, whose `incoming-handler` export would make runwasi run it as a proxy.

mod body;
mod lookup;
mod peers;
mod socket;
mod timer;

use anyhow::Context as _;
use body::HyperBody;
use http_body::Body as _;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use socket::{Connection, Listener};
use spin_visits::{App, Body, RequestBody};
use std::convert::Infallible;
use std::net::SocketAddrV4;
use std::rc::Rc;
use std::time::Duration;
use timer::WstdTimer;

const DEFAULT_LISTEN_ADDR: &str = "0.0.0.0:8080";
/// A client that has not sent a whole request head by then is dropped, so idle or slow
/// connections cannot pile up.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

#[wstd::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| DEFAULT_LISTEN_ADDR.into());
    let parsed: SocketAddrV4 = addr
        .parse()
        .with_context(|| format!("LISTEN_ADDR={addr} is not an IPv4 address and port"))?;
    let listener = Listener::bind(parsed, 1024)
        .await
        .with_context(|| format!("cannot listen on LISTEN_ADDR={addr}"))?;
    let app = Rc::new(App::from_env());
    // Tests and operators read the bound address from this line (port 0 picks a free one).
    println!(
        "spin-visits-server: pod {} serving {} on http://{}",
        app.config.pod_name,
        app.config.data_dir.display(),
        listener.local_addr()?
    );

    loop {
        match listener.accept().await {
            Ok(connection) => wstd::runtime::spawn(serve(connection, app.clone())).detach(),
            Err(err) => eprintln!("spin-visits-server: accept failed: {err}"),
        }
    }
}

async fn serve(connection: Connection, app: Rc<App>) {
    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let request = request.map(|body| RequestBody::from_end_of_stream(body.is_end_stream()));
        let (parts, body) = spin_visits::handle(&request, &app).into_parts();
        async move {
            // Only /visits/all waits here: it asks the peers before rendering.
            let body = match body {
                Body::Cluster(view) => Body::Full(view.render(&lookup::gather(view.peers()).await)),
                other => other,
            };
            Ok::<_, Infallible>(hyper::Response::from_parts(parts, HyperBody::from(body)))
        }
    });
    let served = http1::Builder::new()
        .timer(WstdTimer)
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(connection, service)
        .await;
    if let Err(err) = served {
        // Clients that hang up mid-request are routine; anything else is worth a line.
        if !err.is_incomplete_message() {
            eprintln!("spin-visits-server: connection error: {err}");
        }
    }
}
