//! The admin listener (`ADMIN_ADDR`): `GET /drain` for the kubelet's preStop hook. No Service
//! exposes its port and the NetworkPolicy does not open it, so clients cannot drain a
//! replica.

use crate::connection::{Connection, Timeouts, Tracker};
use crate::listener::Listener;
use crate::server::Server;
use crate::timer;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

const TIMEOUTS: Timeouts = Timeouts {
    idle: Duration::from_secs(60),
    header_read: Duration::from_secs(10),
    write: Duration::from_secs(10),
};

pub async fn run(server: Rc<Server>, listener: Listener) {
    loop {
        let Ok(stream) = listener.accept().await else {
            wstd::task::sleep(Duration::from_millis(100).into()).await;
            continue;
        };
        let server = server.clone();
        let tracker = Tracker::new(TIMEOUTS);
        let connection = Connection::new(stream, tracker.clone());
        wstd::runtime::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                // A drain takes as long as it takes: no header-read deadline while it runs.
                tracker.answering();
                let server = server.clone();
                async move {
                    let (status, body) = match (request.method(), request.uri().path()) {
                        (&http::Method::GET, "/drain") => (200, server.drain().await),
                        (_, "/drain") => (405, "use GET\n".to_owned()),
                        _ => (
                            404,
                            "not found: the admin port serves GET /drain\n".to_owned(),
                        ),
                    };
                    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
                    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .timer(timer::WstdTimer)
                .header_read_timeout(None)
                .serve_connection(connection, service)
                .await;
        })
        .detach();
    }
}
