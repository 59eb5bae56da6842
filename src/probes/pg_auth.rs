//! libpq's `require_auth`: the authentication methods the server may ask for. The server's request
//! is read off the stream before the client library sees it, so a method the user did not allow is
//! refused before any password leaves (the point of `require_auth=scram-sha-256` against a server
//! that asks for a cleartext one).

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::conninfo::TargetError;

/// An authentication method libpq names in `require_auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    Password,
    Md5,
    Gss,
    Sspi,
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    Oauth,
    /// The server lets the user in without asking for anything.
    None,
}

impl AuthMethod {
    fn parse(s: &str) -> Option<AuthMethod> {
        Some(match s {
            "password" => AuthMethod::Password,
            "md5" => AuthMethod::Md5,
            "gss" => AuthMethod::Gss,
            "sspi" => AuthMethod::Sspi,
            "scram-sha-256" => AuthMethod::ScramSha256,
            "oauth" => AuthMethod::Oauth,
            "none" => AuthMethod::None,
            _ => return None,
        })
    }
}

/// `require_auth=a,b` (only these) or `require_auth=!a,!b` (any but these).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RequireAuth {
    pub negated: bool,
    pub methods: Vec<AuthMethod>,
    /// The value as given, for messages.
    pub text: String,
}

impl RequireAuth {
    pub fn parse(value: &str) -> Result<RequireAuth, TargetError> {
        let mut negated = None;
        let mut methods = Vec::new();
        for item in value.split(',') {
            let (neg, name) = match item.strip_prefix('!') {
                Some(n) => (true, n),
                None => (false, item),
            };
            if *negated.get_or_insert(neg) != neg {
                return Err(TargetError(format!(
                    "negative require_auth method {:?} cannot be mixed with non-negative methods",
                    crate::untrusted::cap(if neg { item } else { value }, 40)
                )));
            }
            let m = AuthMethod::parse(name).ok_or_else(|| {
                TargetError(format!(
                    "invalid require_auth value: {:?}",
                    crate::untrusted::cap(name, 40)
                ))
            })?;
            if methods.contains(&m) {
                return Err(TargetError(format!(
                    "require_auth method {:?} is specified more than once",
                    crate::untrusted::cap(name, 40)
                )));
            }
            methods.push(m);
        }
        Ok(RequireAuth {
            negated: negated.unwrap_or(false),
            methods,
            text: crate::untrusted::cap(value, 80),
        })
    }

    fn allows(&self, m: AuthMethod) -> bool {
        self.methods.contains(&m) != self.negated
    }

    /// Whether the server may ask for `code` (an AuthenticationRequest's code; 0 is
    /// AuthenticationOk with nothing asked before it); if not, libpq's reason.
    fn refuses(&self, code: u32) -> Option<String> {
        let (method, asked) = match code {
            0 => (AuthMethod::None, "server did not complete authentication"),
            3 => (
                AuthMethod::Password,
                "server requested a cleartext password",
            ),
            5 => (AuthMethod::Md5, "server requested a hashed password"),
            7 => (AuthMethod::Gss, "server requested GSSAPI authentication"),
            9 => (AuthMethod::Sspi, "server requested SSPI authentication"),
            // A list of methods refuses SASL as a whole; a negated one, the mechanism it names.
            10 if self.negated => (
                AuthMethod::ScramSha256,
                "server requested SCRAM-SHA-256 authentication",
            ),
            10 => (
                AuthMethod::ScramSha256,
                "server requested SASL authentication",
            ),
            _ => return None,
        };
        (!self.allows(method)).then(|| {
            format!(
                "authentication method requirement {:?} failed: {asked}",
                self.text
            )
        })
    }
}

/// The error a refused request surfaces as (through the client library's I/O error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuthRefused(pub String);

