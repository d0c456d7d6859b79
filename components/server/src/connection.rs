//! A served connection: a [`TcpStream`] whose waits have deadlines that mean what they say.
//!
//! - idle: no request and no answer in flight for this long, and the connection ends quietly
//!   (end of stream to hyper);
//! - header read: a request whose head is not complete this long after its first byte fails;
//! - write: a client that takes no bytes of an answer for this long fails, so a reader that
//!   stopped cannot hold its slot; one that keeps taking bytes gets the whole answer.
//!
//! hyper's own header-read timer starts when a connection goes idle, so it cannot tell an
//! idle keep-alive connection from a slow request head; the phase, shared with the service
//! ([`Tracker`]), tells them apart. The tracker also counts the bytes each phase moves
//! ([`Progress`]), for the registry to choose who yields a slot at the cap, and ends the
//! connection when it is chosen ([`Tracker::evict`]).

use crate::progress::{Phase, Progress, Standing, IDLE_GRACE};
use crate::tcp::TcpStream;
use crate::timer::{self, WstdTimer};
use hyper::rt::{Read, ReadBufCursor, Sleep, Timer, Write};
use spin_visits::server_config::MinRate;
use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub idle: Duration,
    pub header_read: Duration,
    pub write: Duration,
    /// The least progress that keeps a slot under pressure.
    pub min_rate: MinRate,
}

type Deadline = Pin<Box<dyn Sleep>>;

/// While draining, how long an idle connection is left before it is closed: closing one the
/// instant it goes idle races the client's next request on it, which then fails unanswered.
/// Busy ones end sooner, on the `Connection: close` of their next answer.
const DRAIN_IDLE_CLOSE: Duration = IDLE_GRACE;

/// A connection's turn at the cap: while clients wait for a slot, a connection that has had
/// this many answers ends after the next one, and queues again like any newcomer. Ending
/// every answer makes each request pay a new connection; a longer turn keeps the waiting
/// clients out longer. bench/fair.py, 1 024 closed-loop clients at MAX_CONNECTIONS 900, on
/// one shared machine: every answer 6 200 requests/s with p99 2.2× clients ÷ rate; 4 answers
/// 9 000–9 600/s, 3.0×; 8 answers 10 500–13 700/s, 3.6–3.8×; 16 answers 11 000/s, 8.2×.
const TURN_ANSWERS: u32 = 4;

/// What a connection shares with its service: which phase a request is in, and whether the
/// server wants the connection closed once it is idle (a drain).
pub struct Tracker {
    timeouts: Timeouts,
    progress: RefCell<Progress>,
    closing: Cell<bool>,
    /// Requests this connection has had answered (or is being answered).
    answers: Cell<u32>,
    /// Chosen to yield its slot: reads and writes fail (an idle one just ends).
    evicted: Cell<bool>,
    /// Whom a waiting write wakes.
    write_waker: RefCell<Option<Waker>>,
    /// The deadline of the read that is waiting, for the current phase.
    read_deadline: RefCell<Option<Deadline>>,
    /// Whom a waiting read wakes; `None` while no read waits. hyper does not read again after
    /// answering if its read is still waiting, so phase changes re-arm the deadline for it.
    read_waker: RefCell<Option<Waker>>,
}

impl Tracker {
    pub fn new(timeouts: Timeouts) -> Rc<Self> {
        Rc::new(Self {
            timeouts,
            progress: RefCell::new(Progress::new(timer::now())),
            closing: Cell::new(false),
            answers: Cell::new(0),
            evicted: Cell::new(false),
            write_waker: RefCell::default(),
            read_deadline: RefCell::default(),
            read_waker: RefCell::default(),
        })
    }

    /// The head is complete: the service has the request.
    pub fn answering(&self) {
        self.answers.set(self.answers.get() + 1);
        self.enter(Phase::Answering);
    }

    /// Whether this connection has had its turn at a slot: at the cap, while clients wait,
    /// it ends after this answer and queues again like any newcomer.
    pub fn had_its_turn(&self) -> bool {
        self.answers.get() >= TURN_ANSWERS
    }

    /// The answer's body is done (or dropped): from now the connection is idle.
    pub fn answered(&self) {
        self.enter(Phase::Idle);
    }

    /// Ends the connection once it has been idle for [`DRAIN_IDLE_CLOSE`].
    pub fn close_when_idle(&self) {
        if self.closing.replace(true) || self.phase() != Phase::Idle {
            return;
        }
        // The shorter deadline, for the read already waiting.
        self.rearm_read_deadline();
    }

    pub fn closing(&self) -> bool {
        self.closing.get()
    }

    fn phase(&self) -> Phase {
        self.progress.borrow().phase()
    }

    /// Whether this connection would yield its slot to a newcomer now, and how readily.
    pub fn standing(&self) -> Standing {
        if self.evicted.get() {
            return Standing::Keeps; // already on its way out
        }
        self.progress
            .borrow()
            .standing(timer::now(), self.timeouts.min_rate)
    }

