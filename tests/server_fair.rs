//! Fair at the cap, on the real runtime: connections that make no progress yield their slots
//! to newcomers (an idle flood, readers that stopped reading), a reader above the minimum
//! rate is never cut, and waiting clients are admitted in turn, before a connection already
//! served gets another answer.

#[macro_use]
mod common;

use common::{plant_log, Artefact, Replica, ReplicaSpec};
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Barrier, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One test at a time: each fills the server's slots and times a newcomer.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn server(claim: &Path, env: &[(&str, &str)]) -> Replica {
    let mut spec = ReplicaSpec::new(Artefact::Server, claim, "visits-0");
    spec.env = env
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    spec.start()
}

fn connect(replica: &Replica) -> TcpStream {
    let stream = TcpStream::connect(&replica.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

fn send(stream: &mut TcpStream, path: &str) {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .unwrap();
}

/// An answer's status and lower-cased headers; an error if none came.
fn read_head(reader: &mut impl BufRead) -> io::Result<(u16, String)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        if line.trim_end().is_empty() {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let status = head
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok((status, head))
}

/// Reads a whole Content-Length answer (the probes' and /healthz's).
fn read_answer(reader: &mut impl BufRead) -> io::Result<(u16, String)> {
    let (status, head) = read_head(reader)?;
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((status, head))
}

/// `/healthz` on a new connection: how long until its answer.
fn newcomer(replica: &Replica) -> Result<Duration, String> {
    let started = Instant::now();
    let mut stream = connect(replica);
    send(&mut stream, "/healthz");
    match read_answer(&mut BufReader::new(stream)) {
        Ok((200, _)) => Ok(started.elapsed()),
        Ok((status, head)) => Err(format!("answered {status}: {head}")),
        Err(err) => Err(format!("no answer after {:?}: {err}", started.elapsed())),
    }
}

fn shed(replica: &Replica, reason: &str) -> f64 {
    counter(
        replica,
        "visits_connections_shed_total",
        &[&format!("reason=\"{reason}\"")],
    )
}

#[test]
fn an_idle_flood_yields_its_slots_to_a_newcomer() {
    let _serial = serial();
    let claim = tempfile::tempdir().unwrap();
    let replica = server(claim.path(), &[("MAX_CONNECTIONS", "64")]);
    // 80 connections that never send a byte: 64 take every slot, 16 wait behind them.
    let idle: Vec<TcpStream> = (0..80).map(|_| connect(&replica)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let took = newcomer(&replica).unwrap_or_else(|err| {
        panic!(
            "a newcomer behind 80 idle connections at MAX_CONNECTIONS=64: {err}\n{}",
            replica.output()
        )
    });
    // An idle connection yields after a second of idleness; the 16 before it go first.
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    assert!(shed(&replica, "idle") >= 17.0);
    eprintln!("FAIR idle flood: 80 idle connections at MAX_CONNECTIONS=64, a newcomer answered in {took:?}");
    drop(idle);
}

/// Reads a chunked answer's body to its end, `per_read` bytes at a time with `pause` after
/// each; the body's length.
fn read_chunked(reader: &mut impl BufRead, per_read: usize, pause: Duration) -> io::Result<u64> {
    let mut total = 0u64;
    let mut buf = vec![0u8; per_read];
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let size = u64::from_str_radix(line.trim_end(), 16).map_err(|_| {
            io::Error::new(
                ErrorKind::InvalidData,
                format!("chunk size {line:?} after {total} bytes"),
            )
        })?;
        if size == 0 {
            return Ok(total);
        }
        let mut left = size;
        while left > 0 {
            let n = reader.read(&mut buf[..per_read.min(left as usize)])?;
            if n == 0 {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!("cut after {total} bytes"),
                ));
            }
            left -= n as u64;
            total += n as u64;
            std::thread::sleep(pause);
        }
        reader.read_line(&mut line)?;
    }
}

