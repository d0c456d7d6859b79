//! `/drain` ends: once drained, the server answers the hook and exits 0, so a pod being
//! deleted stops at once and a replica drained by anyone else is restarted (by the kubelet)
//! instead of staying unready; a fresh start on the same claim serves the same log. While
//! the drain waits out its delay, `/readyz` fails and visits are still answered.

#[macro_use]
mod common;

use common::{Artefact, ReplicaSpec};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The service and admin addresses the server printed.
fn addresses(line: &str) -> Option<(String, String)> {
    let mut found = line.split("http://").skip(1).map(|rest| {
        rest.split(|c: char| c.is_whitespace() || c == ')' || c == ',')
            .next()
            .unwrap()
            .to_owned()
    });
    Some((found.next()?, found.next()?))
}

/// A server on `claim` with DRAIN_DELAY_SECONDS `delay`: its process and its service and
/// admin addresses.
fn spawn(claim: &Path, delay: &str) -> (Child, String, String) {
    let mut spec = ReplicaSpec::new(Artefact::Server, claim, "visits-0");
    spec.env = vec![
        ("DRAIN_DELAY_SECONDS".into(), delay.into()),
        ("DRAIN_TIMEOUT_SECONDS".into(), "5".into()),
    ];
    let mut child = spec
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (service, admin) = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| addresses(&line))
        .expect("the server prints its addresses");
    // Read on, so that what the server prints later never meets a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, service, admin)
}

/// How the process ended, once it has (it is killed if still running 10 s on).
fn exit(child: &mut Child) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("still running 10 s after its drain answered");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_drained_server_exits_0_and_a_fresh_start_serves_the_same_log() {
    let claim = tempfile::tempdir().unwrap();
    let (mut child, service, admin) = spawn(claim.path(), "0");
    for n in 1..=3 {
        let page = common::http_request("GET", &format!("http://{service}/"), &[]);
        assert_eq!(common::shown_count(&page.body), n);
    }
    let drained = common::http_request("GET", &format!("http://{admin}/drain"), &[]);
    assert_eq!(drained.status, 200, "{}", drained.body);
    drained.assert_promised_headers("GET /drain", "visits-0");
    assert!(
        drained.body.starts_with("drained: 0 requests in flight"),
        "{}",
        drained.body
    );
    let status = exit(&mut child);
    assert!(status.success(), "exited with {status}");

    let replica = ReplicaSpec::new(Artefact::Server, claim.path(), "visits-0").start();
    let page = replica.get("/");
    assert_eq!(common::shown_count(&page.body), 4, "the count continues");
    assert_eq!(common::log_lines(claim.path()).len(), 4);
}

/// The preStop hook's first seconds: `/readyz` fails at once (so any caller of `/drain`, not
/// only the kubelet deleting the pod, takes the replica out of the Service), and visits that
/// still arrive while the endpoint leaves are answered and kept.
#[test]
fn while_a_drain_waits_out_its_delay_readyz_fails_and_visits_are_served() {
    let claim = tempfile::tempdir().unwrap();
    let (mut child, service, admin) = spawn(claim.path(), "2");
    let ready = common::http_request("GET", &format!("http://{service}/readyz"), &[]);
    assert_eq!(ready.status, 200, "{}", ready.body);
    let asked = Instant::now();
    let drain = std::thread::spawn(move || {
        common::http_request("GET", &format!("http://{admin}/drain"), &[])
    });
    let ready = loop {
        let ready = common::http_request("GET", &format!("http://{service}/readyz"), &[]);
        if ready.status != 200 || asked.elapsed() > Duration::from_secs(1) {
            break ready;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.body.contains("draining"), "{}", ready.body);
    let page = common::http_request("GET", &format!("http://{service}/"), &[]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(common::shown_count(&page.body), 1);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "the checks did not run inside the 2 s delay"
    );
    let drained = drain.join().unwrap();
    assert_eq!(drained.status, 200, "{}", drained.body);
    let status = exit(&mut child);
    assert!(status.success(), "exited with {status}");
    assert_eq!(common::log_lines(claim.path()).len(), 1);
}
