//! The sole writer's log file, opened once and held for the life of the process (the server
//! component: one per replica's volume, one batch at a time). A batch then costs one write
//! (and its sync), where opening the file for each batch cost an open, several `stat`s and a
//! close; and a visit never needs a descriptor of its own, so a replica whose connections hold
//! every descriptor the pod has still records visits.
//!
//! The path is checked against the held file (its size as of the last write, and the
//! modification time the previous check saw) by every readiness check and by the first batch
//! after [`PATH_CHECK_INTERVAL`]: a `visits.txt` deleted or replaced since is opened afresh.
//! Until then (and for a replacement made between a check and the write, or one of exactly the
//! log's size) batches land in the file that was replaced. The check is not made every batch:
//! under runwasi's shim each file call is a hop to a blocking thread and back, and the `stat`
//! was most of a small batch's hops (bench/notes.md, "Host hops per batch").

use super::append::ends_mid_line;
use super::seal::Sealing;
use super::{file_len, Fsync, LogError, VisitLog};
use crate::record::RECORD_LEN;
use std::fs::{self, File};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// How long a batch trusts that the path still names the held file (see the module's note).
const PATH_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Shared by the clones of a sole writer's [`VisitLog`].
#[derive(Debug, Default, Clone)]
pub(super) struct HeldFile(Arc<Mutex<State>>);

impl HeldFile {
    /// The state; a panic while it was held (none is expected) leaves it usable.
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) held: Option<Held>,
    /// The last append failed: readiness probes the volume until one succeeds.
    failing: bool,
    /// A seal in progress (`seal.rs`), and when to try again after one failed.
    pub(super) sealing: Option<Sealing>,
    pub(super) retry_at: Option<Instant>,
}

#[derive(Debug)]
pub(super) struct Held {
    file: File,
    /// The file's size after the last write through it.
    pub(super) size: u64,
    /// Its modification time as last seen; `None` once written through, until the next
    /// check learns it from the path.
    modified: Option<Option<SystemTime>>,
    /// When the path was last found to name it (at open, or by a check).
    checked_at: Instant,
    /// The file ended part-way through a line when opened (a crash's fragment).
    pub(super) torn: bool,
    /// Visits in the sealed segments before it, as of opening (a seal reopens it).
    base: u64,
    /// Its name is not known to be durable yet (a seal's directory sync failed): the next
    /// synced batch syncs the directory too.
    dir_unsynced: bool,
}

impl Held {
    /// The active file a seal has just made (`seal.rs`), `size` bytes of whole lines, after
    /// `base` visits in the sealed segments; `synced`: its name is durable.
    pub(super) fn after_seal(file: File, size: u64, base: u64, synced: bool) -> Self {
        Self {
            file,
            size,
            modified: None,
            checked_at: Instant::now(),
            torn: false,
            base,
            dir_unsynced: !synced,
        }
    }
}

impl VisitLog {
    /// Appends through the held file, opening it first if there is none or the path no
    /// longer names it. Same promises as [`VisitLog::append_batch`].
    pub(super) fn append_held(
        &self,
        held: &HeldFile,
        records: &[[u8; RECORD_LEN]],
    ) -> Result<u64, LogError> {
        let mut state = held.lock();
        let result = self.append_through(&mut state.held, records);
        state.failing = result.is_err();
        result
    }

    fn append_through(
        &self,
        slot: &mut Option<Held>,
        records: &[[u8; RECORD_LEN]],
    ) -> Result<u64, LogError> {
        let held = self.current(slot, false)?;
        let size_before = held.size;
        let torn = std::mem::take(&mut held.torn);
        let written = match self.write_batch(&mut held.file, size_before, torn, records) {
            Ok(written) => written,
            Err(err) => {
                // Opened afresh next time, which finds out what the file holds now.
                *slot = None;
                return Err(err);
            }
        };
        let end = size_before + written.len() as u64;
        held.size = end;
        held.modified = None;
        if held.dir_unsynced && self.fsync == Fsync::Always {
            self.sync_directory()?;
            held.dir_unsynced = false;
        }
        Ok(held.base + end / RECORD_LEN as u64 + 1 - records.len() as u64)
    }

