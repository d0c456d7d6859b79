//! Peers found through the headless Service: its name resolves to every pod's address (it
//! publishes not-ready ones too), looked up again on each `/visits/all`, so a scaled
//! StatefulSet is seen without a manifest edit. `PEERS`, when set, is used as given instead.

use crate::peers;
use spin_visits::cluster::{discovered_peers, sort_by_pod, PeerReport};
use spin_visits::config::PeerService;
use std::io;
use std::net::Ipv4Addr;
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::ip_name_lookup::resolve_addresses;
use wasip2::sockets::network::{ErrorCode, IpAddress};
use wstd::runtime::AsyncPollable;

/// The reports for `/visits/all`: the configured `PEERS`, or else every address behind
/// `PEER_SERVICE`, in pod order.
pub async fn gather(configured: &[String]) -> Vec<PeerReport> {
    if !configured.is_empty() {
        return peers::gather(configured).await;
    }
    let service = match PeerService::from_env() {
        Ok(Some(service)) => service,
        Ok(None) => return Vec::new(),
        Err(reason) => return vec![PeerReport::down("PEER_SERVICE", reason)],
    };
    let name = format!("{}:{}", service.host, service.port);
    match resolve_all_ipv4(&service.host).await {
        Ok(addresses) if addresses.is_empty() => {
            vec![PeerReport::down(&name, "the name has no IPv4 address")]
        }
        Ok(addresses) => {
            let mut reports = peers::gather(&discovered_peers(&addresses, service.port)).await;
            sort_by_pod(&mut reports);
            reports
        }
        Err(err) => vec![PeerReport::down(&name, err.to_string())],
    }
}

/// Every IPv4 address `host` resolves to through wasi:sockets' name lookup (runwasi allows
/// it; `wasmtime run` needs `-S allow-ip-name-lookup=y`). IPv6 answers are skipped: pods
/// listen on IPv4.
pub async fn resolve_all_ipv4(host: &str) -> io::Result<Vec<Ipv4Addr>> {
    if let Ok(ip) = host.parse() {
        return Ok(vec![ip]);
    }
    let failed =
        |code: ErrorCode| io::Error::other(format!("cannot resolve {host}: {}", code.name()));
    let addresses = resolve_addresses(&instance_network(), host).map_err(failed)?;
    let ready = AsyncPollable::new(addresses.subscribe());
    let mut found = Vec::new();
    loop {
        match addresses.resolve_next_address() {
            Ok(Some(IpAddress::Ipv4((a, b, c, d)))) => found.push(Ipv4Addr::new(a, b, c, d)),
            Ok(Some(IpAddress::Ipv6(_))) => {}
            Ok(None) => return Ok(found),
            Err(ErrorCode::WouldBlock) => ready.wait_for().await,
            Err(code) => return Err(failed(code)),
        }
    }
}
