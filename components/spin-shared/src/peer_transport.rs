//! The Spin component's [`PeerTransport`]: the host's outbound HTTP
//! (`wasi:http/outgoing-handler`). `send` only hands the request to the host, so every peer
//! is asked before any answer is awaited; `receive` waits on the answer and on a clock set to
//! the deadline, whichever is first. What to ask and what an answer means are
//! `spin_visits::peers`.

use spin_visits::peers::{
    AskError, PeerAddr, PeerReply, PeerTransport, COUNT_HEADER, MAX_PEER_BODY, PEER_PATH,
};
use std::time::Duration;
use wasi::clocks::monotonic_clock::{self, Instant};
use wasi::http::outgoing_handler;
use wasi::http::types::{
    Fields, FutureIncomingResponse, IncomingResponse, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme,
};
use wasi::io::poll::{poll, Pollable};
use wasi::io::streams::StreamError;

pub struct OutgoingHttp;

/// A request the host is sending, and when its whole answer is due.
pub struct Sent {
    response: FutureIncomingResponse,
    deadline: Instant,
}

impl PeerTransport for OutgoingHttp {
    type Sent = Sent;

    fn send(&self, peer: PeerAddr<'_>, timeout: Duration) -> Result<Sent, AskError> {
        let timeout_ns = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        let deadline = monotonic_clock::now().saturating_add(timeout_ns);
        let request = OutgoingRequest::new(Fields::new());
        let refused =
            |what: &str| AskError::Failed(format!("invalid {what} for {}", peer.authority));
        request
            .set_scheme(Some(&Scheme::Http))
            .map_err(|()| refused("scheme"))?;
        request
            .set_authority(Some(peer.authority))
            .map_err(|()| refused("authority"))?;
        request
            .set_path_with_query(Some(PEER_PATH))
            .map_err(|()| refused("path"))?;
        // The host's own timeouts, where it has them, end a dead connection early; the
        // deadline in `receive` bounds the whole answer either way.
        let options = RequestOptions::new();
        let _ = options.set_connect_timeout(Some(timeout_ns));
        let _ = options.set_first_byte_timeout(Some(timeout_ns));
        let _ = options.set_between_bytes_timeout(Some(timeout_ns));
        let body = request.body().map_err(|()| refused("body"))?;
        let not_sent = |code| AskError::Failed(format!("not sent: {code:?}"));
        let response = outgoing_handler::handle(request, Some(options)).map_err(not_sent)?;
        OutgoingBody::finish(body, None).map_err(not_sent)?;
        Ok(Sent { response, deadline })
    }

    async fn receive(&self, sent: Sent) -> Result<PeerReply, AskError> {
        let clock = monotonic_clock::subscribe_instant(sent.deadline);
        wait(&sent.response.subscribe(), &clock)?;
        let response = match sent.response.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) if is_timeout(&code) => return Err(AskError::TimedOut),
            Some(Ok(Err(code))) => return Err(AskError::Failed(format!("{code:?}"))),
            Some(Err(())) | None => return Err(AskError::Failed("no answer".into())),
        };
        let header = |name: &str| {
            response
                .headers()
                .get(&name.to_string())
                .into_iter()
                .next()
                .and_then(|value| String::from_utf8(value).ok())
        };
        let (served_by, count) = (header(spin_visits::routes::SERVED_BY), header(COUNT_HEADER));
        let body = read_body(&response, &clock)?;
        Ok(PeerReply {
            status: response.status(),
            served_by,
            count,
            body,
        })
    }
}

/// Blocks until `ready` is, or fails with [`AskError::TimedOut`] once `clock` is.
fn wait(ready: &Pollable, clock: &Pollable) -> Result<(), AskError> {
    if ready.ready() {
        return Ok(());
    }
    poll(&[ready, clock]);
    match ready.ready() {
        true => Ok(()),
        false => Err(AskError::TimedOut),
    }
}

fn is_timeout(code: &wasi::http::types::ErrorCode) -> bool {
    use wasi::http::types::ErrorCode;
    matches!(
        code,
        ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout
    )
}

fn read_body(response: &IncomingResponse, clock: &Pollable) -> Result<Vec<u8>, AskError> {
    let body = response
        .consume()
        .map_err(|()| AskError::Failed("no body".into()))?;
    let mut bytes = Vec::new();
    {
        // The stream is a child of the body and must go first.
        let stream = body
            .stream()
            .map_err(|()| AskError::Failed("no body stream".into()))?;
        let readable = stream.subscribe();
        loop {
            match stream.read(16 * 1024) {
                Ok(chunk) if chunk.is_empty() => wait(&readable, clock)?,
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(err)) => {
                    return Err(AskError::Failed(format!(
                        "reading the answer: {}",
                        err.to_debug_string()
                    )))
                }
            }
            if bytes.len() > MAX_PEER_BODY {
                return Err(AskError::TooLong);
            }
        }
    }
    Ok(bytes)
}
