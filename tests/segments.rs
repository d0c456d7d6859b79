//! Sealed segments on the real runtime: the server component seals `visits.txt` while it
//! serves visits, reads go across segments, a `kill -9` (the `SEAL_CRASH_AT` hook aborts the
//! process) at each step of a seal leaves a directory the next start completes or rolls back
//! with every acknowledged visit exactly once, and the Spin component reads the same layout
//! without sealing.

#[macro_use]
mod common;

use common::{own_agent, shown_count, shown_time, try_request, Artefact, Replica, ReplicaSpec};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// 300 lines a segment.
const SEGMENT_BYTES: &str = "9900";

fn spec(artefact: Artefact, claim: &Path, env: &[(&str, &str)]) -> ReplicaSpec {
    let mut spec = ReplicaSpec::new(artefact, claim, "visits-0");
    spec.env = env
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    spec
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn segments(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|name| name.starts_with("visits.") && name.ends_with(".txt.gz"))
        .collect()
}

/// What `zcat visits.*.txt.gz; cat visits.txt` prints.
fn zcat_and_cat(dir: &Path) -> String {
    let mut out = String::new();
    for name in segments(dir) {
        GzDecoder::new(std::fs::File::open(dir.join(name)).unwrap())
            .read_to_string(&mut out)
            .unwrap();
    }
    out + &std::fs::read_to_string(dir.join("visits.txt")).unwrap_or_default()
}