#[test]
fn readers_that_stopped_yield_to_newcomers_and_one_above_the_rate_gets_everything() {
    const CAP: usize = 64;
    let _serial = serial();
    let claim = tempfile::tempdir().unwrap();
    let log_len = plant_log(claim.path()).len() as u64;
    let replica = server(
        claim.path(),
        &[("MAX_CONNECTIONS", "64"), ("MIN_RATE_WINDOW_SECONDS", "2")],
    );
    // One reader takes 64 KiB every 20 ms (about 3 MB/s, far above the 500 bytes/s minimum)
    // all through; the other 63 take the answer's head and stop.
    let mut steady = connect(&replica);
    steady
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    send(&mut steady, "/visits");
    let steady = std::thread::spawn(move || {
        let mut reader = BufReader::new(steady);
        let (status, _) = read_head(&mut reader)?;
        assert_eq!(status, 200);
        read_chunked(&mut reader, 64 * 1024, Duration::from_millis(20))
    });
    let stopped: Vec<BufReader<TcpStream>> = (1..CAP)
        .map(|_| {
            let mut stream = connect(&replica);
            send(&mut stream, "/visits");
            let mut reader = BufReader::new(stream);
            assert_eq!(read_head(&mut reader).unwrap().0, 200);
            reader
        })
        .collect();
    // Their writes stall within a moment, and a window later they are under the rate.
    std::thread::sleep(Duration::from_millis(2500));
    let mut waits = Vec::new();
    for _ in 0..8 {
        waits.push(newcomer(&replica).unwrap_or_else(|err| {
            panic!(
                "a newcomer behind {} stopped readers: {err}\n{}",
                CAP - 1,
                replica.output()
            )
        }));
    }
    let slowest = *waits.iter().max().unwrap();
    assert!(
        slowest < Duration::from_secs(2),
        "newcomers answered after {waits:?}"
    );
    let got = steady
        .join()
        .unwrap()
        .expect("the steady reader got its whole answer");
    assert_eq!(got, log_len, "the steady reader got the whole log");
    assert!(shed(&replica, "slow_reader") >= 1.0);
    eprintln!(
        "FAIR stopped readers: {} stopped on a 24 MB /visits at MAX_CONNECTIONS=64: 8 newcomers answered in at most {slowest:?}; a 3 MB/s reader got all {got} bytes",
        CAP - 1
    );
    drop(stopped);
}

/// Readers that stopped, each holding its socket and the log open (two descriptors), run the
/// process out of descriptors below the connection cap: accepts fail, and the newcomer left in
/// the backlog is served once the connections making the least progress yield. The build
/// before made no one yield while accepts failed, only once one happened to succeed between
/// its backed-off retries.
#[test]
fn readers_that_stopped_with_every_descriptor_yield_to_a_newcomer() {
    const NOFILE: u64 = 128;
    // More than the process has descriptors for even as bare sockets: the last ones wait in
    // the backlog (a reader accepted once the log can no longer be opened gets a 503).
    const READERS: usize = 120;
    let _serial = serial();
    let claim = tempfile::tempdir().unwrap();
    plant_log(claim.path());
    let mut spec = ReplicaSpec::new(Artefact::Server, claim.path(), "visits-0");
    spec.env = [
        ("MIN_RATE_WINDOW_SECONDS", "1"),
        // No reader is cut off by its deadline during the test.
        ("WRITE_TIMEOUT_SECONDS", "60"),
    ]
    .iter()
    .map(|(key, value)| (key.to_string(), value.to_string()))
    .collect();
    spec.nofile = Some((NOFILE, NOFILE));
    let replica = spec.start();
    let readers: Vec<TcpStream> = (0..READERS)
        .map(|_| {
            let mut stream = connect(&replica);
            send(&mut stream, "/visits");
            stream // and reads nothing
        })
        .collect();
    // A window after their writes stall, they are under the rate.
    std::thread::sleep(Duration::from_millis(1500));
    let took = newcomer(&replica).unwrap_or_else(|err| {
        panic!(
            "a newcomer behind {READERS} stopped readers at {NOFILE} descriptors: {err}\n{}",
            replica.output()
        )
    });
    // The build before answered after 4.5-5.7 s (three runs), this one after 0.01-1.4 s
    // (five runs, load 8).
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert!(
        replica.output().contains("out of descriptors"),
        "the readers never ran the process out of descriptors:\n{}",
        replica.output()
    );
    drop(readers);
    // Readers accepted once the log could no longer be opened got a 503 and went idle: they
    // yield first, then the slow readers.
    let shed_total: f64 = ["idle", "slow_head", "slow_reader"]
        .iter()
        .map(|reason| shed(&replica, reason))
        .sum();
    assert!(shed_total >= 1.0, "nobody yielded");
    eprintln!(
        "FAIR descriptors: {READERS} stopped readers of /visits at {NOFILE} open files: a newcomer answered in {took:?}, {shed_total} connections yielded"
    );
}

