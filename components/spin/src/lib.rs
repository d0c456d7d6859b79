//! The Spin component: converts wasi-http types to `http` ones, calls the shared handler and
//! streams its body back. Imports nothing but `wasi:*`, so `spin up`, `wasmtime serve` and any
//! other WASI 0.2 HTTP host can run it.

use futures::SinkExt;
use spin_sdk::http::{Fields, IncomingRequest, Method, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;
use spin_visits::{App, Body};

#[http_component]
async fn handle(incoming: IncomingRequest, outparam: ResponseOutparam) {
    let response = match to_http_request(&incoming) {
        Ok(request) => spin_visits::handle(&request, &App::from_env()),
        Err(reason) => bad_request(reason),
    };
    send(response, outparam).await;
}

fn to_http_request(incoming: &IncomingRequest) -> Result<http::Request<()>, String> {
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
        .body(())
        .map_err(|err| format!("invalid request: {err}"))
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
