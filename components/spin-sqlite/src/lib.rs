//! The Spin component with two stores: the file log, and Spin's SQLite database `default`
//! (the host writes it where the runtime config says, e.g. on a Kubernetes claim, where
//! containerd-shim-spin mounts `files` read-only). `VISIT_STORE` chooses (`file`, `sqlite`,
//! `auto`: the file where `DATA_DIR` is preopened writable, else SQLite where a database is
//! granted, else the file, whose error says why). Settings are read from the WASI environment,
//! then from Spin variables (see [`setting`]). It imports `fermyon:spin/sqlite`, which only
//! Spin hosts provide, so it is a build of its own: `components/spin` stays `wasi:*` only.

mod sqlite_store;
mod writable;

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use spin_visits::config::Config;
use spin_visits::host::{Appended, Host};
use spin_visits::peers::PeerReport;
use spin_visits::record::{self, RECORD_LEN};
use spin_visits::store::{Resolved, StoreChoice, VisitStore};
use spin_visits::App;
use spin_visits_spin_shared::{ask_peers, refuse, serve, FileHost};
use sqlite_store::SqliteStore;
use std::rc::Rc;
use std::time::Duration;

#[http_component]
async fn handle(incoming: IncomingRequest, outparam: ResponseOutparam) {
    let app = App::new(Config::from_lookup(setting));
    let choice = match StoreChoice::from_lookup(setting) {
        Ok(choice) => choice,
        Err(reason) => {
            return refuse(
                outparam,
                &app,
                http::StatusCode::SERVICE_UNAVAILABLE,
                &reason,
            )
        }
    };
    let dir_writable = writable::is_preopened_writable(&app.config.data_dir);
    match choice.resolve(dir_writable, sqlite_store::is_granted) {
        Resolved::File => serve(incoming, outparam, &app, &FileHost(&app.log)).await,
        Resolved::Sqlite => match SqliteStore::open(app.config.append_fsync) {
            Ok(store) => serve(incoming, outparam, &app, &SqliteHost(store)).await,
            Err(err) => refuse(
                outparam,
                &app,
                http::StatusCode::SERVICE_UNAVAILABLE,
                &err.to_string(),
            ),
        },
    }
}

/// A setting from the WASI environment (`environment` in spin.toml), else from the Spin
/// variable of the same name in lower case: containerd-shim-spin gives a component none of
/// the pod's env, but makes the pod's `SPIN_VARIABLE_POD_NAME` the variable `pod_name`, which
/// the image's spin.toml passes to the component.
fn setting(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.is_empty())
        .or_else(|| spin_sdk::variables::get(&name.to_ascii_lowercase()).ok())
}

/// Visits in Spin's SQLite: each append is one `INSERT`, which SQLite serialises across
/// instances, so every count is exact.
struct SqliteHost(SqliteStore);

impl Host for SqliteHost {
    async fn append(&self, record: [u8; RECORD_LEN]) -> Appended {
        self.0
            .append(record::timestamp_text(&record))
            .map_err(Rc::new)
    }

    async fn ask_peers(&self, configured: &[String], timeout: Duration) -> Vec<PeerReport> {
        ask_peers(configured, timeout).await
    }

    fn store(&self) -> Option<&dyn VisitStore> {
        Some(&self.0)
    }
}
