//! A client that asks for replies (a member list, pipelined requests, an event stream) and
//! never reads them would hold its connection, its buffers and its connection slot for ever:
//! hyper times out reading a request, not writing a reply. [`WriteTimeout`] wraps the socket so
//! that a write, flush or shutdown making no progress for the timeout fails with `TimedOut`,
//! and hyper closes the connection. The timer runs only while a write waits, so an idle event
//! stream or a parked blocking query is not affected.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A socket whose writes fail once they have waited `timeout` without progress.
#[derive(Debug)]
pub(crate) struct WriteTimeout<T> {
    io: T,
    timeout: Duration,
    /// Armed when a write first waits; dropped at the next progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteTimeout<T> {
    pub(crate) fn new(io: T, timeout: Duration) -> WriteTimeout<T> {
        WriteTimeout {
            io,
            timeout,
            stalled: None,
        }
    }

    /// After the inner write returned `poll`: progress disarms the timer, waiting arms it,
    /// and a timer that ran out turns the wait into an error.
    fn watch<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.timeout;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client read nothing for {timeout:?}"),
        )))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.watch(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.watch(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_shutdown(cx);
        this.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_write_nobody_reads_fails_after_the_timeout() {
        let (client, server) = tokio::io::duplex(64);
        let mut server = WriteTimeout::new(server, Duration::from_secs(2));
        let started = tokio::time::Instant::now();
        let err = server
            .write_all(&[7; 4096])
            .await
            .expect_err("the client never reads");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        drop(client);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_never_cut() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = WriteTimeout::new(server, Duration::from_secs(2));
        let reader = tokio::spawn(async move {
            let mut buf = [0; 64];
            let mut total = 0;
            while total < 4096 {
                // Slower than nothing at all, quicker than the timeout.
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                total += client.read(&mut buf).await.expect("read");
            }
            total
        });
        server
            .write_all(&[7; 4096])
            .await
            .expect("progress keeps it alive");
        server.flush().await.expect("flush");
        assert_eq!(reader.await.expect("reader"), 4096);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn waiting_without_writing_arms_nothing() {
        let (_client, mut server) = tokio::io::duplex(64);
        let mut server_side = WriteTimeout::new(&mut server, Duration::from_secs(1));
        tokio::time::sleep(Duration::from_secs(60)).await;
        server_side
            .write_all(b"late but fine")
            .await
            .expect("write");
    }
}
