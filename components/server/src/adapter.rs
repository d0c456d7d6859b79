//! The request adapter: hyper's request in, the shared handler, hyper's response out, with
//! the request counted and timed, and `Connection: close` when the slot must turn over (the
//! server is draining, or pressed at its cap and the connection has had its turn) or the
//! connection is closing.

use crate::body::HyperBody;
use crate::connection::Tracker;
use crate::registry::Registration;
use crate::server::Server;
use http::header::{HeaderValue, CONNECTION};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::service::{service_fn, HttpService};
use spin_visits::RequestBody;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Instant;

/// The service for one connection of the service port.
pub fn service(
    server: Rc<Server>,
    tracker: Rc<Tracker>,
    registration: Rc<Registration>,
) -> impl HttpService<Incoming, ResBody = HyperBody, Error = Infallible> {
    service_fn(move |request: hyper::Request<Incoming>| {
        tracker.answering();
        let started = Instant::now();
        let in_flight = server.requests.start();
        let request = request.map(|body| RequestBody::from_end_of_stream(body.is_end_stream()));
        let (server, tracker, registration) =
            (server.clone(), tracker.clone(), registration.clone());
        async move {
            let response = spin_visits::handle(&request, &server.app, &server.host()).await;
            let (mut parts, body) = response.into_parts();
            let route = spin_visits::routes::route_label(request.uri().path());
            server
                .stats
                .request(route, parts.status.as_u16(), started.elapsed());
            // At the cap, ending a keep-alive connection that has had its turn lets a client
            // waiting for a slot in; its slot is given back as the answer ends.
            let closing = server.drain.closing() || tracker.closing();
            let turn_over = !closing && server.registry.pressed() && tracker.had_its_turn();
            if turn_over {
                server.stats.turn_ended();
            }
            let last = closing || turn_over;
            if last {
                parts
                    .headers
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(hyper::Response::from_parts(
                parts,
                HyperBody::new(body, tracker, in_flight, last.then_some(registration)),
            ))
        }
    })
}
