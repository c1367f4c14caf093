//! Two memberlist agents in one process on loopback: a query asked through one handle is
//! answered by the other within its filters, and the HTTP API asks queries and shows the
//! health score in `/metrics`. Every wait is bounded.

use std::time::Duration;

use gossiper_memberlist::{Config, QueryParams};

use super::MemberlistBuilder;
use super::http::serve;
use crate::http::HttpConfig;

/// Waits (10 s at most) until each of the two lists both.
async fn both_list_both(a: &super::MemberlistHandle, b: &super::MemberlistHandle) {
    for h in [a, b] {
        let mut m = h.membership();
        tokio::time::timeout(Duration::from_secs(10), m.wait_for(|m| m.len() == 2))
            .await
            .expect("both list both")
            .unwrap();
    }
}

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
    both_list_both(&a, &b).await;
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

/// `method path` with `body` and `headers` through the blocking client.
async fn call(
    api: &str,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
) -> (u16, serde_json::Value, String) {
    let api = api.to_owned();
    tokio::task::spawn_blocking(move || {
        let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let r =
            crate::client::send(&api, method, &path, &h, &body, Duration::from_secs(10)).unwrap();
        let text = r.text();
        (
            r.status,
            serde_json::from_str(&text).unwrap_or_default(),
            text,
        )
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn streamed_queries_arrive_line_by_line_and_end_with_the_result() {
    use std::io::{BufRead, BufReader, Write};
    let (a, b) = pair().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(serve(b.clone(), listener, HttpConfig::default()));
    // Read as it comes, timing each line.
    let lines = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(api).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST /v1/query/uptime?stream=true&timeout=1500ms HTTP/1.1\r\nHost: {api}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let start = std::time::Instant::now();
        let mut lines = Vec::new();
        for l in BufReader::new(s).lines() {
            let l = l.unwrap();
            // Chunked framing: the chunk sizes are lines too; JSON lines start with `{`.
            if l.starts_with('{') {
                lines.push((start.elapsed(), serde_json::from_str::<serde_json::Value>(&l).unwrap()));
            } else if l.starts_with("HTTP/1.1") {
                assert!(l.contains("200"), "{l}");
            }
        }
        lines
    })
    .await
    .unwrap();
    let types: Vec<&str> = lines
        .iter()
        .map(|(_, v)| v["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"query"), "{lines:?}");
    assert_eq!(types.last(), Some(&"done"), "{lines:?}");
    let acks: Vec<&str> = lines
        .iter()
        .filter(|(_, v)| v["type"] == "ack")
        .map(|(_, v)| v["from"].as_str().unwrap())
        .collect();
    assert!(acks.contains(&"a") && acks.contains(&"b"), "{lines:?}");
    let (when, answer) = lines.iter().find(|(_, v)| v["type"] == "response").unwrap();
    assert_eq!(
        (answer["from"].clone(), answer["payload"].clone()),
        ("a".into(), "42 s".into())
    );
    assert!(
        *when < Duration::from_millis(1200),
        "the answer came as it arrived: {when:?}"
    );
    let (end, done) = lines.last().unwrap();
    assert!(
        *end >= Duration::from_millis(1400),
        "the stream ends at the timeout: {end:?}"
    );
    assert_eq!(done["responses"]["a"]["payload"], "42 s");
    assert_eq!(done["dropped"], 0);
    assert_eq!(lines[0].1["members"], 2);
    // Bad parameters are refused as without streaming.
    let (status, _, body) = call(
        &api.to_string(),
        "POST",
        "/v1/query/uptime?stream=maybe".into(),
        vec![],
        vec![],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn a_reader_that_falls_behind_loses_replies_counted_not_the_result() {
    let (a, b) = pair().await;
    let mut p = QueryParams::new("uptime", b"".to_vec());
    p.timeout = Some(Duration::from_millis(600));
    // Room for one reply; a's ack, a's answer and b's ack come while nobody reads.
    let mut s = b.query_stream_buffered(1, p).await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let first = s.next().await.expect("one reply kept");
    assert!(first.from == "a" || first.from == "b");
    assert!(s.next().await.is_none(), "the rest were dropped");
    let done = tokio::time::timeout(Duration::from_secs(5), s.finish())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.dropped, 2, "{done:?}");
    assert_eq!(done.result.acks.len(), 2);
    assert_eq!(done.result.responses.len(), 1);
    assert_eq!(b.stream_drops(), 2);
    // A stream dropped early ends its query: the agent goes on answering.
    let mut p = QueryParams::new("uptime", b"".to_vec());
    p.timeout = Some(Duration::from_secs(30));
    drop(b.query_stream(p).await.unwrap());
    assert_eq!(b.members().await.unwrap().len(), 2);
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test]
async fn the_api_rotates_every_members_keyring_ours_and_its_file_included() {
    use base64::Engine;
    let b64 = |k: &[u8]| base64::engine::general_purpose::STANDARD.encode(k);
    let (k1, k2) = (vec![1u8; 32], vec![2u8; 16]);
    let ring = gossiper_memberlist::Keyring::new(std::slice::from_ref(&k1)).unwrap();
    let dir = std::env::temp_dir().join(format!("gossiper-keys-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keyring.json");
    let mut ca = Config::new("a", "127.0.0.1:0".parse().unwrap());
    ca.keyring = Some(ring.clone());
    let a = MemberlistBuilder::new(ca).seed(1).start().await.unwrap();
    let mut cb = Config::new("b", "127.0.0.1:0".parse().unwrap());
    cb.keyring = Some(ring);
    let b = MemberlistBuilder::new(cb)
        .join(vec![a.gossip_addr()])
        .keyring_file(&file)
        .seed(2)
        .start()
        .await
        .unwrap();
    both_list_both(&a, &b).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap().to_string();
    let config = HttpConfig {
        token: Some("sesame".into()),
        ..HttpConfig::default()
    };
    tokio::spawn(serve(b.clone(), listener, config));
    let auth = || vec![("Authorization", "Bearer sesame".to_owned())];
    let post = |op: &str, key: Vec<u8>| {
        let (api, path) = (api.clone(), format!("/v1/keys/{op}?timeout=3s"));
        async move { call(&api, "POST", path, auth(), key).await }
    };

    let (status, v, body) = post("install", b64(&k2).into_bytes()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        (v["num_nodes"].clone(), v["num_resp"].clone()),
        (2.into(), 2.into()),
        "{v}"
    );
    let (_, v, _) = post("use", b64(&k2).into_bytes()).await;
    assert_eq!(v["ok"], true, "{v}");
    // Our primary cannot go: refused, nothing sent.
    let (status, v, _) = post("remove", b64(&k2).into_bytes()).await;
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("primary"), "{v}");
    let (_, v, _) = post("remove", b64(&k1).into_bytes()).await;
    assert_eq!(v["ok"], true, "{v}");
    let saved: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved, [b64(&k2)], "b saved its keyring");
    let (status, v, body) = call(&api, "GET", "/v1/keys".into(), auth(), vec![]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(v["keys"], serde_json::json!({ b64(&k2): 2 }), "{v}");
    assert_eq!(v["primary_keys"], serde_json::json!({ b64(&k2): 2 }), "{v}");
    // A key that is not one of ours fails nowhere; hostile bodies are refused.
    for (body, want) in [
        (b"not base64!".to_vec(), "base64"),
        (b"AAAA".to_vec(), "3 bytes"),
        (Vec::new(), "no key"),
    ] {
        let (status, v, _) = post("install", body).await;
        assert_eq!(status, 400);
        assert!(v["error"].as_str().unwrap().contains(want), "{v}");
    }
    let (status, _, _) = post("install", vec![b'A'; 4096]).await;
    assert_eq!(status, 413);
    let (status, _, _) = call(&api, "GET", "/v1/keys".into(), vec![], vec![]).await;
    assert_eq!(
        status, 401,
        "the keys are secret: the token is needed to list them"
    );
    let mut from_page = auth();
    from_page.push(("Origin", "http://evil.example".to_owned()));
    let path = "/v1/keys/install".to_owned();
    let (status, _, _) = call(&api, "POST", path, from_page, b64(&k1).into_bytes()).await;
    assert_eq!(status, 403, "a web page cannot post a key");
    // Both still talk on the new key alone.
    let mut p = QueryParams::new("ping", b"".to_vec());
    p.timeout = Some(Duration::from_millis(500));
    let r = b.query(p).await.unwrap();
    assert_eq!(r.acks.len(), 2, "{r:?}");
    b.shutdown().await;
    a.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
