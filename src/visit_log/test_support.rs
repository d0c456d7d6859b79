//! What the writer's and the reader's tests share.

use super::VisitLog;
use crate::record::{record_at, to_moscow, RECORD_LEN};
use chrono::{TimeZone, Utc};

/// The record of a visit at 17:00:`second` Moscow time on 2023-11-18.
pub fn record(second: u32) -> [u8; RECORD_LEN] {
    record_at(&to_moscow(
        Utc.with_ymd_and_hms(2023, 11, 18, 14, 0, second).unwrap(),
    ))
}

/// Every listed line, or the last `tail`.
pub fn all(log: &VisitLog, tail: Option<u64>) -> Vec<String> {
    let mut out = Vec::new();
    let mut records = log.records(tail).unwrap();
    while records
        .next_chunk(|line| out.push(String::from_utf8(line.to_vec()).unwrap()))
        .unwrap()
    {}
    out
}
