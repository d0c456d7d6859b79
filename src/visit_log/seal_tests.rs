//! Sealing, reads across segments, recovery and retention on real files.

use super::super::test_support::all;
use super::*;
use crate::record::{record_at, to_moscow, RECORD_LEN};
use crate::visit_log::{Fsync, Records};
use chrono::{TimeZone, Utc};
use flate2::read::GzDecoder;
use std::path::Path;

/// The record of visit number `n`: one second each, so every line differs.
fn visit(n: u64) -> [u8; RECORD_LEN] {
    record_at(&to_moscow(
        Utc.timestamp_opt(1_700_000_000 + n as i64, 0).unwrap(),
    ))
}

fn text(n: u64) -> String {
    String::from_utf8(visit(n)[..TIMESTAMP_LEN].to_vec()).unwrap()
}

/// A sole writer sealing every `lines` lines.
fn writer(dir: &Path, lines: u64, retain: Option<u64>) -> VisitLog {
    VisitLog::with_fsync(dir, Fsync::No)
        .with_segments(lines * RECORD_LEN as u64, retain)
        .sole_writer()
}

/// Runs seal steps until there is nothing left to do; the segments sealed.
fn seal_all(log: &VisitLog) -> Vec<Sealed> {
    let mut sealed = Vec::new();
    loop {
        match log.seal_step().unwrap() {
            SealProgress::Idle => return sealed,
            SealProgress::Working => {}
            SealProgress::Sealed(segment) => sealed.push(segment),
        }
    }
}

/// Appends visits `from..to` in batches of three, sealing between batches; checks counts.
fn append(log: &VisitLog, from: u64, to: u64) {
    let mut n = from;
    while n < to {
        let batch: Vec<_> = (n..to.min(n + 3)).map(visit).collect();
        assert_eq!(
            log.append_batch(&batch).unwrap(),
            n + 1,
            "count of visit {n}"
        );
        n += batch.len() as u64;
        seal_all(log);
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// What `zcat visits.*.txt.gz; cat visits.txt` prints.
fn zcat_and_cat(dir: &Path) -> String {
    let mut out = String::new();
    for name in names(dir) {
        let path = dir.join(&name);
        if name.ends_with(".txt.gz") {
            GzDecoder::new(File::open(path).unwrap())
                .read_to_string(&mut out)
                .unwrap();
        } else if name == LOG_FILE_NAME {
            out.push_str(&fs::read_to_string(path).unwrap());
        }
    }
    out
}

#[test]
fn a_full_log_is_sealed_and_read_back_across_segments_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = writer(dir.path(), 10, None);
    append(&log, 0, 50);
    assert_eq!(log.count().unwrap(), 50);
    let layout = log.layout().unwrap();
    assert_eq!(
        layout
            .sealed
            .iter()
            .map(|s| (s.first, s.last))
            .collect::<Vec<_>>(),
        [(1, 12), (13, 24), (25, 36), (37, 48)],
        "each seal takes the whole lines written when it began"
    );
    let every: Vec<_> = (0..50).map(text).collect();
    assert_eq!(all(&log, None), every);
    let expected: String = every.iter().map(|line| format!("{line}\n")).collect();
    assert_eq!(zcat_and_cat(dir.path()), expected, "standard tools read it");
    for tail in 0..=53 {
        let records = log.records(Some(tail)).unwrap();
        let listed = tail.min(50);
        assert_eq!(records.visit_count(), 50);
        assert_eq!(records.first_visit(), 51 - listed, "tail {tail}");
        assert_eq!(
            all(&log, Some(tail)),
            every[(50 - listed) as usize..],
            "tail {tail}"
        );
    }
    // A reader that never seals (Spin) counts and lists the same.
    let reader = VisitLog::new(dir.path());
    assert_eq!(reader.count().unwrap(), 50);
    assert_eq!(reader.append(&visit(50)).unwrap(), 51);
    assert_eq!(
        all(&reader, Some(5)),
        (46..51).map(text).collect::<Vec<_>>()
    );
}

#[test]
fn visits_appended_during_a_seal_stay_in_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    // Slices are 64 KiB: 20 000 lines take eleven steps.
    let log = writer(dir.path(), 20_000, None);
    let batch: Vec<_> = (0..20_000).map(visit).collect();
    assert_eq!(log.append_batch(&batch).unwrap(), 1);
    assert_eq!(log.seal_step().unwrap(), SealProgress::Working);
    let mut n = 20_000;
    let sealed = loop {
        assert_eq!(log.append(&visit(n)).unwrap(), n + 1);
        n += 1;
        if let SealProgress::Sealed(sealed) = log.seal_step().unwrap() {
            break sealed;
        }
    };
    assert_eq!((sealed.first, sealed.last), (1, 20_000));
    assert!(
        sealed.bytes * 8 < 20_000 * RECORD_LEN as u64,
        "{} bytes",
        sealed.bytes
    );
    assert_eq!(log.size_bytes().unwrap(), (n - 20_000) * RECORD_LEN as u64);
    assert_eq!(log.append(&visit(n)).unwrap(), n + 1);
    let listed = all(&log, None);
    assert_eq!(listed, (0..=n).map(text).collect::<Vec<_>>());
    assert_eq!(
        names(dir.path()),
        [Sealed::file_name(1, 20_000), LOG_FILE_NAME.into()]
    );
}

