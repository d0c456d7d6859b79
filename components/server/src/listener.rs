//! A listening socket over wasi:sockets.

use crate::tcp::{socket_error, std_address, wasi_address, TcpStream};
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::{ErrorCode, IpAddressFamily};
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::tcp_create_socket::create_tcp_socket;
use wstd::runtime::AsyncPollable;

pub struct Listener {
    // Declared before the socket: a pollable must be dropped before its parent resource.
    ready: AsyncPollable,
    socket: TcpSocket,
}

/// Why an accept failed.
#[derive(Debug)]
pub enum AcceptError {
    /// The process (or the host) is out of descriptors: `new-socket-limit`, or `unknown`,
    /// which is how wasmtime reports EMFILE/ENFILE from accept.
    OutOfDescriptors(io::Error),
    Other(io::Error),
}

impl Listener {
    /// Binds and listens on an IPv4 address (pods and loopback are IPv4 here); `backlog`
    /// connections may wait to be accepted (wasmtime's default is 128).
    pub async fn bind(addr: SocketAddrV4, backlog: u64) -> io::Result<Self> {
        let socket = create_tcp_socket(IpAddressFamily::Ipv4).map_err(socket_error)?;
        let ready = AsyncPollable::new(socket.subscribe());
        socket
            .start_bind(&instance_network(), wasi_address(addr))
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
        std_address(self.socket.local_address().map_err(socket_error)?)
    }

    /// The next connection.
    pub async fn accept(&self) -> Result<TcpStream, AcceptError> {
        loop {
            match self.socket.accept() {
                Ok((socket, input, output)) => return Ok(TcpStream::new(socket, input, output)),
                Err(ErrorCode::WouldBlock) => self.ready.wait_for().await,
                Err(code @ (ErrorCode::NewSocketLimit | ErrorCode::Unknown)) => {
                    return Err(AcceptError::OutOfDescriptors(socket_error(code)))
                }
                Err(code) => return Err(AcceptError::Other(socket_error(code))),
            }
        }
    }
}
