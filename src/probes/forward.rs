//! Port-forwards: reaching a pod's port through the API server, for the database (as a [`Dialer`])
//! and for HTTP services (as a local listener, like `kubectl port-forward`).

use std::{net::SocketAddr, sync::Arc};

use tokio::net::TcpListener;

use futures::future::BoxFuture;

use super::{
    kube_error::KubeError,
    pg_target::DbTarget,
    postgres::{ConnectFailure, Dialer, Phase, Stream},
};

/// Opens a stream to a port of a pod: the seam between the port-forward and what uses it. The real
/// one goes through the API server; tests put a local TCP server behind it.
pub trait PodConnector: Send + Sync {
    fn open<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<Box<dyn Stream>, KubeError>>;
}

/// A pod's port: where a port-forward goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPort {
    pub namespace: String,
    pub pod: String,
    pub port: u16,
}

impl std::fmt::Display for PodPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pod {}/{} port {}", self.namespace, self.pod, self.port)
    }
}

/// Dials the database through a port-forward to its pod.
pub struct PodDialer {
    pub connector: Arc<dyn PodConnector>,
    pub to: PodPort,
}

impl Dialer for PodDialer {
    fn dial<'a>(
        &'a self,
        _target: &'a DbTarget,
        deadline: tokio::time::Instant,
    ) -> futures::future::BoxFuture<'a, Result<Box<dyn Stream>, ConnectFailure>> {
        Box::pin(async move {
            let start = tokio::time::Instant::now();
            let open = self
                .connector
                .open(&self.to.namespace, &self.to.pod, self.to.port);
            match tokio::time::timeout_at(deadline, open).await {
                Err(_) => Err(ConnectFailure::Timeout {
                    phase: Phase::Tcp,
                    after: start.elapsed(),
                }),
                Ok(Ok(s)) => Ok(s),
                Ok(Err(e)) => Err(forward_failure(&self.to, &e)),
            }
        })
    }

    fn route(&self) -> Option<String> {
        Some(format!("through the port-forward to {}", self.to))
    }
}

fn forward_failure(to: &PodPort, e: &KubeError) -> ConnectFailure {
    ConnectFailure::Network {
        peer: Some(format!("port-forward to {to}")),
        detail: e.to_string(),
    }
}

/// Why a local forward's last connection ended in an error, by the forward's local address: the
/// forward's own words, which the client of that connection (the HTTP probe) only sees as a closed
/// connection. Cleared when a connection ends well and when the forward goes; at most
/// [`MAX_NOTES`] forwards at once.
static CLOSED: std::sync::Mutex<std::collections::BTreeMap<SocketAddr, String>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());
const MAX_NOTES: usize = 1024;

/// Keeps (`Some`) or clears (`None`: its last connection ended well) a forward's reason.
fn note(local: SocketAddr, why: Option<String>) {
    let Ok(mut notes) = CLOSED.lock() else {
        return;
    };
    match why {
        None => {
            notes.remove(&local);
        }
        Some(why) if notes.len() < MAX_NOTES || notes.contains_key(&local) => {
            notes.insert(
                local,
                crate::untrusted::line(&why, crate::untrusted::MAX_MESSAGE),
            );
        }
        Some(_) => {}
    }
}

/// Forgets a forward's reason when its listener goes (the run's runtime ends), so that a finished
/// run's forwards neither fill the notes nor lend a reason to a later listener on the same port.
struct Forget(SocketAddr);

impl Drop for Forget {
    fn drop(&mut self) {
        note(self.0, None);
    }
}

/// Why the last connection through the local forward at `local` ended in an error, if one did.
pub fn why_closed(local: SocketAddr) -> Option<String> {
    CLOSED.lock().ok()?.get(&local).cloned()
}

/// A local listener on 127.0.0.1 whose every connection is forwarded to a pod's port. It lives as
/// long as the runtime it was started on.
#[derive(Debug, Clone)]
pub struct LocalForward {
    pub local: SocketAddr,
    pub to: PodPort,
}

impl LocalForward {
    pub async fn start(
        connector: Arc<dyn PodConnector>,
        to: PodPort,
    ) -> std::io::Result<LocalForward> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let local = listener.local_addr()?;
        let target = to.clone();
        tokio::spawn(async move {
            let _forget = Forget(local);
            while let Ok((mut client, _)) = listener.accept().await {
                let connector = connector.clone();
                let to = target.clone();
                tokio::spawn(async move {
                    // A failed forward closes the client's connection; why is kept first (the
                    // kubelet's word, or the API server's), for the HTTP probe to say instead of a
                    // closed connection.
                    let why = match connector.open(&to.namespace, &to.pod, to.port).await {
                        Ok(mut upstream) => {
                            tokio::io::copy_bidirectional(&mut client, &mut upstream)
                                .await
                                .err()
                                .map(|e| e.to_string())
                        }
                        Err(e) => Some(e.to_string()),
                    };
                    note(local, why.map(|e| format!("port-forward to {to}: {e}")));
                    drop(client);
                });
            }
        });
        Ok(LocalForward { local, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A connector that reaches "pods" on local TCP ports.
    struct Local(SocketAddr);

    impl PodConnector for Local {
        fn open<'a>(
            &'a self,
            _ns: &'a str,
            pod: &'a str,
            _port: u16,
        ) -> BoxFuture<'a, Result<Box<dyn Stream>, KubeError>> {
            Box::pin(async move {
                if pod == "gone" {
                    return Err(KubeError::Api {
                        verb: "create".into(),
                        resource: "pods/portforward".into(),
                        code: 404,
                        message: "pods \"gone\" not found".into(),
                    });
                }
                let s = tokio::net::TcpStream::connect(self.0)
                    .await
                    .map_err(|e| KubeError::Other(e.to_string()))?;
                Ok(Box::new(s) as Box<dyn Stream>)
            })
        }
    }

    #[tokio::test]
    async fn local_forward_pipes_both_ways() {
        let echo = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = echo.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 5];
                    if s.read_exact(&mut buf).await.is_ok() {
                        let _ = s.write_all(&buf).await;
                    }
                });
            }
        });
        let to = PodPort {
            namespace: "default".into(),
            pod: "p".into(),
            port: 1,
        };
        let fwd = LocalForward::start(Arc::new(Local(addr)), to)
            .await
            .expect("start");
        for _ in 0..2 {
            let mut c = tokio::net::TcpStream::connect(fwd.local)
                .await
                .expect("connect");
            c.write_all(b"hello").await.expect("write");
            let mut back = [0u8; 5];
            c.read_exact(&mut back).await.expect("read");
            assert_eq!(&back, b"hello");
        }
    }

    #[tokio::test]
    async fn pod_dialer_names_the_pod_on_failure() {
        let d = PodDialer {
            connector: Arc::new(Local("127.0.0.1:9".parse().expect("addr"))),
            to: PodPort {
                namespace: "default".into(),
                pod: "gone".into(),
                port: 5432,
            },
        };
        let target = DbTarget::resolve(
            Some("postgres://u@h/db"),
            &std::collections::BTreeMap::new(),
        )
        .expect("target");
        let e = match d
            .dial(
                &target,
                tokio::time::Instant::now() + std::time::Duration::from_secs(2),
            )
            .await
        {
            Err(e) => e,
            Ok(_) => panic!("dialled a gone pod"),
        };
        let m = e.to_string();
        assert!(
            m.contains("port-forward to pod default/gone port 5432"),
            "{m}"
        );
        assert!(m.contains("404"), "{m}");
    }
}
