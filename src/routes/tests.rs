//! The handler's routes on the host, each with a real log in a temporary directory.

use super::*;
use crate::host::{self, Direct};
use crate::peers::PeerReport;
use http::header::ACCEPT;
use std::path::Path;

fn fixed_clock() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2023-11-18T17:54:26.913511+03:00").unwrap()
}

fn app_in(dir: &Path) -> App {
    App {
        clock: fixed_clock,
        ..App::new(Config {
            data_dir: dir.to_owned(),
            pod_name: "visits-0".into(),
            ..Config::default()
        })
    }
}

/// The handler with a host that appends at once: it never waits.
fn answer(request: &Request<RequestBody>, app: &App) -> Response<Body> {
    host::now(handle(request, app, &Direct(&app.log)))
}

fn call(
    app: &App,
    method: Method,
    uri: &str,
    accept: Option<&str>,
) -> (StatusCode, http::HeaderMap, String) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    let response = answer(&request.body(RequestBody::Empty).unwrap(), app);
    let (parts, body) = response.into_parts();
    let body = String::from_utf8(body.into_bytes().unwrap()).unwrap();
    (parts.status, parts.headers, body)
}

#[test]
fn a_visit_appends_the_fixed_time_and_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_in(dir.path());
    let (status, headers, body) = call(&app, Method::GET, "/", None);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[SERVED_BY], "visits-0");
    assert_eq!(headers[CACHE_CONTROL], "no-store");
    assert!(body.contains("2023-11-18 17:54:26.913511+03:00"));
    let file = std::fs::read_to_string(dir.path().join("visits.txt")).unwrap();
    assert_eq!(file, "2023-11-18 17:54:26.913511+03:00\n");
}

#[test]
fn unknown_paths_404_and_wrong_methods_405_without_recording() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_in(dir.path());
    assert_eq!(
        call(&app, Method::GET, "/nope", None).0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, Method::GET, "/visits/", None).0,
        StatusCode::NOT_FOUND
    );
    let (status, headers, _) = call(&app, Method::POST, "/", None);
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[ALLOW], "GET");
    assert_eq!(
        call(&app, Method::HEAD, "/", None).0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    let (status, headers, _) = call(&app, Method::DELETE, "/visits", None);
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[ALLOW], "GET, HEAD");
    assert!(!dir.path().join("visits.txt").exists());
}

#[test]
fn visits_lists_text_json_and_tail() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_in(dir.path());
    for _ in 0..3 {
        call(&app, Method::GET, "/", None);
    }
    let record = "2023-11-18 17:54:26.913511+03:00";
    let (_, headers, body) = call(&app, Method::GET, "/visits", None);
    assert_eq!(headers[CONTENT_TYPE], "text/plain; charset=utf-8");
    assert_eq!(body, format!("{record}\n").repeat(3));
    assert_eq!(
        call(&app, Method::GET, "/visits?tail=1", None).2,
        format!("{record}\n")
    );
    let json =
        format!(r#"{{"pod":"visits-0","count":3,"first":2,"visits":["{record}","{record}"]}}"#);
    assert_eq!(
        call(&app, Method::GET, "/visits?tail=2&format=json", None).2,
        json
    );
    let (_, headers, body) = call(
        &app,
        Method::GET,
        "/visits?tail=2",
        Some("text/html, application/json;q=0.9"),
    );
    assert_eq!(headers[CONTENT_TYPE], "application/json");
    assert_eq!(body, json);
    let empty = r#"{"pod":"visits-0","count":3,"first":4,"visits":[]}"#;
    assert_eq!(
        call(&app, Method::GET, "/visits?tail=0&format=json", None).2,
        empty
    );
}

#[test]
fn a_body_is_refused_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_in(dir.path());
    let request = Request::get("/").body(RequestBody::Present).unwrap();
    let response = answer(&request, &app);
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(!dir.path().join("visits.txt").exists());
    let post = Request::post("/").body(RequestBody::Present).unwrap();
    assert_eq!(answer(&post, &app).status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn metrics_count_visits_and_bytes_without_recording() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_in(dir.path());
    call(&app, Method::GET, "/", None);
    call(&app, Method::GET, "/", None);
    let (status, headers, body) = call(&app, Method::GET, "/metrics", None);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CONTENT_TYPE], metrics::CONTENT_TYPE);
    assert!(
        body.contains("visits_total{pod=\"visits-0\"} 2\n"),
        "{body}"
    );
    assert!(
        body.contains("visits_log_size_bytes{pod=\"visits-0\"} 66\n"),
        "{body}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("visits.txt")).unwrap().len(),
        66
    );
}

/// Answers every peer as down with its own name, so the test sees what was asked.
struct PeersDown;

impl Host for PeersDown {
    async fn append(&self, _: [u8; record::RECORD_LEN]) -> Appended {
        unreachable!("the cluster view records no visit")
    }

    async fn ask_peers(&self, configured: &[String], _: std::time::Duration) -> Vec<PeerReport> {
        configured
            .iter()
            .map(|peer| PeerReport::down(peer, format!("asked {peer}")))
            .collect()
    }
}

