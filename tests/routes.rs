//! Every route over real HTTP against both artefacts on the real runtime, checked against
//! the file on disk. Each test runs once per artefact: `spin::…` and `server::…`.

#[macro_use]
mod common;

use common::{is_record, log_lines, Artefact, ReplicaSpec};
use std::collections::BTreeMap;

fn visit_records_one_line_and_shows_it(artefact: Artefact) {
    let claim = tempfile::tempdir().unwrap();
    let replica = ReplicaSpec::new(artefact, claim.path(), "visits-0").start();

    let reply = replica.get("/");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(reply.header("cache-control"), "no-store");
    assert_eq!(reply.header("x-served-by"), "visits-0");

    let lines = log_lines(claim.path());
    assert_eq!(lines.len(), 1);
    assert!(is_record(&lines[0]), "{:?}", lines[0]);
    assert!(
        reply.body.contains(&format!(">{}</time>", lines[0])),
        "{}",
        reply.body
    );
    assert!(reply
        .body
        .contains(r#"<code id="pod-name">visits-0</code>"#));
    assert!(reply
        .body
        .contains(r#"<strong id="visit-count">1</strong>"#));

    replica.get("/");
    assert!(replica
        .get("/")
        .body
        .contains(r#"<strong id="visit-count">3</strong>"#));
    let raw = std::fs::read_to_string(claim.path().join("visits.txt")).unwrap();
    assert_eq!(raw.len(), 3 * 33, "three 33-byte lines: {raw:?}");
    assert!(raw.ends_with('\n'));
}

fn probes_and_refusals_record_nothing(artefact: Artefact) {
    let claim = tempfile::tempdir().unwrap();
    let replica = ReplicaSpec::new(artefact, claim.path(), "visits-1").start();

    for (method, path, status, allow) in [
        ("GET", "/healthz", 200, None),
        ("GET", "/readyz", 200, None),
        ("HEAD", "/healthz", 200, None),
        ("GET", "/nope", 404, None),
        ("GET", "/visits/", 404, None),
        ("GET", "/index.html", 404, None),
        ("POST", "/", 405, Some("GET")),
        ("PUT", "/", 405, Some("GET")),
        ("HEAD", "/", 405, Some("GET")),
        ("DELETE", "/visits", 405, Some("GET, HEAD")),
        ("POST", "/healthz", 405, Some("GET, HEAD")),
    ] {
        let reply = replica.request(method, path, &[]);
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.body);
        assert_eq!(reply.header("x-served-by"), "visits-1", "{method} {path}");
        if let Some(allow) = allow {
            assert_eq!(reply.header("allow"), allow, "{method} {path}");
        }
    }
    assert!(log_lines(claim.path()).is_empty(), "no visit was recorded");
    assert_eq!(replica.get("/visits").body, "");
}

fn visits_text_tail_and_json_match_the_file(artefact: Artefact) {
    let claim = tempfile::tempdir().unwrap();
    let replica = ReplicaSpec::new(artefact, claim.path(), "visits-2").start();
    for _ in 0..5 {
        assert_eq!(replica.get("/").status, 200);
    }
    let file = std::fs::read_to_string(claim.path().join("visits.txt")).unwrap();
    let lines = log_lines(claim.path());

    let all = replica.get("/visits");
    assert_eq!(all.status, 200);
    assert_eq!(all.header("content-type"), "text/plain; charset=utf-8");
    assert_eq!(all.body, file, "the listing is the file exactly as stored");

    let tail = replica.get("/visits?tail=2");
    assert_eq!(tail.body, format!("{}\n{}\n", lines[3], lines[4]));
    assert_eq!(replica.get("/visits?tail=0").body, "");
    assert_eq!(replica.get("/visits?tail=99999999999").body, file);

    let by_accept = replica.request("GET", "/visits", &[("accept", "application/json")]);
    let by_query = replica.get("/visits?format=json");
    for reply in [&by_accept, &by_query] {
        assert_eq!(reply.header("content-type"), "application/json");
        let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(json["pod"], "visits-2");
        assert_eq!(json["count"], 5);
        assert_eq!(json["visits"], serde_json::json!(lines));
    }
    let json: serde_json::Value =
        serde_json::from_str(&replica.get("/visits?format=json&tail=1").body).unwrap();
    assert_eq!(json["visits"], serde_json::json!([lines[4]]));
    assert_eq!(
        json["count"], 5,
        "count is the replica's total, not the page"
    );

    for bad in ["tail=-1", "tail=abc", "tail=", "format=xml"] {
        let reply = replica.get(&format!("/visits?{bad}"));
        assert_eq!(reply.status, 400, "{bad}");
        assert!(!reply.body.is_empty());
    }
    assert_eq!(log_lines(claim.path()).len(), 5, "reads recorded nothing");
}

/// 500 visits from 25 threads at once: exactly 500 intact lines, and each page showed a
/// line that is in the file.
fn concurrent_visits_are_whole_lines(artefact: Artefact) {
    const THREADS: usize = 25;
    const PER_THREAD: usize = 20;
    let claim = tempfile::tempdir().unwrap();
    let replica = ReplicaSpec::new(artefact, claim.path(), "visits-0").start();
    let url = replica.url("/");

    let shown: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    (0..PER_THREAD)
                        .map(|_| {
                            let reply = common::http_request("GET", &url, &[]);
                            assert_eq!(reply.status, 200, "{}", reply.body);
                            let start = reply.body.find(r#"datetime=""#).unwrap() + 10;
                            reply.body[start..start + 32].to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });

    let lines = log_lines(claim.path());
    assert_eq!(lines.len(), THREADS * PER_THREAD);
    assert!(
        lines.iter().all(|line| is_record(line)),
        "every line intact"
    );
    assert_eq!(
        multiset(&lines),
        multiset(&shown),
        "each acknowledged visit is on disk once"
    );
}

fn multiset(items: &[String]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for item in items {
        *counts.entry(item.as_str()).or_default() += 1;
    }
    counts
}

fn a_missing_data_directory_is_a_clear_503(artefact: Artefact) {
    let claim = tempfile::tempdir().unwrap();
    let mut spec = ReplicaSpec::new(artefact, claim.path(), "visits-0");
    spec.data_dir = Some("/data/not-mounted".into());
    let replica = spec.start();

    let visit = replica.get("/");
    assert_eq!(visit.status, 503);
    assert!(
        visit.body.contains("/data/not-mounted does not exist"),
        "{}",
        visit.body
    );
    let ready = replica.get("/readyz");
    assert_eq!(ready.status, 503);
    assert!(ready.body.contains("does not exist"), "{}", ready.body);
    assert_eq!(replica.get("/visits").status, 503);
    assert_eq!(
        replica.get("/healthz").status,
        200,
        "liveness does not touch the log"
    );
    assert_eq!(
        std::fs::read_dir(claim.path()).unwrap().count(),
        0,
        "nothing was created"
    );
}

for_each_artefact!(
    visit_records_one_line_and_shows_it,
    probes_and_refusals_record_nothing,
    visits_text_tail_and_json_match_the_file,
    concurrent_visits_are_whole_lines,
    a_missing_data_directory_is_a_clear_503,
);
