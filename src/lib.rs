//! spin-visits: a visit log that runs as a WebAssembly component.
//!
//! Pure modules ([`record`], [`visit_log`], [`listing`], [`page`], [`metrics`], [`config`]) know nothing of
//! HTTP hosts and are tested on the host; [`routes`] is the one handler that both artefacts,
//! the Spin component and the socket server, call.

pub mod body;
pub mod cluster;
pub mod config;
pub mod listing;
pub mod metrics;
pub mod page;
mod query;
pub mod record;
pub mod routes;
pub mod server_config;
pub mod visit_log;

pub use routes::{handle, prepare, App, Body, ClusterView, PendingVisit, Prepared, RequestBody};
