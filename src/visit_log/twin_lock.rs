//! Twin visits. Two instances that record the same microsecond (Spin runs one per request,
//! and on two cores this happens about once in a thousand visits) append identical lines,
//! and each finds its own write by its bytes: both would take the first twin for theirs and
//! show the same count. A lock file named after the line keeps twins apart: the second
//! waits until the first has found its line, then reads the log's size past it, so each
//! looks only at what was added after its own start.
//!
//! The lock names the first record of a write, which covers writers that append one
//! record at a time (the Spin component) and a sole writer appending batches (the server
//! component, which needs none). A lock a crash left behind names a microsecond the clock
//! has passed; it is waited on for at most [`MAX_WAIT`], in case the clock stepped back.

use crate::record::{RECORD_LEN, TIMESTAMP_LEN};
use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Far longer than a twin holds its lock (open, write, locate: well under a millisecond,
/// unless the machine is so loaded that the writer is not scheduled).
const MAX_WAIT: Duration = Duration::from_millis(500);
const RETRY_EVERY: Duration = Duration::from_micros(100);
const LOCK_PREFIX: &str = ".visits.txt.lock-";

/// Held from before the log's size is read until the write has been found; removed on drop.
pub(super) struct TwinLock(Option<PathBuf>);

impl TwinLock {
    /// Locks `first`'s microsecond in `dir`. Never fails: where no lock file can be made (a
    /// read-only or missing directory) the write that follows fails and says why, and past
    /// [`MAX_WAIT`] the lock found is taken for a crash's leftover.
    pub(super) fn take(dir: &Path, first: &[u8; RECORD_LEN]) -> Self {
        let path = dir.join(lock_name(first));
        let started = Instant::now();
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => return Self(Some(path)),
                Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                    if started.elapsed() >= MAX_WAIT {
                        return Self(None);
                    }
                    std::thread::sleep(RETRY_EVERY);
                }
                Err(_) => return Self(None),
            }
        }
    }
}

impl Drop for TwinLock {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// `.visits.txt.lock-` and the record's digits: `…lock-20231118175426913511` (the offset is
/// always +03:00, so it is left out).
fn lock_name(record: &[u8; RECORD_LEN]) -> String {
    let digits = record[..TIMESTAMP_LEN - "+03:00".len()]
        .iter()
        .filter(|byte| byte.is_ascii_digit())
        .map(|&byte| char::from(byte));
    LOCK_PREFIX.chars().chain(digits).collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::record;
    use super::*;

    #[test]
    fn a_lock_is_named_after_its_microsecond_and_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".visits.txt.lock-20231118170001000000");
        let lock = TwinLock::take(dir.path(), &record(1));
        assert!(path.exists());
        drop(lock);
        assert!(!path.exists());
    }

    #[test]
    fn a_leftover_lock_is_waited_on_briefly_then_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let leftover = dir.path().join(lock_name(&record(1)));
        fs::write(&leftover, b"").unwrap();
        let started = Instant::now();
        drop(TwinLock::take(dir.path(), &record(1)));
        let waited = started.elapsed();
        assert!(waited >= MAX_WAIT, "waited {waited:?}");
        assert!(leftover.exists(), "someone else's lock is not removed");
    }

    #[test]
    fn no_lock_in_a_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        drop(TwinLock::take(&dir.path().join("absent"), &record(1)));
        assert!(!dir.path().join("absent").exists());
    }
}