/// The largest message read while watching (authentication requests are a few bytes; a SASL one
/// lists mechanism names).
const MAX_WATCHED: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watch {
    /// Nothing written yet: the first write tells whether TLS is asked for.
    Start,
    /// An SSLRequest was sent; its one-byte answer comes next.
    SslAnswer,
    /// Reading backend messages until the authentication is settled.
    Messages { asked: bool },
    /// Settled, or below TLS: bytes pass untouched.
    Off,
}

/// A stream that reads the server's authentication request and refuses one `require_auth` does not
/// allow, before the client library can answer it. Below TLS it steps aside once the server agrees
/// to TLS (the guard above TLS then reads the messages).
pub struct AuthGuard<S> {
    inner: S,
    policy: Option<Arc<RequireAuth>>,
    watch: Watch,
    /// Bytes read from the server and not yet handed on; `ready` of them are settled.
    held: Vec<u8>,
    ready: usize,
}

impl<S> AuthGuard<S> {
    pub fn new(inner: S, policy: Option<Arc<RequireAuth>>) -> AuthGuard<S> {
        let watch = if policy.is_some() {
            Watch::Start
        } else {
            Watch::Off
        };
        AuthGuard {
            inner,
            policy,
            watch,
            held: Vec::new(),
            ready: 0,
        }
    }

    /// Settles what the held bytes allow; an error when the server asked for a refused method.
    fn settle(&mut self) -> Result<(), AuthRefused> {
        loop {
            let rest = &self.held[self.ready..];
            match self.watch {
                Watch::Start | Watch::Off => {
                    self.ready = self.held.len();
                    return Ok(());
                }
                Watch::SslAnswer => {
                    let Some(&b) = rest.first() else {
                        return Ok(());
                    };
                    self.ready += 1;
                    // 'S': TLS follows and the guard above it reads the messages; 'N': plain
                    // messages follow; anything else is the client library's to refuse.
                    self.watch = match b {
                        b'N' => Watch::Messages { asked: false },
                        _ => Watch::Off,
                    };
                }
                Watch::Messages { asked } => {
                    if rest.len() < 5 {
                        return Ok(());
                    }
                    let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
                    if !(4..=MAX_WATCHED).contains(&len) {
                        self.watch = Watch::Off;
                        continue;
                    }
                    if rest.len() < 1 + len {
                        return Ok(());
                    }
                    let (kind, body) = (rest[0], &rest[5..1 + len]);
                    self.ready += 1 + len;
                    match kind {
                        b'R' if body.len() >= 4 => {
                            let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                            if code == 0 && asked {
                                self.watch = Watch::Off;
                                continue;
                            }
                            if let Some(policy) = &self.policy
                                && let Some(reason) = policy.refuses(code)
                            {
                                return Err(AuthRefused(reason));
                            }
                            self.watch = if code == 0 {
                                Watch::Off
                            } else {
                                Watch::Messages { asked: true }
                            };
                        }
                        // An error ends the startup: the client library reports it.
                        b'E' => self.watch = Watch::Off,
                        _ => {}
                    }
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.ready > 0 {
                let n = this.ready.min(buf.remaining());
                buf.put_slice(&this.held[..n]);
                this.held.drain(..n);
                this.ready -= n;
                return Poll::Ready(Ok(()));
            }
            if this.watch == Watch::Off && this.held.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut chunk = [0u8; 4096];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                    // The end: hand on what is held, unsettled or not.
                    this.ready = this.held.len();
                    if this.ready == 0 {
                        return Poll::Ready(Ok(()));
                    }
                }
                Poll::Ready(Ok(())) => {
                    this.held.extend_from_slice(rb.filled());
                    if let Err(refused) = this.settle() {
                        this.held.clear();
                        this.ready = 0;
                        this.watch = Watch::Off;
                        return Poll::Ready(Err(std::io::Error::new(
                            std::io::ErrorKind::PermissionDenied,
                            refused,
                        )));
                    }
                }
            }
        }
    }
}

