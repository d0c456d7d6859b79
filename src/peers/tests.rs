use super::*;
use std::cell::RefCell;

#[test]
fn reads_a_peer_reply() {
    assert_eq!(
        up("visits-1", 7).state,
        PeerState::Up {
            pod: "visits-1".into(),
            count: 7,
            last: vec![RECORD.trim_end().into()]
        }
    );
    let down = |reply: PeerReply| match PeerReport::from_reply("p:1", &reply).state {
        PeerState::Down { reason } => reason,
        up => panic!("{up:?}"),
    };
    assert_eq!(down(reply(503, Some("x"), Some("1"), b"")), "answered 503");
    for (served_by, count) in [
        (Some("x"), Some("many")),
        (None, Some("1")),
        (Some("x"), None),
    ] {
        assert_eq!(
            down(reply(200, served_by, count, b"")),
            "answered without x-served-by and x-visit-count"
        );
    }
    // Only whole records count as last visits; a pod name is cut to what names use.
    let report = PeerReport::from_reply(
        "p:1",
        &reply(
            200,
            Some("<b>v-0</b>"),
            Some("2"),
            b"junk\n2023-11-18 17:54:26\n",
        ),
    );
    assert_eq!(
        report.state,
        PeerState::Up {
            pod: "bv-0b".into(),
            count: 2,
            last: vec![]
        }
    );
}

#[test]
fn an_outcome_without_a_reply_says_why() {
    let reason =
        |answer| match PeerReport::from_answer("p:1", Duration::from_millis(1500), answer).state {
            PeerState::Down { reason } => reason,
            up => panic!("{up:?}"),
        };
    assert_eq!(reason(Err(AskError::TimedOut)), "no answer within 1.5s");
    assert!(reason(Err(AskError::TooLong)).contains("more than 65536 bytes"));
    assert_eq!(reason(Err(AskError::Failed("refused".into()))), "refused");
}

#[test]
fn a_peer_is_host_and_port() {
    assert_eq!(
        PeerAddr::parse("visits-0.h:8080"),
        Ok(PeerAddr {
            authority: "visits-0.h:8080",
            host: "visits-0.h",
            port: 8080
        })
    );
    for bad in ["visits-0", ":8080", "h:0", "h:x", "h:70000"] {
        assert_eq!(
            PeerAddr::parse(bad),
            Err(format!("{bad} is not host:port")),
            "{bad}"
        );
    }
}

/// Answers from a table, and a record of what was sent and received in which order.
struct Table {
    events: RefCell<Vec<String>>,
}

impl PeerTransport for Table {
    type Sent = (String, Duration);

    fn send(&self, peer: PeerAddr<'_>, timeout: Duration) -> Result<Self::Sent, AskError> {
        self.events.borrow_mut().push(format!("send {}", peer.host));
        match peer.host {
            "unsendable" => Err(AskError::Failed("not sent".into())),
            host => Ok((host.to_owned(), timeout)),
        }
    }

    async fn receive(&self, (host, timeout): Self::Sent) -> Result<PeerReply, AskError> {
        self.events.borrow_mut().push(format!("receive {host}"));
        assert_eq!(timeout, Duration::from_secs(2));
        match host.as_str() {
            "slow" => Err(AskError::TimedOut),
            pod => Ok(reply(200, Some(pod), Some("3"), RECORD.as_bytes())),
        }
    }
}

#[test]
fn every_peer_is_asked_before_any_answer_is_awaited() {
    let table = Table {
        events: RefCell::default(),
    };
    let peers = ["v-1:1", "slow:1", "no-port", "unsendable:1", "v-0:1"].map(String::from);
    let reports = crate::host::now(ask_all(&table, &peers, Duration::from_secs(2)));
    assert_eq!(
        table.events.into_inner(),
        [
            "send v-1",
            "send slow",
            "send unsendable",
            "send v-0",
            "receive v-1",
            "receive slow",
            "receive v-0"
        ]
    );
    let said: Vec<_> = reports
        .iter()
        .map(|report| match &report.state {
            PeerState::Up { pod, .. } => format!("{} up as {pod}", report.peer),
            PeerState::Down { reason } => format!("{} down: {reason}", report.peer),
        })
        .collect();
    assert_eq!(
        said,
        [
            "v-1:1 up as v-1",
            "slow:1 down: no answer within 2s",
            "no-port down: no-port is not host:port",
            "unsendable:1 down: not sent",
            "v-0:1 up as v-0"
        ]
    );
}

#[test]
fn discovered_peers_are_each_address_once_in_order() {
    let ip = |last| Ipv4Addr::new(127, 0, 0, last);
    assert_eq!(
        discovered_peers(&[ip(10), ip(2), ip(3), ip(2)], 8080),
        ["127.0.0.2:8080", "127.0.0.3:8080", "127.0.0.10:8080"]
    );
    assert!(discovered_peers(&[], 8080).is_empty());
}

#[test]
fn peers_are_shown_in_pod_order_down_last() {
    let mut reports = vec![
        PeerReport::down("127.0.0.9:8080", "refused"),
        up("visits-10", 1),
        up("visits-2", 1),
        up("visits-0", 1),
    ];
    sort_by_pod(&mut reports);
    let order: Vec<_> = reports
        .iter()
        .map(|r| match &r.state {
            PeerState::Up { pod, .. } => pod.as_str(),
            PeerState::Down { .. } => r.peer.as_str(),
        })
        .collect();
    assert_eq!(
        order,
        ["visits-0", "visits-2", "visits-10", "127.0.0.9:8080"]
    );
}
