//! Key rotation through Serf's key queries (serf 0.9.4 `serf/internal_query.go`
//! `handleInstallKey`, `handleUseKey`, `handleRemoveKey`; memberlist 0.2.2 `keyring.go`):
//! `serf keys -install K` adds a key, `-use K` makes it the primary, `-remove K` drops it (never
//! the primary). Each is answered with Serf's `nodeKeyResponse`. When the runtime keeps a
//! keyring file ([`Config::persist_keyring`](crate::Config::persist_keyring)), the answer waits
//! for the runtime to say the file is written, and carries its error if it was not, as Serf's
//! `writeKeyringFile` does.

use serde::Deserialize;

use gossiper_types::Time;

use super::queries::ReplyTo;
use super::{Event, Node};
use crate::query::encode_key_response;

/// Key changes waiting for the runtime's word at most; past it, a change is refused.
const MAX_KEY_ANSWERS: usize = 16;

/// Which key query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyOp {
    Install,
    Use,
    Remove,
}

impl KeyOp {
    /// The operation a query name asks for, if it is one of the three.
    pub(crate) fn of(name: &str) -> Option<KeyOp> {
        match name {
            "_serf_install-key" => Some(KeyOp::Install),
            "_serf_use-key" => Some(KeyOp::Use),
            "_serf_remove-key" => Some(KeyOp::Remove),
            _ => None,
        }
    }
}

/// `keyRequest{Key []byte}` after Serf's `messageKeyRequestType` byte.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct KeyRequest {
    #[serde(with = "serde_bytes")]
    key: Vec<u8>,
}

/// The key in a key query's payload, `[7][msgpack keyRequest]`.
fn decode_key_request(payload: &[u8]) -> Result<Vec<u8>, String> {
    match payload.split_first() {
        Some((7, body)) => crate::msgpack::decode::<KeyRequest>(body)
            .map(|(r, _)| r.key)
            .map_err(|e| e.to_string()),
        Some((t, _)) => Err(format!("key request of type {t}")),
        None => Err("empty key request".into()),
    }
}

/// A changed keyring's answer, waiting for the runtime to save the keyring.
#[derive(Debug)]
pub(crate) struct KeyAnswer {
    reply: ReplyTo,
}

impl Node {
    pub(super) fn on_key_query(&mut self, now: Time, op: KeyOp, payload: &[u8], reply: ReplyTo) {
        let outcome = match (&mut self.config.keyring, decode_key_request(payload)) {
            (None, _) => Err("No keyring to modify (encryption not enabled)".to_owned()),
            (Some(_), Err(e)) => {
                self.stats.bad_key_queries += 1;
                Err(format!("Failed to decode key request: {e}"))
            }
            (Some(ring), Ok(key)) => match op {
                KeyOp::Install => ring.add_key(&key),
                KeyOp::Use => ring.use_key(&key),
                KeyOp::Remove => ring.remove_key(&key),
            },
        };
        if let Err(e) = outcome {
            self.stats.key_changes_refused += 1;
            log::warn!("key query {op:?} refused: {e}");
            return self.answer(now, &reply, &encode_key_response(false, &e, &[], ""));
        }
        self.stats.key_changes += 1;
        let keys = self
            .config
            .keyring
            .as_ref()
            .map(|k| k.keys().to_vec())
            .unwrap_or_default();
        log::info!(
            "key query {op:?}: the keyring holds {} keys now",
            keys.len()
        );
        if !self.config.persist_keyring {
            return self.answer(now, &reply, &encode_key_response(true, "", &[], ""));
        }
        if self.key_answers.len() >= MAX_KEY_ANSWERS {
            let e = "too many keyring changes waiting to be saved";
            return self.answer(now, &reply, &encode_key_response(false, e, &[], ""));
        }
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        self.key_answers.insert(ticket, KeyAnswer { reply });
        self.events
            .push_back(Event::KeyringChanged { ticket, keys });
    }

    /// The runtime saved the keyring for change `ticket` (`Ok`) or could not (`Err`, said in
    /// the answer, as Serf says a failed keyring-file write); the key query is answered now,
    /// unless its asker stopped listening.
    pub fn keyring_persisted(&mut self, now: Time, ticket: u64, result: Result<(), String>) {
        let Some(a) = self.key_answers.remove(&ticket) else {
            return;
        };
        if now > a.reply.deadline {
            log::debug!("key query answer past its deadline: not sent");
            return;
        }
        let answer = match result {
            Ok(()) => encode_key_response(true, "", &[], ""),
            Err(e) => {
                log::warn!("keyring changed but not saved: {e}");
                encode_key_response(false, &e, &[], "")
            }
        };
        self.answer(now, &a.reply, &answer);
    }

    /// Forgets answers whose asker stopped listening (the runtime never reported).
    pub(super) fn expire_key_answers(&mut self, now: Time) {
        self.key_answers.retain(|_, a| a.reply.deadline >= now);
    }

    /// When the earliest waiting key answer expires.
    pub(super) fn key_answers_deadline(&self) -> Option<Time> {
        self.key_answers.values().map(|a| a.reply.deadline).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_requests_decode_and_bad_ones_say_why() {
        let mut w = crate::msgpack::Writer::new(vec![7]);
        w.map(1).key("Key").raw(&[5; 16]);
        assert_eq!(decode_key_request(&w.buf), Ok(vec![5; 16]));
        assert!(decode_key_request(&[]).is_err());
        assert!(
            decode_key_request(&[8, 0x80])
                .unwrap_err()
                .contains("type 8")
        );
        assert!(decode_key_request(&[7, 0x81, 0xa3]).is_err());
        assert_eq!(KeyOp::of("_serf_use-key"), Some(KeyOp::Use));
        assert_eq!(KeyOp::of("_serf_list-keys"), None);
    }
}
