//! TCP over wasi:sockets, poll-based so hyper can drive it directly: the stream under both
//! the server's connections ([`crate::connection`]) and the peer transport's. Readiness waits go
//! through wstd's reactor (`AsyncPollable`), which also runs the tasks.
//!
//! wstd's own `TcpStream` only offers `async fn` reads and writes; driving those from
//! hyper's `poll_*` methods needs a boxed future per call, and under 64 connections that left
//! waits registered on pollables that stay ready, which spun the reactor. Here every wait is
//! one stored `WaitFor`, dropped the moment it fires.

use hyper::rt::{Read, ReadBufCursor, Write};
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
use wasip2::sockets::tcp::{ShutdownType, TcpSocket};
use wasip2::sockets::tcp_create_socket::create_tcp_socket;
use wstd::runtime::{AsyncPollable, WaitFor};

/// Bytes asked of the host per read.
const READ_LEN: usize = 64 * 1024;

pub fn socket_error(code: ErrorCode) -> io::Error {
    io::Error::other(format!("{}: {}", code.name(), code.message()))
}

fn stream_error(err: StreamError) -> io::Error {
    match err {
        StreamError::Closed => io::ErrorKind::ConnectionReset.into(),
        StreamError::LastOperationFailed(err) => io::Error::other(err.to_debug_string()),
    }
}

pub fn wasi_address(addr: SocketAddrV4) -> IpSocketAddress {
    IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: addr.port(),
        address: addr.ip().octets().into(),
    })
}

pub fn std_address(addr: IpSocketAddress) -> io::Result<SocketAddr> {
    match addr {
        IpSocketAddress::Ipv4(Ipv4SocketAddress { port, address }) => {
            let (a, b, c, d) = address;
            Ok(SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port).into())
        }
        IpSocketAddress::Ipv6(_) => Err(io::Error::other("bound to IPv6")),
    }
}

/// One open TCP connection.
pub struct TcpStream {
    /// The last read took all the host had: wait before reading again.
    drained: bool,
    /// Bytes were written since the last flush.
    unflushed: bool,
    /// A flush was started and has not completed yet.
    flushing: bool,
    /// `None` only while being dropped.
    io: Option<Io>,
}

/// The host resources of a connection.
struct Io {
    // Field order is drop order: waits, then pollables, then the streams they watch, then
    // the socket that owns the streams.
    read_wait: Option<WaitFor>,
    write_wait: Option<WaitFor>,
    readable: AsyncPollable,
    writable: AsyncPollable,
    input: InputStream,
    output: OutputStream,
    socket: TcpSocket,
}

impl TcpStream {
    pub async fn connect(addr: SocketAddrV4) -> io::Result<Self> {
        let socket = create_tcp_socket(IpAddressFamily::Ipv4).map_err(socket_error)?;
        // The pollable is dropped before the socket is moved into the stream.
        let (input, output) = {
            let ready = AsyncPollable::new(socket.subscribe());
            socket
                .start_connect(&instance_network(), wasi_address(addr))
                .map_err(socket_error)?;
            loop {
                match socket.finish_connect() {
                    Ok(streams) => break streams,
                    Err(ErrorCode::WouldBlock) => ready.wait_for().await,
                    Err(code) => return Err(socket_error(code)),
                }
            }
        };
        Ok(Self::new(socket, input, output))
    }

    pub fn new(socket: TcpSocket, input: InputStream, output: OutputStream) -> Self {
        Self {
            drained: false,
            unflushed: false,
            flushing: false,
            io: Some(Io {
                read_wait: None,
                write_wait: None,
                readable: AsyncPollable::new(input.subscribe()),
                writable: AsyncPollable::new(output.subscribe()),
                input,
                output,
                socket,
            }),
        }
    }

    fn io(&mut self) -> &mut Io {
        self.io
            .as_mut()
            .expect("a stream's resources live until it is dropped")
    }

