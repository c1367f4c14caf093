//! Key rotation asked from here, as Serf's `KeyManager` does it (serf 0.9.4
//! `serf/keymanager.go`): a [`KeyCommand`] is sent to the whole cluster as one of Serf's
//! internal key queries (`_serf_install-key`, `_serf_use-key`, `_serf_remove-key`,
//! `_serf_list-keys`, payload `[7][keyRequest{Key}]`, no acks, no filters) by
//! [`Node::key_query`](crate::Node::key_query); every node (this one too) answers with a
//! `nodeKeyResponse`, and a [`KeyReport`] adds the answers up as `streamKeyResp` does: nodes
//! asked, answers, failures with each node's message, and for a list the nodes holding each
//! key. The asker stops waiting once every node asked has answered.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;

use crate::msgpack::Writer;

/// `messageKeyRequestType`: the first byte of a key query's payload.
const KEY_REQUEST: u8 = 7;
/// `messageKeyResponseType`: the first byte of a key query's answer.
const KEY_RESPONSE: u8 = 8;
/// Nodes a report keeps a message of at most (one per node; the members known bound it too).
const MAX_MESSAGES: usize = 4096;
/// Distinct keys a list report counts at most (a keyring holds 64 at most).
const MAX_KEYS_COUNTED: usize = 1024;

/// A change to (or a look at) every node's keyring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCommand {
    /// Add the key to every keyring (`serf keys -install`).
    Install(Vec<u8>),
    /// Make the key, already installed, every node's primary (`serf keys -use`).
    Use(Vec<u8>),
    /// Drop the key, not the primary, from every keyring (`serf keys -remove`).
    Remove(Vec<u8>),
    /// Ask every node for its keys (`serf keys -list`).
    List,
}

impl KeyCommand {
    /// The internal query that carries it.
    pub fn query_name(&self) -> &'static str {
        match self {
            KeyCommand::Install(_) => "_serf_install-key",
            KeyCommand::Use(_) => "_serf_use-key",
            KeyCommand::Remove(_) => "_serf_remove-key",
            KeyCommand::List => "_serf_list-keys",
        }
    }

    /// Its key (none for a list).
    pub fn key(&self) -> &[u8] {
        match self {
            KeyCommand::Install(k) | KeyCommand::Use(k) | KeyCommand::Remove(k) => k,
            KeyCommand::List => &[],
        }
    }

    /// The query's payload: `[7][keyRequest{Key}]` (a list sends an empty key, as Serf does).
    pub fn payload(&self) -> Vec<u8> {
        let mut w = Writer::new(vec![KEY_REQUEST]);
        w.map(1).key("Key").raw(self.key());
        w.buf
    }
}

/// Checks that `key` is an AES key (16, 24 or 32 bytes), as memberlist's keyring does.
pub fn check_key(key: &[u8]) -> Result<(), String> {
    match key.len() {
        16 | 24 | 32 => Ok(()),
        n => Err(format!("key is {n} bytes: AES keys are 16, 24 or 32")),
    }
}

/// Decodes a base64 key (standard alphabet, padded, as `serf keygen` writes it) and checks
/// its size.
pub fn decode_key(b64: &str) -> Result<Vec<u8>, String> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("key is not base64: {e}"))?;
    check_key(&key)?;
    Ok(key)
}

/// Serf's `nodeKeyResponse`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct NodeKeyResponse {
    result: bool,
    message: String,
    keys: Option<Vec<String>>,
    primary_key: String,
}

/// The answers to one key query, added up as Serf's `streamKeyResp` does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyReport {
    /// Members asked (memberlist's `NumMembers` when the query left: not dead or left,
    /// this node included).
    pub num_nodes: usize,
    /// Answers received.
    pub num_resp: usize,
    /// Answers that said the change failed (or did not decode).
    pub num_err: usize,
    /// Each node's message: why it failed, or a warning with its success.
    pub messages: BTreeMap<String, String>,
    /// For a list: each key (base64) and how many nodes hold it.
    pub keys: BTreeMap<String, usize>,
    /// For a list: each primary key (base64) and how many nodes use it.
    pub primary_keys: BTreeMap<String, usize>,
}

impl KeyReport {
    /// An empty report for a query asked of `num_nodes` members.
    pub fn new(num_nodes: usize) -> KeyReport {
        KeyReport {
            num_nodes,
            ..KeyReport::default()
        }
    }

