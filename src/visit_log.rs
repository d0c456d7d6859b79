//! The visit log: `visits.txt` in the replica's data directory, one record a line.
//!
//! Promises:
//! - an acknowledged visit is one whole line on disk: each record goes down in a single
//!   append write (so concurrent instances never interleave), and a write that fails half-way
//!   is cut back off when that cannot touch anyone else's line;
//! - a fragment left by a crash never spoils the log: readers skip any line that is not a
//!   well-formed record, and the next visit starts on a fresh line;
//! - nothing reads the whole file into memory: counting is arithmetic on the file size,
//!   the tail is found by reading backwards, and listing streams fixed-size chunks.

use crate::record::{is_timestamp, RECORD_LEN, TIMESTAMP_LEN};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const LOG_FILE_NAME: &str = "visits.txt";
/// Written and removed by the writability probe; never read.
const PROBE_FILE_NAME: &str = ".visits.txt.probe";
/// Bytes read from disk at a time when listing or looking for the tail.
const CHUNK_LEN: usize = 64 * 1024;

/// Why the log cannot be used, in words an operator can act on.
#[derive(Debug)]
pub enum LogError {
    /// The data directory is absent: the volume is not mounted where `DATA_DIR` says.
    MissingDirectory(PathBuf),
    /// The directory exists but refuses writes.
    ReadOnly(PathBuf),
    /// The volume has no space left for another line.
    Full(PathBuf),
    /// Anything else, with what was being done.
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::MissingDirectory(dir) => write!(
                f,
                "data directory {} does not exist: mount the volume there or set DATA_DIR",
                dir.display()
            ),
            LogError::ReadOnly(dir) => write!(
                f,
                "data directory {} is read-only, so visits cannot be recorded \
                 (under `spin up`, add --direct-mounts --allow-transient-write; on Kubernetes, \
                 the claim must be writable by the pod's user, see fsGroup)",
                dir.display()
            ),
            LogError::Full(dir) => write!(
                f,
                "the volume holding {} is full, so the visit was not recorded; \
                 free space or grow the claim",
                dir.display()
            ),
            LogError::Io {
                action,
                path,
                source,
            } => write!(f, "could not {action} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for LogError {}

/// The log of one replica.
#[derive(Debug, Clone)]
pub struct VisitLog {
    dir: PathBuf,
}

impl VisitLog {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(LOG_FILE_NAME)
    }

    /// Appends one record and returns the visit count that includes it.
    pub fn append(&self, record: &[u8; RECORD_LEN]) -> Result<u64, LogError> {
        let path = self.path();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|err| self.diagnose_write_failure("open", err))?;
        let size_before = file_len(&file, &path)?;

        let mut line = Vec::with_capacity(RECORD_LEN + 1);
        if ends_mid_line(&mut file, size_before, &path)? {
            line.push(b'\n');
        }
        line.extend_from_slice(record);

        // One write call, never `write_all`: a retried remainder could land after another
        // instance's line and tear both.
        match file.write(&line) {
            Ok(written) if written == line.len() => {
                Ok((size_before + written as u64) / RECORD_LEN as u64)
            }
            Ok(_) => {
                self.cut_partial_write(&file, size_before);
                Err(LogError::Full(self.dir.clone()))
            }
            Err(err) => {
                self.cut_partial_write(&file, size_before);
                Err(self.diagnose_write_failure("append to", err))
            }
        }
    }

    /// Removes what a failed write left, but only while nobody else's whole record can
    /// have landed after it (any complete append adds at least `RECORD_LEN` bytes).
    fn cut_partial_write(&self, file: &File, size_before: u64) {
        if let Ok(meta) = file.metadata() {
            let grown = meta.len().saturating_sub(size_before);
            if grown > 0 && grown < RECORD_LEN as u64 {
                let _ = file.set_len(size_before);
            }
        }
    }

    /// The number of recorded visits: whole record widths in the file. A fragment from a
    /// crash is shorter than a record, so it does not count unless fragments add up to a
    /// whole record's width.
    pub fn count(&self) -> Result<u64, LogError> {
        Ok(count_for_size(self.size_bytes()?))
    }

    /// The log's size on disk; 0 before the first visit.
    pub fn size_bytes(&self) -> Result<u64, LogError> {
        let path = self.path();
        match fs::metadata(&path) {
            Ok(meta) => Ok(meta.len()),
            Err(err) if err.kind() == ErrorKind::NotFound => {
                self.require_directory()?;
                Ok(0)
            }
            Err(source) => Err(LogError::Io {
                action: "read the size of",
                path,
                source,
            }),
        }
    }

