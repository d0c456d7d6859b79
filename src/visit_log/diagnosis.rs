//! Why a write failed, in words an operator can act on. WASI hosts report a full volume and
//! a read-only one alike (a bare I/O error), so the error code is not trusted: a probe file
//! is created (refused when read-only) and filled (refused when full).

use super::{LogError, VisitLog};
use crate::record::RECORD_LEN;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};

/// Written and removed by the writability probe; never read.
pub(super) const PROBE_FILE_NAME: &str = ".visits.txt.probe";

impl VisitLog {
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

    pub(super) fn require_directory(&self) -> Result<(), LogError> {
        match fs::metadata(&self.dir) {
            Ok(meta) if meta.is_dir() => Ok(()),
            _ => Err(LogError::MissingDirectory(self.dir.clone())),
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

fn is_out_of_space(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded
    )
}
