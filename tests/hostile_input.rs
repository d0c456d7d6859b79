//! A corpus of hostile requests, sent as raw bytes to both artefacts on the real runtime:
//! odd methods, long and encoded paths, `..` and NUL tricks, huge and duplicate headers,
//! bad query values, bodies on GET, and bytes that are not HTTP at all. Each must be refused
//! with a 4xx (or get the documented answer), record no visit, and make the runtime log no
//! trap or panic.

#[macro_use]
mod common;

use common::{Artefact, ReplicaSpec};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Any 4xx.
    Refused,
    /// The documented answer for a strange but valid request.
    Status(u16),
}

struct Case {
    label: String,
    bytes: Vec<u8>,
    expect: Expect,
}

fn request(method: &str, target: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut bytes =
        format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n")
            .into_bytes();
    for (name, value) in headers {
        bytes.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(body);
    bytes
}

fn case(label: impl Into<String>, bytes: Vec<u8>, expect: Expect) -> Case {
    Case {
        label: label.into(),
        bytes,
        expect,
    }
}

fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    let refused = Expect::Refused;

    // Methods no route takes, on every route (HEAD on `/` would skip the visit, so 405).
    let methods = [
        "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "M-SEARCH", "FOO", "get",
        "HEADX",
    ];
    for route in ["/", "/visits", "/healthz", "/readyz"] {
        for method in methods {
            cases.push(case(
                format!("{method} {route}"),
                request(method, route, &[], b""),
                refused,
            ));
        }
    }
    cases.push(case("HEAD /", request("HEAD", "/", &[], b""), refused));
    let long_method = "X".repeat(2000);
    cases.push(case(
        "2000-byte method",
        request(&long_method, "/", &[], b""),
        refused,
    ));
    cases.push(case(
        "method with NUL",
        b"G\0T / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        refused,
    ));

    // Paths that are not routes, tried with GET and HEAD.
    let mut paths: Vec<String> = [
        "/%2e%2e/%2e%2e/etc/passwd",
        "/../../etc/passwd",
        "/visits/../",
        "/visits/..%2f..%2f",
        "//",
        "/./",
        "/.",
        "/%00",
        "/visits%00",
        "/index.html",
        "/visits.txt",
        "/data/visits.txt",
        "/.visits.txt.probe",
        "/VISITS",
        "/healthz/",
        "/%2F",
        "/\\..\\",
        "/visits;tail=1",
        "/%76isits",
        "/visits/all/../..",
        "/.well-known/spin/health",
        "/%c0%ae%c0%ae/",
        "/visits%2f",
        "/ ",
        "/%ZZ",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    paths.push(format!("/{}", "a".repeat(8 * 1024)));
    paths.push(format!("/{}", "%2e".repeat(4 * 1024)));
    for path in &paths {
        for method in ["GET", "HEAD"] {
            let label = format!("{method} {}", &path[..path.len().min(40)]);
            cases.push(case(label, request(method, path, &[], b""), refused));
        }
    }
    cases.push(case(
        "path of 256 KiB",
        request("GET", &format!("/{}", "b".repeat(256 * 1024)), &[], b""),
        refused,
    ));
    cases.push(case(
        "raw NUL in path",
        b"GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        refused,
    ));
    cases.push(case(
        "raw space in path",
        b"GET /vis its HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        refused,
    ));
    cases.push(case(
        "asterisk target",
        request("GET", "*", &[], b""),
        refused,
    ));
    // RFC 9112 lets a recipient accept a bare LF as a line end, and hyper does.
    let bare_lf = b"GET /healthz HTTP/1.1\nHost: x\n\n".to_vec();
    cases.push(case("bare LF framing", bare_lf, Expect::Status(200)));

    // Bad list queries (the documented answers for the valid but odd ones).
    for (query, expect) in [
        ("tail=-1", refused),
        ("tail=abc", refused),
        ("tail=", refused),
        ("tail=1e3", refused),
        ("tail=0x10", refused),
        ("tail=%31", refused),
        ("tail=+1", refused),
        ("tail= 1", refused),
        ("tail=18446744073709551616", refused),
        ("tail=1&tail=x", refused),
        ("format=xml", refused),
        ("format=JSON", refused),
        ("format=", refused),
        ("tail=1%00", refused),
        ("tail=99999999999", Expect::Status(200)),
        ("tail=0", Expect::Status(200)),
        ("unknown=1", Expect::Status(200)),
        ("&&&", Expect::Status(200)),
    ] {
        for accept in ["text/plain", "application/json"] {
            let headers = [("Accept", accept.to_string())];
            cases.push(case(
                format!("?{query} ({accept})"),
                request("GET", &format!("/visits?{query}"), &headers, b""),
                expect,
            ));
        }
    }
    cases.push(case(
        "query of 64 KiB",
        request(
            "GET",
            &format!("/visits?tail={}", "9".repeat(64 * 1024)),
            &[],
            b"",
        ),
        refused,
    ));

    // Headers: huge, many, duplicated, malformed; on the visit, read and liveness routes.
    for route in ["/", "/visits", "/healthz"] {
        let header_cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "1 MiB header",
                request("GET", route, &[("X-Big", "a".repeat(1 << 20))], b""),
            ),
            (
                "500 headers",
                request(
                    "GET",
                    route,
                    &(0..500)
                        .map(|_| ("X-Many", "1".to_string()))
                        .collect::<Vec<_>>(),
                    b"",
                ),
            ),
            (
                "space in header name",
                request("GET", route, &[("Bad Header", "x".into())], b""),
            ),
            (
                "colon-less header",
                format!("GET {route} HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n").into_bytes(),
            ),
            (
                "obs-fold",
                format!("GET {route} HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n").into_bytes(),
            ),
            (
                "NUL in header value",
                format!("GET {route} HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n").into_bytes(),
            ),
            (
                "Content-Length -1",
                request("GET", route, &[("Content-Length", "-1".into())], b""),
            ),
            (
                "Content-Length abc",
                request("GET", route, &[("Content-Length", "abc".into())], b""),
            ),
            (
                "two Content-Lengths",
                request(
                    "GET",
                    route,
                    &[
                        ("Content-Length", "1".into()),
                        ("Content-Length", "2".into()),
                    ],
                    b"xx",
                ),
            ),
            (
                "CL and TE",
                request(
                    "GET",
                    route,
                    &[
                        ("Content-Length", "3".into()),
                        ("Transfer-Encoding", "chunked".into()),
                    ],
                    b"0\r\n\r\n",
                ),
            ),
            (
                "TE gzip",
                request("GET", route, &[("Transfer-Encoding", "gzip".into())], b""),
            ),
            (
                "bad chunk size",
                request(
                    "GET",
                    route,
                    &[("Transfer-Encoding", "chunked".into())],
                    b"zz\r\nx\r\n0\r\n\r\n",
                ),
            ),
        ];
        for (label, bytes) in header_cases {
            cases.push(case(format!("{label} on {route}"), bytes, refused));
        }
    }

    // Bodies where none belongs: each route, declared by length or chunked.
    for route in ["/", "/visits", "/healthz", "/readyz"] {
        cases.push(case(
            format!("GET {route} with a body"),
            request("GET", route, &[("Content-Length", "5".into())], b"hello"),
            refused,
        ));
        cases.push(case(
            format!("GET {route} with a chunked body"),
            request(
                "GET",
                route,
                &[("Transfer-Encoding", "chunked".into())],
                b"5\r\nhello\r\n0\r\n\r\n",
            ),
            refused,
        ));
        cases.push(case(
            format!("GET {route} with a 64 KiB body"),
            request(
                "GET",
                route,
                &[("Content-Length", "65536".into())],
                &vec![b'x'; 65536],
            ),
            refused,
        ));
    }

    // Not HTTP/1.1 at all.
    for (label, bytes) in [
        ("empty lines", &b"\r\n\r\n\r\n\r\n"[..]),
        ("one word", b"HELLO\r\n\r\n"),
        ("HTTP/9.9", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n"),
        ("HTTP/0.9", b"GET /\r\n\r\n"),
        ("lowercase version", b"GET / http/1.1\r\nHost: x\r\n\r\n"),
        ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        (
            "TLS hello",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        ),
        (
            "binary noise",
            &[0xff, 0xfe, 0x00, 0x01, 0x80, b'\r', b'\n', b'\r', b'\n'],
        ),
        (
            "absolute URI with NUL",
            b"GET http://x/\0 HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
    ] {
        cases.push(case(label, bytes.to_vec(), refused));
    }
    cases
}

/// The status of the first response on the connection, or `None` if it closed without one.
fn send(addr: &str, bytes: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    // The server may answer and close before it has read everything we send.
    let _ = stream.write_all(bytes);
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(_)) = response.parse(&received) {
            return response.code;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
}

fn hostile_requests_are_refused_and_record_nothing(artefact: Artefact) {
    let claim = tempfile::tempdir().unwrap();
    let replica = ReplicaSpec::new(artefact, claim.path(), "visits-0").start();
    let cases = corpus();
    assert!(cases.len() >= 200, "only {} cases", cases.len());

    let (mut refused, mut documented, mut closed) = (0, 0, 0);
    let mut wrong = Vec::new();
    for case in &cases {
        match (send(&replica.addr, &case.bytes), case.expect) {
            (Some(status), Expect::Refused) if (400..500).contains(&status) => refused += 1,
            (Some(status), Expect::Status(want)) if status == want => documented += 1,
            // Bytes that are not an HTTP/1.1 request at all may get the connection closed.
            (None, Expect::Refused) => closed += 1,
            (got, _) => wrong.push(format!(
                "{}: got {got:?}, want {:?}",
                case.label, case.expect
            )),
        }
    }
    let recorded = std::fs::read_to_string(claim.path().join("visits.txt"))
        .map(|text| text.lines().count())
        .unwrap_or(0);
    let output = replica.output();
    let traps = [
        "panicked",
        "wasm trap",
        "error while executing",
        "wasm backtrace",
    ]
    .iter()
    .filter(|sign| output.contains(*sign))
    .count();
    println!(
        "RELIABILITY hostile {artefact:?}: tried {}, refused with 4xx {refused}, documented \
         answers {documented}, closed without answer {closed}, wrong {}, visits recorded \
         {recorded}, traps {traps}",
        cases.len(),
        wrong.len(),
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(recorded, 0, "a hostile request recorded a visit");
    assert_eq!(traps, 0, "the runtime logged:\n{output}");
    assert_eq!(replica.get("/healthz").status, 200, "still serving");
}

for_each_artefact!(hostile_requests_are_refused_and_record_nothing);
