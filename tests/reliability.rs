//! The log's one promise, under load and faults, on the real runtime: an acknowledged visit
//! is on disk as one whole line. Every case runs against both artefacts. Full and read-only
//! volumes are real mounts, so these tests need root (CI has it). Each prints the figures the
//! README's reliability section quotes.

#[macro_use]
mod common;

use common::{
    is_record, log_lines, own_agent, shown_time, try_request, Artefact, Mount, Replica, ReplicaSpec,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

const LOAD_VISITS: usize = 10_000;
const LOAD_CONNECTIONS: usize = 64;
const REPLICAS: usize = 3;

/// 10 000 visits from 64 connections spread over three replicas, each its own runtime
/// process and directory: every 200 is exactly one whole line in the right replica's file.
fn load_over_three_replicas(artefact: Artefact) {
    let claims: Vec<_> = (0..REPLICAS)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let replicas: Vec<Replica> = claims
        .iter()
        .enumerate()
        .map(|(i, claim)| ReplicaSpec::new(artefact, claim.path(), &format!("visits-{i}")).start())
        .collect();
    let next = AtomicUsize::new(0);
    let acknowledged: Mutex<BTreeMap<String, Vec<String>>> = Mutex::default();
    let failures = AtomicUsize::new(0);

    std::thread::scope(|scope| {
        for _ in 0..LOAD_CONNECTIONS {
            scope.spawn(|| {
                let agent = own_agent();
                let mut mine: Vec<(String, String)> = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= LOAD_VISITS {
                        break;
                    }
                    // Spread like a Service would: each visit to one of the replicas.
                    match try_request(&agent, &replicas[n % REPLICAS].url("/")) {
                        Ok(reply) if reply.status == 200 => mine.push((
                            reply.header("x-served-by").to_string(),
                            shown_time(&reply.body),
                        )),
                        _ => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                let mut all = acknowledged.lock().unwrap();
                for (pod, time) in mine {
                    all.entry(pod).or_default().push(time);
                }
            });
        }
    });

    let acknowledged = acknowledged.into_inner().unwrap();
    let mut found = 0;
    let mut malformed = 0;
    for (i, claim) in claims.iter().enumerate() {
        let lines = log_lines(claim.path());
        found += lines.len();
        malformed += lines.iter().filter(|line| !is_record(line)).count();
        let acked = &acknowledged[&format!("visits-{i}")];
        let (missing, extra) = difference(acked, &lines);
        assert!(
            missing.is_empty() && extra.is_empty(),
            "visits-{i}: acknowledged but not on disk {missing:?}; on disk but not acknowledged {extra:?}"
        );
        assert!(raw_log(claim.path()).ends_with('\n'));
    }
    let acked_total: usize = acknowledged.values().map(Vec::len).sum();
    println!(
        "RELIABILITY load {artefact:?}: sent {LOAD_VISITS} over {LOAD_CONNECTIONS} connections \
         to {REPLICAS} replicas, acknowledged {acked_total}, failed {}, lines found {found}, \
         lost {}, malformed {malformed}",
        failures.load(Ordering::Relaxed),
        acked_total.saturating_sub(found),
    );
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert_eq!(acked_total, LOAD_VISITS);
    assert_eq!(malformed, 0);
}

/// What `expected` has that `found` lacks, and the reverse, counting repeats.
fn difference<'a>(expected: &'a [String], found: &'a [String]) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut counts: BTreeMap<&str, isize> = BTreeMap::new();
    for item in expected {
        *counts.entry(item).or_default() += 1;
    }
    for item in found {
        *counts.entry(item).or_default() -= 1;
    }
    let pick = |sign: isize| {
        counts
            .iter()
            .filter(|(_, n)| n.signum() == sign)
            .map(|(item, _)| *item)
            .collect()
    };
    (pick(1), pick(-1))
}

fn raw_log(claim: &Path) -> String {
    std::fs::read_to_string(claim.join("visits.txt")).unwrap_or_default()
}

/// kill -9 in the middle of load, then a restart on the same directory: only whole lines
/// plus at most one torn tail, every acknowledged visit kept, reads skip the tail, and the
/// next visit starts on a fresh line.
fn crash_mid_load_then_restart(artefact: Artefact) {
    let claim = tempfile::tempdir().unwrap();
    let spec = ReplicaSpec::new(artefact, claim.path(), "visits-0");
    let replica = spec.start();
    let url = replica.url("/");
    let acknowledged = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);

    std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| {
                let agent = own_agent();
                while !stop.load(Ordering::Relaxed) {
                    match try_request(&agent, &url) {
                        Ok(reply) if reply.status == 200 => {
                            acknowledged.lock().unwrap().push(shown_time(&reply.body))
                        }
                        Ok(reply) => panic!("{}: {}", reply.status, reply.body),
                        Err(_) => break, // the runtime is gone
                    }
                }
            });
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while acknowledged.lock().unwrap().len() < 400 {
            assert!(std::time::Instant::now() < deadline, "load never got going");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        replica.kill();
        stop.store(true, Ordering::Relaxed);
    });

    let acknowledged = acknowledged.into_inner().unwrap();
    let raw = raw_log(claim.path());
    let (whole, tail) = raw.split_at(raw.rfind('\n').map_or(0, |at| at + 1));
    let lines: Vec<&str> = whole.lines().collect();
    assert!(lines.iter().all(|line| is_record(line)), "only whole lines");
    assert!(tail.len() < 33, "at most one torn tail: {tail:?}");
    for time in &acknowledged {
        assert!(
            lines.contains(&time.as_str()),
            "acknowledged {time} is on disk"
        );
    }

    // kill -9 cannot split one write() on a local filesystem, so to check that readers cope
    // with what a power cut can leave, end the file with a torn line ourselves.
    let torn = "2023-11-18 17:5";
    if tail.is_empty() {
        std::fs::write(claim.path().join("visits.txt"), format!("{raw}{torn}")).unwrap();
    }
    let restarted = spec.start();
    let listing = restarted.get("/visits");
    assert_eq!(listing.status, 200);
    assert_eq!(listing.body, whole, "the listing skips the torn tail");
    let tail_one = restarted.get("/visits?tail=1");
    assert_eq!(tail_one.body, format!("{}\n", lines.last().unwrap()));
    let json: serde_json::Value =
        serde_json::from_str(&restarted.get("/visits?format=json").body).unwrap();
    assert_eq!(json["count"], lines.len(), "the count skips the torn tail");

    let visit = restarted.get("/");
    assert_eq!(visit.status, 200);
    let new_time = shown_time(&visit.body);
    let after = raw_log(claim.path());
    assert!(
        after.ends_with(&format!("\n{new_time}\n")),
        "the new visit starts on a fresh line"
    );
    let listed = restarted.get("/visits").body;
    assert_eq!(listed, format!("{whole}{new_time}\n"));
    println!(
        "RELIABILITY crash {artefact:?}: acknowledged {} before kill -9, lines found {}, \
         lost 0, torn tails left by the crash {}",
        acknowledged.len(),
        lines.len(),
        usize::from(!tail.is_empty()),
    );
}

