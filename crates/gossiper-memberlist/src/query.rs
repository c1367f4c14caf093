//! Answers to Serf queries, as a Serf agent without query handlers gives them (serf 0.9.4
//! `serf/internal_query.go`, `cmd/serf/command/agent`): the internal `_serf_ping` is only
//! acknowledged; `_serf_conflict NAME` is answered with what we know of member NAME (Serf's
//! name-conflict resolution counts these answers); any other internal query is not answered
//! (Serf logs it as unhandled); a user query is answered only with a response the operator
//! configured for its name ([`Config::query_responses`](crate::Config::query_responses)),
//! where a Serf agent would run its query handler script.

use crate::msgpack::Writer;
use crate::node::{Member, ip_bytes};
use crate::serf::SerfStatus;

/// Serf's prefix of internal queries.
pub const INTERNAL_PREFIX: &str = "_serf_";

/// `messageConflictResponseType`: the first byte of a conflict answer.
const CONFLICT_RESPONSE: u8 = 6;

/// What to send back for query `name` with `payload`, besides the ack: `Some(answer)` or
/// nothing. `member` looks a member up by name (ourselves included); `configured` is the
/// operator's response for a user query of that name.
pub fn answer(
    name: &str,
    payload: &[u8],
    me: &str,
    member: impl Fn(&str) -> Option<Member>,
    configured: Option<&[u8]>,
) -> Option<Vec<u8>> {
    match name.strip_prefix(INTERNAL_PREFIX) {
        Some("conflict") => {
            let node = std::str::from_utf8(payload).ok()?;
            // Serf does not answer a conflict query about itself.
            (node != me).then(|| encode_conflict_response(member(node).as_ref()))
        }
        Some(_) => None,
        None => configured.map(<[u8]>::to_vec),
    }
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
        assert_eq!(answer("_serf_ping", b"", "g1", none, None), None);
        assert_eq!(answer("_serf_list-keys", b"", "g1", none, Some(b"x")), None);
    }

    #[test]
    fn user_queries_get_the_configured_response_or_none() {
        let none = |_: &str| None;
        assert_eq!(
            answer("uptime", b"", "g1", none, Some(b"42 s")),
            Some(b"42 s".to_vec())
        );
        assert_eq!(answer("uptime", b"", "g1", none, None), None);
    }

    #[test]
    fn conflict_answers_carry_the_member_or_nil_and_skip_ourselves() {
        let lookup = |n: &str| (n == "s1").then(|| member("s1"));
        assert_eq!(answer("_serf_conflict", b"g1", "g1", lookup, None), None);
        assert_eq!(
            answer("_serf_conflict", b"zz", "g1", lookup, None),
            Some(vec![6, 0xc0])
        );
        let a = answer("_serf_conflict", b"s1", "g1", lookup, None).unwrap();
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
