//! Durability on the real runtime, seen in the system calls wasmtime makes for the server
//! component: with `APPEND_FSYNC=always` every batch is synced before its visits are
//! answered, and the data directory once after `visits.txt` is created (without that, a
//! crash could lose the file's name and with it the first acknowledged visit); with `no`,
//! neither. strace attaches to the running runtime, and `-y` names the file behind each
//! descriptor. Skips, saying so, only where strace is not installed (scripts/test.sh
//! installs it, so CI runs it).

mod common;

use common::{own_agent, try_request, Artefact, ReplicaSpec};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Sequential visits over one connection: each is a batch of its own.
const VISITS: usize = 20;

/// What the runtime did to the claim, in the order strace saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    WriteLog,
    SyncLog,
    SyncDir,
}

fn strace_installed() -> bool {
    Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// The runtime's processes serving this claim: those whose command line names it.
fn runtime_pids(claim: &Path) -> Vec<String> {
    let needle = format!("{}::", claim.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let cmdline = std::fs::read(format!("/proc/{name}/cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(&needle)
                .then_some(name)
        })
        .collect()
}

/// strace on every thread of the runtime, present and future; returns once it is attached.
fn attach(claim: &Path, out: &Path) -> Child {
    let pids = runtime_pids(claim);
    assert!(!pids.is_empty(), "no runtime process names {claim:?}");
    let mut command = Command::new("strace");
    command.args(["-f", "-y", "-o"]).arg(out).args([
        "-e",
        "trace=fsync,fdatasync,write,writev,pwrite64,pwritev,pwritev2",
    ]);
    for pid in &pids {
        command.args(["-p", pid]);
    }
    let mut strace = command.stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(strace.stderr.take().unwrap()).lines();
    let mut attached = 0;
    while attached < pids.len() {
        match stderr.next() {
            Some(Ok(line)) if line.contains("attached") => attached += 1,
            Some(Ok(_)) => {}
            _ => panic!("strace could not attach to {pids:?}: {:?}", strace.wait()),
        }
    }
    // Keep reading, so strace never blocks on a full pipe.
    std::thread::spawn(move || stderr.for_each(drop));
    strace
}

/// The calls on `visits.txt` and on the claim itself, from strace's output: a line such as
/// `123 fsync(14</tmp/x/visits.txt>) = 0`, or its first half when another thread interrupted
/// it (`... <unfinished ...>`; the `resumed` half names no descriptor).
fn calls_on_claim(trace: &str, claim: &Path) -> Vec<Call> {
    let dir = claim.display().to_string();
    let log = claim.join("visits.txt").display().to_string();
    trace
        .lines()
        .filter_map(|line| {
            let call = line.split_whitespace().nth(1)?;
            let (name, rest) = call.split_once('(')?;
            let path = rest.split_once('<')?.1.split('>').next()?;
            match (name, path) {
                ("fsync" | "fdatasync", p) if p == log => Some(Call::SyncLog),
                ("fsync" | "fdatasync", p) if p == dir => Some(Call::SyncDir),
                (_, p) if p == log && !name.contains("sync") => Some(Call::WriteLog),
                _ => None,
            }
        })
        .collect()
}

/// `VISITS` visits to a fresh claim with `APPEND_FSYNC=fsync`, traced; None without strace.
fn traced_visits(fsync: &str) -> Option<Vec<Call>> {
    if !strace_installed() {
        eprintln!("SKIPPED: strace is not installed (scripts/test.sh installs it)");
        return None;
    }
    let claim = tempfile::tempdir().unwrap();
    let out = claim.path().with_extension("strace");
    let mut spec = ReplicaSpec::new(Artefact::Server, claim.path(), "visits-0");
    spec.env.push(("APPEND_FSYNC".into(), fsync.into()));
    let replica = spec.start();
    let mut strace = attach(claim.path(), &out);

    let agent = own_agent();
    for _ in 0..VISITS {
        assert_eq!(try_request(&agent, &replica.url("/")).unwrap().status, 200);
    }
    // strace ends with its tracees, and writes out everything it saw.
    replica.kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    while strace.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = strace.kill();
            panic!("strace did not end with the runtime");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let trace = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let claim_path: PathBuf = claim.path().canonicalize().unwrap();
    let calls = calls_on_claim(&trace, &claim_path);
    let writes = calls.iter().filter(|&&c| c == Call::WriteLog).count();
    assert_eq!(writes, VISITS, "strace saw every append: {calls:?}");
    Some(calls)
}

#[test]
fn always_syncs_every_batch_and_the_new_logs_directory_once() {
    let Some(calls) = traced_visits("always") else {
        return;
    };
    let syncs = calls.iter().filter(|&&c| c == Call::SyncLog).count();
    assert!(
        syncs >= VISITS,
        "{syncs} syncs of the log for {VISITS} batches: {calls:?}"
    );
    let dir_syncs: Vec<_> = (0..calls.len())
        .filter(|&at| calls[at] == Call::SyncDir)
        .collect();
    assert_eq!(
        dir_syncs.len(),
        1,
        "the directory is synced once: {calls:?}"
    );
    // Before the second visit is written: the first visit's answer waits for it.
    let second_write = (0..calls.len())
        .filter(|&at| calls[at] == Call::WriteLog)
        .nth(1)
        .unwrap();
    assert!(
        dir_syncs[0] < second_write,
        "the directory is synced with the first visit: {calls:?}"
    );
}

#[test]
fn no_syncs_neither_the_log_nor_the_directory() {
    let Some(calls) = traced_visits("no") else {
        return;
    };
    assert!(
        calls.iter().all(|&c| c == Call::WriteLog),
        "APPEND_FSYNC=no synced: {calls:?}"
    );
}
