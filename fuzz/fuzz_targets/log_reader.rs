//! Any bytes on disk as visits.txt: reading never panics, lists only well-formed records, in
//! file order, from whole lines only, and a tail is a suffix of the full listing.
#![no_main]

use libfuzzer_sys::fuzz_target;
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

fuzz_target!(|input: (u8, Vec<u8>)| {
    let (tail, bytes) = input;
    let dir = tempfile::tempdir().unwrap();
    let log = VisitLog::new(dir.path());
    std::fs::write(log.path(), &bytes).unwrap();

    let all = listed(&log, None);
    // What a reader should see: the well-formed lines among the newline-terminated ones.
    let whole = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(at) => &bytes[..=at],
        None => &bytes[..0],
    };
    let expected: Vec<Vec<u8>> = whole
        .split(|&b| b == b'\n')
        .filter(|line| is_timestamp(line))
        .map(<[u8]>::to_vec)
        .collect();
    assert_eq!(all, expected);

    let last = listed(&log, Some(u64::from(tail)));
    assert!(last.len() <= usize::from(tail));
    assert!(all.ends_with(&last), "a tail is a suffix of the listing");
    assert_eq!(log.count().unwrap(), bytes.len() as u64 / 33);
});
