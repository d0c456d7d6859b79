//! A wasi-http request as an `http` one, and whether it carried a body.

use spin_sdk::http::{IncomingRequest, Method};
use spin_visits::RequestBody;
// The streams types spin-sdk 5.2 binds to (its own pinned `wasi` crate).
use wasi::io::streams::StreamError;

pub fn to_http_request(incoming: &IncomingRequest) -> Result<http::Request<RequestBody>, String> {
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
