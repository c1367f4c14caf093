//! Answers to Serf queries, as a Serf agent without query handlers gives them (serf 0.9.4
//! `serf/internal_query.go`, `cmd/serf/command/agent`): the internal `_serf_ping` is only
//! acknowledged; `_serf_conflict NAME` is answered with what we know of member NAME (Serf's
//! name-conflict resolution counts these answers); any other internal query is not answered
//! (Serf logs it as unhandled) but `_serf_list-keys`, answered with our keys (base64, primary
//! named) or Serf's "Keyring is empty" when we have none (install/use/remove-key change the
//! keyring, so the node answers them itself: `node/keys.rs`); a user query is answered only
//! with a response the operator
//! configured for its name ([`Config::query_responses`](crate::Config::query_responses)),
//! where a Serf agent would run its query handler script.

use base64::Engine;

use crate::crypto::Keyring;
use crate::msgpack::Writer;
use crate::node::{Member, ip_bytes};
use crate::serf::SerfStatus;

/// Serf's prefix of internal queries.
pub const INTERNAL_PREFIX: &str = "_serf_";

/// `messageConflictResponseType`: the first byte of a conflict answer.
const CONFLICT_RESPONSE: u8 = 6;

/// `messageKeyResponseType`: the first byte of an answer to a key query.
const KEY_RESPONSE: u8 = 8;

/// Bytes of base64 keys a list-keys answer carries at most, so that it stays under Serf's
/// 1,024-byte response limit with its envelope.
const KEY_LIST_BUDGET: usize = 800;

/// What to send back for query `name` with `payload`, besides the ack: `Some(answer)` or
/// nothing. `member` looks a member up by name (ourselves included); `configured` is the
/// operator's response for a user query of that name.
pub fn answer(
    name: &str,
    payload: &[u8],
    me: &str,
    member: impl Fn(&str) -> Option<Member>,
    configured: Option<&[u8]>,
    keyring: Option<&Keyring>,
) -> Option<Vec<u8>> {
    match name.strip_prefix(INTERNAL_PREFIX) {
        Some("conflict") => {
            let node = std::str::from_utf8(payload).ok()?;
            // Serf does not answer a conflict query about itself.
            (node != me).then(|| encode_conflict_response(member(node).as_ref()))
        }
        Some("list-keys") => Some(match keyring {
            None => {
                encode_key_response(false, "Keyring is empty (encryption not enabled)", &[], "")
            }
            Some(k) => list_keys(k),
        }),
        Some(_) => None,
        None => configured.map(<[u8]>::to_vec),
    }
}

/// The answer to `_serf_list-keys`: every key that fits the budget, primary named.
fn list_keys(k: &Keyring) -> Vec<u8> {
    let b64 = |key: &[u8]| base64::engine::general_purpose::STANDARD.encode(key);
    let all: Vec<String> = k.keys().iter().map(|key| b64(key)).collect();
    let mut keys = Vec::new();
    let mut used = 0;
    for key in &all {
        if used + key.len() > KEY_LIST_BUDGET {
            break;
        }
        used += key.len();
        keys.push(key.clone());
    }
    let message = if keys.len() < all.len() {
        format!(
            "truncated key list response, showing first {} of {} keys",
            keys.len(),
            all.len()
        )
    } else {
        String::new()
    };
    let primary = all.first().cloned().unwrap_or_default();
    encode_key_response(true, &message, &keys, &primary)
}

/// `[8][nodeKeyResponse{Keys, Message, PrimaryKey, Result}]` (an empty key list as nil, as Go
/// writes a nil slice).
pub fn encode_key_response(result: bool, message: &str, keys: &[String], primary: &str) -> Vec<u8> {
    let mut w = Writer::new(vec![KEY_RESPONSE]);
    w.map(4).key("Keys");
    if keys.is_empty() {
        w.nil();
    } else {
        w.array(keys.len() as u32);
        for k in keys {
            w.str(k);
        }
    }
    w.key("Message")
        .str(message)
        .key("PrimaryKey")
        .str(primary)
        .key("Result")
        .bool(result);
    w.buf
}

