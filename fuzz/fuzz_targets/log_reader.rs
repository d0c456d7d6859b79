//! Any bytes on disk as visits.txt, after a sealed segment of the well-formed lines of a
//! prefix of them (when there are any): reading never panics, lists the segment's lines then
//! only well-formed records of visits.txt, in file order, from whole lines only, a tail is a
//! suffix of the full listing, and the count adds the segment's lines.
#![no_main]

use flate2::write::GzEncoder;
use flate2::Compression;
use libfuzzer_sys::fuzz_target;
use std::io::Write;
use spin_visits::record::is_timestamp;
use spin_visits::visit_log::VisitLog;

fn listed(log: &VisitLog, tail: Option<u64>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut records = log.records(tail).expect("the log opens");
    while records
        .next_chunk(|line| out.push(line.to_vec()))
        .expect("the log reads")
    {}
    out
}

/// The well-formed lines among the newline-terminated ones: what a reader should see.
fn well_formed(bytes: &[u8]) -> Vec<Vec<u8>> {
    let whole = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(at) => &bytes[..=at],
        None => &bytes[..0],
    };
    whole
        .split(|&b| b == b'\n')
        .filter(|line| is_timestamp(line))
        .map(<[u8]>::to_vec)
        .collect()
}

fuzz_target!(|input: (u8, u16, Vec<u8>)| {
    let (tail, split, bytes) = input;
    let dir = tempfile::tempdir().unwrap();
    let log = VisitLog::new(dir.path());
    let split = usize::from(split).min(bytes.len());
    let sealed = well_formed(&bytes[..split]);
    let active = if sealed.is_empty() {
        &bytes[..]
    } else {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        for line in &sealed {
            gz.write_all(line).unwrap();
            gz.write_all(b"\n").unwrap();
        }
        let name = format!("visits.000000000001-{:012}.txt.gz", sealed.len());
        std::fs::write(dir.path().join(name), gz.finish().unwrap()).unwrap();
        &bytes[split..]
    };
    std::fs::write(log.path(), active).unwrap();

    let all = listed(&log, None);
    let mut expected = sealed.clone();
    expected.extend(well_formed(active));
    assert_eq!(all, expected);

    let last = listed(&log, Some(u64::from(tail)));
    assert!(last.len() <= usize::from(tail));
    assert!(all.ends_with(&last), "a tail is a suffix of the listing");
    assert_eq!(
        log.count().unwrap(),
        sealed.len() as u64 + active.len() as u64 / 33
    );
});
