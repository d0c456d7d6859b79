//! Whether another server writes the same data directory. WASI 0.2 has no file lock, so each
//! server keeps a presence file of its own there (`.spin-visits-server-<id>-<about>`, empty,
//! so that it takes no block of a full volume), touched every [`BEAT`], and looks for others
//! touched within [`FRESH`]: two servers on one log would
//! double-count `/visits/all` and interleave their group commits, so each says so (a log
//! line, and `/readyz` fails) until the other is gone. A server that stops cleanly removes its
//! file; one that crashes leaves a file that stops counting after [`FRESH`] and is removed
//! after [`STALE`]. What this cannot see: servers whose clocks disagree by more than
//! [`FRESH`] (nodes sharing a network volume), and the Spin component, whose instances live
//! for one request and keep no file.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::fs::{self, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Not `.visits.`: the log's own files in the making (a seal, a probe) start with that.
const PREFIX: &str = ".spin-visits-server-";
/// How often a server touches its presence file.
pub const BEAT: Duration = Duration::from_secs(2);
/// A presence file touched this recently belongs to a running server.
pub const FRESH: Duration = Duration::from_secs(6);
/// Older than this, a presence file was left by a crash and is removed.
pub const STALE: Duration = Duration::from_secs(60);

pub struct Presence {
    /// Its name ends with what describes this server (where it listens), for the other's log
    /// line.
    path: PathBuf,
}

impl Presence {
    /// A presence in `dir` under a random name, described by `about` (its address).
    pub fn new(dir: &Path, about: &str) -> Self {
        let id = RandomState::new().hash_one(SystemTime::now());
        Self {
            path: dir.join(format!("{PREFIX}{id:016x}-{}", encode(about))),
        }
    }

    /// Touches this server's file, removes crashed servers' files, and returns what the other
    /// running servers' files say of them (empty when this server is alone).
    pub fn beat(&self) -> io::Result<Vec<String>> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.path)?
            .set_modified(SystemTime::now())?;
        let now = SystemTime::now();
        let mut others = Vec::new();
        for entry in fs::read_dir(self.path.parent().unwrap_or(Path::new(".")))?.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id_and_about) = name.strip_prefix(PREFIX) else {
                continue;
            };
            if path == self.path {
                continue;
            }
            let age = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .map(|modified| now.duration_since(modified).unwrap_or_default());
            match age {
                Ok(age) if age <= FRESH => {
                    let about = id_and_about.split_once('-').map_or("", |(_, about)| about);
                    others.push(decode(about));
                }
                Ok(age) if age > STALE => {
                    let _ = fs::remove_file(&path);
                }
                _ => {}
            }
        }
        Ok(others)
    }

    /// Removes this server's file (a clean stop).
    pub fn leave(&self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Bytes a portable file name keeps as they are: `[A-Za-z0-9._-]`; the rest become `%XX`.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'_').remove(b'-');

/// `about` as a portable file name.
fn encode(about: &str) -> String {
    utf8_percent_encode(about, ESCAPED).to_string()
}

fn decode(name: &str) -> String {
    percent_decode_str(name).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    #[test]
    fn two_servers_each_see_the_other_until_one_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let first = Presence::new(dir.path(), "10.0.0.1:8080");
        assert_eq!(first.beat().unwrap(), Vec::<String>::new());
        let second = Presence::new(dir.path(), "10.0.0.2:8080");
        assert_eq!(second.beat().unwrap(), ["10.0.0.1:8080"]);
        assert_eq!(first.beat().unwrap(), ["10.0.0.2:8080"]);
        second.leave();
        assert_eq!(first.beat().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn the_file_is_empty_and_its_name_says_who() {
        let dir = tempfile::tempdir().unwrap();
        let about = "pod visits-0 listening on 10.0.0.1:8080 100%/x";
        let server = Presence::new(dir.path(), about);
        server.beat().unwrap();
        let (name, len) = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap())
            .map(|entry| {
                let len = entry.metadata().unwrap().len();
                (entry.file_name().into_string().unwrap(), len)
            })
            .next()
            .unwrap();
        assert_eq!(len, 0, "a full volume has no block for it");
        assert!(
            name.ends_with("-pod%20visits-0%20listening%20on%2010.0.0.1%3A8080%20100%25%2Fx"),
            "{name}"
        );
        assert_eq!(decode(&encode(about)), about);
        assert_eq!(decode("a%2"), "a%2", "a cut escape stays as it is");
        let other = Presence::new(dir.path(), "b");
        assert_eq!(other.beat().unwrap(), [about]);
    }

    #[test]
    fn a_crashed_servers_file_stops_counting_then_goes() {
        let dir = tempfile::tempdir().unwrap();
        let plant = |name: &str, age: Duration| {
            let file = File::create(dir.path().join(name)).unwrap();
            file.set_modified(SystemTime::now() - age).unwrap();
        };
        plant(".spin-visits-server-00000000000000aa", FRESH + BEAT);
        plant(".spin-visits-server-00000000000000bb", STALE + BEAT);
        let server = Presence::new(dir.path(), "me");
        assert_eq!(server.beat().unwrap(), Vec::<String>::new());
        let mut left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left.len(), 2, "the stale one is removed: {left:?}");
        assert!(left.contains(&".spin-visits-server-00000000000000aa".to_owned()));
    }
}
