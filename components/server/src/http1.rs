//! The one connection setup of both ports (service and admin): hyper's HTTP/1.1 server over
//! a [`Connection`], which enforces its deadlines itself, so hyper's own header-read timer is
//! off. hyper answers a request it cannot parse (400, 414, 431) itself, before any service
//! runs; with `error_response_headers` (our patch, vendor/hyper/PATCHED.md) those answers
//! carry the promised headers too.

use crate::connection::Connection;
use crate::timer::WstdTimer;
use http::HeaderMap;
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::HttpService;
use std::error::Error;
use std::future::Future;

type BoxError = Box<dyn Error + Send + Sync>;

/// hyper's connection setup, made once per port: every connection shares its settings and
/// the promised headers of its own refusals.
pub struct Http1(http1::Builder);

impl Http1 {
    pub fn new(promised: HeaderMap) -> Self {
        let mut builder = http1::Builder::new();
        builder
            .timer(WstdTimer)
            .header_read_timeout(None)
            .error_response_headers(promised);
        Self(builder)
    }

    /// Serves `connection` until it ends; an error other than a client hanging up
    /// mid-request is logged. Says whether the connection ended cleanly.
    pub fn serve<S, B>(&self, connection: Connection, service: S) -> impl Future<Output = bool>
    where
        S: HttpService<Incoming, ResBody = B>,
        S::Error: Into<BoxError>,
        B: Body + 'static,
        B::Error: Into<BoxError>,
    {
        let served = self.0.serve_connection(connection, service);
        async move {
            match served.await {
                Ok(()) => true,
                // Clients that hang up mid-request are routine, and connections closed for a
                // waiting client are counted in /metrics; anything else is worth a line.
                Err(err) if err.is_incomplete_message() || evicted(&err) => false,
                Err(err) => {
                    eprintln!("spin-visits-server: connection error: {err}");
                    false
                }
            }
        }
    }
}

fn evicted(err: &hyper::Error) -> bool {
    err.source()
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .is_some_and(|err| err.kind() == std::io::ErrorKind::ConnectionAborted)
}
