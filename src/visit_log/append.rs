//! The writer: one append write per batch, found again by its bytes to count it.

use super::{file_len, LogError, VisitLog};
use crate::record::RECORD_LEN;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

impl VisitLog {
    /// Appends one record and returns the visit count that includes it.
    pub fn append(&self, record: &[u8; RECORD_LEN]) -> Result<u64, LogError> {
        self.append_batch(std::slice::from_ref(record))
    }

    /// Appends records in one write (group commit) and returns the visit count that
    /// includes the first; the others follow it one by one. All or none: a write the volume
    /// takes only in part is cut back off, so a failed batch leaves no line of its own.
    /// With [`Fsync::Always`] the data is synced before this returns.
    pub fn append_batch(&self, records: &[[u8; RECORD_LEN]]) -> Result<u64, LogError> {
        if let Some(held) = &self.held {
            return self.append_held(held, records);
        }
        let path = self.path();
        let mut file = self.open_for_append()?;
        let size_before = file_len(&mut file, &path)?;

        let torn = ends_mid_line(&mut file, size_before, &path)?;
        let written = self.write_batch(&mut file, size_before, torn, records)?;
        // Where the write landed, not the size read before it: another instance may have
        // appended in between (Spin runs one per request), and each visit's count is its own.
        // WASI appends through a stream and reports no offset, so the write is looked for in
        // what was added since; it is almost always right at `size_before`. A twin (another
        // instance's identical record, made the same microsecond) in that stretch cannot be
        // told from ours without a lock on every visit, which cost a quarter of the Spin
        // component's rate (bench/notes.md): both take the first copy, so both show its count.
        let landed_at = locate_write(&mut file, size_before, &written, &path)?;
        let end = landed_at + written.len() as u64;
        // Visits in sealed segments (a server component seals; this writer never does).
        let base = self.base()?;
        Ok(base + end / RECORD_LEN as u64 + 1 - records.len() as u64)
    }

    /// The log, opened (created if need be) for appending and reading back what was written.
    pub(super) fn open_for_append(&self) -> Result<File, LogError> {
        OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(self.path())
            .map_err(|err| self.diagnose_write_failure("open", err))
    }

    /// A log that was empty may have just been created, and its name lives in the directory:
    /// it is synced too, or a crash could lose the file with the visit just acknowledged.
    /// Only the first append (or one to an empty log) pays for it.
    pub(super) fn sync_directory(&self) -> Result<(), LogError> {
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| LogError::Io {
                action: "sync",
                path: self.dir.clone(),
                source,
            })
    }

    /// Removes what a failed write left, but only bytes that are provably its own: the
    /// file grew by less than the write and what it grew by is the write's beginning (with
    /// O_APPEND, another instance's record landing first would sit there instead).
    pub(super) fn cut_partial_write(&self, file: &mut File, size_before: u64, written: &[u8]) {
        let Ok(meta) = file.metadata() else { return };
        let grown = meta.len().saturating_sub(size_before);
        if grown == 0 || grown >= written.len() as u64 {
            return;
        }
        let mut landed = vec![0; grown as usize];
        let ours = file
            .seek(SeekFrom::Start(size_before))
            .and_then(|_| file.read_exact(&mut landed))
            .is_ok_and(|()| landed == written[..grown as usize]);
        if ours {
            let _ = file.set_len(size_before);
        }
    }
}

/// Where `written`, appended to a log of `size_before` bytes, landed. The size after the write
/// comes from seeking to a little before the end (one `stat` on WASI, like seeking to the
/// end), which leaves the file where reading back the records other instances appended in
/// between starts, when any did: under `APPEND_FSYNC=always` most visits of 16 concurrent
/// instances have some, and this saves each of them a seek.
fn locate_write(
    file: &mut File,
    size_before: u64,
    written: &[u8],
    path: &Path,
) -> Result<u64, LogError> {
    const LOOK_BACK: u64 = 32 * RECORD_LEN as u64;
    let len = written.len() as u64;
    // Never past the start: the file holds at least what it held and this write.
    let look = LOOK_BACK.max(len).min(size_before + len);
    let (position, size_after) = match file.seek(SeekFrom::End(-(look as i64))) {
        Ok(position) => (position, position + look),
        // Shorter than that: another instance cut a failed write of its own off.
        Err(_) => {
            let size = file_len(file, path)?;
            (size, size)
        }
    };
    if size_after == size_before + len {
        // Nothing but this write landed in between (the usual case): no need to read it back.
        return Ok(size_before);
    }
    Ok(
        find_own_write(file, position, size_before, size_after, written)
            .unwrap_or(size_after.saturating_sub(len)),
    )
}