/// A closed-loop client: one `/healthz` at a time, reconnecting when told to close, for
/// `run` from when every client is ready (`start`); how long each request waited for its
/// answer (connecting included).
fn closed_loop_client(addr: String, start: Arc<Barrier>, run: Duration) -> Vec<Duration> {
    let mut waits = Vec::new();
    let mut reader: Option<BufReader<TcpStream>> = None;
    // All start together: a client started while the others are still being spawned is
    // served alone, below the cap, and runs up answers no turn would give it.
    start.wait();
    let until = Instant::now() + run;
    while Instant::now() < until {
        let started = Instant::now();
        let conn = reader.get_or_insert_with(|| {
            let stream = TcpStream::connect(&addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            BufReader::new(stream)
        });
        send(conn.get_mut(), "/healthz");
        match read_answer(conn) {
            Ok((200, head)) => {
                waits.push(started.elapsed());
                if head.contains("connection: close") {
                    reader = None;
                }
            }
            _ => reader = None,
        }
    }
    waits
}

/// More closed-loop clients than slots: those waiting for a slot are admitted in arrival
/// order (the backlog is first in, first out) and, while any wait, every answer ends its
/// connection, so a kept-alive client does not go again and again ahead of them. By
/// Little's law each request then waits about clients ÷ rate; a client left in the backlog
/// while others are served shows as a wait many times that.
#[test]
fn waiting_clients_are_served_in_turn() {
    const CAP: usize = 4;
    const CLIENTS: usize = 24;
    let _serial = serial();
    let claim = tempfile::tempdir().unwrap();
    let replica = server(claim.path(), &[("MAX_CONNECTIONS", "4")]);
    let run = Duration::from_secs(3);
    let start = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (addr, start) = (replica.addr.clone(), start.clone());
            std::thread::spawn(move || closed_loop_client(addr, start, run))
        })
        .collect();
    let per_client: Vec<Vec<Duration>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut waits: Vec<Duration> = per_client.iter().flatten().copied().collect();
    waits.sort();
    let rate = waits.len() as f64 / run.as_secs_f64();
    let fair_wait = Duration::from_secs_f64(CLIENTS as f64 / rate);
    let p99 = waits[(waits.len() - 1) * 99 / 100];
    let counts: Vec<usize> = per_client.iter().map(Vec::len).collect();
    eprintln!(
        "FAIR turns: {CLIENTS} closed-loop clients at MAX_CONNECTIONS={CAP}: {} answers ({rate:.0}/s), clients ÷ rate {fair_wait:?}, p99 wait {p99:?} ({:.1}x), max {:?}; answers per client {counts:?}",
        waits.len(),
        p99.as_secs_f64() / fair_wait.as_secs_f64(),
        waits.last().unwrap()
    );
    // Turns, not timings, are asserted (a shared runner's scheduling shows in the waits;
    // the benchmark reports them): every client gets about as many answers as the others.
    // Before issue 22 one client got 1.95-3.2 times another's answers (8 runs); in turn at
    // most 1.06 times, and 1.24 once at a third of the usual rate (16 runs; release and debug
    // clients, a shared 2-core machine).
    let (fewest, most) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
    assert!(
        most * 10 <= fewest * 15,
        "one client got {most} answers, another {fewest}: not served in turn ({counts:?})"
    );
    // The turns were the server's: connections ended after their 4 answers.
    let turns = counter(&replica, "visits_connections_turns_ended_total", &[]);
    assert!(turns >= 1.0, "no turn ended");
}

/// The sample `name` with these labels from the replica's /metrics.
fn counter(replica: &Replica, name: &str, labels: &[&str]) -> f64 {
    let metrics = replica.get("/metrics").body;
    common::metric(&metrics, name, labels)
        .unwrap_or_else(|| panic!("no {name} {labels:?}:\n{metrics}"))
}
