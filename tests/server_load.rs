//! The server component (what Kubernetes runs) under many connections, on the real runtime:
//! group commit loses, duplicates and tears nothing; a kill, a full volume and idle
//! connections do not break its promise; and connections that all become ready at once are
//! all answered (wstd 0.6.8's reactor livelocked there; see vendor/wstd/PATCHED.md). The
//! full-volume case mounts a tmpfs, so it needs root (CI has it).

#[macro_use]
mod common;

use common::{
    is_record, log_lines, own_agent, shown_count, shown_time, try_request, Artefact, Mount,
    Replica, ReplicaSpec,
};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn server(claim: &std::path::Path) -> Replica {
    ReplicaSpec::new(Artefact::Server, claim, "visits-0").start()
}

/// Sends `GET path` on every stream first, then reads every answer: all the requests are
/// waiting at once. Returns the statuses, in stream order.
fn all_at_once(streams: &mut [TcpStream], path: &str) -> Vec<u16> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    for stream in streams.iter_mut() {
        stream.write_all(request.as_bytes()).unwrap();
    }
    streams
        .iter_mut()
        .map(|stream| {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => return 0, // closed or timed out: not answered
                }
            }
            let head = String::from_utf8_lossy(&head).to_string();
            let length: usize = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .map_or(0, |value| value.trim().parse().unwrap());
            let mut body = vec![0u8; length];
            if stream.read_exact(&mut body).is_err() {
                return 0;
            }
            head[9..12].parse().unwrap()
        })
        .collect()
}

fn connect_many(addr: &str, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|_| {
            let stream = TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            stream
        })
        .collect()
}

