//! Why a write failed, in words an operator can act on. WASI hosts report a full volume and
//! a read-only one alike (a bare I/O error), so the error code is not trusted: a probe file
//! is created (refused when read-only) and filled (refused when full).
//!
//! Each probe has a name of its own (Spin runs an instance per request, so `/readyz` probes
//! can overlap), and a crash can leave one behind. Every probe first removes such leftovers
//! once they are old enough to be nobody's.

use super::{LogError, VisitLog};
use crate::record::RECORD_LEN;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::io::{self, ErrorKind, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Probe files are this and a random suffix; written and removed by the probe, never read.
pub(super) const PROBE_PREFIX: &str = ".visits.txt.probe-";
/// A probe lives for one create, write and sync: older than this, it was left by a crash.
pub(super) const LEFTOVER_AGE: Duration = Duration::from_secs(60);

impl VisitLog {
    /// Whether a visit could be recorded now, without recording one: the log opens for
    /// appending and the volume takes a record-sized write.
    pub fn check_writable(&self) -> Result<(), LogError> {
        if let Some(held) = &self.held {
            return self.check_held(held);
        }
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.path())
            .map_err(|err| self.diagnose_write_failure("open", err))?;
        self.probe_write().map_err(|(_, err)| err)
    }

    pub(super) fn require_directory(&self) -> Result<(), LogError> {
        match fs::metadata(&self.dir) {
            Ok(meta) if meta.is_dir() => Ok(()),
            Ok(_) => Err(LogError::MissingDirectory(self.dir.clone())),
            Err(err) if err.kind() == ErrorKind::NotFound => {
                Err(LogError::MissingDirectory(self.dir.clone()))
            }
            Err(source) => Err(self.io_or_out_of_descriptors("read", self.dir.clone(), source)),
        }
    }

    /// An I/O error, unless it is the process running out of descriptors, which says so
    /// (no probe can tell anything then, and "read-only" would send operators the wrong way).
    fn io_or_out_of_descriptors(
        &self,
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    ) -> LogError {
        if is_out_of_descriptors(&source) {
            LogError::OutOfDescriptors(self.dir.clone())
        } else {
            LogError::Io {
                action,
                path,
                source,
            }
        }
    }

    /// Turns a failed open or append into its cause. WASI hosts report a full volume and a
    /// read-only one alike (a bare I/O error), so the error code is not trusted: a probe
    /// file is created (refused when read-only) and filled (refused when full).
    pub(super) fn diagnose_write_failure(
        &self,
        action: &'static str,
        source: io::Error,
    ) -> LogError {
        if is_out_of_descriptors(&source) {
            return LogError::OutOfDescriptors(self.dir.clone());
        }
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

    /// Whether the volume takes a record-sized write now, by a probe file.
    pub(super) fn probe(&self) -> Result<(), LogError> {
        self.probe_write().map_err(|(_, err)| err)
    }

    fn probe_write(&self) -> Result<(), (ProbeStep, LogError)> {
        self.remove_leftovers();
        let (probe, mut file) = match self.create_probe() {
            Ok(created) => created,
            Err(err) if is_out_of_space(&err) => {
                return Err((ProbeStep::Create, LogError::Full(self.dir.clone())))
            }
            Err(err) if is_out_of_descriptors(&err) => {
                return Err((
                    ProbeStep::Create,
                    LogError::OutOfDescriptors(self.dir.clone()),
                ))
            }
            Err(err) if is_access_denied(&err) => {
                return Err((
                    ProbeStep::Create,
                    LogError::PermissionDenied(self.dir.clone()),
                ))
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

    /// A probe file no other probe shares: a random name, created only if new.
    fn create_probe(&self) -> io::Result<(PathBuf, File)> {
        let mut attempts = 0;
        loop {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |since| since.as_nanos());
            // RandomState's keys come from the host's randomness and change with every call.
            let suffix = RandomState::new().hash_one(nanos);
            let probe = self.dir.join(format!("{PROBE_PREFIX}{suffix:016x}"));
            match OpenOptions::new().write(true).create_new(true).open(&probe) {
                Err(err) if err.kind() == ErrorKind::AlreadyExists && attempts < 3 => attempts += 1,
                opened => return opened.map(|file| (probe, file)),
            }
        }
    }

    /// Removes probe files older than [`LEFTOVER_AGE`]: what a crash left. Best effort: a file that cannot be read or removed is left for the next probe.
    fn remove_leftovers(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name.starts_with(PROBE_PREFIX) {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| {
                    now.duration_since(modified)
                        .is_ok_and(|age| age > LEFTOVER_AGE)
                });
            if old {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

#[derive(Debug)]
enum ProbeStep {
    Create,
    Fill,
    Cleanup,
}

/// EMFILE or ENFILE: on Linux 24 and 23, through WASI (wasi-libc's numbering) 33 and 41.
fn is_out_of_descriptors(err: &io::Error) -> bool {
    let (emfile, enfile) = if cfg!(target_os = "wasi") {
        (33, 41)
    } else {
        (24, 23)
    };
    matches!(err.raw_os_error(), Some(code) if code == emfile || code == enfile)
}

/// EACCES: the directory's owner and mode refuse this user (WASI's `access`; on Linux 13,
/// through WASI 2). A read-only mount is EROFS (`read-only`), and a host that grants the
/// directory without write permission, as Spin does for `files`, says EPERM
/// (`not-permitted`); both are taken as read-only. `ErrorKind` alone cannot tell EACCES from
/// EPERM.
fn is_access_denied(err: &io::Error) -> bool {
    let eacces = if cfg!(target_os = "wasi") { 2 } else { 13 };
    err.raw_os_error() == Some(eacces)
}

fn is_out_of_space(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::visit_log::LOG_FILE_NAME;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn names(dir: &Path) -> BTreeSet<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect()
    }

    #[test]
    fn concurrent_probes_each_use_a_file_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let log = VisitLog::new(dir.path());
        std::thread::scope(|scope| {
            let probes: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| (0..50).map(|_| log.check_writable()).collect::<Vec<_>>()))
                .collect();
            for probe in probes {
                for result in probe.join().unwrap() {
                    result.unwrap();
                }
            }
        });
        assert_eq!(names(dir.path()), BTreeSet::from([LOG_FILE_NAME.into()]));
    }

    #[test]
    fn a_probe_removes_what_a_crash_left_once_it_is_old() {
        let dir = tempfile::tempdir().unwrap();
        let long_ago = SystemTime::now() - LEFTOVER_AGE - Duration::from_secs(5);
        let plant = |name: &str, modified: SystemTime| {
            let file = File::create(dir.path().join(name)).unwrap();
            file.set_modified(modified).unwrap();
        };
        // What a crash leaves: a probe.
        plant(".visits.txt.probe-00c0ffee00c0ffee", long_ago);
        // A probe in progress elsewhere, and a file that is not ours.
        plant(".visits.txt.probe-0123456789abcdef", SystemTime::now());
        plant("notes.txt", long_ago);

        VisitLog::new(dir.path()).check_writable().unwrap();
        assert_eq!(
            names(dir.path()),
            BTreeSet::from([
                ".visits.txt.probe-0123456789abcdef".into(),
                LOG_FILE_NAME.into(),
                "notes.txt".into(),
            ])
        );
    }
}
