//! Two memberlist agents in one process on loopback: a query asked through one handle is
//! answered by the other within its filters, and the HTTP API asks queries and shows the
//! health score in `/metrics`. Every wait is bounded.

use std::time::Duration;

use gossiper_memberlist::{Config, QueryParams};

use super::MemberlistBuilder;
use super::http::serve;
use crate::http::HttpConfig;

async fn pair() -> (super::MemberlistHandle, super::MemberlistHandle) {
    let mut ca = Config::new("a", "127.0.0.1:0".parse().unwrap());
    ca.tags.insert("role".into(), "rust".into());
    ca.query_responses.insert("uptime".into(), b"42 s".to_vec());
    let a = MemberlistBuilder::new(ca).seed(1).start().await.unwrap();
    let cb = Config::new("b", "127.0.0.1:0".parse().unwrap());
    let b = MemberlistBuilder::new(cb)
        .join(vec![a.gossip_addr()])
        .seed(2)
        .start()
        .await
        .unwrap();
    for h in [&a, &b] {
        let mut m = h.membership();
        tokio::time::timeout(Duration::from_secs(10), m.wait_for(|m| m.len() == 2))
            .await
            .expect("both list both")
            .unwrap();
    }
    (a, b)
}

#[tokio::test]
async fn a_query_through_the_handle_is_answered_within_its_filters() {
    let (a, b) = pair().await;
    let mut p = QueryParams::new("uptime", b"".to_vec());
    p.timeout = Some(Duration::from_millis(800));
    p.tags = vec![("role".into(), "^rust$".into())];
    let r = tokio::time::timeout(Duration::from_secs(5), b.query(p.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.acks, ["a"]);
    assert_eq!(r.responses, [("a".to_owned(), b"42 s".to_vec())]);
    p.tags = vec![("role".into(), "nomatch".into())];
    let r = b.query(p.clone()).await.unwrap();
    assert!(r.acks.is_empty() && r.responses.is_empty(), "{r:?}");
    p.tags = vec![("role".into(), "(".into())];
    assert!(
        b.query(p).await.is_err(),
        "a bad expression is refused before sending"
    );
    assert_eq!(a.health_score().await.unwrap(), 0);
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn the_api_asks_queries_and_shows_the_health_score() {
    let (a, b) = pair().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap().to_string();
    tokio::spawn(serve(b.clone(), listener, HttpConfig::default()));
    let get = |method: &'static str, path: &'static str| {
        let api = api.clone();
        tokio::task::spawn_blocking(move || {
            crate::client::request(&api, method, path, b"", Duration::from_secs(5)).unwrap()
        })
    };
    let (status, body) = get("POST", "/v1/query/uptime?node=a&timeout=500ms")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["acks"], serde_json::json!(["a"]), "{v}");
    assert_eq!(v["responses"]["a"]["payload"], "42 s", "{v}");
    assert_eq!(v["responses"]["a"]["encoding"], "utf-8", "{v}");
    let (status, body) = get("POST", "/v1/query/uptime?tag=role=(").await.unwrap();
    assert_eq!(status, 400, "{body}");
    let (status, body) = get("POST", "/v1/query/_serf_ping").await.unwrap();
    assert_eq!(status, 400, "{body}");
    let (status, text) = get("GET", "/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        text.contains("\ngossiper_memberlist_health_score 0\n"),
        "{text}"
    );
    assert!(
        text.contains("gossiper_memberlist_members{status=\"alive\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("gossiper_memberlist_query_responses_total 1"),
        "{text}"
    );
    b.shutdown().await;
    a.shutdown().await;
}
