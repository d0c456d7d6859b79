//! `/visits/all` in the Spin component: asks every peer for its last visits through the
//! host's outbound HTTP (`wasi:http/outgoing-handler`). All requests are sent before any
//! answer is awaited, so peers are asked at once; a peer that is down or slow is reported
//! as down after the timeouts below.

use spin_visits::cluster::{PeerReport, COUNT_HEADER, MAX_PEER_BODY, PEER_PATH};
use wasi::http::outgoing_handler;
use wasi::http::types::{
    Fields, FutureIncomingResponse, IncomingResponse, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme,
};
use wasi::io::streams::StreamError;

const CONNECT_TIMEOUT_NS: u64 = 1_000_000_000;
const ANSWER_TIMEOUT_NS: u64 = 2_000_000_000;

/// One report per peer, in order.
pub fn gather(peers: &[String]) -> Vec<PeerReport> {
    let sent: Vec<_> = peers.iter().map(|peer| (peer, send(peer))).collect();
    sent.into_iter()
        .map(
            |(peer, sent)| match sent.and_then(|future| receive(peer, future)) {
                Ok(report) => report,
                Err(reason) => PeerReport::down(peer, reason),
            },
        )
        .collect()
}

fn send(peer: &str) -> Result<FutureIncomingResponse, String> {
    let request = OutgoingRequest::new(Fields::new());
    let refused = |what: &str| format!("invalid {what} for {peer}");
    request
        .set_scheme(Some(&Scheme::Http))
        .map_err(|()| refused("scheme"))?;
    request
        .set_authority(Some(peer))
        .map_err(|()| refused("authority"))?;
    request
        .set_path_with_query(Some(PEER_PATH))
        .map_err(|()| refused("path"))?;
    let options = RequestOptions::new();
    // Hosts that do not support a timeout refuse it; the request still goes out.
    let _ = options.set_connect_timeout(Some(CONNECT_TIMEOUT_NS));
    let _ = options.set_first_byte_timeout(Some(ANSWER_TIMEOUT_NS));
    let _ = options.set_between_bytes_timeout(Some(ANSWER_TIMEOUT_NS));
    let body = request.body().map_err(|()| refused("body"))?;
    let future = outgoing_handler::handle(request, Some(options))
        .map_err(|code| format!("not sent: {code:?}"))?;
    OutgoingBody::finish(body, None).map_err(|code| format!("not sent: {code:?}"))?;
    Ok(future)
}

fn receive(peer: &str, future: FutureIncomingResponse) -> Result<PeerReport, String> {
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(format!("{code:?}")),
        Some(Err(())) | None => return Err("no answer".into()),
    };
    let header = |name: &str| {
        response
            .headers()
            .get(&name.to_string())
            .into_iter()
            .next()
            .and_then(|value| String::from_utf8(value).ok())
    };
    let served_by = header(spin_visits::routes::SERVED_BY);
    let count = header(COUNT_HEADER);
    let body = read_body(&response)?;
    Ok(PeerReport::from_reply(
        peer,
        response.status(),
        served_by.as_deref(),
        count.as_deref(),
        &body,
    ))
}

fn read_body(response: &IncomingResponse) -> Result<Vec<u8>, String> {
    let body = response.consume().map_err(|()| "no body")?;
    let mut bytes = Vec::new();
    {
        // The stream is a child of the body and must go first.
        let stream = body.stream().map_err(|()| "no body stream")?;
        loop {
            match stream.blocking_read(16 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(err)) => {
                    return Err(format!("reading the answer: {}", err.to_debug_string()))
                }
            }
            if bytes.len() > MAX_PEER_BODY {
                return Err("answer too long".into());
            }
        }
    }
    Ok(bytes)
}
