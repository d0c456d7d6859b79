//! spin-visits: a visit log that runs as a WebAssembly component.
//!
//! The crate, from the bottom up; everything here is tested on the host:
//! - [`record`]: Moscow time and the 33-byte record of one visit;
//! - [`visit_log`]: `visits.txt`: appends (one record or a batch), counts, tails, streamed
//!   reads, and the diagnosis of a full, read-only or missing volume;
//! - [`listing`], [`page`], [`metrics`], [`cluster_view`]: what `/visits`, `/`, `/metrics` and
//!   `/visits/all` (the cluster view) answer, as text;
//! - [`peers`]: asking the peers (every replica) for the cluster view, over a transport each
//!   entry point brings;
//! - [`config`], [`server_config`]: settings from the WASI environment;
//! - [`presence`]: whether another server writes the same data directory;
//! - [`routes`]: the one async HTTP handler, `http::Request` in, `http::Response` out;
//! - [`store`]: what the handler reads visits through: the file log, or a store an entry
//!   point brings (the Spin component's SQLite), and `VISIT_STORE`'s choice between them;
//! - [`host`]: the port through which the handler waits for what only the entry point can do
//!   (append a visit, ask the peers). The two entry crates, `components/spin` and
//!   `components/server`, implement it and convert types; nothing else.

pub mod body;
pub mod cluster_view;
pub mod config;
pub mod host;
pub mod listing;
pub mod metrics;
pub mod page;
pub mod peers;
pub mod presence;
mod query;
pub mod record;
pub mod routes;
pub mod server_config;
pub mod store;
pub mod visit_log;

pub use body::{Body, RequestBody};
pub use host::Host;
pub use routes::{handle, App};