/// The first 8 bytes of an SSLRequest (length 8, code 80877103).
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 4, 210, 22, 47];

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.watch == Watch::Start {
            self.watch = if buf.starts_with(&SSL_REQUEST) {
                Watch::SslAnswer
            } else {
                Watch::Messages { asked: false }
            };
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: tokio_postgres::tls::TlsStream + Unpin> tokio_postgres::tls::TlsStream for AuthGuard<S> {
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        self.inner.channel_binding()
    }
}

/// A TLS connector whose streams are guarded: the messages inside TLS are read as the plain ones are.
pub struct GuardedTls<T> {
    pub inner: T,
    pub policy: Option<Arc<RequireAuth>>,
}

impl<S, T> tokio_postgres::tls::TlsConnect<S> for GuardedTls<T>
where
    T: tokio_postgres::tls::TlsConnect<S>,
    T::Future: Send + 'static,
    T::Stream: Send + 'static,
{
    type Stream = AuthGuard<T::Stream>;
    type Error = T::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Stream, T::Error>>;

    fn connect(self, stream: S) -> Self::Future {
        let policy = self.policy;
        let fut = self.inner.connect(stream);
        Box::pin(async move { fut.await.map(|s| AuthGuard::new(s, policy)) })
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    /// What the guard makes of a server that answers `answer` after the client's `first` write.
    async fn through(policy: &str, first: &[u8], answer: Vec<u8>) -> Result<Vec<u8>, String> {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let policy = Some(Arc::new(RequireAuth::parse(policy).unwrap()));
        let mut guard = AuthGuard::new(client, policy);
        guard.write_all(first).await.unwrap();
        // Sent a byte at a time: the guard must settle across reads.
        tokio::spawn(async move {
            for b in answer {
                let _ = server.write_all(&[b]).await;
            }
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match guard.read(&mut buf).await {
                Ok(0) => return Ok(got),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    #[tokio::test]
    async fn refuses_what_require_auth_does_not_allow() {
        let startup = [0u8, 0, 0, 9, 0, 3, 0, 0, 0];
        let cleartext = message(b'R', &3u32.to_be_bytes());
        let e = through("scram-sha-256", &startup, cleartext.clone())
            .await
            .unwrap_err();
        assert_eq!(
            e,
            "authentication method requirement \"scram-sha-256\" failed: server requested a cleartext password"
        );
        // Allowed: every byte handed on.
        assert_eq!(
            through("password", &startup, cleartext.clone())
                .await
                .unwrap(),
            cleartext
        );
        // Negated.
        assert!(through("!password", &startup, cleartext).await.is_err());
        // Trust: Ok without asking, allowed only with none.
        let ok = message(b'R', &0u32.to_be_bytes());
        assert!(through("md5", &startup, ok.clone()).await.is_err());
        assert!(through("none", &startup, ok.clone()).await.is_ok());
        // After an SSLRequest refused with 'N', the messages are read.
        let mut answer = vec![b'N'];
        answer.extend(message(b'R', &5u32.to_be_bytes()));
        let e = through("scram-sha-256", &SSL_REQUEST, answer)
            .await
            .unwrap_err();
        assert!(e.ends_with("server requested a hashed password"), "{e}");
        // 'S': TLS bytes follow, the guard steps aside.
        let tls = vec![b'S', 0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5];
        assert_eq!(
            through("scram-sha-256", &SSL_REQUEST, tls.clone())
                .await
                .unwrap(),
            tls
        );
    }

    #[test]
    fn parses_as_libpq_does() {
        assert!(RequireAuth::parse("scram-sha-256,md5").is_ok());
        assert!(RequireAuth::parse("!password,!md5").is_ok());
        assert!(RequireAuth::parse("!password,md5").is_err());
        assert!(RequireAuth::parse("kerberos").is_err());
        assert!(RequireAuth::parse("md5,md5").is_err());
    }
}
