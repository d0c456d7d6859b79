//! The admin listener (`ADMIN_ADDR`): `GET /drain` for the kubelet's preStop hook. No Service
//! exposes its port and the NetworkPolicy does not open it; run locally it listens on
//! loopback. Once a drain has answered, the process exits 0.

use crate::accept::Backoff;
use crate::connection::{Connection, Timeouts, Tracker};
use crate::listener::{AcceptError, Listener};
use crate::server::Server;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use std::cell::Cell;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

const TIMEOUTS: Timeouts = Timeouts {
    idle: Duration::from_secs(60),
    header_read: Duration::from_secs(10),
    write: Duration::from_secs(10),
    // Never under pressure: the admin port has no cap.
    min_rate: spin_visits::server_config::MinRate {
        bytes_per_second: 1,
        window: Duration::from_secs(60),
    },
};

/// After a drain, how long its answer may take to reach a client before the process exits
/// anyway.
const EXIT_AFTER_ANSWER: Duration = Duration::from_secs(5);

pub async fn run(server: Rc<Server>, listener: Listener) {
    let backoff = Backoff::new();
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(AcceptError::OutOfDescriptors(err) | AcceptError::Other(err)) => {
                backoff.failed("admin", &err).await;
                continue;
            }
        };
        backoff.reset();
        let tracker = Tracker::new(TIMEOUTS);
        let connection = Connection::new(stream, tracker.clone());
        let drained = Rc::new(Cell::new(false));
        let service = {
            let (server, drained) = (server.clone(), drained.clone());
            service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                // A drain takes as long as it takes: no header-read deadline while it runs.
                tracker.answering();
                let (server, drained) = (server.clone(), drained.clone());
                async move { Ok::<_, Infallible>(answer(&server, &request, &drained).await) }
            })
        };
        let serving = server.http1.serve(connection, service);
        wstd::runtime::spawn(async move {
            serving.await;
            if drained.get() {
                exit();
            }
        })
        .detach();
    }
}

async fn answer(
    server: &Server,
    request: &hyper::Request<hyper::body::Incoming>,
    drained: &Cell<bool>,
) -> hyper::Response<Full<Bytes>> {
    let (status, body) = match (request.method(), request.uri().path()) {
        (&http::Method::GET, "/drain") => {
            let said = server.drain().await;
            drained.set(true);
            // The answer goes out on this connection, which then ends (and with it the
            // process); should the client not read it, the process exits all the same.
            wstd::runtime::spawn(async {
                wstd::task::sleep(EXIT_AFTER_ANSWER.into()).await;
                exit();
            })
            .detach();
            (200, said)
        }
        (_, "/drain") => (405, "use GET\n".to_owned()),
        _ => (
            404,
            "not found: the admin port serves GET /drain\n".to_owned(),
        ),
    };
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.extend(server.promised_headers.clone());
    if drained.get() {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Every visit acknowledged is written (and, with `APPEND_FSYNC=always`, synced) before its
/// answer, so nothing is lost by leaving without unwinding.
fn exit() -> ! {
    eprintln!("spin-visits-server: drained, exiting");
    std::process::exit(0)
}