/// `[6][serf.Member]` (msgpack `nil` for a member we do not know), in go-msgpack's shape:
/// fields by name in sorted order, `Addr` as raw IP bytes, `Status` Serf's integer.
pub fn encode_conflict_response(m: Option<&Member>) -> Vec<u8> {
    let mut w = Writer::new(vec![CONFLICT_RESPONSE]);
    let Some(m) = m else {
        w.nil();
        return w.buf;
    };
    let v = |i: usize| u64::from(m.vsn.get(i).copied().unwrap_or(0));
    let status = match m.status {
        SerfStatus::Alive => 1,
        SerfStatus::Leaving => 2,
        SerfStatus::Left => 3,
        SerfStatus::Failed => 4,
    };
    w.map(11)
        .key("Addr")
        .raw(&ip_bytes(m.addr.ip()))
        .key("DelegateCur")
        .uint(v(5))
        .key("DelegateMax")
        .uint(v(4))
        .key("DelegateMin")
        .uint(v(3))
        .key("Name")
        .str(&m.name)
        .key("Port")
        .uint(m.addr.port().into())
        .key("ProtocolCur")
        .uint(v(2))
        .key("ProtocolMax")
        .uint(v(1))
        .key("ProtocolMin")
        .uint(v(0))
        .key("Status")
        .int(status)
        .key("Tags")
        .map(m.tags.len() as u32);
    for (k, val) in &m.tags {
        w.str(k).str(val);
    }
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn member(name: &str) -> Member {
        Member {
            name: name.into(),
            addr: "127.0.0.1:7946".parse().unwrap(),
            tags: BTreeMap::from([("role".into(), "web".into())]),
            status: SerfStatus::Alive,
            incarnation: 3,
            vsn: vec![1, 5, 2, 2, 5, 5],
        }
    }

    #[test]
    fn ping_is_only_acknowledged_and_unknown_internal_queries_are_not_answered() {
        let none = |_: &str| None;
        assert_eq!(answer("_serf_ping", b"", "g1", none, None, None), None);
        assert_eq!(
            answer("_serf_stats", b"", "g1", none, Some(b"x"), None),
            None
        );
    }

    #[test]
    fn key_queries_list_our_keys_or_say_why_not() {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct R {
            #[serde(default)]
            keys: Option<Vec<String>>,
            message: String,
            primary_key: String,
            result: bool,
        }
        let decode = |a: Vec<u8>| {
            assert_eq!(a[0], 8);
            crate::msgpack::decode::<R>(&a[1..]).unwrap().0
        };
        let none = |_: &str| None;
        let r = decode(answer("_serf_list-keys", b"", "g1", none, None, None).unwrap());
        assert!(!r.result && r.keys.is_none());
        assert_eq!(r.message, "Keyring is empty (encryption not enabled)");
        let ring = Keyring::new(&[vec![1; 32], vec![2; 16]]).unwrap();
        let r = decode(answer("_serf_list-keys", b"", "g1", none, None, Some(&ring)).unwrap());
        assert!(r.result && r.message.is_empty());
        let b64 = |k: &[u8]| base64::engine::general_purpose::STANDARD.encode(k);
        assert_eq!(r.keys.unwrap(), [b64(&[1; 32]), b64(&[2; 16])]);
        assert_eq!(r.primary_key, b64(&[1; 32]));
        assert_eq!(
            answer("_serf_install-key", b"\x07", "g1", none, None, Some(&ring)),
            None,
            "key changes are the node's to answer"
        );
        // Many keys: cut to fit Serf's response limit, and said so.
        let many = Keyring::new(&vec![vec![3; 32]; 40]).unwrap();
        let a = answer("_serf_list-keys", b"", "g1", none, None, Some(&many)).unwrap();
        assert!(a.len() < 1000);
        assert!(decode(a).message.starts_with("truncated key list response"));
    }

    #[test]
    fn user_queries_get_the_configured_response_or_none() {
        let none = |_: &str| None;
        assert_eq!(
            answer("uptime", b"", "g1", none, Some(b"42 s"), None),
            Some(b"42 s".to_vec())
        );
        assert_eq!(answer("uptime", b"", "g1", none, None, None), None);
    }

    #[test]
    fn conflict_answers_carry_the_member_or_nil_and_skip_ourselves() {
        let lookup = |n: &str| (n == "s1").then(|| member("s1"));
        assert_eq!(
            answer("_serf_conflict", b"g1", "g1", lookup, None, None),
            None
        );
        assert_eq!(
            answer("_serf_conflict", b"zz", "g1", lookup, None, None),
            Some(vec![6, 0xc0])
        );
        let a = answer("_serf_conflict", b"s1", "g1", lookup, None, None).unwrap();
        assert_eq!(a[0], 6);
        // Decodes as a map with Serf's field names and values.
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct M {
            name: String,
            #[serde(with = "serde_bytes")]
            addr: Vec<u8>,
            port: u16,
            status: i64,
            protocol_max: u8,
            delegate_cur: u8,
            tags: BTreeMap<String, String>,
        }
        let (m, used): (M, usize) = crate::msgpack::decode(&a[1..]).unwrap();
        assert_eq!(used, a.len() - 1);
        assert_eq!(
            (m.name.as_str(), m.addr, m.port, m.status),
            ("s1", vec![127, 0, 0, 1], 7946, 1)
        );
        assert_eq!((m.protocol_max, m.delegate_cur), (5, 5));
        assert_eq!(m.tags["role"], "web");
    }
}
