//! The Spin component with two stores: the file log, and Spin's SQLite database `default`
//! (the host writes it where the runtime config says, e.g. on a Kubernetes claim, where
//! containerd-shim-spin mounts `files` read-only). `VISIT_STORE` chooses (`file`, `sqlite`,
//! `auto`: the file where `DATA_DIR` is preopened writable, else SQLite where a database is
//! granted, else the file, whose error says why). It imports `fermyon:spin/sqlite`, which only
//! Spin hosts provide, so it is a build of its own: `components/spin` stays `wasi:*` only.

mod sqlite_store;
mod writable;

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use spin_visits::cluster::PeerReport;
use spin_visits::host::{Appended, Host};
use spin_visits::record::{self, RECORD_LEN};
use spin_visits::store::{Resolved, StoreChoice, VisitStore};
use spin_visits::App;
use spin_visits_spin_shared::{ask_peers, refuse, serve, FileHost};
use sqlite_store::SqliteStore;
use std::rc::Rc;

#[http_component]
async fn handle(incoming: IncomingRequest, outparam: ResponseOutparam) {
    let app = App::from_env();
    let choice = match StoreChoice::from_env() {
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
        Resolved::Sqlite => match SqliteStore::open() {
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

/// Visits in Spin's SQLite: each append is one `INSERT`, which SQLite serialises across
/// instances, so every count is exact.
struct SqliteHost(SqliteStore);

impl Host for SqliteHost {
    async fn append(&self, record: [u8; RECORD_LEN]) -> Appended {
        self.0
            .append(record::timestamp_text(&record))
            .map_err(Rc::new)
    }

    async fn ask_peers(&self, configured: &[String]) -> Vec<PeerReport> {
        ask_peers(configured)
    }

    fn store(&self) -> Option<&dyn VisitStore> {
        Some(&self.0)
    }
}
