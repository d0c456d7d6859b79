//! How much progress a connection makes, to choose who yields a slot at the cap: an idle
//! keep-alive connection first, then one sending its request head or taking its answer
//! slower than the minimum rate over the window (Apache's `mod_reqtimeout` `MinRate`). A
//! connection above the rate never yields.
//!
//! Bytes are counted in two buckets of one window each, so the rate over the last window is
//! bounded from above without a timestamp per read: a client is only ever judged slower
//! than it is never.

use spin_visits::server_config::MinRate;
use std::time::{Duration, Instant};

/// An idle connection is closed for a newcomer only after this long: closing it the instant
/// it goes idle races the client's next request on it (the drain waits as long).
pub const IDLE_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a request: the idle deadline.
    Idle,
    /// A request's first bytes are in, its head is not: the header-read deadline.
    Head,
    /// The request is being answered: no read deadline (the write has its own).
    Answering,
}

/// Why a connection was closed for a newcomer; the label of `visits_connections_shed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    Idle,
    SlowHead,
    SlowReader,
}

impl Reason {
    pub const ALL: [Reason; 3] = [Reason::Idle, Reason::SlowHead, Reason::SlowReader];

    pub fn label(self) -> &'static str {
        match self {
            Reason::Idle => "idle",
            Reason::SlowHead => "slow_head",
            Reason::SlowReader => "slow_reader",
        }
    }
}

/// Whether a connection may yield its slot now, and how readily: lower yields first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// May yield: by reason, then the fewest bytes in the last window, then idle longest.
    Yields(Reason, u64, Instant),
    /// Progressing, or too recently started to judge.
    Keeps,
}

#[derive(Debug)]
pub struct Progress {
    phase: Phase,
    /// When the phase began.
    since: Instant,
    bucket_start: Instant,
    /// Bytes moved since `bucket_start`.
    bucket: u64,
    /// Bytes moved in the window before `bucket_start`.
    previous: u64,
    last_moved: Instant,
    /// The answer's write is waiting for the client to take bytes.
    write_waiting: bool,
    /// When the answer's write first had to wait: the socket's send buffer was full. Only
    /// from then on does a write mean the client took bytes; what fills the buffer first
    /// (a few hundred KiB on loopback) says nothing of the client, and counting it let a
    /// reader taking 32 bytes every 5 s pass for one above the rate for two windows.
    first_wait: Option<Instant>,
}

