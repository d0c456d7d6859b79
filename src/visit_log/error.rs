//! What can go wrong with the log, in words an operator can act on.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why the log cannot be used, in words an operator can act on.
#[derive(Debug)]
pub enum LogError {
    /// The data directory is absent: the volume is not mounted where `DATA_DIR` says.
    MissingDirectory(PathBuf),
    /// The directory is on a read-only mount: nobody may write there.
    ReadOnly(PathBuf),
    /// The directory refuses this process's user (its owner and mode, not the mount).
    PermissionDenied(PathBuf),
    /// The volume has no space left for another record.
    Full(PathBuf),
    /// The process has no file descriptor left to open the log with.
    OutOfDescriptors(PathBuf),
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
                 the claim is mounted read-only: check the volumeMount and the claim's access mode)",
                dir.display()
            ),
            LogError::PermissionDenied(dir) => write!(
                f,
                "data directory {} is not writable by the pod's user (permission denied), so \
                 visits cannot be recorded (on Kubernetes, keep fsGroup in the pod's \
                 securityContext and use a StorageClass that applies it; locally, make the \
                 directory writable by the user running the server)",
                dir.display()
            ),
            LogError::Full(dir) => write!(
                f,
                "the volume holding {} is full, so the visit was not recorded; \
                 free space or grow the claim",
                dir.display()
            ),
            LogError::OutOfDescriptors(dir) => write!(
                f,
                "no file descriptor is left to open the log in {}: the process is at its \
                 open-file limit; lower MAX_CONNECTIONS or raise the node's limit \
                 (containerd's LimitNOFILE)",
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
