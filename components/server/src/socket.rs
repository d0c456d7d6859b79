//! TCP over wasi:sockets, poll-based so hyper can drive it directly. Readiness waits go
//! through wstd's reactor (`AsyncPollable`), which also runs the connection tasks.
//!
//! wstd's own `TcpStream` only offers `async fn` reads and writes; driving those from
//! hyper's `poll_*` methods needs a boxed future per call, and under 64 connections that left
//! waits registered on pollables that stay ready, which spun the reactor. Here every wait is
//! one stored `WaitFor`, dropped the moment it fires.

use crate::timer::WstdTimer;
use hyper::rt::{Read, ReadBufCursor, Sleep, Timer, Write};
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasip2::sockets::tcp::{ShutdownType, TcpSocket};
use wasip2::sockets::tcp_create_socket::create_tcp_socket;
use wstd::runtime::{AsyncPollable, WaitFor};

/// Bytes asked of the host per read.
const READ_LEN: usize = 64 * 1024;

fn socket_error(code: ErrorCode) -> io::Error {
    io::Error::other(format!("{}: {}", code.name(), code.message()))
}

fn stream_error(err: StreamError) -> io::Error {
    match err {
        StreamError::Closed => io::ErrorKind::ConnectionReset.into(),
        StreamError::LastOperationFailed(err) => io::Error::other(err.to_debug_string()),
    }
}

fn wasi_address(addr: SocketAddrV4) -> IpSocketAddress {
    IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: addr.port(),
        address: addr.ip().octets().into(),
    })
}

/// A listening socket.
pub struct Listener {
    // Declared before the socket: a pollable must be dropped before its parent resource.
    ready: AsyncPollable,
    socket: TcpSocket,
}

impl Listener {
    /// Binds and listens on an IPv4 address (pods and loopback are IPv4 here); `backlog`
    /// connections may wait to be accepted (wasmtime's default is 128).
    pub async fn bind(addr: SocketAddrV4, backlog: u64) -> io::Result<Self> {
        let socket = create_tcp_socket(IpAddressFamily::Ipv4).map_err(socket_error)?;
        let ready = AsyncPollable::new(socket.subscribe());
        let local = wasi_address(addr);
        socket
            .start_bind(&instance_network(), local)
            .map_err(socket_error)?;
        ready.wait_for().await;
        socket.finish_bind().map_err(socket_error)?;
        socket
            .set_listen_backlog_size(backlog)
            .map_err(socket_error)?;
        socket.start_listen().map_err(socket_error)?;
        ready.wait_for().await;
        socket.finish_listen().map_err(socket_error)?;
        Ok(Self { ready, socket })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self.socket.local_address().map_err(socket_error)? {
            IpSocketAddress::Ipv4(Ipv4SocketAddress { port, address }) => {
                let (a, b, c, d) = address;
                Ok(SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port).into())
            }
            IpSocketAddress::Ipv6(_) => Err(io::Error::other("bound to IPv6")),
        }
    }

    /// The next connection, closed by the server when it breaks `timeouts`.
    pub async fn accept(&self, timeouts: Timeouts) -> io::Result<Connection> {
        loop {
            match self.socket.accept() {
                Ok((socket, input, output)) => {
                    return Ok(Connection::new(socket, input, output, timeouts))
                }
                Err(ErrorCode::WouldBlock) => self.ready.wait_for().await,
                Err(code) => return Err(socket_error(code)),
            }
        }
    }
}

/// How long a served connection may keep the server waiting. hyper's own header-read timer
/// starts when a connection goes idle, so it cannot tell an idle keep-alive connection from a
/// slow request head; the connection tells them apart by whether a request has begun.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// No request for this long: the connection ends quietly (end of stream to hyper).
    pub idle: Duration,
    /// A request begun (its first byte read) but not answered this long after: an error.
    pub request: Duration,
}

impl Timeouts {
    /// For outgoing connections, whose callers bound them with their own deadline.
    pub const NONE: Timeouts = Timeouts {
        idle: Duration::MAX,
        request: Duration::MAX,
    };
}

/// One accepted or opened connection.
pub struct Connection {
    timeouts: Timeouts,
    /// Whether a request has begun and not been answered yet.
    in_request: bool,
    /// The deadline of the current wait for bytes; armed when a read first has to wait.
    deadline: Option<Pin<Box<dyn Sleep>>>,
    /// Whom a pending read wakes: hyper does not read again after answering if its read is
    /// still pending, so the idle deadline is armed for it.
    read_waker: Option<Waker>,
    /// Bytes were written since the last flush.
    unflushed: bool,
    /// The last read took all the host had: wait before reading again.
    drained: bool,
    // Field order is drop order: waits, then pollables, then the streams they watch, then
    // the socket that owns the streams.
    read_wait: Option<WaitFor>,
    write_wait: Option<WaitFor>,
    readable: AsyncPollable,
    writable: AsyncPollable,
    /// A flush was started and has not completed yet.
    flushing: bool,
    input: InputStream,
    output: OutputStream,
    socket: TcpSocket,
}