    /// Streams the records, oldest first, or only the last `tail` of them.
    pub fn records(&self, tail: Option<u64>) -> Result<Records, LogError> {
        let path = self.path();
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == ErrorKind::NotFound => {
                self.require_directory()?;
                return Ok(Records::empty());
            }
            Err(source) => {
                return Err(LogError::Io {
                    action: "open",
                    path,
                    source,
                })
            }
        };
        let size = file_len(&file, &path)?;
        let read_err = |source| LogError::Io {
            action: "read",
            path: path.clone(),
            source,
        };
        let end = end_of_last_line(&mut file, size).map_err(read_err)?;
        let start = match tail {
            None => 0,
            Some(lines) => start_of_last_lines(&mut file, end, lines).map_err(read_err)?,
        };
        file.seek(SeekFrom::Start(start)).map_err(read_err)?;
        Ok(Records {
            file: Some(file),
            count: count_for_size(size),
            remaining: end - start,
            carry: Vec::new(),
        })
    }

    /// Whether a visit could be recorded now, without recording one: the log opens for
    /// appending and the volume takes a record-sized write.
    pub fn check_writable(&self) -> Result<(), LogError> {
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.path())
            .map_err(|err| self.diagnose_write_failure("open", err))?;
        self.probe_write().map_err(|(_, err)| err)
    }

    fn require_directory(&self) -> Result<(), LogError> {
        match fs::metadata(&self.dir) {
            Ok(meta) if meta.is_dir() => Ok(()),
            _ => Err(LogError::MissingDirectory(self.dir.clone())),
        }
    }

    /// Turns a failed open or append into its cause. WASI hosts report a full volume and a
    /// read-only one alike (a bare I/O error), so the error code is not trusted: a probe
    /// file is created (refused when read-only) and filled (refused when full).
    fn diagnose_write_failure(&self, action: &'static str, source: io::Error) -> LogError {
        if let Err(missing) = self.require_directory() {
            return missing;
        }
        match self.probe_write() {
            Ok(()) | Err((ProbeStep::Cleanup, _)) => LogError::Io {
                action,
                path: self.path(),
                source,
            },
            Err((_, cause)) => cause,
        }
    }

    fn probe_write(&self) -> Result<(), (ProbeStep, LogError)> {
        let probe = self.dir.join(PROBE_FILE_NAME);
        let mut file = match File::create(&probe) {
            Ok(file) => file,
            Err(err) if is_out_of_space(&err) => {
                return Err((ProbeStep::Create, LogError::Full(self.dir.clone())))
            }
            Err(_) => return Err((ProbeStep::Create, LogError::ReadOnly(self.dir.clone()))),
        };
        let filled = file
            .write_all(&[b'\n'; RECORD_LEN])
            .and_then(|()| file.sync_data());
        drop(file);
        let removed = fs::remove_file(&probe);
        match (filled, removed) {
            (Err(_), _) => Err((ProbeStep::Fill, LogError::Full(self.dir.clone()))),
            (Ok(()), Err(source)) => Err((
                ProbeStep::Cleanup,
                LogError::Io {
                    action: "remove the probe file",
                    path: probe,
                    source,
                },
            )),
            (Ok(()), Ok(())) => Ok(()),
        }
    }
}

#[derive(Debug)]
enum ProbeStep {
    Create,
    Fill,
    Cleanup,
}

fn count_for_size(size: u64) -> u64 {
    size / RECORD_LEN as u64
}

fn is_out_of_space(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded
    )
}

fn file_len(file: &File, path: &Path) -> Result<u64, LogError> {
    file.metadata()
        .map(|meta| meta.len())
        .map_err(|source| LogError::Io {
            action: "read the size of",
            path: path.to_owned(),
            source,
        })
}

