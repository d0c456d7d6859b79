//! The server's [`PeerTransport`]: hyper's HTTP/1 client over wasi:sockets. Under runwasi a
//! command component has TCP sockets but no wasi:http outgoing handler, so the server speaks
//! HTTP to its peers itself; what to ask and what an answer means are `spin_visits::peers`.

use crate::lookup::resolve_all_ipv4;
use crate::tcp::TcpStream;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, LengthLimitError, Limited};
use spin_visits::peers::{
    AskError, PeerAddr, PeerReply, PeerTransport, COUNT_HEADER, MAX_PEER_BODY, PEER_PATH,
};
use std::net::SocketAddrV4;
use std::time::Duration;
use wstd::future::FutureExt as _;
use wstd::runtime::Task;

/// Each ask runs as its own task from `send`, under the deadline.
pub struct SocketTransport;

impl PeerTransport for SocketTransport {
    type Sent = Task<Result<PeerReply, AskError>>;

    fn send(&self, peer: PeerAddr<'_>, timeout: Duration) -> Result<Self::Sent, AskError> {
        let (authority, host, port) = (peer.authority.to_owned(), peer.host.to_owned(), peer.port);
        let timeout = wstd::time::Duration::from_millis(timeout.as_millis() as u64);
        Ok(wstd::runtime::spawn(async move {
            match fetch(&authority, &host, port).timeout(timeout).await {
                Ok(answer) => answer,
                Err(_) => Err(AskError::TimedOut),
            }
        }))
    }

    async fn receive(&self, sent: Self::Sent) -> Result<PeerReply, AskError> {
        sent.await
    }
}

async fn fetch(authority: &str, host: &str, port: u16) -> Result<PeerReply, AskError> {
    let failed = |what: &str, err: &dyn std::fmt::Display| AskError::Failed(format!("{what}{err}"));
    let ip = match resolve_all_ipv4(host).await {
        Ok(addresses) => *addresses
            .first()
            .ok_or_else(|| AskError::Failed(format!("{host} has no IPv4 address")))?,
        Err(err) => return Err(failed("", &err)),
    };
    let connection = TcpStream::connect(SocketAddrV4::new(ip, port))
        .await
        .map_err(|err| failed("cannot connect: ", &err))?;
    let (mut sender, driver) = hyper::client::conn::http1::handshake(connection)
        .await
        .map_err(|err| failed("", &err))?;
    wstd::runtime::spawn(async move {
        let _ = driver.await;
    })
    .detach();

    let request = http::Request::get(PEER_PATH)
        .header(http::header::HOST, authority)
        .body(Empty::<Bytes>::new())
        .map_err(|err| failed("", &err))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|err| failed("", &err))?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let (status, served_by, count) = (
        response.status().as_u16(),
        header(spin_visits::routes::SERVED_BY),
        header(COUNT_HEADER),
    );
    let body = Limited::new(response.into_body(), MAX_PEER_BODY)
        .collect()
        .await
        .map_err(|err| match err.is::<LengthLimitError>() {
            true => AskError::TooLong,
            false => failed("reading the answer: ", &err),
        })?
        .to_bytes()
        .to_vec();
    Ok(PeerReply {
        status,
        served_by,
        count,
        body,
    })
}