impl Connection {
    pub async fn connect(addr: SocketAddrV4) -> io::Result<Self> {
        let socket = create_tcp_socket(IpAddressFamily::Ipv4).map_err(socket_error)?;
        let remote = wasi_address(addr);
        // The pollable is dropped before the socket is moved into the connection.
        let (input, output) = {
            let ready = AsyncPollable::new(socket.subscribe());
            socket
                .start_connect(&instance_network(), remote)
                .map_err(socket_error)?;
            loop {
                match socket.finish_connect() {
                    Ok(streams) => break streams,
                    Err(ErrorCode::WouldBlock) => ready.wait_for().await,
                    Err(code) => return Err(socket_error(code)),
                }
            }
        };
        Ok(Self::new(socket, input, output, Timeouts::NONE))
    }

    fn new(
        socket: TcpSocket,
        input: InputStream,
        output: OutputStream,
        timeouts: Timeouts,
    ) -> Self {
        Self {
            timeouts,
            in_request: false,
            deadline: None,
            read_waker: None,
            unflushed: false,
            drained: false,
            read_wait: None,
            write_wait: None,
            readable: AsyncPollable::new(input.subscribe()),
            writable: AsyncPollable::new(output.subscribe()),
            flushing: false,
            input,
            output,
            socket,
        }
    }

    /// Waits until the output stream accepts bytes again; `Ok(n)` is how many it takes.
    fn poll_writable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            if let Some(wait) = self.write_wait.as_mut() {
                ready!(Pin::new(wait).poll(cx));
                self.write_wait = None;
            }
            match self.output.check_write() {
                Ok(0) => self.write_wait = Some(self.writable.wait_for()),
                Ok(n) => {
                    // Room again means any flush started before has completed.
                    self.flushing = false;
                    return Poll::Ready(Ok(usize::try_from(n).unwrap_or(usize::MAX)));
                }
                Err(err) => return Poll::Ready(Err(stream_error(err))),
            }
        }
    }

    /// While a read waits: whether its deadline has passed. An idle connection then ends
    /// (zero bytes, which hyper takes as the client's goodbye); a started request fails.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let limit = if self.in_request {
            self.timeouts.request
        } else {
            self.timeouts.idle
        };
        if limit == Duration::MAX {
            return Poll::Pending;
        }
        let deadline = self.deadline.get_or_insert_with(|| WstdTimer.sleep(limit));
        ready!(deadline.as_mut().poll(cx));
        self.deadline = None;
        Poll::Ready(if self.in_request {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no whole request within {} s", limit.as_secs()),
            ))
        } else {
            Ok(())
        })
    }
}

impl Connection {
    /// Answering ends the request: the wait for the next one is an idle wait, from now.
    fn answered(&mut self) {
        self.in_request = false;
        self.deadline = None;
        if self.read_wait.is_some() {
            if let Some(waker) = self.read_waker.clone() {
                // Arms the idle deadline for the reader already waiting; it cannot have
                // passed yet, so the answer is Pending.
                let _ = self.poll_deadline(&mut Context::from_waker(&waker));
            }
        }
    }
}

impl Read for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if let Some(wait) = this.read_wait.as_mut() {
                if Pin::new(wait).poll(cx).is_pending() {
                    if !this
                        .read_waker
                        .as_ref()
                        .is_some_and(|w| w.will_wake(cx.waker()))
                    {
                        this.read_waker = Some(cx.waker().clone());
                    }
                    return this.poll_deadline(cx);
                }
                this.read_wait = None;
            }
            // A read that came back short took everything buffered (a request, typically):
            // asking again at once would almost always be an empty answer, a host call for
            // nothing, so wait for the host to say there is more.
            if std::mem::take(&mut this.drained) {
                this.read_wait = Some(this.readable.wait_for());
                continue;
            }
            let want = buf.remaining().min(READ_LEN) as u64;
            match this.input.read(want) {
                // Nothing buffered yet: wait for the host to say there is.
                Ok(bytes) if bytes.is_empty() => this.read_wait = Some(this.readable.wait_for()),
                Ok(bytes) => {
                    this.drained = (bytes.len() as u64) < want;
                    if !this.in_request {
                        // A request begins: the idle deadline gives way to the request's.
                        this.in_request = true;
                        this.deadline = None;
                    }
                    buf.put_slice(&bytes);
                    return Poll::Ready(Ok(()));
                }
                // End of stream: hyper reads it as zero bytes put.
                Err(StreamError::Closed) => return Poll::Ready(Ok(())),
                Err(err) => return Poll::Ready(Err(stream_error(err))),
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
        let this = &mut *self;
        let room = ready!(this.poll_writable(cx))?;
        let len = room.min(buf.len());
        this.output.write(&buf[..len]).map_err(stream_error)?;
        this.unflushed = true;
        if this.in_request {
            this.answered();
        }
        Poll::Ready(Ok(len))
    }

    /// Starts a flush and returns: the stream takes no more writes until it is done (the
    /// next write waits in `poll_writable`), so waiting here too would only add a host call.
    /// hyper flushes on every pass of its loop; with nothing written since, nothing is done.
    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if std::mem::take(&mut this.unflushed) {
            this.output.flush().map_err(stream_error)?;
            this.flushing = true;
        }
        Poll::Ready(Ok(()))
    }

    /// Sends what is left, waiting for the flush to complete, then ends the sending side.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        if self.flushing {
            ready!(self.poll_writable(cx))?;
        }
        let _ = self.socket.shutdown(ShutdownType::Send);
        Poll::Ready(Ok(()))
    }
}