    /// Adds node `from`'s answer `payload` (the engine keeps one answer per node).
    pub fn add(&mut self, from: &str, payload: &[u8]) {
        self.num_resp += 1;
        let note = |report: &mut KeyReport, message: String| {
            if report.messages.len() < MAX_MESSAGES {
                report.messages.insert(from.to_owned(), message);
            }
        };
        let decoded = match payload.split_first() {
            Some((&KEY_RESPONSE, body)) => crate::msgpack::decode::<NodeKeyResponse>(body)
                .map(|(r, _)| r)
                .map_err(|e| format!("Failed to decode key query response: {e}")),
            _ => Err("Invalid key query response type".to_owned()),
        };
        let r = match decoded {
            Ok(r) => r,
            Err(e) => {
                self.num_err += 1;
                return note(self, e);
            }
        };
        if !r.result {
            self.num_err += 1;
            note(self, r.message);
        } else if !r.message.is_empty() {
            note(self, r.message);
        }
        for k in r.keys.unwrap_or_default() {
            if self.keys.len() < MAX_KEYS_COUNTED || self.keys.contains_key(&k) {
                *self.keys.entry(k).or_default() += 1;
            }
        }
        if !r.primary_key.is_empty()
            && (self.primary_keys.len() < MAX_KEYS_COUNTED
                || self.primary_keys.contains_key(&r.primary_key))
        {
            *self.primary_keys.entry(r.primary_key).or_default() += 1;
        }
    }

    /// Whether every node asked has answered (Serf stops waiting then).
    pub fn complete(&self) -> bool {
        self.num_resp >= self.num_nodes
    }

    /// What went wrong, in Serf's words, or `None` if every node answered with success.
    pub fn error(&self) -> Option<String> {
        if self.num_err != 0 {
            Some(format!(
                "{}/{} nodes reported failure",
                self.num_err, self.num_nodes
            ))
        } else if self.num_resp < self.num_nodes {
            Some(format!(
                "{}/{} nodes reported success",
                self.num_resp, self.num_nodes
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::encode_key_response;

    #[test]
    fn commands_carry_serfs_names_and_payloads() {
        let c = KeyCommand::Install(vec![5; 16]);
        assert_eq!(c.query_name(), "_serf_install-key");
        let p = c.payload();
        // [7] {Key: raw(16)}: Serf's bytes.
        assert_eq!(&p[..6], &[7, 0x81, 0xa3, b'K', b'e', b'y']);
        assert_eq!(p[6], 0xb0);
        assert_eq!(&p[7..], &[5; 16]);
        assert_eq!(
            KeyCommand::List.payload(),
            [7, 0x81, 0xa3, b'K', b'e', b'y', 0xa0]
        );
        assert_eq!(KeyCommand::Use(vec![]).query_name(), "_serf_use-key");
        assert_eq!(KeyCommand::Remove(vec![]).query_name(), "_serf_remove-key");
        assert_eq!(KeyCommand::List.query_name(), "_serf_list-keys");
    }

    #[test]
    fn keys_are_base64_aes_keys() {
        assert_eq!(
            decode_key("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=").map(|k| k.len()),
            Ok(32)
        );
        assert_eq!(
            decode_key("AAAAAAAAAAAAAAAAAAAAAA==").map(|k| k.len()),
            Ok(16)
        );
        assert!(decode_key("not base64!").unwrap_err().contains("base64"));
        assert!(decode_key("AAAA").unwrap_err().contains("3 bytes"));
        assert!(decode_key("").unwrap_err().contains("0 bytes"));
        assert!(check_key(&[0; 24]).is_ok());
    }

    #[test]
    fn reports_add_answers_up_as_serf_does() {
        let mut r = KeyReport::new(3);
        r.add(
            "s1",
            &encode_key_response(true, "", &["A".into(), "B".into()], "A"),
        );
        assert!(!r.complete());
        assert_eq!(r.error().as_deref(), Some("1/3 nodes reported success"));
        r.add(
            "g1",
            &encode_key_response(true, "truncated", &["A".into()], "A"),
        );
        r.add(
            "s2",
            &encode_key_response(false, "Keyring is empty", &[], ""),
        );
        assert!(r.complete());
        assert_eq!((r.num_resp, r.num_err), (3, 1));
        assert_eq!(r.keys, BTreeMap::from([("A".into(), 2), ("B".into(), 1)]));
        assert_eq!(r.primary_keys, BTreeMap::from([("A".into(), 2)]));
        assert_eq!(r.messages["g1"], "truncated");
        assert_eq!(r.messages["s2"], "Keyring is empty");
        assert_eq!(r.error().as_deref(), Some("1/3 nodes reported failure"));
        // Answers that are not key responses are failures, said so.
        let mut r = KeyReport::new(2);
        r.add("x", b"\x06junk");
        r.add("y", &[8, 0xc1]);
        assert_eq!(r.num_err, 2);
        assert!(r.messages["x"].contains("Invalid key query response type"));
        assert!(r.messages["y"].contains("Failed to decode"));
        let mut ok = KeyReport::new(1);
        ok.add("g1", &encode_key_response(true, "", &[], ""));
        assert_eq!(ok.error(), None);
    }
}
