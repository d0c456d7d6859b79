//! The benchmark's floor for a visit under a fresh instance per request: append the record to
//! `DATA_DIR/visits.txt` in one write (synced with `APPEND_FSYNC=always`), count by the file's
//! size, answer the same page. No routing, no diagnosis, no check that the count is the
//! visit's own.

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;
use spin_visits::page::{render, VisitView};
use spin_visits::record::{moscow_now, record_at, timestamp_text, RECORD_LEN};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

#[http_component]
fn handle(_request: Request) -> anyhow::Result<impl IntoResponse> {
    let dir = std::env::var("DATA_DIR").unwrap_or_else(|_| "/data".into());
    let pod = std::env::var("POD_NAME").unwrap_or_else(|_| "local".into());
    let record = record_at(&moscow_now());
    let mut log = OpenOptions::new()
        .append(true)
        .create(true)
        .open(Path::new(&dir).join("visits.txt"))?;
    log.write_all(&record)?;
    if std::env::var("APPEND_FSYNC").as_deref() != Ok("no") {
        log.sync_data()?;
    }
    let count = log.metadata()?.len() / RECORD_LEN as u64;
    let html = render(&VisitView {
        moscow_time: timestamp_text(&record),
        count,
        pod_name: &pod,
    });
    Ok(Response::builder()
        .status(200)
        .header("content-type", "text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .header("x-served-by", pod)
        .body(html)
        .build())
}