/// The offset of `written` among the bytes between `from` and `to`, if it is there and that
/// stretch is small enough to read (other instances' appends in the meantime). The file
/// stands at `position`; reading starts there when that is at or before `from`.
fn find_own_write(
    file: &mut File,
    position: u64,
    from: u64,
    to: u64,
    written: &[u8],
) -> Option<u64> {
    const MAX_LOOK: u64 = 1 << 20;
    to.checked_sub(from).filter(|&span| span <= MAX_LOOK)?;
    let start = if position <= from {
        position
    } else {
        file.seek(SeekFrom::Start(from)).ok()?
    };
    let mut added = vec![0; (to - start) as usize];
    file.read_exact(&mut added).ok()?;
    let at = added[(from - start) as usize..]
        .windows(written.len())
        .position(|window| window == written)?;
    Some(from + at as u64)
}

/// Whether the log ends part-way through a line because a crash cut one short. Only files
/// whose size is not a whole number of records need looking at.
///
/// Another instance's append in flight looks the same for a moment: a record crossing a
/// page boundary is copied in two pieces, and the size is published after each. So a tail
/// counts as torn only if it stays so while the size stands still; a live write finishes
/// within microseconds, a crash's fragment never changes.
pub(super) fn ends_mid_line(file: &mut File, mut size: u64, path: &Path) -> Result<bool, LogError> {
    const SETTLE_CHECKS: u32 = 3;
    let io_err = |source| LogError::Io {
        action: "read the end of",
        path: path.to_owned(),
        source,
    };
    let mut checks = 0;
    while !size.is_multiple_of(RECORD_LEN as u64) {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(size - 1))
            .and_then(|_| file.read_exact(&mut last))
            .map_err(io_err)?;
        if last[0] == b'\n' {
            return Ok(false);
        }
        if checks == SETTLE_CHECKS {
            return Ok(true);
        }
        checks += 1;
        std::thread::sleep(std::time::Duration::from_micros(200 * u64::from(checks)));
        size = file.metadata().map_err(io_err)?.len();
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{all, record};
    use super::*;
    use crate::record::{record_at, to_moscow};
    use crate::visit_log::{Fsync, LOG_FILE_NAME};
    use chrono::{TimeZone, Utc};
    use std::fs;
    use std::io::Write;

    #[test]
    fn appends_whole_lines_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let log = VisitLog::new(dir.path());
        assert_eq!(log.count().unwrap(), 0);
        assert_eq!(log.append(&record(1)).unwrap(), 1);
        assert_eq!(log.append(&record(2)).unwrap(), 2);
        let text = fs::read_to_string(log.path()).unwrap();
        assert_eq!(
            text,
            "2023-11-18 17:00:01.000000+03:00\n2023-11-18 17:00:02.000000+03:00\n"
        );
        assert_eq!(log.count().unwrap(), 2);
    }

    #[test]
    fn a_torn_tail_is_skipped_and_the_next_visit_starts_a_fresh_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = VisitLog::new(dir.path());
        log.append(&record(1)).unwrap();
        let mut file = OpenOptions::new().append(true).open(log.path()).unwrap();
        file.write_all(b"2023-11-18 17:0").unwrap();
        drop(file);

        assert_eq!(log.count().unwrap(), 1);
        assert_eq!(all(&log, None).len(), 1);
        assert_eq!(all(&log, Some(5)).len(), 1);

        assert_eq!(log.append(&record(2)).unwrap(), 2);
        let text = fs::read_to_string(log.path()).unwrap();
        assert!(text.ends_with("\n2023-11-18 17:0\n2023-11-18 17:00:02.000000+03:00\n"));
        assert_eq!(
            all(&log, None),
            [
                "2023-11-18 17:00:01.000000+03:00",
                "2023-11-18 17:00:02.000000+03:00"
            ]
        );
        assert_eq!(all(&log, Some(1)), ["2023-11-18 17:00:02.000000+03:00"]);
    }

    #[test]
    fn a_batch_is_one_run_of_lines_counted_from_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let log = VisitLog::with_fsync(dir.path(), Fsync::No);
        log.append(&record(1)).unwrap();
        assert_eq!(
            log.append_batch(&[record(2), record(3), record(4)])
                .unwrap(),
            2
        );
        assert_eq!(log.count().unwrap(), 4);
        // After a torn tail the batch starts on a fresh line and still counts right.
        OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap()
            .write_all(b"2023-11")
            .unwrap();
        assert_eq!(log.append_batch(&[record(5), record(6)]).unwrap(), 5);
        assert_eq!(all(&log, Some(2)).len(), 2);
        assert_eq!(all(&log, None).len(), 6);
    }

    /// The record of a visit `micros` µs after a fixed instant: one microsecond each.
    fn distinct(micros: i64) -> [u8; RECORD_LEN] {
        record_at(&to_moscow(
            Utc.timestamp_micros(1_700_000_000_000_000 + micros)
                .unwrap(),
        ))
    }

    /// The counts `writers` threads get, each appending `rounds` records to one log, round
    /// by round in step.
    fn counts_from_threads(
        dir: &Path,
        writers: u64,
        rounds: u64,
        record: impl Fn(u64, u64) -> [u8; RECORD_LEN] + Sync,
    ) -> Vec<u64> {
        let start = std::sync::Barrier::new(writers as usize);
        std::thread::scope(|scope| {
            let threads: Vec<_> = (0..writers)
                .map(|writer| {
                    let log = VisitLog::with_fsync(dir, Fsync::No);
                    let (start, record) = (&start, &record);
                    scope.spawn(move || {
                        (0..rounds)
                            .map(|round| {
                                start.wait();
                                log.append(&record(writer, round)).unwrap()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|thread| thread.join().unwrap())
                .collect()
        })
    }

    #[test]
    fn concurrent_appends_each_get_their_own_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut counts = counts_from_threads(dir.path(), 8, 100, |writer, round| {
            distinct((writer * 100 + round) as i64)
        });
        counts.sort_unstable();
        assert_eq!(counts, (1..=800).collect::<Vec<_>>());
    }

    /// The promise for twins (identical records from writers recording the same microsecond):
    /// each count shown is the number of a record identical to the writer's own, so a count
    /// repeats only among twins, and every twin's record is in the log.
    #[test]
    fn twins_show_the_count_of_a_line_holding_their_own_record() {
        const WRITERS: u64 = 4;
        const ROUNDS: u64 = 300;
        let dir = tempfile::tempdir().unwrap();
        let counts = counts_from_threads(dir.path(), WRITERS, ROUNDS, |_, round| {
            distinct(round as i64)
        });
        let log = fs::read(dir.path().join(LOG_FILE_NAME)).unwrap();
        let records: Vec<_> = log.chunks(RECORD_LEN).collect();
        assert_eq!(
            records.len() as u64,
            WRITERS * ROUNDS,
            "every twin's record is there"
        );
        // counts_from_threads gives each writer's counts in turn, round by round.
        for (at, count) in counts.into_iter().enumerate() {
            let round = at as u64 % ROUNDS;
            assert_eq!(
                records[count as usize - 1],
                distinct(round as i64),
                "round {round} was shown count {count}, a record that is not its own"
            );
        }
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(left, [LOG_FILE_NAME], "nothing but the log is written");
    }

    /// A write found among other instances' records appended before and after it, whether the
    /// stretch to read back is within the look-back from the end or longer.
    #[test]
    fn a_write_is_found_among_others_landed_around_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE_NAME);
        for (before, others_first, others_after) in
            [(0, 0, 0), (3, 0, 0), (0, 2, 1), (5, 2, 3), (1, 40, 2)]
        {
            let mut log = vec![];
            let at = |log: &Vec<u8>| log.len() as u64;
            (0..before).for_each(|n| log.extend(distinct(n)));
            let size_before = at(&log);
            (0..others_first).for_each(|n| log.extend(distinct(100 + n)));
            let ours_at = at(&log);
            let ours = distinct(99);
            log.extend(ours);
            (0..others_after).for_each(|n| log.extend(distinct(200 + n)));
            fs::write(&path, &log).unwrap();
            let mut file = File::open(&path).unwrap();
            assert_eq!(
                locate_write(&mut file, size_before, &ours, &path).unwrap(),
                ours_at,
                "{before} lines before, {others_first} others first, {others_after} after"
            );
        }
    }

    #[test]
    fn a_partial_write_is_cut_only_when_the_bytes_are_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let log = VisitLog::new(dir.path());
        log.append(&record(1)).unwrap();
        let written = [record(2), record(3)].concat();
        let size_before = log.size_bytes().unwrap();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(log.path())
            .unwrap();

        file.write_all(&written[..40]).unwrap();
        log.cut_partial_write(&mut file, size_before, &written);
        assert_eq!(log.size_bytes().unwrap(), size_before, "its own bytes go");

        file.write_all(&record(9)).unwrap();
        log.cut_partial_write(&mut file, size_before, &written);
        assert_eq!(
            log.size_bytes().unwrap(),
            size_before + RECORD_LEN as u64,
            "another instance's line stays"
        );
    }
}
