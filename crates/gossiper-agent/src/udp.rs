//! The UDP transport: a socket plus an address book, usable by NodeId (the [`Transport`] trait,
//! same conformance suite as the in-memory transport) or by address (the agent loop).

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use gossiper_network::{Transport, TransportError};
use gossiper_types::NodeId;

/// Largest UDP payload over IPv4.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// A bound UDP socket with a NodeId ↔ address book.
#[derive(Debug)]
pub struct UdpTransport {
    id: NodeId,
    socket: UdpSocket,
    max_payload: usize,
    peers: HashMap<NodeId, SocketAddr>,
    by_addr: HashMap<SocketAddr, NodeId>,
    timeout: Option<Duration>,
}

fn io_err(e: io::Error) -> TransportError {
    TransportError::Io(e.to_string())
}

impl UdpTransport {
    /// Binds `addr` for node `id`; datagrams are at most `max_payload` bytes (≤ 65,507).
    pub fn bind(id: NodeId, addr: impl ToSocketAddrs, max_payload: usize) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        Ok(UdpTransport {
            id,
            socket,
            max_payload: max_payload.min(MAX_UDP_PAYLOAD),
            peers: HashMap::new(),
            by_addr: HashMap::new(),
            timeout: None,
        })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// A second handle on the socket, for sending from another thread.
    pub fn try_clone_socket(&self) -> io::Result<UdpSocket> {
        self.socket.try_clone()
    }

    /// Records where node `id` is reached.
    pub fn add_peer(&mut self, id: NodeId, addr: SocketAddr) {
        if let Some(old) = self.peers.insert(id, addr) {
            self.by_addr.remove(&old);
        }
        self.by_addr.insert(addr, id);
    }

    /// Sends one datagram to an address.
    pub fn send_to_addr(&self, to: SocketAddr, payload: &[u8]) -> Result<(), TransportError> {
        if payload.len() > self.max_payload {
            return Err(TransportError::TooLarge {
                len: payload.len(),
                max: self.max_payload,
            });
        }
        self.socket.send_to(payload, to).map(|_| ()).map_err(io_err)
    }

    /// Waits up to `timeout` for one datagram of any size up to 64 KiB (the caller judges the
    /// size); overwrites `buf` with it and returns the sender's address.
    pub fn recv_from_addr(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<Option<SocketAddr>, TransportError> {
        let timeout = timeout.max(Duration::from_micros(100));
        if self.timeout != Some(timeout) {
            self.socket
                .set_read_timeout(Some(timeout))
                .map_err(io_err)?;
            self.timeout = Some(timeout);
        }
        buf.resize(65_536, 0);
        match self.socket.recv_from(buf) {
            Ok((n, from)) => {
                buf.truncate(n);
                Ok(Some(from))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                        // ICMP port unreachable from an earlier send: not this receive's fault.
                        | io::ErrorKind::ConnectionRefused
                ) =>
            {
                buf.clear();
                Ok(None)
            }
            Err(e) => Err(io_err(e)),
        }
    }
}

impl Transport for UdpTransport {
    fn local_id(&self) -> NodeId {
        self.id
    }

    fn max_payload(&self) -> usize {
        self.max_payload
    }

    fn send(&mut self, to: NodeId, payload: &[u8]) -> Result<(), TransportError> {
        let addr = *self.peers.get(&to).ok_or(TransportError::UnknownPeer(to))?;
        self.send_to_addr(addr, payload)
    }

    fn recv(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<Option<NodeId>, TransportError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                buf.clear();
                return Ok(None);
            }
            match self.recv_from_addr(buf, left)? {
                // Datagrams from unknown addresses have no NodeId: skip them.
                Some(from) => {
                    if let Some(&id) = self.by_addr.get(&from) {
                        return Ok(Some(id));
                    }
                }
                None => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossiper_network::transport::conformance;

    fn pair(max: usize) -> (UdpTransport, UdpTransport) {
        let mut a = UdpTransport::bind(NodeId(1), "127.0.0.1:0", max).unwrap();
        let mut b = UdpTransport::bind(NodeId(2), "127.0.0.1:0", max).unwrap();
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        a.add_peer(NodeId(2), ba);
        b.add_peer(NodeId(1), aa);
        (a, b)
    }

    #[test]
    fn udp_passes_conformance() {
        let (mut a, mut b) = pair(1_400);
        conformance::check(&mut a, &mut b);
    }

    #[test]
    fn udp_passes_conformance_at_the_largest_payload() {
        let (mut a, mut b) = pair(MAX_UDP_PAYLOAD);
        conformance::check(&mut a, &mut b);
    }

    #[test]
    fn unknown_peers_and_strangers_are_handled() {
        let (mut a, mut b) = pair(100);
        assert_eq!(
            a.send(NodeId(9), b"x"),
            Err(TransportError::UnknownPeer(NodeId(9)))
        );
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.send_to(b"who?", b.local_addr().unwrap()).unwrap();
        let mut buf = Vec::new();
        assert_eq!(b.recv(&mut buf, Duration::from_millis(100)), Ok(None));
        a.send(NodeId(2), b"hi").unwrap();
        assert_eq!(
            b.recv(&mut buf, Duration::from_secs(2)),
            Ok(Some(NodeId(1)))
        );
    }
}