#[test]
fn the_cluster_view_asks_the_configured_peers() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = app_in(dir.path());
    app.config.peers = vec!["a:1".into(), "b:2".into()];
    let request = Request::get("/visits/all?format=json")
        .body(RequestBody::Empty)
        .unwrap();
    let (parts, body) = host::now(handle(&request, &app, &PeersDown)).into_parts();
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(parts.headers[CONTENT_TYPE], "application/json");
    let json = String::from_utf8(body.into_bytes().unwrap()).unwrap();
    assert!(json.starts_with(r#"{"pod":"visits-0","total":0,"replicas":[{"peer":"a:1""#));
    assert!(
        json.contains("asked a:1") && json.contains("asked b:2"),
        "{json}"
    );
    assert!(!dir.path().join("visits.txt").exists(), "nothing recorded");
}

#[test]
fn readiness_gives_the_hosts_reason_first() {
    struct Draining;
    impl Host for Draining {
        async fn append(&self, _: [u8; record::RECORD_LEN]) -> Appended {
            unreachable!()
        }
        async fn ask_peers(&self, _: &[String], _: std::time::Duration) -> Vec<PeerReport> {
            unreachable!()
        }
        fn unready_reason(&self) -> Option<String> {
            Some("draining".into())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let app = app_in(dir.path());
    let request = Request::get("/readyz").body(RequestBody::Empty).unwrap();
    let response = host::now(handle(&request, &app, &Draining));
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.into_body().into_bytes().unwrap(), b"draining\n");
}

#[test]
fn visits_carries_the_total_count() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_in(dir.path());
    call(&app, Method::GET, "/", None);
    let (_, headers, _) = call(&app, Method::GET, "/visits?tail=0", None);
    assert_eq!(headers[crate::peers::COUNT_HEADER], "1");
}

#[test]
fn bad_list_queries_are_400() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_in(dir.path());
    for uri in [
        "/visits?tail=-1",
        "/visits?tail=abc",
        "/visits?tail=",
        "/visits?tail=+3",
        "/visits?tail=1e3",
        "/visits?format=xml",
    ] {
        assert_eq!(
            call(&app, Method::GET, uri, None).0,
            StatusCode::BAD_REQUEST,
            "{uri}"
        );
    }
    assert_eq!(
        call(&app, Method::GET, "/visits?tail=99999999999", None).0,
        StatusCode::OK
    );
}

#[test]
fn probes_record_nothing_and_readiness_reports_a_missing_volume() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_in(dir.path());
    assert_eq!(call(&app, Method::GET, "/healthz", None).0, StatusCode::OK);
    assert_eq!(call(&app, Method::GET, "/readyz", None).0, StatusCode::OK);
    assert_eq!(
        std::fs::metadata(dir.path().join("visits.txt"))
            .unwrap()
            .len(),
        0
    );

    let missing = app_in(&dir.path().join("gone"));
    let (status, _, body) = call(&missing, Method::GET, "/readyz", None);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("does not exist"), "{body}");
    assert_eq!(
        call(&missing, Method::GET, "/", None).0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        call(&missing, Method::GET, "/healthz", None).0,
        StatusCode::OK
    );
}

#[test]
fn readiness_fails_with_free_bytes_once_under_the_reserve() {
    let dir = tempfile::tempdir().unwrap();
    let app = App {
        clock: fixed_clock,
        ..App::new(Config {
            data_dir: dir.path().to_owned(),
            pod_name: "visits-0".into(),
            volume_capacity: Some(16 << 10),
            reserve_bytes: Some(12 << 10),
            ..Config::default()
        })
    };
    assert_eq!(call(&app, Method::GET, "/readyz", None).0, StatusCode::OK);
    // 200 visits take two 4 KiB blocks: 8 KiB of 16 KiB are left, under the 12 KiB reserve.
    std::fs::write(
        dir.path().join("visits.txt"),
        record::record_at(&fixed_clock()).repeat(200),
    )
    .unwrap();
    let (status, _, body) = call(&app, Method::GET, "/readyz", None);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body.starts_with("volume nearly full: 8192 bytes free"),
        "{body}"
    );
    let (_, _, metrics) = call(&app, Method::GET, "/metrics", None);
    assert!(metrics.contains("visits_volume_free_bytes{pod=\"visits-0\"} 8192\n"));
    // A visit is still recorded: readiness only steers traffic away.
    assert_eq!(call(&app, Method::GET, "/", None).0, StatusCode::OK);
}

#[test]
fn the_listing_says_where_it_starts_after_retention() {
    let dir = tempfile::tempdir().unwrap();
    // What retention leaves: visits 1 to 10 let go, 11 to 12 sealed, 3 in visits.txt.
    let record = record::record_at(&fixed_clock());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &record.repeat(2)).unwrap();
    std::fs::write(
        dir.path().join("visits.000000000011-000000000012.txt.gz"),
        gz.finish().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("visits.txt"), record.repeat(3)).unwrap();
    let app = app_in(dir.path());
    let (_, headers, body) = call(&app, Method::GET, "/visits", None);
    assert_eq!(headers[crate::peers::COUNT_HEADER], "15");
    assert_eq!(headers[FIRST_HEADER], "11");
    assert_eq!(body.lines().count(), 5);
    let (_, _, json) = call(&app, Method::GET, "/visits?format=json&tail=4", None);
    assert!(
        json.starts_with(r#"{"pod":"visits-0","count":15,"first":12,"#),
        "{json}"
    );
    let (_, _, metrics) = call(&app, Method::GET, "/metrics", None);
    assert!(
        metrics.contains("visits_let_go_total{pod=\"visits-0\"} 10\n"),
        "{metrics}"
    );
    assert!(metrics.contains("visits_total{pod=\"visits-0\"} 15\n"));
    assert!(metrics.contains("visits_sealed_raw_bytes{pod=\"visits-0\"} 66\n"));
}
