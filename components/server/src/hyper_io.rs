//! Adapters that let hyper run on wstd: hyper's I/O and timer traits are poll-based, wstd's
//! are `async fn`s, so each pending operation is kept as a boxed future until it completes.

use hyper::rt::{Read, ReadBufCursor, Sleep, Timer, Write};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use wstd::io::{AsyncRead, AsyncWrite};
use wstd::net::TcpStream;

type Pending<T> = Option<Pin<Box<dyn Future<Output = io::Result<T>>>>>;

/// Reads are at most this long; hyper's buffer is larger, so no bytes are left over.
const READ_LEN: usize = 16 * 1024;

pub struct HyperStream {
    stream: Rc<TcpStream>,
    reading: Pending<Vec<u8>>,
    /// Bytes read that did not fit the caller's buffer last time.
    unread: Vec<u8>,
    writing: Pending<usize>,
    flushing: Pending<()>,
}

impl HyperStream {
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream: Rc::new(stream),
            reading: None,
            unread: Vec::new(),
            writing: None,
            flushing: None,
        }
    }
}

impl Read for HyperStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.unread.is_empty() {
            let stream = this.stream.clone();
            let reading = this.reading.get_or_insert_with(|| {
                Box::pin(async move {
                    let mut bytes = vec![0; READ_LEN];
                    let read = (&*stream).read(&mut bytes).await?;
                    bytes.truncate(read);
                    Ok(bytes)
                })
            });
            let result = ready!(reading.as_mut().poll(cx));
            this.reading = None;
            this.unread = result?;
        }
        // An empty `unread` here is end of stream, which hyper reads as zero bytes put.
        let fits = this.unread.len().min(buf.remaining());
        buf.put_slice(&this.unread[..fits]);
        this.unread.drain(..fits);
        Poll::Ready(Ok(()))
    }
}

impl Write for HyperStream {
    /// hyper, like every poll-based writer, offers the same bytes again after `Pending`,
    /// so the copy taken on the first call is the one that completes.
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let stream = this.stream.clone();
        let writing = this.writing.get_or_insert_with(|| {
            let bytes = buf.to_vec();
            Box::pin(async move { (&*stream).write(&bytes).await })
        });
        let result = ready!(writing.as_mut().poll(cx));
        this.writing = None;
        Poll::Ready(result)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let stream = this.stream.clone();
        let flushing = this
            .flushing
            .get_or_insert_with(|| Box::pin(async move { (&*stream).flush().await }));
        let result = ready!(flushing.as_mut().poll(cx));
        this.flushing = None;
        Poll::Ready(result)
    }

    /// The socket is shut down when the stream is dropped; here we only drain our writes.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// hyper's timer (for the header-read timeout) on wstd's monotonic clock.
#[derive(Clone, Copy, Debug)]
pub struct WstdTimer;

impl Timer for WstdTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Box::pin(WstdSleep(wstd::task::sleep(
            wstd::time::Duration::from_nanos(nanos),
        )))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        self.sleep(deadline.saturating_duration_since(Instant::now()))
    }
}

struct WstdSleep(wstd::time::Wait);

// hyper asks for Send + Sync sleeps because most hosts have threads; a WASI 0.2 component
// has exactly one, so nothing can ever observe this value from another thread.
unsafe impl Send for WstdSleep {}
unsafe impl Sync for WstdSleep {}

impl Sleep for WstdSleep {}

impl Future for WstdSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: structural pinning of the only field; it is never moved out.
        let wait = unsafe { self.map_unchecked_mut(|sleep| &mut sleep.0) };
        wait.poll(cx).map(|_woke_at| ())
    }
}
