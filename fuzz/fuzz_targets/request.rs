//! Any request target and Accept header against the handler over a small real log: no
//! panic, a known status, a reason on every refusal, and reads never record a visit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spin_visits::config::Config;
use spin_visits::host::{self, Direct};
use spin_visits::{handle, App, RequestBody};

const LOG: &[u8] = b"2023-11-18 17:54:26.913511+03:00\n2023-11-18 17:54:27.000001+03:00\n";

fuzz_target!(|input: (String, String)| {
    let (target, accept) = input;
    let Ok(request) = http::Request::get(format!("/visits?{target}"))
        .header(http::header::ACCEPT, accept.as_str())
        .body(RequestBody::Empty)
    else {
        return; // not a request any host would hand the component
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("visits.txt"), LOG).unwrap();
    let app = App::new(Config {
        data_dir: dir.path().to_owned(),
        pod_name: "fuzz-0".into(),
        ..Config::default()
    });

    let response = host::now(handle(&request, &app, &Direct(&app.log)));
    let status = response.status().as_u16();
    let body = response.into_body().into_bytes().unwrap();
    match status {
        200 => assert!(body.is_empty() || body.starts_with(b"2023") || body.starts_with(b"{")),
        400 => assert!(!body.is_empty(), "a refusal says why"),
        other => panic!("unexpected status {other}"),
    }
    assert_eq!(std::fs::read(dir.path().join("visits.txt")).unwrap(), LOG);
});