/// A volume that fills up: 507 with a reason, no partial line, readiness 503, and visits
/// resume once space is freed.
fn full_volume(artefact: Artefact) {
    let scratch = tempfile::tempdir().unwrap();
    let volume = Mount::tmpfs(&scratch.path().join("claim"), "16k");
    // Leave one page: the log fills it and the next page cannot be had.
    std::fs::write(volume.path.join("filler"), vec![0u8; 12 * 1024]).unwrap();
    let replica = ReplicaSpec::new(artefact, &volume.path, "visits-0").start();

    let mut accepted = 0;
    let refusal = loop {
        let reply = replica.get("/");
        match reply.status {
            200 => accepted += 1,
            _ => break reply,
        }
        assert!(accepted < 1000, "the volume never filled");
    };
    assert_eq!(refusal.status, 507, "{}", refusal.body);
    assert!(refusal.body.contains("full"), "{}", refusal.body);
    let raw = raw_log(&volume.path);
    assert_eq!(raw.len() % 33, 0, "no partial line: {} bytes", raw.len());
    assert_eq!(log_lines(&volume.path).len(), accepted);
    assert!(log_lines(&volume.path).iter().all(|line| is_record(line)));

    let ready = replica.get("/readyz");
    assert_eq!(ready.status, 503);
    assert!(ready.body.contains("full"), "{}", ready.body);
    assert_eq!(replica.get("/visits").body, raw, "reading still works");
    assert_eq!(replica.get("/healthz").status, 200);
    assert_eq!(replica.get("/").status, 507, "refused again, still whole");
    assert_eq!(raw_log(&volume.path), raw);

    std::fs::remove_file(volume.path.join("filler")).unwrap();
    assert_eq!(replica.get("/readyz").status, 200);
    assert_eq!(replica.get("/").status, 200);
    assert_eq!(log_lines(&volume.path).len(), accepted + 1);
    println!(
        "RELIABILITY full {artefact:?}: {accepted} visits fitted, then 507; partial lines 0; \
         recovered after freeing space"
    );
}

