//! The handler's answer onto the wasi-http response: head first, then the body, written
//! straight to the body's output stream.
//!
//! spin-sdk's body sink always ends the body with `outgoing-body.finish` when dropped, so a
//! listing that fails half-way would reach the client as a well-formed, truncated 200. Here
//! the body is finished only when every byte went out; on a read error it is dropped
//! unfinished, which wasi-http hosts (wasmtime's, and Spin's on it) treat as an aborted body:
//! the chunked stream is cut without its last chunk and the connection closed, so the client
//! sees an error, never a short listing.

use spin_sdk::http::{Fields, OutgoingBody, OutgoingResponse, ResponseOutparam};
use spin_visits::Body;
use wasi::io::streams::{OutputStream, StreamError};

pub fn send(response: http::Response<Body>, outparam: ResponseOutparam) {
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
    let outgoing_body = outgoing.body().expect("the body is taken once");
    outparam.set(outgoing);
    let stream = outgoing_body
        .write()
        .expect("the body's stream is taken once");

    let complete = match body {
        Body::Full(bytes) => write_all(&stream, &bytes)
            .and_then(|()| flush(&stream))
            .is_ok(),
        Body::Listing(mut listing) => loop {
            match listing.next_chunk() {
                Ok(Some(chunk)) => {
                    if write_all(&stream, &chunk).is_err() {
                        break false; // the client left
                    }
                }
                Ok(None) => break flush(&stream).is_ok(),
                Err(err) => {
                    eprintln!("listing failed half-way, aborting the response: {err}");
                    break false;
                }
            }
        },
    };
    drop(stream);
    if complete {
        let _ = OutgoingBody::finish(outgoing_body, None);
    }
    // Otherwise `outgoing_body` is dropped here unfinished: the host aborts the response.
}

/// Writes all of `bytes` as the stream admits them, waiting for room.
fn write_all(stream: &OutputStream, mut bytes: &[u8]) -> Result<(), StreamError> {
    while !bytes.is_empty() {
        let room = stream.check_write()?;
        if room == 0 {
            stream.subscribe().block();
            continue;
        }
        let take = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        stream.write(&bytes[..take])?;
        bytes = &bytes[take..];
    }
    Ok(())
}

/// Waits until everything written has gone to the host.
fn flush(stream: &OutputStream) -> Result<(), StreamError> {
    stream.flush()?;
    loop {
        if stream.check_write()? > 0 {
            return Ok(());
        }
        stream.subscribe().block();
    }
}
