//! One port-forwarded connection to a pod, with the kubelet's word when it ends: the kubelet opens
//! the forward and only then dials the pod's port; when nothing listens there it says so on the
//! forward's error channel and closes the data channel. Read as is, that is an empty answer (a
//! PostgreSQL client says "early eof", as if something other than PostgreSQL had answered); this
//! stream turns that end into the kubelet's reason.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// The longest kubelet message kept.
const MAX_REASON: usize = 500;
/// How long, once the data channel has ended, the kubelet's word is waited for (it comes before the
/// end, or the channel closes with it): a bound, not a delay.
const REASON_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

pub struct ForwardStream {
    inner: DuplexStream,
    /// The forward's error channel: `Some(message)` when the kubelet reported a failure.
    error: Option<BoxFuture<'static, Option<String>>>,
    port: u16,
    /// Started at the end of the data channel: when it fires, the end is an end.
    waited: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl ForwardStream {
    pub fn new(
        inner: DuplexStream,
        error: Option<BoxFuture<'static, Option<String>>>,
        port: u16,
    ) -> ForwardStream {
        ForwardStream {
            inner,
            error,
            port,
            waited: None,
        }
    }
}

impl AsyncRead for ForwardStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before => {
                // The end: say why, if the kubelet said.
                let port = self.port;
                let Some(error) = self.error.as_mut() else {
                    return Poll::Ready(Ok(()));
                };
                match error.as_mut().poll(cx) {
                    Poll::Pending => {
                        let waited = self
                            .waited
                            .get_or_insert_with(|| Box::pin(tokio::time::sleep(REASON_WAIT)));
                        match waited.as_mut().poll(cx) {
                            Poll::Ready(()) => {
                                self.error = None;
                                Poll::Ready(Ok(()))
                            }
                            Poll::Pending => Poll::Pending,
                        }
                    }
                    Poll::Ready(reason) => {
                        self.error = None;
                        match reason {
                            Some(r) => Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::ConnectionRefused,
                                format!(
                                    "the forward reached the pod, but its port {port} did not take \
                                     the connection (nothing listening yet?): {}",
                                    crate::untrusted::line(&r, MAX_REASON)
                                ),
                            ))),
                            None => Poll::Ready(Ok(())),
                        }
                    }
                }
            }
            other => other,
        }
    }
}

impl AsyncWrite for ForwardStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn an_end_the_kubelet_explained_is_its_reason() {
        let (mine, theirs) = tokio::io::duplex(64);
        drop(theirs);
        let error: BoxFuture<'static, Option<String>> = Box::pin(async {
            Some("dial tcp 127.0.0.1:5432: connect: connection refused".to_string())
        });
        let mut s = ForwardStream::new(mine, Some(error), 5432);
        let e = s.read(&mut [0u8; 8]).await.expect_err("the reason");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert!(
            e.to_string()
                .contains("its port 5432 did not take the connection")
        );
        assert!(e.to_string().contains("connection refused"));
    }

    #[tokio::test]
    async fn a_kubelet_that_never_says_costs_a_bounded_wait() {
        let (mine, theirs) = tokio::io::duplex(64);
        drop(theirs);
        let error: BoxFuture<'static, Option<String>> = Box::pin(std::future::pending());
        let mut s = ForwardStream::new(mine, Some(error), 5432);
        let n = s.read(&mut [0u8; 8]).await.expect("an end");
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn data_and_a_quiet_end_pass_through() {
        let (mine, mut theirs) = tokio::io::duplex(64);
        theirs.write_all(b"hello").await.expect("write");
        drop(theirs);
        let error: BoxFuture<'static, Option<String>> = Box::pin(async { None });
        let mut s = ForwardStream::new(mine, Some(error), 5432);
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.expect("read");
        assert_eq!(got, b"hello");
    }
}