    /// Reads what the host has into `buf`: `Ready(Ok(n))` with the bytes put, 0 at the end
    /// of the stream.
    pub fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBufCursor<'_>,
    ) -> Poll<io::Result<usize>> {
        loop {
            if let Some(wait) = self.io().read_wait.as_mut() {
                ready!(Pin::new(wait).poll(cx));
                self.io().read_wait = None;
            }
            // A read that came back short took everything buffered (a request, typically):
            // asking again at once would almost always be an empty answer, a host call for
            // nothing, so wait for the host to say there is more.
            if std::mem::take(&mut self.drained) {
                let io = self.io();
                io.read_wait = Some(io.readable.wait_for());
                continue;
            }
            let want = buf.remaining().min(READ_LEN) as u64;
            let io = self.io();
            match io.input.read(want) {
                Ok(bytes) if bytes.is_empty() => io.read_wait = Some(io.readable.wait_for()),
                Ok(bytes) => {
                    self.drained = (bytes.len() as u64) < want;
                    buf.put_slice(&bytes);
                    return Poll::Ready(Ok(bytes.len()));
                }
                Err(StreamError::Closed) => return Poll::Ready(Ok(0)),
                Err(err) => return Poll::Ready(Err(stream_error(err))),
            }
        }
    }

    /// Reads what the host holds now, without waiting: 0 when it holds nothing (or the
    /// stream has ended).
    pub fn read_now(&mut self, buf: &mut ReadBufCursor<'_>) -> io::Result<usize> {
        let want = buf.remaining().min(READ_LEN) as u64;
        match self.io().input.read(want) {
            Ok(bytes) => {
                buf.put_slice(&bytes);
                Ok(bytes.len())
            }
            Err(StreamError::Closed) => Ok(0),
            Err(err) => Err(stream_error(err)),
        }
    }

    /// Waits until the output stream accepts bytes again; `Ok(n)` is how many it takes.
    pub fn poll_writable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            let io = self.io();
            if let Some(wait) = io.write_wait.as_mut() {
                ready!(Pin::new(wait).poll(cx));
                io.write_wait = None;
            }
            match io.output.check_write() {
                Ok(0) => io.write_wait = Some(io.writable.wait_for()),
                Ok(n) => {
                    // Room again means any flush started before has completed.
                    self.flushing = false;
                    return Poll::Ready(Ok(usize::try_from(n).unwrap_or(usize::MAX)));
                }
                Err(err) => return Poll::Ready(Err(stream_error(err))),
            }
        }
    }

    /// Writes as much of `buf` as the stream takes now.
    pub fn poll_write_from(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let room = ready!(self.poll_writable(cx))?;
        let len = room.min(buf.len());
        self.io().output.write(&buf[..len]).map_err(stream_error)?;
        self.unflushed = true;
        Poll::Ready(Ok(len))
    }

    /// Starts a flush and returns: the stream takes no more writes until it is done (the
    /// next write waits in `poll_writable`), so waiting here too would only add a host call.
    /// hyper flushes on every pass of its loop; with nothing written since, nothing is done.
    pub fn start_flush(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.unflushed) {
            self.io().output.flush().map_err(stream_error)?;
            self.flushing = true;
        }
        Ok(())
    }

    /// Sends what is left, waiting for the flush to complete, then ends the sending side.
    pub fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.start_flush()?;
        if self.flushing {
            ready!(self.poll_writable(cx))?;
        }
        let _ = self.io().socket.shutdown(ShutdownType::Send);
        Poll::Ready(Ok(()))
    }
}

impl Drop for TcpStream {
    /// Since wasmtime 48, dropping an output stream waits until its last write is done, and
    /// the whole component waits with it: a connection given up on a client that stopped
    /// reading (the write deadline) would freeze the server until that client read again.
    /// Such a stream is handed to a task of its own that drops it once the write is done
    /// (the client read or went away). Earlier wasmtime releases (runwasi's) cancel the
    /// write instead; the wait is then over at once.
    fn drop(&mut self) {
        let Some(mut io) = self.io.take() else {
            return;
        };
        if !matches!(io.output.check_write(), Ok(0)) {
            return; // nothing in flight: dropped here, at once
        }
        io.read_wait = None;
        io.write_wait = None;
        // Ends the connection now (a FIN, and the host's pending write fails), so the client
        // sees it closed and the descriptor is given back without waiting for it to read.
        let _ = io.socket.shutdown(ShutdownType::Both);
        wstd::runtime::spawn(async move {
            io.writable.wait_for().await;
            drop(io);
        })
        .detach();
    }
}

impl Read for TcpStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // End of stream: hyper reads it as zero bytes put.
        self.poll_read_into(cx, &mut buf).map_ok(drop)
    }
}

impl Write for TcpStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_from(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.start_flush())
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_close(cx)
    }
}
