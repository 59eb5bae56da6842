//! One port-forwarded connection to a pod, over the API server's WebSocket port-forward (the
//! `v4.channel.k8s.io` protocol: binary messages whose first byte is the channel, 0 the port's data
//! and 1 its errors, each channel's first message the port number).
//!
//! Written here rather than taken from kube's `Portforwarder` for two bounds: kube's takes
//! tungstenite's defaults, a 128 KiB read buffer per forward (a fleet run of 20 releases holds some
//! 80 forwards at once: 10 MiB) and messages of up to 64 MiB; this one reads 16 KiB at a time and
//! refuses a message over 1 MiB. And it reads the WebSocket in place (no relay task, no 1 MiB
//! in-memory pipe).
//!
//! The kubelet opens the forward and only then dials the pod's port; when nothing listens there it
//! says so on the error channel and ends the data. Read as is, that is an empty answer (a PostgreSQL
//! client says "early eof", as if something other than PostgreSQL had answered); this stream ends
//! with the kubelet's reason instead.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use futures::{Sink, Stream};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message,
        handshake::client::generate_key,
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};

/// The longest kubelet message kept.
const MAX_REASON: usize = 500;
/// The WebSocket's read buffer, and the most bytes sent in one message.
const CHUNK: usize = 16 * 1024;
/// The largest message taken from the API server: a pod's data comes in messages of at most 32 KiB.
const MAX_MESSAGE: usize = 1024 * 1024;
/// The most bytes of an error answer (a `Status`) read when the API server does not upgrade.
const MAX_REFUSAL: usize = 64 * 1024;
/// The channel protocol asked for.
const PROTOCOL: &str = "v4.channel.k8s.io";

/// The API server's side of a forward.
pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// A pod's port, as a byte stream, over a WebSocket on `S`.
pub struct ForwardStream<S = Upgraded> {
    ws: WebSocketStream<S>,
    port: u16,
    /// Data received and not read yet.
    pending: Bytes,
    /// Whether each channel's first message (the port number) has come.
    data_started: bool,
    error_started: bool,
    /// What the kubelet said on the error channel.
    reason: Option<String>,
    ended: bool,
}

/// Opens a port-forward to `pod`'s `port` in `namespace` through the API server `client` speaks to.
/// A refusal is the API server's `Status` as the client's error (so that it is classified as every
/// other answer is).
pub async fn open(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    port: u16,
) -> Result<ForwardStream, kube::Error> {
    use http::header::{self, HeaderValue};
    let request = kube::core::Request::new(format!("/api/v1/namespaces/{namespace}/pods"))
        .portforward(pod, &[port])
        .map_err(kube::Error::BuildRequest)?;
    let (mut parts, body) = request.into_parts();
    let key = generate_key();
    for (name, value) in [
        (header::CONNECTION, "Upgrade"),
        (header::UPGRADE, "websocket"),
        (header::SEC_WEBSOCKET_VERSION, "13"),
        (header::SEC_WEBSOCKET_PROTOCOL, PROTOCOL),
    ] {
        parts.headers.insert(name, HeaderValue::from_static(value));
    }
    parts.headers.insert(
        header::SEC_WEBSOCKET_KEY,
        HeaderValue::from_str(&key).map_err(|e| kube::Error::HttpError(e.into()))?,
    );
    let response = client
        .send(http::Request::from_parts(
            parts,
            kube::client::Body::from(body),
        ))
        .await?;
    let status = response.status();
    if status != http::StatusCode::SWITCHING_PROTOCOLS {
        return Err(refusal(response).await);
    }
    use kube::client::UpgradeConnectionError as Upgrade;
    let accepted = response
        .headers()
        .get(header::SEC_WEBSOCKET_ACCEPT)
        .map(HeaderValue::as_bytes);
    if accepted != Some(derive_accept_key(key.as_bytes()).as_bytes()) {
        return Err(kube::Error::UpgradeConnection(
            Upgrade::SecWebSocketAcceptKeyMismatch,
        ));
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| kube::Error::UpgradeConnection(Upgrade::GetPendingUpgrade(e)))?;
    Ok(ForwardStream::over(TokioIo::new(upgraded), port).await)
}

/// The API server's answer when it did not upgrade: its `Status` (read up to [`MAX_REFUSAL`]), or
/// one made of the HTTP status.
async fn refusal(response: http::Response<kube::client::Body>) -> kube::Error {
    use http_body_util::BodyExt as _;
    let code = response.status().as_u16();
    let body = http_body_util::Limited::new(response.into_body(), MAX_REFUSAL)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let status = serde_json::from_slice::<kube::core::Status>(&body)
        .ok()
        .filter(|s| !s.message.is_empty())
        .unwrap_or_else(|| {
            kube::core::Status::failure(
                &String::from_utf8_lossy(&body[..body.len().min(MAX_REASON)]),
                "",
            )
        });
    kube::Error::Api(Box::new(kube::core::Status { code, ..status }))
}

fn broken(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, e)
}

impl<S: AsyncRead + AsyncWrite + Unpin> ForwardStream<S> {
    /// The forward of `port` over `io`, once the API server has upgraded it.
    pub async fn over(io: S, port: u16) -> ForwardStream<S> {
        let config = WebSocketConfig::default()
            .read_buffer_size(CHUNK)
            .write_buffer_size(0)
            .max_write_buffer_size(4 * CHUNK)
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        ForwardStream {
            ws: WebSocketStream::from_raw_socket(io, Role::Client, Some(config)).await,
            port,
            pending: Bytes::new(),
            data_started: false,
            error_started: false,
            reason: None,
            ended: false,
        }
    }