/// The Spin shim's case: the directory is there but read-only.
fn read_only_volume(artefact: Artefact) {
    let scratch = tempfile::tempdir().unwrap();
    let source = scratch.path().join("source");
    std::fs::create_dir(&source).unwrap();
    let earlier = "2023-11-18 17:54:26.913511+03:00\n";
    std::fs::write(source.join("visits.txt"), earlier).unwrap();
    let view = Mount::read_only_view(&source, &scratch.path().join("view"));
    let replica = ReplicaSpec::new(artefact, &view.path, "visits-0").start();

    let visit = replica.get("/");
    assert_eq!(visit.status, 503);
    assert!(visit.body.contains("read-only"), "{}", visit.body);
    let ready = replica.get("/readyz");
    assert_eq!(ready.status, 503);
    assert!(ready.body.contains("read-only"), "{}", ready.body);
    assert_eq!(replica.get("/visits").body, earlier);
    assert_eq!(replica.get("/healthz").status, 200);
    assert_eq!(raw_log(&source), earlier, "nothing changed");
}

/// With the whole container root preopened (as runwasi does), the component touches
/// nothing outside DATA_DIR, whatever it is asked.
fn writes_stay_inside_data_dir(artefact: Artefact) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("data")).unwrap();
    std::fs::write(root.path().join("untouched.txt"), "x").unwrap();
    let mut spec = ReplicaSpec::new(artefact, root.path(), "visits-0");
    spec.mount_path = "/".into();
    spec.data_dir = Some("/data".into());
    let replica = spec.start();
    for path in [
        "/",
        "/",
        "/readyz",
        "/visits",
        "/visits?tail=1",
        "/../x",
        "/%2e%2e/untouched.txt",
    ] {
        replica.get(path);
    }
    let mut found: Vec<String> = walk(root.path())
        .into_iter()
        .map(|path| {
            path.strip_prefix(root.path())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    found.sort();
    // The server's presence file (src/presence.rs) is in the data directory too.
    let presence: Vec<_> = found
        .iter()
        .filter(|path| path.starts_with("data/.spin-visits-server-"))
        .cloned()
        .collect();
    found.retain(|path| !presence.contains(path));
    assert_eq!(found, ["data", "data/visits.txt", "untouched.txt"]);
    let presences = if artefact == Artefact::Server { 1 } else { 0 };
    assert_eq!(presence.len(), presences, "{presence:?}");
    assert_eq!(log_lines(&root.path().join("data")).len(), 2);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(walk(&path));
        }
        all.push(path);
    }
    all
}

for_each_artefact!(
    load_over_three_replicas,
    crash_mid_load_then_restart,
    full_volume,
    read_only_volume,
    writes_stay_inside_data_dir,
);

/// A client that never finishes its request head holds one connection, not the server: others
/// are answered meanwhile, and the header-read timeout (10 s) closes it. Only the server
/// component needs this; under `wasmtime serve` the host owns the connections.
#[test]
fn a_slow_client_neither_stalls_others_nor_stays_forever() {
    use std::io::{Read, Write};
    let claim = tempfile::tempdir().unwrap();
    let replica = ReplicaSpec::new(Artefact::Server, claim.path(), "visits-0").start();
    let mut slow = std::net::TcpStream::connect(&replica.addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();

    let started = std::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(replica.get("/healthz").status, 200);
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "others were stalled"
    );

    slow.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 64];
    let read = slow.read(&mut buf);
    let waited = started.elapsed();
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "closed without a response: {read:?}"
    );
    assert!(
        waited >= std::time::Duration::from_secs(9) && waited < std::time::Duration::from_secs(15),
        "cut off after {waited:?}"
    );
    assert!(log_lines(claim.path()).is_empty(), "no visit recorded");
}
