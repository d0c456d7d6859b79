//! The Spin component: converts wasi-http types to `http` ones, calls the shared handler and
//! streams its body back. Imports nothing but `wasi:*`, so `spin up`, `wasmtime serve` and any
//! other WASI 0.2 HTTP host can run it.

mod peers;

use futures::SinkExt;
use spin_sdk::http::{Fields, IncomingRequest, Method, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;
use spin_visits::cluster::PeerReport;
use spin_visits::host::{Appended, Host};
use spin_visits::record::RECORD_LEN;
use spin_visits::visit_log::VisitLog;
use spin_visits::{App, Body, RequestBody};
use std::rc::Rc;
// The streams types spin-sdk 5.2 binds to (its own pinned `wasi` crate).
use wasi::io::streams::StreamError;

#[http_component]
async fn handle(incoming: IncomingRequest, outparam: ResponseOutparam) {
    let app = App::from_env();
    let response = match to_http_request(&incoming) {
        Ok(request) => spin_visits::handle(&request, &app, &SpinHost(&app.log)).await,
        Err(reason) => bad_request(reason),
    };
    send(response, outparam).await;
}

/// A fresh instance per request: a visit is appended on its own, and the peers are asked
/// through the host's outbound HTTP.
struct SpinHost<'a>(&'a VisitLog);

impl Host for SpinHost<'_> {
    async fn append(&self, record: [u8; RECORD_LEN]) -> Appended {
        self.0.append(&record).map_err(Rc::new)
    }

    async fn ask_peers(&self, configured: &[String]) -> Vec<PeerReport> {
        peers::gather(configured)
    }
}

fn to_http_request(incoming: &IncomingRequest) -> Result<http::Request<RequestBody>, String> {
    let method = match incoming.method() {
        Method::Get => http::Method::GET,
        Method::Head => http::Method::HEAD,
        Method::Post => http::Method::POST,
        Method::Put => http::Method::PUT,
        Method::Delete => http::Method::DELETE,
        Method::Patch => http::Method::PATCH,
        Method::Options => http::Method::OPTIONS,
        Method::Connect => http::Method::CONNECT,
        Method::Trace => http::Method::TRACE,
        // spin-sdk's own conversion panics on methods `http` rejects; answer 400 instead.
        Method::Other(other) => http::Method::from_bytes(other.as_bytes())
            .map_err(|_| format!("invalid method {other:?}"))?,
    };
    let uri = incoming.path_with_query().unwrap_or_else(|| "/".into());
    let mut request = http::Request::builder().method(method).uri(uri);
    for (name, value) in incoming.headers().entries() {
        request = request.header(name, value);
    }
    request
        .body(body_presence(incoming))
        .map_err(|err| format!("invalid request: {err}"))
}

/// Whether the request carries a body. The headers are not enough: hosts strip
/// `Transfer-Encoding` before the component sees them, so a chunked body is only visible in
/// the stream. A body-less request's stream ends at once, so this never waits for one.
fn body_presence(incoming: &IncomingRequest) -> RequestBody {
    let declared = incoming
        .headers()
        .get(http::header::CONTENT_LENGTH.as_str())
        .iter()
        .any(|length| length.as_slice() != b"0");
    let Ok(body) = incoming.consume() else {
        return RequestBody::Empty;
    };
    let first_byte = body.stream().map(|stream| stream.blocking_read(1));
    match first_byte {
        // The stream ended with nothing in it.
        Ok(Err(StreamError::Closed)) if !declared => RequestBody::Empty,
        Ok(Ok(bytes)) if bytes.is_empty() && !declared => RequestBody::Empty,
        // Bytes, a declared length, or a body the host could not decode (bad chunking).
        _ => RequestBody::Present,
    }
}

fn bad_request(reason: String) -> http::Response<Body> {
    let mut response = http::Response::new(Body::Full(format!("{reason}\n").into_bytes()));
    *response.status_mut() = http::StatusCode::BAD_REQUEST;
    response
}

async fn send(response: http::Response<Body>, outparam: ResponseOutparam) {
    let (parts, body) = response.into_parts();
    let headers: Vec<(String, Vec<u8>)> = parts
        .headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
        .collect();
    let outgoing = OutgoingResponse::new(Fields::from_list(&headers).expect("valid http headers"));
    outgoing
        .set_status_code(parts.status.as_u16())
        .expect("a valid status code");
    let mut sink = outgoing.take_body();
    outparam.set(outgoing);

    // The status is already on its way, so a read error can only end the stream early;
    // the client sees a truncated body rather than a false success.
    match body {
        Body::Full(bytes) => {
            let _ = sink.send(bytes).await;
        }
        Body::Listing(mut listing) => {
            while let Ok(Some(chunk)) = listing.next_chunk() {
                if sink.send(chunk).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = sink.close().await;
}
