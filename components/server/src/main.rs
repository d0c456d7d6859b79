//! The server component: a WASI command that listens on `LISTEN_ADDR` through wasi:sockets
//! and serves the shared handler with hyper's HTTP/1.1 server, one task per connection.
//!
//! This is what Kubernetes runs: runwasi's wasmtime shim gives a command component the
//! container root preopened read-write (so the claim at `/data`), the pod's env and TCP
//! sockets, while it gives a wasi-http component no directory at all. It must therefore not
//! link the Spin entry, whose `incoming-handler` export would make runwasi run it as a proxy.
//!
//! The rooms, from the socket up:
//! - `tcp` (a stream over wasi:sockets), `listener`, `timer` (one ticker for every deadline);
//! - `connection` (deadlines, and the bytes each phase moves: `progress`);
//! - `http1` (the one hyper setup of both ports);
//! - `accept` (the accept loop and its cap), `registry` (the connections holding a slot, who
//!   yields one at the cap);
//! - `adapter` (hyper's request to the handler and back, `body` for the answer, `in_flight`);
//! - `server` (the parts wired once), `host` (the handler's port: `commit` for group commit,
//!   `peer_cache` → `peer_transport` → `lookup` for the cluster view, `/visits/all`; `stats`
//!   for `/metrics`);
//! - `drain` and `admin` (`/drain`, then exit);
//! - `presence` (another server on the same data directory: a log line and `/readyz`).

mod accept;
mod adapter;
mod admin;
mod body;
mod commit;
mod connection;
mod drain;
mod host;
mod http1;
mod in_flight;
mod listener;
mod lookup;
mod peer_cache;
mod peer_transport;
mod presence;
mod progress;
mod registry;
mod server;
mod stats;
mod tcp;
mod timer;

use anyhow::Context as _;
use listener::Listener;
use server::Server;
use spin_visits::server_config::ServerConfig;

#[wstd::main]
async fn main() -> anyhow::Result<()> {
    let config = ServerConfig::from_env().map_err(anyhow::Error::msg)?;
    let (addr, admin_addr) = (config.listen_addr, config.admin_addr);
    let listener = Listener::bind(addr, config.listen_backlog)
        .await
        .with_context(|| format!("cannot listen on LISTEN_ADDR={addr}"))?;
    let admin = Listener::bind(admin_addr, 16)
        .await
        .with_context(|| format!("cannot listen on ADMIN_ADDR={admin_addr}"))?;
    // No "http://" in it: tests find the bound address by that in the output.
    let about = format!(
        "pod {} listening on {}",
        config.app.pod_name,
        listener.local_addr()?
    );
    let server = Server::new(&config, &about);
    // Completes or rolls back a seal a crash interrupted, before any visit is appended.
    match server.app.log.recover() {
        Ok(done) => done
            .iter()
            .for_each(|step| eprintln!("spin-visits-server: recovery: {step}")),
        Err(err) => eprintln!("spin-visits-server: recovery: {err}"),
    }
    // Opens (and holds) the log before any connection can take the descriptors; a volume
    // that is not writable yet is reported and retried by the first visit or probe.
    if let Err(err) = server.app.log.check_writable() {
        eprintln!("spin-visits-server: {err}");
    }
    // A log taken over at or past SEGMENT_BYTES is sealed while visits are served.
    server.committer.seal_if_due();
    // Tests and operators read the bound addresses from this line (port 0 picks a free one).
    println!(
        "spin-visits-server: pod {} serving {} on http://{} (APPEND_FSYNC={}, MAX_CONNECTIONS={}, SEGMENT_BYTES={}, admin on http://{})",
        server.app.config.pod_name,
        server.app.config.data_dir.display(),
        listener.local_addr()?,
        server.app.log.fsync().name(),
        server.registry.cap(),
        server.app.config.segment_bytes,
        admin.local_addr()?,
    );
    // Beats at once, so a second server on the same directory says so as it starts.
    wstd::runtime::spawn(server.watch.clone().run()).detach();
    wstd::runtime::spawn(admin::run(server.clone(), admin)).detach();
    accept::run(server, listener).await;
    Ok(())
}
