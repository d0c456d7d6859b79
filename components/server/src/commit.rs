//! Group commit: the visits that arrive together go down in one write.
//!
//! A visit queues its record and waits. The first one queued spawns a flush, which runs in
//! the reactor's next round, after every connection that was ready in this round has queued
//! its own; it appends the whole queue in one write (and one sync, with `APPEND_FSYNC=always`)
//! and answers each visit with its own record's number, or every one with the same error. File
//! calls block the component's one thread, so visits that arrive during a write form the next
//! batch.
//!
//! Sealing (`SEGMENT_BYTES`) runs on the same thread: once `visits.txt` is full, a task
//! compresses it a slice per step and sleeps a millisecond between steps, so visits keep
//! being committed while it works and no step holds them up much longer than a commit.

use futures_channel::oneshot;
use spin_visits::record::RECORD_LEN;
use spin_visits::visit_log::{SealProgress, VisitLog};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Between two slices of a seal: lets the reactor serve what arrived meanwhile.
const SEAL_PAUSE: Duration = Duration::from_millis(1);

use crate::stats::Stats;
use spin_visits::host::Appended;

pub struct Committer {
    log: VisitLog,
    stats: Rc<Stats>,
    queue: RefCell<Vec<Queued>>,
    flush_scheduled: Cell<bool>,
    /// A sealing task is running.
    sealing: Cell<bool>,
}

struct Queued {
    record: [u8; RECORD_LEN],
    reply: oneshot::Sender<Appended>,
}

impl Committer {
    pub fn new(log: VisitLog, stats: Rc<Stats>) -> Rc<Self> {
        Rc::new(Self {
            log,
            stats,
            queue: RefCell::default(),
            flush_scheduled: Cell::new(false),
            sealing: Cell::new(false),
        })
    }

    /// Appends `record` with whatever else is queued in this round; returns once the write
    /// (and sync) that carries it has returned.
    pub async fn append(self: &Rc<Self>, record: [u8; RECORD_LEN]) -> Appended {
        let (reply, answer) = oneshot::channel();
        self.queue.borrow_mut().push(Queued { record, reply });
        if !self.flush_scheduled.replace(true) {
            let committer = self.clone();
            wstd::runtime::spawn(async move { committer.flush() }).detach();
        }
        // The flush answers every queued visit before it is dropped.
        answer.await.expect("every queued visit is answered")
    }

    /// Starts the sealing task if `visits.txt` is due for sealing and none runs.
    pub fn seal_if_due(self: &Rc<Self>) {
        if self.sealing.get() || !self.log.seal_due() {
            return;
        }
        self.sealing.set(true);
        let committer = self.clone();
        wstd::runtime::spawn(async move {
            loop {
                let started = Instant::now();
                let step = committer.log.seal_step();
                committer.stats.seal_step(started.elapsed());
                match step {
                    Ok(SealProgress::Working) => {
                        wstd::task::sleep(SEAL_PAUSE.into()).await;
                    }
                    Ok(SealProgress::Sealed(sealed)) => committer.stats.sealed(&sealed),
                    Ok(SealProgress::Idle) => break,
                    Err(err) => {
                        eprintln!(
                            "spin-visits-server: sealing visits.txt failed, visits go on: {err}"
                        );
                        break;
                    }
                }
            }
            committer.sealing.set(false);
        })
        .detach();
    }

    fn flush(self: Rc<Self>) {
        self.flush_scheduled.set(false);
        let batch = std::mem::take(&mut *self.queue.borrow_mut());
        let records: Vec<[u8; RECORD_LEN]> = batch.iter().map(|queued| queued.record).collect();
        let started = Instant::now();
        let appended = self.log.append_batch(&records).map_err(Rc::new);
        self.stats.commit(records.len(), started.elapsed());
        for (line, queued) in (0..).zip(batch) {
            // A client that hung up has dropped its receiver; its record is on disk all the same.
            let _ = queued
                .reply
                .send(appended.clone().map(|first| first + line));
        }
        self.seal_if_due();
    }
}
