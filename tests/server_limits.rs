//! The server component's bounds, on the real runtime: past MAX_CONNECTIONS a connection
//! waits in the backlog until one is freed; an idle keep-alive connection is closed after
//! IDLE_TIMEOUT_SECONDS; a bad setting stops the server with the variable's name.

#[macro_use]
mod common;

use common::{Artefact, Replica, ReplicaSpec};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn spec_with(claim: &std::path::Path, env: &[(&str, &str)]) -> ReplicaSpec {
    let mut spec = ReplicaSpec::new(Artefact::Server, claim, "visits-0");
    spec.env = env
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    spec
}

fn server_with(claim: &std::path::Path, env: &[(&str, &str)]) -> Replica {
    spec_with(claim, env).start()
}

/// Sends one request on `stream` and says whether an answer came within `wait`.
fn answered_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 512];
    match stream.read(&mut buf) {
        Ok(n) => n > 0 && buf.starts_with(b"HTTP/1.1 200"),
        Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(err) => panic!("{err}"),
    }
}

/// Reads one answer's head from `stream`.
fn answer_head(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase()
}

#[test]
fn past_max_connections_a_connection_waits_and_keep_alive_slots_rotate() {
    let claim = tempfile::tempdir().unwrap();
    let replica = server_with(claim.path(), &[("MAX_CONNECTIONS", "2")]);
    let mut first = TcpStream::connect(&replica.addr).unwrap();
    // Half a request head: within its first window it keeps its slot (never idle).
    let mut second = TcpStream::connect(&replica.addr).unwrap();
    second.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();

    // The kernel completes the handshake (the backlog), but the server does not take it yet.
    let mut third = TcpStream::connect(&replica.addr).unwrap();
    assert!(
        !answered_within(&mut third, Duration::from_millis(500)),
        "a third connection is served only once one of two is freed"
    );
    // At the cap, a keep-alive connection that has had its turn (4 answers) ends with its
    // next answer, so the one waiting gets a slot without waiting for a client to hang up.
    let mut closes = Vec::new();
    for _ in 0..4 {
        first
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        let head = answer_head(&mut first);
        assert!(head.starts_with("http/1.1 200"), "{head}");
        closes.push(head.contains("connection: close"));
    }
    assert_eq!(
        closes,
        [false, false, false, true],
        "the 4th answer ends the turn"
    );
    assert!(
        answer_head(&mut third).starts_with("http/1.1 200"),
        "served once a slot is free"
    );
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let claim = tempfile::tempdir().unwrap();
    let replica = server_with(claim.path(), &[("IDLE_TIMEOUT_SECONDS", "1")]);
    let mut stream = TcpStream::connect(&replica.addr).unwrap();
    assert!(answered_within(&mut stream, Duration::from_secs(5)));
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(stream.read(&mut buf).unwrap(), 0, "closed by the server");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "closed after {waited:?}, not about 1 s"
    );
    // Closing it is not an error worth logging.
    assert!(
        !replica.output().contains("connection error"),
        "{}",
        replica.output()
    );
}

#[test]
fn a_request_head_must_be_complete_in_time_even_on_a_fresh_connection() {
    let claim = tempfile::tempdir().unwrap();
    let replica = server_with(
        claim.path(),
        &[
            ("HEADER_READ_TIMEOUT_SECONDS", "1"),
            ("IDLE_TIMEOUT_SECONDS", "60"),
        ],
    );
    let mut slow = TcpStream::connect(&replica.addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 64];
    let closed = matches!(slow.read(&mut buf), Ok(0) | Err(_));
    assert!(closed, "the server gave up on the request");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        common::log_lines(claim.path()).len(),
        0,
        "no visit recorded"
    );
}

#[test]
fn a_bad_setting_stops_the_server_and_names_the_variable() {
    // The unit test's table, which it checks covers every setting.
    for (name, value) in spin_visits::server_config::BAD_VALUES {
        let claim = tempfile::tempdir().unwrap();
        let mut spec = spec_with(claim.path(), &[(name, value)]);
        if *name == "LISTEN_ADDR" {
            spec.listen = value.to_string(); // the runtime takes the first --env of a name
        }
        let output = spec.command().output().unwrap();
        assert!(!output.status.success(), "{name}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(name), "{name}={value}: {stderr}");
    }
}
