//! The Spin component on `wasmtime serve`: every answer on the error paths only it has (a
//! missing or read-only directory, a store it cannot serve, a full volume) carries the
//! promised headers (every route, both components: tests/promised_headers.rs); and a listing
//! whose log fails to read half-way ends as an error the client sees (the chunked body is cut
//! without its last chunk), never as a well-formed, truncated 200.
//!
//! The failing log is real: an ext2 image on a loop device whose capacity is cut below the
//! log's middle after its last 70 KB were read into the page cache, so opening the log and
//! finding its end succeed and reading the middle gives EIO. Needs root, as CI has.

mod common;

use common::{Artefact, Mount, ReplicaSpec};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[test]
fn every_error_answer_carries_the_promised_headers() {
    let claim = tempfile::tempdir().unwrap();
    let pod = "visits-8";
    let with_env = |env: &[(&str, &str)]| {
        let mut spec = ReplicaSpec::new(Artefact::Spin, claim.path(), pod);
        spec.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        spec
    };
    // A data directory that is not there: 503 on / and /readyz, 503 on /visits and /metrics.
    let missing = with_env(&[("DATA_DIR", "/data/absent")]).start();
    for path in ["/", "/readyz", "/visits", "/metrics"] {
        let reply = missing.get(path);
        assert_eq!(reply.status, 503, "{path}: {reply:?}");
        assert!(reply.body.contains("does not exist"), "{path}: {reply:?}");
        reply.assert_promised_headers(path, pod);
    }
    drop(missing);
    // A setting this build cannot honour, or no setting at all: 503 with the reason, on
    // every route.
    for (value, reason) in [
        ("sqlite", "only the file store"),
        ("bogus", "VISIT_STORE must be"),
    ] {
        let replica = with_env(&[("VISIT_STORE", value)]).start();
        for path in ["/", "/healthz", "/visits", "/nope"] {
            let reply = replica.get(path);
            assert_eq!(reply.status, 503, "VISIT_STORE={value} {path}: {reply:?}");
            assert!(reply.body.contains(reason), "{value} {path}: {reply:?}");
            reply.assert_promised_headers(path, pod);
        }
    }
    // A read-only volume (what Spin's shim gives): 503.
    let view = tempfile::tempdir().unwrap();
    let read_only = Mount::read_only_view(claim.path(), &view.path().join("ro"));
    let replica = ReplicaSpec::new(Artefact::Spin, &read_only.path, pod).start();
    for path in ["/", "/readyz"] {
        let reply = replica.get(path);
        assert_eq!(reply.status, 503, "{path}: {reply:?}");
        reply.assert_promised_headers(path, pod);
    }
    drop(replica);
    // A full volume: 507.
    let full = Mount::tmpfs(&view.path().join("full"), "16k");
    std::fs::write(full.path.join("filler"), vec![0u8; 16 * 1024 - 20]).ok();
    let replica = ReplicaSpec::new(Artefact::Spin, &full.path, pod).start();
    let reply = (0..600)
        .map(|_| replica.get("/"))
        .find(|reply| reply.status != 200)
        .expect("a 16k volume fills up");
    assert_eq!(reply.status, 507, "{reply:?}");
    reply.assert_promised_headers("/ on a full volume", pod);
}

/// A log whose middle cannot be read: see the file's comment.
struct FailingLog {
    dir: tempfile::TempDir,
    loop_device: String,
    records: usize,
}

impl FailingLog {
    fn new(records: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let content = dir.path().join("content");
        std::fs::create_dir(&content).unwrap();
        let mut log = String::with_capacity(records * 33);
        for i in 0..records {
            let (seconds, micros) = (i / 1000, i % 1000 * 1000 + 1);
            log.push_str(&format!(
                "2026-01-01 {:02}:{:02}:{:02}.{micros:06}+03:00\n",
                seconds / 3600,
                seconds / 60 % 60,
                seconds % 60
            ));
        }
        std::fs::write(content.join("visits.txt"), log).unwrap();
        let image = dir.path().join("volume.img");
        run("truncate", &["-s", "64M", path(&image)]);
        run(
            "mke2fs",
            &["-q", "-t", "ext2", "-d", path(&content), path(&image)],
        );
        let loop_device = run("losetup", &["-f", "--show", path(&image)]);
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).unwrap();
        let failing = Self {
            dir,
            loop_device,
            records,
        };
        run("mount", &["-o", "ro", &failing.loop_device, path(&mount)]);
        // The tail into the page cache (the listing finds the log's end there), then the
        // device cut at 4 MiB: the log starts under 1 MiB and is 9.9 MB long.
        run(
            "sh",
            &[
                "-c",
                &format!("tail -c 70000 {}/visits.txt >/dev/null", path(&mount)),
            ],
        );
        run("truncate", &["-s", "4M", path(&image)]);
        run("losetup", &["-c", &failing.loop_device]);
        failing
    }

    fn mount(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for FailingLog {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.mount()).status();
        let _ = Command::new("losetup")
            .args(["-d", &self.loop_device])
            .status();
    }
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("{program}: {err}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed (this test needs root, as CI runs): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn a_listing_that_fails_half_way_is_cut_not_finished() {
    let log = FailingLog::new(300_000);
    let replica = ReplicaSpec::new(Artefact::Spin, &log.mount(), "visits-9").start();
    let bytes = common::raw::exchange(
        &replica.addr,
        b"GET /visits HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&bytes);
    let head_end = text.find("\r\n\r\n").expect("an answer head");
    let head = &text[..head_end];
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert!(
        head.contains(&format!("x-visit-count: {}", log.records)),
        "{head}"
    );
    assert!(
        bytes.len() > 1 << 20,
        "the first megabytes stream before the read error: {} bytes",
        bytes.len()
    );
    assert!(
        bytes.len() < log.records * 33,
        "the log cannot have been read whole: {} bytes",
        bytes.len()
    );
    assert!(
        !bytes.ends_with(b"\r\n0\r\n\r\n"),
        "a failed listing must not end with the last chunk, which tells the client it is \
         complete: ...{:?}",
        String::from_utf8_lossy(&bytes[bytes.len() - 80..])
    );
    // The runtime's stderr reaches the harness a moment after the connection closed.
    let said = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        replica.output().contains("listing failed half-way")
    });
    assert!(said, "{}", replica.output());
    // The same replica still serves, and a short listing of the readable tail is whole.
    let tail = replica.get("/visits?tail=3");
    assert_eq!(tail.status, 200);
    assert_eq!(tail.body.lines().count(), 3, "{tail:?}");
}