    /// The held file if the path still names it, else the file there now, opened and held.
    /// The path is looked at when `always_check` or the last look is older than
    /// [`PATH_CHECK_INTERVAL`].
    fn current<'a>(
        &self,
        slot: &'a mut Option<Held>,
        always_check: bool,
    ) -> Result<&'a mut Held, LogError> {
        if let Some(held) = slot.as_mut() {
            let now = Instant::now();
            if always_check || now.duration_since(held.checked_at) >= PATH_CHECK_INTERVAL {
                if self.still_at_path(held) {
                    held.checked_at = now;
                } else {
                    *slot = None;
                }
            }
        }
        if slot.is_none() {
            *slot = Some(self.open_held()?);
        }
        Ok(slot.as_mut().expect("opened above"))
    }

    /// Whether `visits.txt` is still the held file, as far as size and modification time
    /// tell (a time not known since the last write is learnt here).
    fn still_at_path(&self, held: &mut Held) -> bool {
        let Ok(meta) = fs::metadata(self.path()) else {
            return false;
        };
        let modified = meta.modified().ok();
        let same = meta.len() == held.size && held.modified.is_none_or(|seen| seen == modified);
        if same {
            held.modified = Some(modified);
        }
        same
    }

    fn open_held(&self) -> Result<Held, LogError> {
        let path = self.path();
        let mut file = self.open_for_append()?;
        let size = file_len(&mut file, &path)?;
        let torn = ends_mid_line(&mut file, size, &path)?;
        let base = self.base()?;
        Ok(Held {
            file,
            size,
            modified: None,
            checked_at: Instant::now(),
            torn,
            base,
            dir_unsynced: false,
        })
    }

    /// Readiness for the sole writer: with the log held (the path checked to still name it)
    /// and its last append a success, no probe (and no descriptor) is needed; otherwise the
    /// log is opened (and held) and, after a failure, the volume probed.
    pub(super) fn check_held(&self, held: &HeldFile) -> Result<(), LogError> {
        let mut state = held.lock();
        self.current(&mut state.held, true)?;
        if state.failing {
            self.probe()?;
            state.failing = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{all, record};
    use super::*;
    use crate::visit_log::Fsync;

    fn sole_writer(dir: &std::path::Path) -> VisitLog {
        VisitLog::with_fsync(dir, Fsync::No).sole_writer()
    }

    #[test]
    fn appends_through_one_open_file_and_counts_each_visit() {
        let dir = tempfile::tempdir().unwrap();
        let log = sole_writer(dir.path());
        assert_eq!(log.append(&record(1)).unwrap(), 1);
        assert_eq!(log.append_batch(&[record(2), record(3)]).unwrap(), 2);
        assert_eq!(
            log.clone().append(&record(4)).unwrap(),
            4,
            "clones share it"
        );
        assert_eq!(all(&log, None).len(), 4);
    }

    #[test]
    fn a_deleted_or_replaced_log_is_opened_afresh_at_the_next_check() {
        let dir = tempfile::tempdir().unwrap();
        let log = sole_writer(dir.path());
        log.append(&record(1)).unwrap();
        fs::remove_file(log.path()).unwrap();
        log.check_writable().unwrap();
        assert_eq!(
            log.append(&record(2)).unwrap(),
            1,
            "a new log after deletion, found by the readiness check"
        );
        assert_eq!(all(&log, None), [record_text(2)]);

        // Replaced by a longer log (a restore, say): within the interval a batch still lands
        // in the held file; the first batch after it goes to the file now there.
        let restored = dir.path().join("restored");
        fs::write(&restored, [record(7), record(8), record(9)].concat()).unwrap();
        fs::rename(&restored, log.path()).unwrap();
        assert_eq!(log.append(&record(3)).unwrap(), 2, "the replaced file");
        std::thread::sleep(PATH_CHECK_INTERVAL);
        assert_eq!(log.append(&record(4)).unwrap(), 4);
        assert_eq!(all(&log, Some(1)), [record_text(4)]);
    }

    #[test]
    fn a_torn_tail_found_at_open_is_skipped_once() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(super::super::LOG_FILE_NAME),
            b"2023-11-18 17:0",
        )
        .unwrap();
        let log = sole_writer(dir.path());
        assert_eq!(log.append(&record(1)).unwrap(), 1);
        assert_eq!(log.append(&record(2)).unwrap(), 2);
        assert_eq!(all(&log, None), [record_text(1), record_text(2)]);
    }

    #[test]
    fn readiness_holds_the_log_and_probes_only_after_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let log = sole_writer(dir.path());
        log.check_writable().unwrap();
        assert!(
            log.path().exists(),
            "the log is opened (and held) by the check"
        );
        let missing = sole_writer(&dir.path().join("absent"));
        assert!(matches!(
            missing.check_writable(),
            Err(LogError::MissingDirectory(_))
        ));
        assert!(matches!(
            missing.append(&record(1)),
            Err(LogError::MissingDirectory(_))
        ));
    }

    fn record_text(n: u32) -> String {
        String::from_utf8(record(n).to_vec())
            .unwrap()
            .trim_end()
            .to_owned()
    }
}
