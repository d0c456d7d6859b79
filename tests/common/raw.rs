//! HTTP/1.1 by hand, for what a client library will not send (a malformed request, a body on
//! a GET) or will not show (a chunked body cut short): the bytes go out as given, and the
//! answer is read until the server closes the connection.

use super::Reply;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The raw bytes of an exchange on a fresh connection, until the server closes it.
pub fn exchange(addr: &str, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The server may answer and close before it has read all of a request it refuses.
    let _ = stream.write_all(request);
    let mut bytes = Vec::new();
    // A reset after a cut body is an end like any other here.
    let _ = stream.read_to_end(&mut bytes);
    bytes
}

/// The first answer of an exchange, parsed.
pub fn request(addr: &str, request: &[u8]) -> Reply {
    let bytes = exchange(addr, request);
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(&bytes).unwrap() {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => panic!("no whole answer: {bytes:?}"),
    };
    let mut map = http::HeaderMap::new();
    for header in response.headers.iter() {
        map.append(
            http::HeaderName::from_bytes(header.name.as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(header.value).unwrap(),
        );
    }
    Reply {
        status: response.code.unwrap(),
        headers: map,
        body: String::from_utf8_lossy(&bytes[head_len..]).into_owned(),
    }
}
