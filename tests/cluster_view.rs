//! The cluster view (`/visits/all`) with three local replicas that name each other on
//! loopback, plus one peer that is down: each peer's count and last visits side by side, the
//! down one shown as down, in JSON and in HTML with its bar chart; and a peer that never
//! answers, down after the peer timeout. Runs against both artefacts.

#[macro_use]
mod common;

use common::{free_port, log_lines, Artefact, ReplicaSpec};

fn cluster_view_shows_every_replica_and_the_down_one(artefact: Artefact) {
    let claims: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    // One peer by name, as on Kubernetes; the fourth port has nobody listening.
    let peers = format!(
        "127.0.0.1:{},localhost:{},127.0.0.1:{},127.0.0.1:{}",
        ports[0], ports[1], ports[2], ports[3]
    );
    let replicas: Vec<_> = (0..3)
        .map(|i| {
            let mut spec = ReplicaSpec::new(artefact, claims[i].path(), &format!("visits-{i}"));
            spec.listen = format!("127.0.0.1:{}", ports[i]);
            spec.env.push(("PEERS".into(), peers.clone()));
            spec.start()
        })
        .collect();
    let visits = [2, 5, 1];
    for (replica, n) in replicas.iter().zip(visits) {
        for _ in 0..n {
            assert_eq!(replica.get("/").status, 200);
        }
    }

    let reply = replicas[1].request("GET", "/visits/all", &[("accept", "application/json")]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), "application/json");
    let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(json["pod"], "visits-1");
    assert_eq!(json["total"], 8, "{json}");
    let all = json["replicas"].as_array().unwrap();
    assert_eq!(all.len(), 4);
    for i in 0..3 {
        assert_eq!(all[i]["up"], true, "{}", all[i]);
        assert_eq!(all[i]["pod"], format!("visits-{i}"));
        assert_eq!(all[i]["count"], visits[i]);
        let last: Vec<String> = log_lines(claims[i].path());
        assert_eq!(
            all[i]["last"],
            serde_json::json!(last),
            "the peer's own log"
        );
    }
    assert_eq!(all[3]["up"], false);
    assert!(all[3]["reason"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("refused"));

    let html = replicas[0].get("/visits/all");
    assert_eq!(html.status, 200);
    assert_eq!(html.header("content-type"), "text/html; charset=utf-8");
    assert!(html.body.contains("<svg id=\"chart\""));
    for (i, n) in visits.iter().enumerate() {
        assert!(
            html.body.contains(&format!(r#"data-count="{n}""#)),
            "bar for visits-{i}"
        );
    }
    assert!(html.body.contains(r#"<tr class="down">"#));
    assert!(html.body.contains("8 visits in all"));

    for (claim, n) in claims.iter().zip(visits) {
        assert_eq!(log_lines(claim.path()).len(), n, "asking records nothing");
    }
}

/// A peer that takes the connection and never answers is shown as down once
/// `PEER_TIMEOUT_MILLISECONDS` has passed, with the same reason from both components (one
/// deadline, `src/peers.rs`), and the view does not wait for it any longer than that.
fn a_silent_peer_is_down_after_the_peer_timeout(artefact: Artefact) {
    let claim = tempfile::tempdir().unwrap();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free_port();
    let mut spec = ReplicaSpec::new(artefact, claim.path(), "visits-0");
    spec.listen = format!("127.0.0.1:{port}");
    spec.env.push((
        "PEERS".into(),
        format!("127.0.0.1:{port},{}", silent.local_addr().unwrap()),
    ));
    spec.env
        .push(("PEER_TIMEOUT_MILLISECONDS".into(), "700".into()));
    let replica = spec.start();

    let started = std::time::Instant::now();
    let reply = replica.request("GET", "/visits/all", &[("accept", "application/json")]);
    let took = started.elapsed();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    let all = json["replicas"].as_array().unwrap();
    assert_eq!(all[0]["up"], true, "{}", all[0]);
    assert_eq!(all[1]["up"], false, "{}", all[1]);
    assert_eq!(all[1]["reason"], "no answer within 700ms", "{}", all[1]);
    assert!(
        took >= std::time::Duration::from_millis(700) && took < std::time::Duration::from_secs(5),
        "answered in {took:?}"
    );
    drop(silent);
}

for_each_artefact!(
    cluster_view_shows_every_replica_and_the_down_one,
    a_silent_peer_is_down_after_the_peer_timeout
);