    /// The end of the data: the kubelet's reason when it gave one.
    fn end(&mut self) -> io::Result<()> {
        match self.reason.take() {
            Some(r) => Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                format!(
                    "the forward reached the pod, but its port {} did not take the connection \
                     (nothing listening yet?): {}",
                    self.port,
                    crate::untrusted::line(&r, MAX_REASON)
                ),
            )),
            None => Ok(()),
        }
    }

    /// Takes one message from the API server into `pending` (or the reason, or the end).
    fn take(&mut self, message: Message) {
        let Message::Binary(mut bytes) = message else {
            if matches!(message, Message::Close(_)) {
                self.ended = true;
            }
            return;
        };
        if bytes.is_empty() {
            return;
        }
        let channel = bytes.split_to(1)[0];
        match channel {
            0 if !self.data_started => {
                // The port number, then (from a lenient server) perhaps data.
                self.data_started = true;
                self.pending = bytes.slice(bytes.len().min(2)..);
            }
            0 => self.pending = bytes,
            1 if !self.error_started => self.error_started = true,
            1 => {
                let said = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_REASON * 4)]);
                if !said.trim().is_empty() {
                    self.reason = Some(said.into_owned());
                }
            }
            _ => {}
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for ForwardStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                let chunk = self.pending.split_to(n);
                buf.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            if self.ended {
                return Poll::Ready(self.end());
            }
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                None => self.ended = true,
                Some(Ok(message)) => self.take(message),
                // The stream broken after the kubelet said why: its word, not the break.
                Some(Err(_)) if self.reason.is_some() => self.ended = true,
                Some(Err(e)) => return Poll::Ready(Err(broken(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ForwardStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(broken)?;
        let n = buf.len().min(CHUNK);
        let mut message = Vec::with_capacity(n + 1);
        message.push(0);
        message.extend_from_slice(&buf[..n]);
        Pin::new(&mut self.ws)
            .start_send(Message::Binary(message.into()))
            .map_err(broken)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(broken)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_close(cx).map_err(broken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A forward of port 5432 whose API-server side plays `script` (after the two port messages)
    /// and echoes back, with the channel byte, what it receives on channel 0 until the client ends.
    async fn pair(script: Vec<Message>) -> ForwardStream<tokio::net::TcpStream> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = WebSocketStream::from_raw_socket(tcp, Role::Server, None).await;
            let port = 5432u16.to_le_bytes();
            for ch in [0u8, 1] {
                ws.send(Message::Binary(vec![ch, port[0], port[1]].into()))
                    .await
                    .unwrap();
            }
            for m in script {
                if ws.send(m).await.is_err() {
                    return;
                }
            }
            while let Some(Ok(Message::Binary(b))) = ws.next().await {
                if ws.send(Message::Binary(b)).await.is_err() {
                    return;
                }
            }
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        ForwardStream::over(tcp, 5432).await
    }

    #[tokio::test]
    async fn data_passes_both_ways_and_a_quiet_end_is_an_end() {
        let mut s = pair(vec![Message::Binary(b"\x00hello".to_vec().into())]).await;
        let mut got = [0u8; 5];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        s.write_all(b"ping").await.unwrap();
        s.flush().await.unwrap();
        let mut got = [0u8; 4];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        // What the pod sends in one message can be read a byte at a time.
        let mut s = pair(vec![
            Message::Binary(b"\x00abc".to_vec().into()),
            Message::Close(None),
        ])
        .await;
        let mut one = [0u8; 1];
        for want in b"abc" {
            s.read_exact(&mut one).await.unwrap();
            assert_eq!(one[0], *want);
        }
        assert_eq!(s.read(&mut one).await.unwrap(), 0, "the end");
    }

    #[tokio::test]
    async fn an_end_the_kubelet_explained_is_its_reason() {
        let mut s = pair(vec![
            Message::Binary(
                b"\x01error forwarding port 5432 to pod x: dial tcp 127.0.0.1:5432: connect: \
                  connection refused\x1b[31m"
                    .to_vec()
                    .into(),
            ),
            Message::Close(None),
        ])
        .await;
        let mut buf = Vec::new();
        let e = s.read_to_end(&mut buf).await.expect_err("the reason");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        let m = e.to_string();
        assert!(
            m.starts_with(
                "the forward reached the pod, but its port 5432 did not take the connection"
            ) && m.contains("connection refused")
                && !m.contains('\x1b'),
            "{m}"
        );
    }

    #[tokio::test]
    async fn a_message_over_the_cap_is_refused_not_buffered() {
        let mut big = vec![0u8];
        big.resize(MAX_MESSAGE + 2, b'x');
        let mut s = pair(vec![Message::Binary(big.into())]).await;
        let mut buf = Vec::new();
        let e = s.read_to_end(&mut buf).await.expect_err("too big");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
        assert!(buf.len() < MAX_MESSAGE, "{}", buf.len());
    }

    #[tokio::test]
    async fn a_long_write_goes_in_bounded_messages() {
        let mut s = pair(vec![]).await;
        let data = vec![7u8; CHUNK * 3 + 5];
        let writer = async {
            let mut rest: &[u8] = &data;
            while !rest.is_empty() {
                let n = s.write(rest).await.unwrap();
                assert!(n <= CHUNK, "{n}");
                rest = &rest[n..];
                s.flush().await.unwrap();
                let mut back = vec![0u8; n];
                s.read_exact(&mut back).await.unwrap();
                assert!(back.iter().all(|b| *b == 7));
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), writer)
            .await
            .expect("echoed in time");
    }
}