/// Waits until no seal is under way (the last one may still be compressing).
fn wait_for_seals(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while names(dir).iter().any(|name| name.starts_with(".visits.")) {
        assert!(Instant::now() < deadline, "a seal never ended");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Visits from `connections` threads until `enough` are acknowledged or the runtime dies;
/// each acknowledged visit's (count, time).
fn load(replica: &Replica, connections: usize, enough: usize) -> Vec<(u64, String)> {
    let url = replica.url("/");
    let acknowledged = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..connections {
            scope.spawn(|| {
                let agent = own_agent();
                while !stop.load(Ordering::Relaxed) {
                    match try_request(&agent, &url) {
                        Ok(reply) if reply.status == 200 => {
                            let mut acknowledged = acknowledged.lock().unwrap();
                            acknowledged.push((shown_count(&reply.body), shown_time(&reply.body)));
                            if acknowledged.len() >= enough {
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                        Ok(reply) => panic!("{}: {}", reply.status, reply.body),
                        Err(_) => break, // the runtime is gone
                    }
                }
            });
        }
    });
    acknowledged.into_inner().unwrap()
}

/// The listing, its count header and its JSON form agree, and every acknowledged visit is
/// listed exactly once, at the line its count names.
fn check_listing(replica: &Replica, acknowledged: &[(u64, String)]) -> Vec<String> {
    let reply = replica.get("/visits");
    assert_eq!(reply.status, 200);
    let lines: Vec<String> = reply.body.lines().map(str::to_owned).collect();
    let count: u64 = reply.header("x-visit-count").parse().unwrap();
    assert_eq!(
        count,
        lines.len() as u64,
        "x-visit-count is the lines listed"
    );
    assert_eq!(reply.header("x-visit-first"), "1");
    for (shown, time) in acknowledged {
        assert_eq!(
            lines.get(*shown as usize - 1),
            Some(time),
            "visit {time} was shown count {shown}"
        );
        assert_eq!(
            lines.iter().filter(|line| *line == time).count(),
            1,
            "{time} is listed once"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&replica.get("/visits?format=json").body).unwrap();
    assert_eq!(json["count"], count);
    assert_eq!(json["visits"].as_array().unwrap().len(), lines.len());
    // Tails across the segments' boundaries.
    for tail in [1, 299, 300, 301, 650, lines.len() + 5] {
        let reply = replica.get(&format!("/visits?tail={tail}"));
        let listed: Vec<&str> = reply.body.lines().collect();
        let from = lines.len().saturating_sub(tail);
        assert_eq!(listed, lines[from..], "tail {tail}");
        assert_eq!(reply.header("x-visit-first"), (from + 1).to_string());
    }
    lines
}

#[test]
fn the_server_seals_while_serving_and_reads_across_segments() {
    let claim = tempfile::tempdir().unwrap();
    let server = spec(
        Artefact::Server,
        claim.path(),
        &[("SEGMENT_BYTES", SEGMENT_BYTES)],
    )
    .start();
    let acknowledged = load(&server, 8, 2000);
    // The last seal may still be compressing: wait until no output is pending.
    let deadline = Instant::now() + Duration::from_secs(10);
    while names(claim.path())
        .iter()
        .any(|name| name.starts_with(".visits."))
    {
        assert!(Instant::now() < deadline, "a seal never ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sealed = segments(claim.path());
    assert!(sealed.len() >= 5, "{sealed:?}");
    let lines = check_listing(&server, &acknowledged);
    assert_eq!(zcat_and_cat(claim.path()), server.get("/visits").body);
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains(&format!(
            "visits_total{{pod=\"visits-0\"}} {}\n",
            lines.len()
        )),
        "{metrics}"
    );
    assert!(metrics.contains("visits_segments_sealed_total{pod=\"visits-0\"} "));
    drop(server);

    // The Spin component reads the same layout, appends after it, and never seals.
    let spin = spec(Artefact::Spin, claim.path(), &[("SEGMENT_BYTES", "33")]).start();
    let listed = spin.get("/visits");
    assert_eq!(listed.body.lines().collect::<Vec<_>>(), lines);
    let visit = spin.get("/");
    assert_eq!(shown_count(&visit.body), lines.len() as u64 + 1);
    assert_eq!(segments(claim.path()), sealed, "Spin never seals");
    assert_eq!(
        spin.get("/visits?tail=2").body.lines().last(),
        Some(shown_time(&visit.body).as_str())
    );
}

/// `SEAL_CRASH_AT` aborts the server right after the named step of a seal; a start without
/// it must then list every acknowledged visit exactly once, at its count.
fn crash_at(step: &str, leftover: fn(&[String]) -> bool) {
    let claim = tempfile::tempdir().unwrap();
    let crashing = spec(
        Artefact::Server,
        claim.path(),
        &[("SEGMENT_BYTES", SEGMENT_BYTES), ("SEAL_CRASH_AT", step)],
    )
    .start();
    let acknowledged = load(&crashing, 8, usize::MAX);
    let output = crashing.output();
    crashing.kill();
    assert!(
        output.contains(&format!("SEAL_CRASH_AT={step}: aborting")),
        "{output}"
    );
    let left = names(claim.path());
    assert!(leftover(&left), "after {step}: {left:?}");
    assert!(acknowledged.len() >= 300, "the seal began at 300 visits");

    let restarted = spec(
        Artefact::Server,
        claim.path(),
        &[("SEGMENT_BYTES", SEGMENT_BYTES)],
    )
    .start();
    let before = check_listing(&restarted, &acknowledged);
    // Sealing carries on after the recovery.
    let more = load(&restarted, 4, 700);
    let all: Vec<_> = acknowledged.iter().chain(&more).cloned().collect();
    let after = check_listing(&restarted, &all);
    assert_eq!(after[..before.len()], before);
    assert!(!segments(claim.path()).is_empty());
    println!(
        "SEGMENTS crash after {step}: {} acknowledged before the abort, left {left:?}, \
         {} listed after the restart, each once",
        acknowledged.len(),
        before.len()
    );
}

fn has(names: &[String], name: &str) -> bool {
    names.iter().any(|n| n == name)
}

fn sealed_count(names: &[String]) -> usize {
    names
        .iter()
        .filter(|name| name.starts_with("visits.") && name.ends_with(".txt.gz"))
        .count()
}

#[test]
fn a_crash_after_the_output_is_written_is_rolled_back() {
    crash_at("written", |left| {
        has(left, ".visits.sealing.gz") && sealed_count(left) == 0
    });
}

#[test]
fn a_crash_after_the_output_is_synced_is_rolled_back() {
    crash_at("synced", |left| {
        has(left, ".visits.sealing.gz") && sealed_count(left) == 0
    });
}

#[test]
fn a_crash_after_the_rename_is_rolled_back() {
    crash_at("renamed", |left| {
        !has(left, ".visits.sealing.gz") && sealed_count(left) == 1
    });
}

#[test]
fn a_crash_after_the_cut_keeps_the_seal() {
    crash_at("cut", |left| {
        !has(left, ".visits.txt.next") && sealed_count(left) == 1
    });
}

/// A log of any size from before segments is taken over as it is and sealed while served.
#[test]
fn an_existing_log_is_taken_over_and_sealed_while_serving() {
    let claim = tempfile::tempdir().unwrap();
    let old: String = (0..5000)
        .map(|n| {
            format!(
                "2023-11-18 17:{:02}:{:02}.{:06}+03:00\n",
                n / 3600 % 60,
                n / 60 % 60,
                n
            )
        })
        .collect();
    std::fs::write(claim.path().join("visits.txt"), &old).unwrap();
    let server = spec(
        Artefact::Server,
        claim.path(),
        &[("SEGMENT_BYTES", SEGMENT_BYTES)],
    )
    .start();
    let first = server.get("/");
    assert_eq!(first.status, 200);
    assert_eq!(
        shown_count(&first.body),
        5001,
        "no pause, the count goes on"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while segments(claim.path()).is_empty() {
        assert!(Instant::now() < deadline, "the old log was never sealed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let listing = server.get("/visits").body;
    assert_eq!(listing, format!("{old}{}\n", shown_time(&first.body)));
    assert_eq!(
        segments(claim.path()),
        ["visits.000000000001-000000005000.txt.gz"]
    );
}

/// `RETAIN_BYTES`: the oldest segments go, the directory stays under the limit, the count
/// stays exact and the listing says where it starts.
#[test]
fn retention_lets_old_segments_go_and_keeps_the_count() {
    let claim = tempfile::tempdir().unwrap();
    let server = spec(
        Artefact::Server,
        claim.path(),
        &[
            ("SEGMENT_BYTES", SEGMENT_BYTES),
            ("RETAIN_BYTES", "40Ki"),
            ("APPEND_FSYNC", "no"),
        ],
    )
    .start();
    let acknowledged = load(&server, 8, 4000);
    wait_for_seals(claim.path());
    let reply = server.get("/visits");
    let count: u64 = reply.header("x-visit-count").parse().unwrap();
    let first: u64 = reply.header("x-visit-first").parse().unwrap();
    assert_eq!(count, acknowledged.len() as u64, "every 200 is counted");
    assert!(first > 1, "some visits were let go");
    let lines: Vec<&str> = reply.body.lines().collect();
    assert_eq!(lines.len() as u64, count + 1 - first);
    for (shown, time) in &acknowledged {
        if *shown >= first {
            assert_eq!(lines[(*shown - first) as usize], time);
        }
    }
    let disk: u64 = std::fs::read_dir(claim.path())
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap().len().div_ceil(4096) * 4096)
        .sum();
    assert!(disk <= 40 << 10, "{disk} bytes on disk");
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains(&format!(
            "visits_let_go_total{{pod=\"visits-0\"}} {}\n",
            first - 1
        )),
        "{metrics}"
    );
}
