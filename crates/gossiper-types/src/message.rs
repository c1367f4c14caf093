//! The anti-entropy messages, and their wire layout.
//!
//! A message is one kind byte followed by its body. Digests and deltas are opaque here: the
//! [`State`](crate::State) encodes them. Decoding borrows from the received buffer.

use crate::DecodeError;
use crate::codec::{Reader, put_bytes};

/// The kind byte that opens every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageKind {
    /// Push: "here is what I have".
    Push = 1,
    /// Pull: "here is my digest, send me what I lack".
    PullRequest = 2,
    /// The answer to a pull request.
    PullReply = 3,
    /// Push-pull, step 1: the initiator's digest.
    Syn = 4,
    /// Push-pull, step 2: the responder's digest and what the initiator lacks.
    SynAck = 5,
    /// Push-pull, step 3: what the responder lacks.
    Ack = 6,
    /// Rumor mongering: a hot rumor (pushed by an infective node, or sent back in answer to a
    /// [`MessageKind::RumorPull`]).
    Rumor = 7,
    /// Rumor mongering with feedback: whether the recipient of a rumor already knew it.
    RumorReply = 8,
    /// Pull rumor mongering: "send me your hot rumors, if you have any".
    RumorPull = 9,
}

impl MessageKind {
    /// Every kind, in wire order.
    pub const ALL: [MessageKind; 9] = [
        MessageKind::Push,
        MessageKind::PullRequest,
        MessageKind::PullReply,
        MessageKind::Syn,
        MessageKind::SynAck,
        MessageKind::Ack,
        MessageKind::Rumor,
        MessageKind::RumorReply,
        MessageKind::RumorPull,
    ];

    /// A stable lower-case name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::Push => "push",
            MessageKind::PullRequest => "pull_request",
            MessageKind::PullReply => "pull_reply",
            MessageKind::Syn => "syn",
            MessageKind::SynAck => "syn_ack",
            MessageKind::Ack => "ack",
            MessageKind::Rumor => "rumor",
            MessageKind::RumorReply => "rumor_reply",
            MessageKind::RumorPull => "rumor_pull",
        }
    }
}

impl TryFrom<u8> for MessageKind {
    type Error = DecodeError;
    fn try_from(b: u8) -> Result<Self, DecodeError> {
        MessageKind::ALL
            .into_iter()
            .find(|k| *k as u8 == b)
            .ok_or(DecodeError::UnknownKind(b))
    }
}

/// A decoded message, borrowing its digest and delta bytes from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// The sender's entries (a delta against an empty digest).
    Push {
        /// Delta bytes.
        delta: &'a [u8],
    },
    /// The sender's digest; the receiver answers with a [`Message::PullReply`].
    PullRequest {
        /// Digest bytes.
        digest: &'a [u8],
    },
    /// What the pull requester lacked.
    PullReply {
        /// Delta bytes.
        delta: &'a [u8],
    },
    /// Push-pull opening: the initiator's digest.
    Syn {
        /// Digest bytes.
        digest: &'a [u8],
    },
    /// Push-pull answer: the responder's digest, and what the initiator lacked.
    SynAck {
        /// Digest bytes.
        digest: &'a [u8],
        /// Delta bytes.
        delta: &'a [u8],
    },
    /// Push-pull close: what the responder lacked.
    Ack {
        /// Delta bytes.
        delta: &'a [u8],
    },
    /// A hot rumor: the entries the sender learned recently (a delta against the digest it held
    /// before learning them).
    Rumor {
        /// Delta bytes.
        delta: &'a [u8],
    },
    /// Feedback on a [`Message::Rumor`]: one byte, 1 if the recipient already knew everything
    /// in it, 0 if it learned something.
    RumorReply {
        /// True when the rumor was no news to its recipient.
        already_known: bool,
    },
    /// A pull rumor-mongering request; no body.
    RumorPull,
}