impl Progress {
    pub fn new(now: Instant) -> Self {
        Self {
            phase: Phase::Idle,
            since: now,
            bucket_start: now,
            bucket: 0,
            previous: 0,
            last_moved: now,
            write_waiting: false,
            first_wait: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Enters `phase`; a phase entered again is not restarted. Says whether it changed.
    pub fn enter(&mut self, phase: Phase, now: Instant) -> bool {
        if self.phase == phase {
            return false;
        }
        *self = Self {
            phase,
            ..Self::new(now)
        };
        true
    }

    /// `bytes` were read (the head) or taken by the client (the answer).
    pub fn moved(&mut self, bytes: u64, now: Instant, window: Duration) {
        let elapsed = now.saturating_duration_since(self.bucket_start);
        if elapsed >= window {
            self.previous = if elapsed < 2 * window { self.bucket } else { 0 };
            self.bucket = 0;
            self.bucket_start = now;
        }
        self.bucket += bytes;
        self.last_moved = now;
    }

    /// `bytes` of the answer were written: counted once the client has had to take them.
    pub fn written(&mut self, bytes: u64, now: Instant, window: Duration) {
        if self.first_wait.is_some() {
            self.moved(bytes, now, window);
        }
    }

    pub fn write_waiting(&mut self, waiting: bool, now: Instant) {
        self.write_waiting = waiting;
        if waiting && self.first_wait.is_none() {
            // The buffer is full: from now on the client's pace is measured, from nothing.
            self.first_wait = Some(now);
            self.bucket_start = now;
            self.bucket = 0;
            self.previous = 0;
            self.last_moved = now;
        }
    }

    /// At most the bytes moved in the last `window`.
    fn recent_bytes(&self, now: Instant, window: Duration) -> u64 {
        if now.saturating_duration_since(self.last_moved) >= window {
            0
        } else if now.saturating_duration_since(self.bucket_start) < window {
            self.previous + self.bucket
        } else {
            self.bucket
        }
    }

    pub fn standing(&self, now: Instant, min: MinRate) -> Standing {
        let slow = |reason| {
            // Judged only once a whole window has been watched.
            let watched_since = match reason {
                Reason::SlowReader => self.first_wait.unwrap_or(now),
                _ => self.since,
            };
            let age = now.saturating_duration_since(watched_since);
            let recent = self.recent_bytes(now, min.window);
            if age >= min.window && recent < min.bytes_per_window() {
                Standing::Yields(reason, recent, self.since)
            } else {
                Standing::Keeps
            }
        };
        match self.phase {
            Phase::Idle if now.saturating_duration_since(self.since) >= IDLE_GRACE => {
                Standing::Yields(Reason::Idle, 0, self.since)
            }
            Phase::Idle => Standing::Keeps,
            Phase::Head => slow(Reason::SlowHead),
            // A slow handler (a sync, the peers) is not the client's fault: only time spent
            // waiting for the client to take bytes counts.
            Phase::Answering if self.write_waiting => slow(Reason::SlowReader),
            Phase::Answering => Standing::Keeps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: MinRate = MinRate {
        bytes_per_second: 100,
        window: Duration::from_secs(2),
    };

    fn at(start: Instant, millis: u64) -> Instant {
        start + Duration::from_millis(millis)
    }

    #[test]
    fn an_idle_connection_yields_after_the_grace_oldest_first() {
        let t = Instant::now();
        let mut old = Progress::new(t);
        old.enter(Phase::Answering, t);
        old.enter(Phase::Idle, at(t, 100));
        let young = Progress::new(at(t, 900));
        assert_eq!(young.standing(at(t, 1000), MIN), Standing::Keeps);
        let (a, b) = (
            old.standing(at(t, 2000), MIN),
            young.standing(at(t, 2000), MIN),
        );
        assert!(matches!(a, Standing::Yields(Reason::Idle, ..)), "{a:?}");
        assert!(a < b, "the one idle longest yields first");
    }

    #[test]
    fn a_head_or_a_reader_under_the_rate_yields_one_above_never() {
        let t = Instant::now();
        let mut slow = Progress::new(t);
        slow.enter(Phase::Head, t);
        let mut fast = Progress::new(t);
        fast.enter(Phase::Head, t);
        for second in 0..10 {
            slow.moved(20, at(t, second * 1000), MIN.window);
            fast.moved(150, at(t, second * 1000), MIN.window);
        }
        let now = at(t, 9500);
        assert!(matches!(
            slow.standing(now, MIN),
            Standing::Yields(Reason::SlowHead, ..)
        ));
        assert_eq!(fast.standing(now, MIN), Standing::Keeps);
        // Within its first window, nothing is judged.
        let mut fresh = Progress::new(t);
        fresh.enter(Phase::Head, at(t, 8000));
        assert_eq!(fresh.standing(now, MIN), Standing::Keeps);
    }

    #[test]
    fn a_reader_that_took_a_burst_then_stopped_yields_once_the_window_passes() {
        let t = Instant::now();
        let mut reader = Progress::new(t);
        reader.enter(Phase::Answering, t);
        reader.written(4 << 20, at(t, 5), MIN.window);
        reader.write_waiting(true, at(t, 10));
        assert_eq!(reader.standing(at(t, 1500), MIN), Standing::Keeps);
        assert!(matches!(
            reader.standing(at(t, 2100), MIN),
            Standing::Yields(Reason::SlowReader, 0, _)
        ));
        // A handler still working (no write waiting) is not the client's fault.
        reader.write_waiting(false, at(t, 2100));
        assert_eq!(reader.standing(at(t, 5000), MIN), Standing::Keeps);
    }

    #[test]
    fn what_fills_the_send_buffer_is_not_the_readers_progress() {
        let t = Instant::now();
        let mut reader = Progress::new(t);
        reader.enter(Phase::Answering, t);
        // 200 KiB go into the socket's buffer at once, then the write waits; the client
        // takes 32 bytes every 1.5 s (21 bytes a second, under the 100 of MIN).
        reader.written(200 << 10, at(t, 1), MIN.window);
        reader.write_waiting(true, at(t, 2));
        for step in 1..=3 {
            reader.write_waiting(false, at(t, step * 1500));
            reader.written(32, at(t, step * 1500), MIN.window);
            reader.write_waiting(true, at(t, step * 1500));
        }
        assert!(matches!(
            reader.standing(at(t, 4600), MIN),
            Standing::Yields(Reason::SlowReader, ..)
        ));
        // One that takes 300 bytes a second once the buffer is full keeps its slot.
        let mut fast = Progress::new(t);
        fast.enter(Phase::Answering, t);
        fast.written(200 << 10, at(t, 1), MIN.window);
        fast.write_waiting(true, at(t, 2));
        for step in 1..=45 {
            fast.written(30, at(t, step * 100), MIN.window);
        }
        assert_eq!(fast.standing(at(t, 4600), MIN), Standing::Keeps);
    }
}
