//! `/drain` ends: once drained, the server answers the hook and exits 0, so a pod being
//! deleted stops at once and a replica drained by anyone else is restarted (by the kubelet)
//! instead of staying unready; a fresh start on the same claim serves the same log.

#[macro_use]
mod common;

use common::{Artefact, ReplicaSpec};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
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

#[test]
fn a_drained_server_exits_0_and_a_fresh_start_serves_the_same_log() {
    let claim = tempfile::tempdir().unwrap();
    let mut spec = ReplicaSpec::new(Artefact::Server, claim.path(), "visits-0");
    spec.env = vec![
        ("DRAIN_DELAY_SECONDS".into(), "0".into()),
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
    for n in 1..=3 {
        let page = common::http_request("GET", &format!("http://{service}/"), &[]);
        assert_eq!(common::shown_count(&page.body), n);
    }

    let drained = common::http_request("GET", &format!("http://{admin}/drain"), &[]);
    assert_eq!(drained.status, 200, "{}", drained.body);
    assert!(
        drained.body.starts_with("drained: 0 requests in flight"),
        "{}",
        drained.body
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("still running 10 s after its drain answered");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exited with {status}");

    let replica = ReplicaSpec::new(Artefact::Server, claim.path(), "visits-0").start();
    let page = replica.get("/");
    assert_eq!(common::shown_count(&page.body), 4, "the count continues");
    assert_eq!(common::log_lines(claim.path()).len(), 4);
}
