//! The practical ceiling for the benchmarks: the crate's own handler, record format and
//! append, compiled natively and served by hyper on a single-threaded tokio runtime (the
//! components are single-threaded too). Configured like the server component.

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use spin_visits::host::Direct;
use spin_visits::{App, RequestBody};
use std::convert::Infallible;
use std::rc::Rc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let app = Rc::new(App::from_env());
    println!(
        "spin-visits-native: serving on http://{}",
        listener.local_addr()?
    );
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async move {
            loop {
                let (stream, _) = listener.accept().await?;
                let app = app.clone();
                tokio::task::spawn_local(async move {
                    let service = service_fn(move |request: hyper::Request<Incoming>| {
                        let request = request
                            .map(|body| RequestBody::from_end_of_stream(body.is_end_stream()));
                        let app = app.clone();
                        async move {
                            let (parts, body) =
                                spin_visits::handle(&request, &app, &Direct(&app.log))
                                    .await
                                    .into_parts();
                            let bytes = body.into_bytes().unwrap_or_default();
                            let response =
                                hyper::Response::from_parts(parts, Full::new(Bytes::from(bytes)));
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
        .await
}
