//! The in-test API server's port-forwards (the WebSocket upgrade, then bytes relayed to the pod's
//! stand-in) and the round trip put in the way of every connection when asked.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::{WebSocketStream, tungstenite::protocol::Role};

use super::kube::status;

/// `stream` as the server sees it across a network `one_way` long each way: what either side
/// writes reaches the other `one_way` later, in order, without waiting for what is still on its
/// way (a delay line, not a slower link).
pub fn far_away(stream: tokio::net::TcpStream, one_way: Duration) -> tokio::io::DuplexStream {
    let (near, far) = tokio::io::duplex(256 * 1024);
    let (net_rd, net_wr) = stream.into_split();
    let (far_rd, far_wr) = tokio::io::split(far);
    tokio::spawn(delay_line(net_rd, far_wr, one_way));
    tokio::spawn(delay_line(far_rd, net_wr, one_way));
    near
}

/// Copies `from` to `to`, each chunk written `delay` after it was read.
pub async fn delay_line(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    delay: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let reading = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = tokio::time::Instant::now() + delay;
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    };
    let writing = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reading, writing);
}

/// Answers the WebSocket upgrade as the API server does and bridges channel 0 to `to`.
pub fn upgrade_portforward(
    req: Request<Incoming>,
    to: SocketAddr,
    port: u16,
) -> Response<Full<Bytes>> {
    let Some(key) = req
        .headers()
        .get("sec-websocket-key")
        .and_then(|k| k.to_str().ok())
        .map(str::to_string)
    else {
        return status(400, "BadRequest", "not a websocket request".to_string());
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        let (mut sink, mut stream) = ws.split();
        let p = port.to_le_bytes();
        // The first frame on each channel names the port.
        if sink
            .send(tokio_tungstenite::tungstenite::Message::binary(vec![
                0, p[0], p[1],
            ]))
            .await
            .is_err()
            || sink
                .send(tokio_tungstenite::tungstenite::Message::binary(vec![
                    1, p[0], p[1],
                ]))
                .await
                .is_err()
        {
            return;
        }
        let Ok(tcp) = tokio::net::TcpStream::connect(to).await else {
            let _ = sink
                .send(tokio_tungstenite::tungstenite::Message::binary(
                    [&[1u8][..], b"connection refused"].concat(),
                ))
                .await;
            return;
        };
        let _ = tcp.set_nodelay(true);
        let (mut rd, mut wr) = tcp.into_split();
        let up = async {
            while let Some(Ok(msg)) = stream.next().await {
                match msg {
                    tokio_tungstenite::tungstenite::Message::Binary(b)
                        if b.len() > 1 && b[0] == 0 && wr.write_all(&b[1..]).await.is_err() =>
                    {
                        break;
                    }
                    tokio_tungstenite::tungstenite::Message::Close(_) => break,
                    _ => {}
                }
            }
            let _ = wr.shutdown().await;
        };
        let down = async {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut frame = Vec::with_capacity(n + 1);
                        frame.push(0);
                        frame.extend_from_slice(&buf[..n]);
                        if sink
                            .send(tokio_tungstenite::tungstenite::Message::binary(frame))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }
            }
            let _ = sink
                .send(tokio_tungstenite::tungstenite::Message::Close(None))
                .await;
        };
        tokio::join!(up, down);
    });
    Response::builder()
        .status(101)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", accept)
        .header("sec-websocket-protocol", "v4.channel.k8s.io")
        .body(Full::new(Bytes::new()))
        .expect("response")
}
