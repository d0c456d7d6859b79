//! The Spin component, file store only: imports nothing but `wasi:*`, so `spin up`,
//! `wasmtime serve` and any other WASI 0.2 HTTP host can run it. The build with Spin's SQLite
//! store is `components/spin-sqlite`; both share `components/spin-shared`.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use spin_visits::store::StoreChoice;
use spin_visits::App;
use spin_visits_spin_shared::{refuse, serve, FileHost};

#[http_component]
async fn handle(incoming: IncomingRequest, outparam: ResponseOutparam) {
    let app = App::from_env();
    match StoreChoice::from_env() {
        Ok(StoreChoice::File | StoreChoice::Auto) => {
            serve(incoming, outparam, &app, &FileHost(&app.log)).await
        }
        Ok(StoreChoice::Sqlite) => refuse(
            outparam,
            &app,
            http::StatusCode::SERVICE_UNAVAILABLE,
            "VISIT_STORE=sqlite, but this build (spin_visits_http.wasm) has only the file store: \
             run spin_visits_sqlite.wasm, or set VISIT_STORE=file",
        ),
        Err(reason) => refuse(
            outparam,
            &app,
            http::StatusCode::SERVICE_UNAVAILABLE,
            &reason,
        ),
    }
}
