//! README promises `x-served-by` and `Cache-Control: no-store` on every answer. Both
//! components, every route and refusal the handler makes; the server component also for the
//! answers made before any handler runs (hyper refusing a request it cannot parse, through
//! our patch: vendor/hyper/PATCHED.md) and on its admin port. The Spin component's hosts
//! refuse such requests themselves (wasmtime serve's hyper, Spin's), with their own headers.

#[macro_use]
mod common;

use common::{raw, Artefact, ReplicaSpec};

/// Method, path, request headers, expected status.
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    u16,
);

fn every_answer_carries_the_promised_headers(artefact: Artefact) {
    let claim = tempfile::tempdir().unwrap();
    let pod = "visits-7";
    let replica = ReplicaSpec::new(artefact, claim.path(), pod).start();
    let cases: &[Case] = &[
        ("GET", "/", &[], 200),
        ("GET", "/visits", &[], 200),
        ("GET", "/visits?tail=1", &[], 200),
        ("GET", "/visits?format=json", &[], 200),
        ("GET", "/visits", &[("accept", "application/json")], 200),
        ("HEAD", "/visits", &[], 200),
        ("GET", "/visits?tail=-1", &[], 400),
        ("GET", "/visits/all", &[], 200),
        ("GET", "/visits/all?format=json", &[], 200),
        ("GET", "/visits/all?tail=x", &[], 400),
        ("GET", "/healthz", &[], 200),
        ("GET", "/readyz", &[], 200),
        ("GET", "/metrics", &[], 200),
        ("GET", "/nope", &[], 404),
        ("POST", "/", &[], 405),
        ("HEAD", "/", &[], 405),
        ("DELETE", "/visits", &[], 405),
        ("FOO", "/healthz", &[], 405),
    ];
    for (method, path, headers, status) in cases {
        let reply = replica.request(method, path, headers);
        assert_eq!(reply.status, *status, "{method} {path}: {reply:?}");
        reply.assert_promised_headers(&format!("{method} {path}"), pod);
    }
    for body in [
        "Content-Length: 3\r\n\r\nabc",
        "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ] {
        let request = format!("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{body}");
        let reply = raw::request(&replica.addr, request.as_bytes());
        assert_eq!(reply.status, 400, "a body: {reply:?}");
        reply.assert_promised_headers("GET / with a body", pod);
    }
    assert_eq!(
        common::log_lines(claim.path()).len(),
        1,
        "only GET / recorded a visit"
    );
}

for_each_artefact!(every_answer_carries_the_promised_headers);

/// The admin address the server printed at start ("admin on http://ADDR)").
fn admin_address(output: &str) -> String {
    let rest = &output[output.find("admin on http://").expect(output) + "admin on http://".len()..];
    rest.split(')').next().unwrap().to_owned()
}

#[test]
fn the_servers_own_refusals_and_its_admin_port_carry_them_too() {
    let claim = tempfile::tempdir().unwrap();
    let pod = "visits-6";
    let replica = ReplicaSpec::new(Artefact::Server, claim.path(), pod).start();
    let many_headers: String = (0..200).map(|i| format!("X-{i}: y\r\n")).collect();
    let refused: [(&str, Vec<u8>, u16); 4] = [
        ("not a request line", b"GARBAGE\r\n\r\n".to_vec(), 400),
        (
            "a malformed header",
            b"GET / HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n".to_vec(),
            400,
        ),
        (
            "a 70 kB target",
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).into_bytes(),
            414,
        ),
        (
            "200 header fields",
            format!("GET / HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(),
            431,
        ),
    ];
    for (what, bytes, status) in refused {
        let reply = raw::request(&replica.addr, &bytes);
        assert_eq!(reply.status, status, "{what}: {reply:?}");
        reply.assert_promised_headers(what, pod);
    }

    let admin = admin_address(&replica.output());
    for (method, path, status) in [("GET", "/nope", 404), ("POST", "/drain", 405)] {
        let reply = common::http_request(method, &format!("http://{admin}{path}"), &[]);
        assert_eq!(reply.status, status, "admin {method} {path}: {reply:?}");
        reply.assert_promised_headers(&format!("admin {method} {path}"), pod);
    }
    let reply = raw::request(&admin, b"GARBAGE\r\n\r\n");
    assert_eq!(reply.status, 400, "admin, not a request: {reply:?}");
    reply.assert_promised_headers("admin, not a request", pod);

    assert!(
        common::log_lines(claim.path()).is_empty(),
        "nothing recorded"
    );
    assert_eq!(replica.get("/healthz").status, 200, "still serving");
}
