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
}

impl MessageKind {
    /// Every kind, in wire order.
    pub const ALL: [MessageKind; 6] = [
        MessageKind::Push,
        MessageKind::PullRequest,
        MessageKind::PullReply,
        MessageKind::Syn,
        MessageKind::SynAck,
        MessageKind::Ack,
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
        };
        Ok(msg)
    }

    /// Appends the whole message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind() as u8);
        match self {
            Message::Push { delta } | Message::PullReply { delta } | Message::Ack { delta } => {
                out.extend_from_slice(delta)
            }
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
            1u8..=6,
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
    }
}