    /// Ends the connection now: chosen to yield its slot. An idle one ends as if the client
    /// had closed it; a request in progress fails.
    pub fn evict(&self) {
        if self.evicted.replace(true) {
            return;
        }
        for waker in [&self.read_waker, &self.write_waker] {
            let waker = waker.borrow_mut().take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// `bytes` of a request were read.
    fn began(&self, bytes: usize) {
        if self.phase() == Phase::Idle {
            // A request begins: the idle deadline gives way to the header-read one.
            self.enter(Phase::Head);
        }
        if self.phase() == Phase::Head {
            self.moved(bytes);
        }
    }

    fn written(&self, bytes: usize) {
        self.progress.borrow_mut().written(
            bytes as u64,
            timer::now(),
            self.timeouts.min_rate.window,
        );
    }

    fn moved(&self, bytes: usize) {
        self.progress
            .borrow_mut()
            .moved(bytes as u64, timer::now(), self.timeouts.min_rate.window);
    }

    fn enter(&self, phase: Phase) {
        if !self.progress.borrow_mut().enter(phase, timer::now()) {
            return;
        }
        // The new phase's deadline, for the read already waiting.
        self.rearm_read_deadline();
    }

    /// Arms the current deadline afresh for the read already waiting, if one is; it cannot
    /// have passed yet, so the answer is Pending.
    fn rearm_read_deadline(&self) {
        self.read_deadline.borrow_mut().take();
        let waker = self.read_waker.borrow().clone();
        if let Some(waker) = waker {
            let _ = self.poll_read_deadline(&mut Context::from_waker(&waker));
        }
    }

    /// While a read waits: whether its phase's deadline has passed. An idle connection then
    /// ends (zero bytes, which hyper takes as the client's goodbye); a request head fails.
    fn poll_read_deadline(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let phase = self.phase();
        let limit = match phase {
            Phase::Idle if self.closing.get() => self.timeouts.idle.min(DRAIN_IDLE_CLOSE),
            Phase::Idle => self.timeouts.idle,
            Phase::Head => self.timeouts.header_read,
            Phase::Answering => return Poll::Pending,
        };
        let mut deadline = self.read_deadline.borrow_mut();
        let sleep = deadline.get_or_insert_with(|| WstdTimer.sleep(limit));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        *deadline = None;
        Poll::Ready(match phase {
            Phase::Head => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no whole request head within {} s", limit.as_secs()),
            )),
            _ => Ok(()),
        })
    }
}

/// One accepted connection, handed to hyper.
pub struct Connection {
    stream: TcpStream,
    tracker: Rc<Tracker>,
    /// Armed when a write first has to wait; dropped whenever the client takes bytes.
    write_deadline: Option<Deadline>,
}

impl Connection {
    pub fn new(stream: TcpStream, tracker: Rc<Tracker>) -> Self {
        Self {
            stream,
            tracker,
            write_deadline: None,
        }
    }

    /// After a write had to wait: whether the client has taken nothing for too long.
    fn poll_write_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let limit = self.tracker.timeouts.write;
        let sleep = self
            .write_deadline
            .get_or_insert_with(|| WstdTimer.sleep(limit));
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client took no bytes for {} s", limit.as_secs()),
        )))
    }

    /// A write's outcome: progress clears the write deadline, a wait is bounded by it.
    fn bounded<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(result) => {
                if self.write_deadline.take().is_some() {
                    self.tracker
                        .progress
                        .borrow_mut()
                        .write_waiting(false, timer::now());
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                if self.write_deadline.is_none() {
                    self.tracker
                        .progress
                        .borrow_mut()
                        .write_waiting(true, timer::now());
                }
                *self.tracker.write_waker.borrow_mut() = Some(cx.waker().clone());
                match self.poll_write_deadline(cx) {
                    Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
                    _ => Poll::Pending,
                }
            }
        }
    }
}

fn evicted_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "closed for a waiting client: slower than the minimum rate at the connection cap",
    )
}

impl Read for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let tracker = &this.tracker;
        if tracker.evicted.get() {
            if tracker.phase() != Phase::Idle {
                return Poll::Ready(Err(evicted_error()));
            }
            // Chosen while it looked idle, but a busy server may not have read a request that
            // had already come: that one is answered, the connection's last. Otherwise the
            // end of the stream, a quiet close.
            let read = this.stream.read_now(&mut buf);
            if let Ok(n @ 1..) = read {
                tracker.evicted.set(false);
                tracker.closing.set(true);
                tracker.began(n);
            }
            return Poll::Ready(read.map(drop));
        }
        match this.stream.poll_read_into(cx, &mut buf) {
            Poll::Ready(read) => {
                tracker.read_waker.borrow_mut().take();
                if let Ok(n @ 1..) = read {
                    tracker.began(n);
                }
                Poll::Ready(read.map(drop))
            }
            Poll::Pending => {
                let mut waker = tracker.read_waker.borrow_mut();
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                drop(waker);
                tracker.poll_read_deadline(cx)
            }
        }
    }
}

impl Write for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.tracker.evicted.get() {
            return Poll::Ready(Err(evicted_error()));
        }
        let polled = self.stream.poll_write_from(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.tracker.written(n);
        }
        self.bounded(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.stream.start_flush())
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.tracker.evicted.get() {
            return Poll::Ready(Err(evicted_error()));
        }
        let polled = self.stream.poll_close(cx);
        self.bounded(cx, polled)
    }
}
