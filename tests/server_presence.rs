//! A second server on the same data directory (issue 20 §6): WASI 0.2 has no file lock, so
//! each server beats a presence file of its own (`src/presence.rs`). The second server sees
//! the first as it starts, the first sees the second within a beat; each logs one line and
//! fails `/readyz` naming the other, until the other leaves (a drain removes its file) or its
//! beat ages out (kill -9). A server alone stays ready, its own file notwithstanding.

#[macro_use]
mod common;

use common::{Artefact, Replica, ReplicaSpec};
use std::path::Path;
use std::time::{Duration, Instant};

/// spin_visits::presence's BEAT and FRESH.
const BEAT: Duration = Duration::from_secs(2);
const FRESH: Duration = Duration::from_secs(6);

fn server(claim: &Path, pod: &str) -> Replica {
    let mut spec = ReplicaSpec::new(Artefact::Server, claim, pod);
    spec.env = vec![
        ("DRAIN_DELAY_SECONDS".into(), "0".into()),
        ("DRAIN_TIMEOUT_SECONDS".into(), "2".into()),
    ];
    spec.start()
}

/// How the other server is named in a log line and in `/readyz`.
fn named(pod: &str, replica: &Replica) -> String {
    format!(
        "another server writes /data: pod {pod} listening on {}",
        replica.addr
    )
}

/// Polls `check` until it holds or `within` has passed; how long it took.
fn eventually(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<(), String>,
) -> Duration {
    let started = Instant::now();
    loop {
        match check() {
            Ok(()) => return started.elapsed(),
            Err(last) if started.elapsed() > within => {
                panic!("{what} not within {within:?}: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn readyz(replica: &Replica) -> (u16, String) {
    let reply = replica.get("/readyz");
    (reply.status, reply.body)
}

/// Waits, a beat at most, until `replica`'s `/readyz` fails naming `other` (pod `pod`); how
/// long that took.
fn detects(replica: &Replica, pod: &str, other: &Replica) -> Duration {
    let said = named(pod, other);
    eventually(BEAT + Duration::from_secs(2), "the detection", || {
        let (status, reason) = readyz(replica);
        (status == 503 && reason.contains(&said))
            .then_some(())
            .ok_or(reason)
    })
}

fn admin_addr(replica: &Replica) -> String {
    let output = replica.output();
    let rest = &output[output.find("admin on http://").expect("the admin address") + 16..];
    rest[..rest.find(')').unwrap()].to_owned()
}

#[test]
fn a_second_server_on_the_same_directory_is_detected_and_named() {
    let claim = tempfile::tempdir().unwrap();
    let first = server(claim.path(), "visits-a");
    // Alone through several beats: its own presence file does not count.
    std::thread::sleep(BEAT * 2 + Duration::from_millis(500));
    assert_eq!(readyz(&first).0, 200, "{}", readyz(&first).1);
    assert_eq!(first.get("/").status, 200);

    let second = server(claim.path(), "visits-b");
    let said = named("visits-a", &first);
    eventually(
        Duration::from_secs(2),
        "the second server's log line",
        || {
            let output = second.output();
            output.contains(&said).then_some(()).ok_or(output)
        },
    );
    let (status, reason) = readyz(&second);
    assert_eq!(status, 503, "{reason}");
    assert!(reason.contains(&said), "{reason}");

    let took = detects(&first, "visits-b", &second);
    let said = named("visits-b", &second);
    assert!(first.output().contains(&said), "{}", first.output());
    // Detection says; it stops nothing: visits are still recorded (and the count is wrong,
    // which is why readiness fails).
    assert_eq!(first.get("/").status, 200);

    // A drained server removes its file: the first is ready again at its next beat.
    let admin = admin_addr(&second);
    let drained = common::http_request("GET", &format!("http://{admin}/drain"), &[]);
    assert_eq!(drained.status, 200, "{}", drained.body);
    eventually(
        BEAT + Duration::from_secs(2),
        "readiness after the other left",
        || {
            let (status, reason) = readyz(&first);
            (status == 200).then_some(()).ok_or(reason)
        },
    );
    assert!(
        first
            .output()
            .contains("no other server writes /data any more"),
        "{}",
        first.output()
    );
    println!("RELIABILITY presence: a second server on one data directory named by both, the first within {took:?}; ready again once it drained");
}

#[test]
fn a_killed_servers_beat_counts_until_it_ages_out() {
    let claim = tempfile::tempdir().unwrap();
    let first = server(claim.path(), "visits-a");
    let second = server(claim.path(), "visits-b");
    detects(&first, "visits-b", &second);
    // kill -9 leaves the file: its last beat is fresh for FRESH less at most one BEAT.
    second.kill();
    let killed = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(readyz(&first).0, 503, "a killed server's beat still counts");
    eventually(
        FRESH + BEAT + Duration::from_secs(3),
        "readiness once the beat aged out",
        || {
            let (status, reason) = readyz(&first);
            (status == 200).then_some(()).ok_or(reason)
        },
    );
    let after = killed.elapsed();
    assert!(after >= FRESH - BEAT, "ready {after:?} after the kill");
}
