//! The server's peer client: asks each peer for its last visits with hyper's HTTP/1
//! client over wasi:sockets. Under runwasi a command component has TCP sockets but no
//! wasi:http outgoing handler, so the server speaks HTTP to its peers itself.

use crate::lookup::resolve_all_ipv4;
use crate::tcp::TcpStream;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use spin_visits::cluster::{PeerReport, COUNT_HEADER, MAX_PEER_BODY, PEER_PATH};
use std::net::SocketAddrV4;
use std::time::Duration;
use wstd::future::FutureExt as _;

/// Longer than a healthy peer ever takes; a peer that is down should not hold up the page.
const PEER_TIMEOUT: Duration = Duration::from_secs(2);

/// One report per peer, in order, asked all at once.
pub async fn gather(peers: &[String]) -> Vec<PeerReport> {
    let asks: Vec<_> = peers
        .iter()
        .cloned()
        .map(|peer| wstd::runtime::spawn(async move { ask(&peer).await }))
        .collect();
    let mut reports = Vec::with_capacity(asks.len());
    for ask in asks {
        reports.push(ask.await);
    }
    reports
}

async fn ask(peer: &str) -> PeerReport {
    let timeout = wstd::time::Duration::from_millis(PEER_TIMEOUT.as_millis() as u64);
    match fetch(peer).timeout(timeout).await {
        Ok(Ok(report)) => report,
        Ok(Err(reason)) => PeerReport::down(peer, reason),
        Err(_) => PeerReport::down(peer, format!("no answer within {PEER_TIMEOUT:?}")),
    }
}

async fn fetch(peer: &str) -> Result<PeerReport, String> {
    let (host, port) = peer
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host, port.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("{peer} is not host:port"))?;
    let ip = match resolve_all_ipv4(host).await {
        Ok(addresses) => *addresses
            .first()
            .ok_or_else(|| format!("{host} has no IPv4 address"))?,
        Err(err) => return Err(err.to_string()),
    };
    let connection = TcpStream::connect(SocketAddrV4::new(ip, port))
        .await
        .map_err(|err| format!("cannot connect: {err}"))?;
    let (mut sender, driver) = hyper::client::conn::http1::handshake(connection)
        .await
        .map_err(|err| err.to_string())?;
    wstd::runtime::spawn(async move {
        let _ = driver.await;
    })
    .detach();

    let request = http::Request::get(PEER_PATH)
        .header(http::header::HOST, peer)
        .body(Empty::<Bytes>::new())
        .map_err(|err| err.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|err| err.to_string())?;
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
        .map_err(|err| format!("reading the answer: {err}"))?
        .to_bytes();
    Ok(PeerReport::from_reply(
        peer,
        status,
        served_by.as_deref(),
        count.as_deref(),
        &body,
    ))
}
