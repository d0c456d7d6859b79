//! What both Spin builds share: a wasi-http request in, the shared handler, its answer
//! streamed back. `components/spin` (file store, `wasi:*` imports only) and
//! `components/spin-sqlite` (adds Spin's SQLite) are thin entry crates over this one.

mod peer_transport;
mod request;
mod response;

pub use response::send;

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_visits::host::{Appended, Host};
use spin_visits::peers::{ask_all, PeerReport};
use spin_visits::record::RECORD_LEN;
use spin_visits::visit_log::VisitLog;
use spin_visits::App;
use std::rc::Rc;
use std::time::Duration;

/// Answers one request with `host`, or with a 400 (and the headers every answer carries)
/// when the request cannot be converted.
pub async fn serve(
    incoming: IncomingRequest,
    outparam: ResponseOutparam,
    app: &App,
    host: &impl Host,
) {
    let response = match request::to_http_request(&incoming) {
        Ok(request) => spin_visits::handle(&request, app, host).await,
        Err(reason) => spin_visits::routes::text(
            http::StatusCode::BAD_REQUEST,
            format!("{reason}\n"),
            &app.config.pod_name,
        ),
    };
    send(response, outparam);
}

/// Answers every request with `status` and `reason` (a setting this build cannot honour),
/// with the headers every answer carries.
pub fn refuse(outparam: ResponseOutparam, app: &App, status: http::StatusCode, reason: &str) {
    send(
        spin_visits::routes::text(status, format!("{reason}\n"), &app.config.pod_name),
        outparam,
    );
}

/// A fresh instance per request: a visit is appended to the file log on its own, and the
/// peers are asked through the host's outbound HTTP.
pub struct FileHost<'a>(pub &'a VisitLog);

impl Host for FileHost<'_> {
    async fn append(&self, record: [u8; RECORD_LEN]) -> Appended {
        self.0.append(&record).map_err(Rc::new)
    }

    async fn ask_peers(&self, configured: &[String], timeout: Duration) -> Vec<PeerReport> {
        ask_peers(configured, timeout).await
    }
}

/// The peers asked through the host's outbound HTTP, for hosts with another store.
pub async fn ask_peers(configured: &[String], timeout: Duration) -> Vec<PeerReport> {
    ask_all(&peer_transport::OutgoingHttp, configured, timeout).await
}