#[test]
fn the_first_and_last_timestamps_are_in_the_gzip_header() {
    let dir = tempfile::tempdir().unwrap();
    let log = writer(dir.path(), 5, None);
    append(&log, 0, 6);
    let path = dir.path().join(Sealed::file_name(1, 6));
    let decoder = GzDecoder::new(File::open(path).unwrap());
    let comment = decoder.header().unwrap().comment().unwrap();
    assert_eq!(
        String::from_utf8_lossy(comment),
        format!("spin-visits segment: first {}, last {}", text(0), text(5))
    );
}

/// The directory a crash leaves at each step, rebuilt by hand, and what a start makes of it.
#[test]
fn a_start_completes_or_rolls_back_what_a_crash_left() {
    let dir = tempfile::tempdir().unwrap();
    let log = writer(dir.path(), 10, None);
    append(&log, 0, 13);
    let every: Vec<_> = (0..13).map(text).collect();
    let sealed_name = Sealed::file_name(1, 12);
    let segment = fs::read(dir.path().join(&sealed_name)).unwrap();
    let active = fs::read(log.path()).unwrap();
    let whole: Vec<u8> = (0..13).flat_map(visit).collect();

    // written / synced: a complete or partial output under its temporary name.
    fs::remove_file(dir.path().join(&sealed_name)).unwrap();
    fs::write(log.path(), &whole).unwrap();
    fs::write(dir.path().join(SEALING_NAME), &segment[..20]).unwrap();
    let start = VisitLog::new(dir.path());
    assert_eq!(start.recover().unwrap().len(), 1);
    assert_eq!(names(dir.path()), [LOG_FILE_NAME]);
    assert_eq!(all(&start, None), every);

    // renamed: the segment is there and its lines still head visits.txt.
    fs::write(dir.path().join(&sealed_name), &segment).unwrap();
    assert_eq!(start.count().unwrap(), 25, "counted twice before recovery");
    assert_eq!(start.recover().unwrap().len(), 1);
    assert_eq!(names(dir.path()), [LOG_FILE_NAME]);
    assert_eq!(start.count().unwrap(), 13);
    assert_eq!(all(&start, None), every);

    // cut, before the rename: a leftover successor.
    fs::write(dir.path().join(&sealed_name), &segment).unwrap();
    fs::write(dir.path().join(NEXT_NAME), &active).unwrap();
    assert_eq!(start.recover().unwrap().len(), 2);
    assert_eq!(names(dir.path()), [LOG_FILE_NAME]);
    assert_eq!(all(&start, None), every);

    // cut: complete, nothing to do.
    fs::write(dir.path().join(&sealed_name), &segment).unwrap();
    fs::write(log.path(), &active).unwrap();
    assert!(start.recover().unwrap().is_empty());
    assert_eq!(all(&start, None), every);
    assert_eq!(start.count().unwrap(), 13);
}

#[test]
fn retention_lets_the_oldest_segments_go_and_keeps_the_count() {
    let dir = tempfile::tempdir().unwrap();
    // 200 lines a segment; blocks of 4 KiB: each segment takes one, the active file two.
    let log = writer(dir.path(), 200, Some(5 * 4096));
    for batch in 0..20u64 {
        let records: Vec<_> = (batch * 100..batch * 100 + 100).map(visit).collect();
        log.append_batch(&records).unwrap();
        seal_all(&log);
    }
    let layout = log.layout().unwrap();
    assert!(layout.disk_bytes <= 5 * 4096, "{layout:?}");
    assert!(layout.let_go() > 0);
    assert_eq!(log.count().unwrap(), 2000);
    let records = log.records(None).unwrap();
    assert_eq!(records.first_visit(), layout.let_go() + 1);
    let listed = all(&log, None);
    assert_eq!(
        listed,
        (layout.let_go()..2000).map(text).collect::<Vec<_>>()
    );
    assert_eq!(log.append(&visit(2000)).unwrap(), 2001);
}

#[test]
fn retention_keeps_the_newest_segment_whatever_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let log = writer(dir.path(), 10, Some(1));
    append(&log, 0, 40);
    assert_eq!(log.layout().unwrap().sealed.len(), 1);
    assert_eq!(log.count().unwrap(), 40);
    let records: Records = log.records(Some(100)).unwrap();
    assert_eq!(records.first_visit(), log.layout().unwrap().let_go() + 1);
}

#[test]
fn a_seal_that_cannot_write_is_abandoned_and_visits_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = writer(dir.path(), 10, None);
    append(&log, 0, 9);
    // A directory where the output goes makes the seal fail, as a full volume would.
    fs::create_dir(dir.path().join(SEALING_NAME)).unwrap();
    log.append(&visit(9)).unwrap();
    assert!(log.seal_step().is_err());
    assert!(!log.seal_due(), "the next try waits");
    assert_eq!(log.append(&visit(10)).unwrap(), 11);
    assert_eq!(all(&log, None), (0..11).map(text).collect::<Vec<_>>());
}

#[test]
fn a_seal_whose_cut_fails_takes_its_segment_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = writer(dir.path(), 10, None);
    append(&log, 0, 9);
    // A directory where the successor goes makes the cut fail after the rename.
    fs::create_dir(dir.path().join(NEXT_NAME)).unwrap();
    log.append(&visit(9)).unwrap();
    let failed = loop {
        match log.seal_step() {
            Ok(SealProgress::Working) => {}
            other => break other,
        }
    };
    assert!(failed.is_err(), "{failed:?}");
    assert!(
        log.layout().unwrap().sealed.is_empty(),
        "the segment is gone"
    );
    assert_eq!(log.count().unwrap(), 10);
    assert_eq!(log.append(&visit(10)).unwrap(), 11);
    assert_eq!(all(&log, None), (0..11).map(text).collect::<Vec<_>>());
}