/// Whether the log ends part-way through a line because a crash cut one short. Only files
/// whose size is not a whole number of records need looking at.
///
/// Another instance's append in flight looks the same for a moment: a record crossing a
/// page boundary is copied in two pieces, and the size is published after each. So a tail
/// counts as torn only if it stays so while the size stands still; a live write finishes
/// within microseconds, a crash's fragment never changes.
fn ends_mid_line(file: &mut File, mut size: u64, path: &Path) -> Result<bool, LogError> {
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

/// The offset just past the last newline at or before `size`: a torn tail is not a line.
fn end_of_last_line(file: &mut File, size: u64) -> io::Result<u64> {
    let mut end = size;
    let mut buf = vec![0u8; CHUNK_LEN.min(size as usize)];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(at) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + at as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// The offset where the last `lines` lines before `end` (a line boundary) begin.
fn start_of_last_lines(file: &mut File, end: u64, lines: u64) -> io::Result<u64> {
    if lines == 0 {
        return Ok(end);
    }
    // The newline ending the last line is at end - 1; the line `lines` back starts just
    // after the newline that precedes it, so we look for `lines` newlines before end - 1.
    let mut newlines_to_find = lines;
    let mut pos = end.saturating_sub(1);
    let mut buf = vec![0u8; CHUNK_LEN];
    while pos > 0 {
        let start = pos.saturating_sub(CHUNK_LEN as u64);
        let chunk = &mut buf[..(pos - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        for (at, _) in chunk.iter().enumerate().rev().filter(|(_, &b)| b == b'\n') {
            newlines_to_find -= 1;
            if newlines_to_find == 0 {
                return Ok(start + at as u64 + 1);
            }
        }
        pos = start;
    }
    Ok(0)
}

/// The well-formed records of a range of the log, read a chunk at a time.
#[derive(Debug)]
pub struct Records {
    file: Option<File>,
    /// The log's visit count when it was opened, from the same size the range was cut by.
    count: u64,
    remaining: u64,
    /// The start of a line whose end is in the next chunk.
    carry: Vec<u8>,
}

impl Records {
    fn empty() -> Self {
        Self {
            file: None,
            count: 0,
            remaining: 0,
            carry: Vec::new(),
        }
    }

    /// The replica's total visit count, as [`VisitLog::count`] would say at opening time;
    /// saves `/visits` a second look at the file.
    pub fn visit_count(&self) -> u64 {
        self.count
    }

    /// Calls `each` with every well-formed timestamp (no newline) in the next chunk of the
    /// file; `Ok(false)` once the range is exhausted. Malformed lines are skipped.
    pub fn next_chunk(&mut self, mut each: impl FnMut(&[u8])) -> io::Result<bool> {
        let Some(file) = self.file.as_mut() else {
            return Ok(false);
        };
        if self.remaining == 0 {
            return Ok(false);
        }
        let want = CHUNK_LEN.min(self.remaining as usize);
        let mut chunk = std::mem::take(&mut self.carry);
        let carried = chunk.len();
        chunk.resize(carried + want, 0);
        file.read_exact(&mut chunk[carried..])?;
        self.remaining -= want as u64;

        // The range ends on a newline, so only a chunk in the middle can end mid-line.
        let complete = match chunk.iter().rposition(|&b| b == b'\n') {
            Some(at) => at + 1,
            None => 0,
        };
        for line in chunk[..complete].split(|&b| b == b'\n') {
            if line.len() == TIMESTAMP_LEN && is_timestamp(line) {
                each(line);
            }
        }
        chunk.drain(..complete);
        self.carry = chunk;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{record_line, to_moscow};
    use chrono::{TimeZone, Utc};

    fn record(second: u32) -> [u8; RECORD_LEN] {
        record_line(&to_moscow(
            Utc.with_ymd_and_hms(2023, 11, 18, 14, 0, second).unwrap(),
        ))
    }

    fn all(log: &VisitLog, tail: Option<u64>) -> Vec<String> {
        let mut out = Vec::new();
        let mut records = log.records(tail).unwrap();
        while records
            .next_chunk(|line| out.push(String::from_utf8(line.to_vec()).unwrap()))
            .unwrap()
        {}
        out
    }

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
    fn lists_all_and_tails() {
        let dir = tempfile::tempdir().unwrap();
        let log = VisitLog::new(dir.path());
        for s in 0..50 {
            log.append(&record(s)).unwrap();
        }
        let every = all(&log, None);
        assert_eq!(every.len(), 50);
        assert_eq!(all(&log, Some(3)), every[47..].to_vec());
        assert_eq!(all(&log, Some(0)), Vec::<String>::new());
        assert_eq!(all(&log, Some(50)), every);
        assert_eq!(all(&log, Some(99_999_999_999)), every);
    }

    #[test]
    fn streams_a_log_larger_than_one_chunk_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = VisitLog::new(dir.path());
        let lines: Vec<[u8; RECORD_LEN]> = (0..5000).map(|i| record(i % 60)).collect();
        fs::write(log.path(), lines.concat()).unwrap();
        let listed = all(&log, None);
        assert_eq!(listed.len(), 5000);
        assert_eq!(all(&log, Some(4000)), listed[1000..].to_vec());
        assert_eq!(log.count().unwrap(), 5000);
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
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let log = VisitLog::new(dir.path().join("absent"));
        for err in [
            log.append(&record(1)).unwrap_err(),
            log.check_writable().unwrap_err(),
            log.count().unwrap_err(),
            log.records(None).unwrap_err(),
        ] {
            assert!(matches!(err, LogError::MissingDirectory(_)), "{err}");
        }
        assert!(!dir.path().join("absent").exists());
    }

    #[test]
    fn an_empty_directory_is_an_empty_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = VisitLog::new(dir.path());
        assert_eq!(log.count().unwrap(), 0);
        assert!(all(&log, None).is_empty());
        log.check_writable().unwrap();
        assert_eq!(log.count().unwrap(), 0, "the probe records nothing");
        assert!(!dir.path().join(PROBE_FILE_NAME).exists());
    }
}
