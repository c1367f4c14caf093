//! `Transport`: moves encoded messages between nodes, in memory or (in the agent) over UDP.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use gossiper_types::NodeId;
use parking_lot::RwLock;

/// Why a send or receive failed. A failed send delivered nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The payload exceeds the transport's maximum datagram size.
    TooLarge {
        /// Payload size in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// No route to that node.
    UnknownPeer(NodeId),
    /// The transport was shut down.
    Closed,
    /// An I/O error from the operating system.
    Io(String),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::TooLarge { len, max } => {
                write!(f, "payload of {len} bytes exceeds the {max}-byte limit")
            }
            TransportError::UnknownPeer(id) => write!(f, "no route to {id}"),
            TransportError::Closed => f.write_str("transport closed"),
            TransportError::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl std::error::Error for TransportError {}

/// A datagram transport: unreliable, unordered, size-limited, like UDP.
pub trait Transport: Send {
    /// The node this endpoint belongs to.
    fn local_id(&self) -> NodeId;

    /// Largest payload [`send`](Transport::send) accepts, in bytes.
    fn max_payload(&self) -> usize;

    /// Sends one datagram to `to`.
    fn send(&mut self, to: NodeId, payload: &[u8]) -> Result<(), TransportError>;

    /// Waits up to `timeout` for one datagram; on arrival overwrites `buf` with it and returns
    /// the sender. `Ok(None)` means the timeout passed.
    fn recv(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<Option<NodeId>, TransportError>;
}

type Datagram = (NodeId, Vec<u8>);

/// A switch connecting [`InMemoryTransport`] endpoints inside one process.
#[derive(Clone)]
pub struct InMemoryNetwork {
    routes: Arc<RwLock<HashMap<NodeId, Sender<Datagram>>>>,
    max_payload: usize,
}

impl fmt::Debug for InMemoryNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryNetwork")
            .field("endpoints", &self.routes.read().len())
            .field("max_payload", &self.max_payload)
            .finish()
    }
}

impl InMemoryNetwork {
    /// A network whose datagrams are at most `max_payload` bytes (like a UDP MTU).
    pub fn new(max_payload: usize) -> Self {
        InMemoryNetwork {
            routes: Arc::new(RwLock::new(HashMap::new())),
            max_payload,
        }
    }

    /// Attaches node `id` and returns its endpoint. Attaching an id again replaces the old
    /// endpoint, whose receiver then sees nothing more (like a restarted process).
    pub fn endpoint(&self, id: NodeId) -> InMemoryTransport {
        let (tx, rx) = mpsc::channel();
        self.routes.write().insert(id, tx);
        InMemoryTransport {
            id,
            network: self.clone(),
            inbox: rx,
        }
    }

    /// Detaches node `id`: datagrams to it now fail with [`TransportError::UnknownPeer`].
    pub fn detach(&self, id: NodeId) {
        self.routes.write().remove(&id);
    }
}

/// One node's endpoint on an [`InMemoryNetwork`].
///
/// Each datagram is copied into its own `Vec` to cross the channel: the in-memory transport
/// serves demos and tests, where that allocation is not the cost being measured.
#[derive(Debug)]
pub struct InMemoryTransport {
    id: NodeId,
    network: InMemoryNetwork,
    inbox: Receiver<Datagram>,
}

impl Transport for InMemoryTransport {
    fn local_id(&self) -> NodeId {
        self.id
    }

    fn max_payload(&self) -> usize {
        self.network.max_payload
    }

    fn send(&mut self, to: NodeId, payload: &[u8]) -> Result<(), TransportError> {
        if payload.len() > self.network.max_payload {
            return Err(TransportError::TooLarge {
                len: payload.len(),
                max: self.network.max_payload,
            });
        }
        let routes = self.network.routes.read();
        let tx = routes.get(&to).ok_or(TransportError::UnknownPeer(to))?;
        // A receiver that hung up is a node that stopped: like UDP, the datagram is just lost.
        let _ = tx.send((self.id, payload.to_vec()));
        Ok(())
    }

    fn recv(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<Option<NodeId>, TransportError> {
        match self.inbox.recv_timeout(timeout) {
            Ok((from, data)) => {
                buf.clear();
                buf.extend_from_slice(&data);
                Ok(Some(from))
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(TransportError::Closed),
        }
    }
}

/// The behaviour every [`Transport`] must show; the UDP transport runs the same suite.
pub mod conformance {
    use super::*;

    /// Panics naming the broken rule unless the two endpoints (`a` sends to `b`'s id and back)
    /// behave as a datagram transport: delivery with the sender's id, byte-exact payloads up to
    /// `max_payload`, oversized sends refused, and timeouts that return `None`.
    pub fn check<T: Transport>(a: &mut T, b: &mut T) {
        let mut buf = Vec::new();
        let wait = Duration::from_secs(2);
        assert_eq!(
            b.recv(&mut buf, Duration::from_millis(20)),
            Ok(None),
            "idle recv must time out"
        );
        a.send(b.local_id(), b"hello").expect("send");
        assert_eq!(b.recv(&mut buf, wait), Ok(Some(a.local_id())), "sender id");
        assert_eq!(buf, b"hello");
        b.send(a.local_id(), &[]).expect("empty datagram");
        assert_eq!(a.recv(&mut buf, wait), Ok(Some(b.local_id())));
        assert!(buf.is_empty(), "empty datagram arrives empty");
        let max = a.max_payload();
        let big: Vec<u8> = (0..max).map(|i| i as u8).collect();
        a.send(b.local_id(), &big).expect("max-size datagram");
        assert_eq!(b.recv(&mut buf, wait), Ok(Some(a.local_id())));
        assert_eq!(buf, big, "max-size payload intact");
        let too_big = vec![0u8; max + 1];
        assert!(
            matches!(
                a.send(b.local_id(), &too_big),
                Err(TransportError::TooLarge { .. })
            ),
            "oversized send must be refused"
        );
        for i in 0..10u8 {
            a.send(b.local_id(), &[i]).expect("burst");
        }
        let mut got = Vec::new();
        while got.len() < 10 {
            match b.recv(&mut buf, wait) {
                Ok(Some(_)) => got.push(buf[0]),
                other => panic!("burst datagram missing: {other:?}"),
            }
        }
        got.sort();
        assert_eq!(got, (0..10).collect::<Vec<u8>>(), "burst delivered whole");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_passes_conformance() {
        let net = InMemoryNetwork::new(1_400);
        let mut a = net.endpoint(NodeId(1));
        let mut b = net.endpoint(NodeId(2));
        conformance::check(&mut a, &mut b);
    }

    #[test]
    fn detached_peers_are_unknown() {
        let net = InMemoryNetwork::new(100);
        let mut a = net.endpoint(NodeId(1));
        let _b = net.endpoint(NodeId(2));
        net.detach(NodeId(2));
        assert_eq!(
            a.send(NodeId(2), b"x"),
            Err(TransportError::UnknownPeer(NodeId(2)))
        );
    }
}