impl<'a> Message<'a> {
    /// The message's kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            Message::Push { .. } => MessageKind::Push,
            Message::PullRequest { .. } => MessageKind::PullRequest,
            Message::PullReply { .. } => MessageKind::PullReply,
            Message::Syn { .. } => MessageKind::Syn,
            Message::SynAck { .. } => MessageKind::SynAck,
            Message::Ack { .. } => MessageKind::Ack,
            Message::Rumor { .. } => MessageKind::Rumor,
            Message::RumorReply { .. } => MessageKind::RumorReply,
            Message::RumorPull => MessageKind::RumorPull,
        }
    }

    /// Decodes a whole message. The digest and delta bodies are checked later by the state.
    pub fn decode(bytes: &'a [u8]) -> Result<Message<'a>, DecodeError> {
        let mut r = Reader::new(bytes);
        let kind = MessageKind::try_from(r.u8()?)?;
        let msg = match kind {
            MessageKind::Push => Message::Push {
                delta: r.remaining(),
            },
            MessageKind::PullRequest => Message::PullRequest {
                digest: r.remaining(),
            },
            MessageKind::PullReply => Message::PullReply {
                delta: r.remaining(),
            },
            MessageKind::Syn => Message::Syn {
                digest: r.remaining(),
            },
            MessageKind::SynAck => {
                let digest = r.bytes()?;
                Message::SynAck {
                    digest,
                    delta: r.remaining(),
                }
            }
            MessageKind::Ack => Message::Ack {
                delta: r.remaining(),
            },
            MessageKind::Rumor => Message::Rumor {
                delta: r.remaining(),
            },
            MessageKind::RumorReply => {
                let already_known = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::Invalid("rumor reply flag")),
                };
                r.finish()?;
                Message::RumorReply { already_known }
            }
            MessageKind::RumorPull => {
                r.finish()?;
                Message::RumorPull
            }
        };
        Ok(msg)
    }

    /// Appends the whole message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind() as u8);
        match self {
            Message::Push { delta }
            | Message::PullReply { delta }
            | Message::Ack { delta }
            | Message::Rumor { delta } => out.extend_from_slice(delta),
            Message::RumorReply { already_known } => out.push(u8::from(*already_known)),
            Message::RumorPull => {}
            Message::PullRequest { digest } | Message::Syn { digest } => {
                out.extend_from_slice(digest)
            }
            Message::SynAck { digest, delta } => {
                put_bytes(out, digest);
                out.extend_from_slice(delta);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn message() -> impl Strategy<Value = (u8, Vec<u8>, Vec<u8>)> {
        (
            1u8..=9,
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(any::<u8>(), 0..40),
        )
    }

    proptest! {
        #[test]
        fn messages_round_trip((kind, a, b) in message()) {
            let msg = match MessageKind::try_from(kind).unwrap() {
                MessageKind::Push => Message::Push { delta: &a },
                MessageKind::PullRequest => Message::PullRequest { digest: &a },
                MessageKind::PullReply => Message::PullReply { delta: &a },
                MessageKind::Syn => Message::Syn { digest: &a },
                MessageKind::SynAck => Message::SynAck { digest: &a, delta: &b },
                MessageKind::Ack => Message::Ack { delta: &a },
                MessageKind::Rumor => Message::Rumor { delta: &a },
                MessageKind::RumorReply => Message::RumorReply { already_known: a.len() % 2 == 1 },
                MessageKind::RumorPull => Message::RumorPull,
            };
            let mut out = Vec::new();
            msg.encode(&mut out);
            prop_assert_eq!(Message::decode(&out), Ok(msg));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Message::decode(&bytes);
        }
    }

    #[test]
    fn unknown_and_empty_are_errors() {
        assert_eq!(Message::decode(&[]), Err(DecodeError::Truncated));
        assert_eq!(Message::decode(&[0]), Err(DecodeError::UnknownKind(0)));
        assert_eq!(Message::decode(&[99, 1]), Err(DecodeError::UnknownKind(99)));
        assert_eq!(Message::decode(&[5, 9]), Err(DecodeError::Truncated));
        assert_eq!(Message::decode(&[8]), Err(DecodeError::Truncated));
        assert!(matches!(
            Message::decode(&[8, 2]),
            Err(DecodeError::Invalid(_))
        ));
        assert_eq!(Message::decode(&[8, 1, 0]), Err(DecodeError::TrailingBytes));
        assert_eq!(Message::decode(&[9, 0]), Err(DecodeError::TrailingBytes));
        assert_eq!(Message::decode(&[9]), Ok(Message::RumorPull));
    }
}