/// 10 000 visits over 256 connections to one replica: every 200 is one whole line, each
/// count shown once and equal to the visit's line number, nothing lost or duplicated.
#[test]
fn ten_thousand_visits_over_256_connections() {
    const VISITS: usize = 10_000;
    let claim = tempfile::tempdir().unwrap();
    let replica = server(claim.path());
    let next = AtomicUsize::new(0);
    let shown: Mutex<Vec<(u64, String)>> = Mutex::default();
    let failures = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..256 {
            scope.spawn(|| {
                let agent = own_agent();
                while next.fetch_add(1, Ordering::Relaxed) < VISITS {
                    match try_request(&agent, &replica.url("/")) {
                        Ok(reply) if reply.status == 200 => shown
                            .lock()
                            .unwrap()
                            .push((shown_count(&reply.body), shown_time(&reply.body))),
                        _ => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let shown = shown.into_inner().unwrap();
    let lines = log_lines(claim.path());
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert_eq!(shown.len(), VISITS);
    assert_eq!(lines.len(), VISITS, "one line per acknowledged visit");
    assert!(lines.iter().all(|line| is_record(line)), "whole lines only");
    let counts: BTreeSet<u64> = shown.iter().map(|(count, _)| *count).collect();
    assert_eq!(counts, (1..=VISITS as u64).collect(), "each count once");
    for (count, time) in &shown {
        assert_eq!(
            &lines[*count as usize - 1],
            time,
            "visit {count} is line {count}"
        );
    }
    println!("RELIABILITY server load: {VISITS} visits over 256 connections, lost 0, duplicated 0, malformed 0");
}

/// `kill -9` while batches are being written: every acknowledged visit is on disk, whole.
#[test]
fn kill_9_in_the_middle_of_batches() {
    let claim = tempfile::tempdir().unwrap();
    let replica = server(claim.path());
    let url = replica.url("/");
    let acknowledged = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..128 {
            scope.spawn(|| {
                let agent = own_agent();
                while let Ok(reply) = try_request(&agent, &url) {
                    assert_eq!(reply.status, 200, "{}", reply.body);
                    acknowledged.lock().unwrap().push(shown_time(&reply.body));
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while acknowledged.lock().unwrap().len() < 2000 {
            assert!(Instant::now() < deadline, "load never got going");
            std::thread::sleep(Duration::from_millis(5));
        }
        replica.kill();
    });
    let acknowledged = acknowledged.into_inner().unwrap();
    let raw = std::fs::read_to_string(claim.path().join("visits.txt")).unwrap();
    assert_eq!(raw.len() % 33, 0, "kill -9 cannot tear a write");
    let lines: BTreeSet<&str> = raw.lines().collect();
    assert!(lines.iter().all(|line| is_record(line)));
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|time| !lines.contains(time.as_str()))
        .collect();
    assert!(lost.is_empty(), "acknowledged but not on disk: {lost:?}");
    println!(
        "RELIABILITY server crash: {} acknowledged before kill -9, {} lines on disk, lost 0",
        acknowledged.len(),
        lines.len()
    );
}

/// Batches that meet a full volume: every visit in them is refused with the same 507, and
/// the log holds exactly the accepted visits, whole.
#[test]
fn batches_that_meet_a_full_volume_are_refused_whole() {
    let scratch = tempfile::tempdir().unwrap();
    let volume = Mount::tmpfs(&scratch.path().join("claim"), "16k");
    std::fs::write(volume.path.join("filler"), vec![0u8; 12 * 1024]).unwrap();
    let replica = server(&volume.path);
    let accepted = AtomicUsize::new(0);
    let refusals: Mutex<Vec<(u16, String)>> = Mutex::default();
    let full = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..64 {
            scope.spawn(|| {
                let agent = own_agent();
                // Keep going a while after the first refusal, so whole batches meet it.
                let mut after_full = 0;
                while after_full < 5 {
                    let reply = try_request(&agent, &replica.url("/")).unwrap();
                    if reply.status == 200 {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    } else {
                        full.store(true, Ordering::Relaxed);
                        refusals.lock().unwrap().push((reply.status, reply.body));
                    }
                    if full.load(Ordering::Relaxed) {
                        after_full += 1;
                    }
                }
            });
        }
    });
    let refusals = refusals.into_inner().unwrap();
    assert!(refusals.len() >= 64, "every connection met the full volume");
    for (status, body) in &refusals {
        assert_eq!(*status, 507, "{body}");
        assert!(body.contains("full"), "{body}");
    }
    let raw = std::fs::read_to_string(volume.path.join("visits.txt")).unwrap();
    assert_eq!(raw.len() % 33, 0, "no partial line: {} bytes", raw.len());
    assert_eq!(
        log_lines(&volume.path).len(),
        accepted.load(Ordering::Relaxed)
    );
    println!(
        "RELIABILITY server full: {} accepted, {} refused with 507, partial lines 0",
        accepted.load(Ordering::Relaxed),
        refusals.len()
    );
}

/// 1 000 idle keep-alive connections do not stop or slow visits, and each is still served
/// after.
#[test]
fn a_thousand_idle_connections_while_visits_succeed() {
    let claim = tempfile::tempdir().unwrap();
    // Above the default cap (900), so that all 1 000 are held rather than rotated.
    let mut spec = ReplicaSpec::new(Artefact::Server, claim.path(), "visits-0");
    spec.env.push(("MAX_CONNECTIONS".into(), "1100".into()));
    let replica = spec.start();
    let mut idle = connect_many(&replica.addr, 1000);
    assert!(all_at_once(&mut idle, "/healthz")
        .iter()
        .all(|&status| status == 200));
    // The same server with no idle connections, visited in turn with the first, so both see
    // the same machine: its time is what the visits cost here (mostly the sync per visit).
    let quiet_claim = tempfile::tempdir().unwrap();
    let quiet = server(quiet_claim.path());

    let (agent, quiet_agent) = (own_agent(), own_agent());
    let (mut elapsed, mut baseline) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..200 {
        let started = Instant::now();
        assert_eq!(try_request(&agent, &replica.url("/")).unwrap().status, 200);
        elapsed += started.elapsed();
        let started = Instant::now();
        assert_eq!(
            try_request(&quiet_agent, &quiet.url("/")).unwrap().status,
            200
        );
        baseline += started.elapsed();
    }
    assert_eq!(log_lines(claim.path()).len(), 200);
    assert!(all_at_once(&mut idle[..50], "/healthz")
        .iter()
        .all(|&status| status == 200));
    // Idle connections may cost a little (their waits go to the host every 5 ms), but a visit
    // must not wait behind them. Against the quiet server, on 2 busy cores: 1.1 to 1.7 times
    // its time (the top with this file's other tests running at once). Reactors that poll
    // the idle waits on every turn, or make busy waits wait for the idle ones' turn, took 2
    // to 3.3 times, and fail this about half the time; a visit waiting 10 ms or more behind
    // them (or never answered) always fails it. Twice, plus 0.5 ms a visit for noise.
    let bound = baseline * 2 + Duration::from_millis(100);
    assert!(
        elapsed < bound,
        "200 visits beside 1000 idle connections took {elapsed:?}, over {bound:?} \
         (without them: {baseline:?})"
    );
    println!(
        "RELIABILITY server idle: 200 visits beside 1000 idle connections in {elapsed:?} \
         (without them: {baseline:?})"
    );
}

/// 200 connections whose requests are all waiting at once are all answered. wstd 0.6.8 asked
/// the host again about pollables `poll` had just reported ready; past 128 answers between two
/// suspensions wasmtime says "not ready", so every wake-up was spurious and the server
/// livelocked here.
#[test]
fn two_hundred_requests_ready_at_once_are_all_answered() {
    let claim = tempfile::tempdir().unwrap();
    let replica = server(claim.path());
    let mut streams = connect_many(&replica.addr, 200);
    for round in 0..3 {
        let statuses = all_at_once(&mut streams, "/");
        let answered = statuses.iter().filter(|&&status| status == 200).count();
        assert_eq!(answered, 200, "round {round}: {answered} of 200 answered");
    }
    assert_eq!(log_lines(claim.path()).len(), 600);
}
