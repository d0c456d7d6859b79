//! Name lookup through wasi:sockets (runwasi allows it; `wasmtime run` needs
//! `-S allow-ip-name-lookup=y`).

use std::io;
use std::net::Ipv4Addr;
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::ip_name_lookup::resolve_addresses;
use wasip2::sockets::network::{ErrorCode, IpAddress};
use wstd::runtime::AsyncPollable;

/// Every IPv4 address `host` resolves to. IPv6 answers are skipped: pods listen on IPv4.
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
