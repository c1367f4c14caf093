//! The TCP side of a memberlist agent: one exchange per connection, as memberlist has it.
//! Every read is bounded in size (the frame's own length, at most `MAX_STREAM`) and in time
//! (the profile's TCP timeout), so a peer that sends slowly, endlessly or nonsense costs one
//! task for that long and no more.

use std::net::SocketAddr;
use std::time::Duration;

use gossiper_memberlist::packet::{MAX_STREAM, stream_frame_len};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// What a stream task hands the engine.
pub(crate) enum StreamInput {
    /// A complete frame read from an inbound connection; the engine answers through `reply`.
    Inbound {
        from: SocketAddr,
        frame: Vec<u8>,
        reply: oneshot::Sender<Option<Vec<u8>>>,
    },
    /// The reply frame of an exchange we started (or why there is none).
    Reply {
        id: u64,
        result: Result<Vec<u8>, String>,
    },
}

/// Reads one frame: grows the buffer only as bytes arrive, stops at the frame's end.
async fn read_frame(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before a whole message".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_STREAM {
            return Err("message too large".into());
        }
        match stream_frame_len(&buf) {
            Ok(Some(len)) => {
                buf.truncate(len);
                return Ok(buf);
            }
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Serves one inbound connection: read a frame, let the engine answer, write the answer.
pub(crate) async fn serve_inbound(
    mut stream: TcpStream,
    from: SocketAddr,
    timeout: Duration,
    engine: mpsc::Sender<StreamInput>,
) {
    let work = async {
        let frame = match read_frame(&mut stream).await {
            Ok(f) => f,
            Err(e) => {
                log::debug!("stream from {from}: {e}");
                return;
            }
        };
        let (tx, rx) = oneshot::channel();
        if engine
            .send(StreamInput::Inbound {
                from,
                frame,
                reply: tx,
            })
            .await
            .is_err()
        {
            return;
        }
        if let Ok(Some(reply)) = rx.await {
            let _ = stream.write_all(&reply).await;
            let _ = stream.shutdown().await;
        }
    };
    if tokio::time::timeout(timeout, work).await.is_err() {
        log::debug!("stream from {from} timed out");
    }
}

/// Runs one exchange we started: connect, write, read the reply frame.
pub(crate) async fn exchange(
    id: u64,
    to: SocketAddr,
    request: Vec<u8>,
    timeout: Duration,
    engine: mpsc::Sender<StreamInput>,
) {
    let work = async {
        let mut stream = TcpStream::connect(to)
            .await
            .map_err(|e| format!("connect to {to}: {e}"))?;
        stream
            .write_all(&request)
            .await
            .map_err(|e| e.to_string())?;
        read_frame(&mut stream).await
    };
    let result = match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer from {to} within {timeout:?}")),
    };
    let _ = engine.send(StreamInput::Reply { id, result }).await;
}
