//! The Kubernetes client's HTTP stack: kube's own (TLS from the kubeconfig, the call deadlines, the
//! kubeconfig's credentials and headers, kube's retry of 429/503/504), built from kube's public parts
//! so that its sockets can have `TCP_NODELAY`.
//!
//! kube 5 connects without it (kube-rs/kube#2056) and offers no setting. A port-forward is a
//! WebSocket on that connection, and a database session behind it writes small messages while the
//! answers to earlier ones are still coming: with Nagle's algorithm each such write waits for the API
//! server's delayed acknowledgement, up to 40 ms on Linux. One release's run took 130-220 ms instead
//! of 50-60 against an API server that (as Go's net package does by default) answers with
//! `TCP_NODELAY` itself.
//!
//! A kubeconfig naming a proxy (`proxy-url`: http, https or socks5, as kubectl takes it) keeps kube's
//! own stack, which tunnels through it (tests/testsuite/control_plane/kube_config.rs holds it against kubectl).

use std::time::Duration;

use hyper_util::{client::legacy::connect::HttpConnector, rt::TokioExecutor};
use kube::client::{Body, ClientBuilder, ConfigExt, DynBody, retry::RetryPolicy};
use tower::{BoxError, ServiceBuilder, ServiceExt, retry::RetryLayer, util::BoxService};

/// The service under a client: the same type as kube's own stack.
pub type Stack = BoxService<http::Request<Body>, http::Response<Box<DynBody>>, BoxError>;

/// The TCP connector under TLS: `TCP_NODELAY` on every connection, and kube's own settings
/// (`https://` addresses allowed, as kube's connector does).
pub fn tcp_connector(connect_timeout: Option<Duration>) -> HttpConnector {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(connect_timeout);
    tcp
}

/// A client builder for `config`, as `ClientBuilder::try_from(config)` makes it but for the socket
/// option (and kube's tracing spans, which this program never collects).
pub fn builder(config: kube::Config) -> Result<ClientBuilder<Stack>, kube::Error> {
    if config.proxy_url.is_some() {
        return ClientBuilder::try_from(config);
    }
    let https =
        config.rustls_https_connector_with_connector(tcp_connector(config.connect_timeout))?;
    let mut timed = hyper_timeout::TimeoutConnector::new(https);
    timed.set_connect_timeout(config.connect_timeout);
    timed.set_read_timeout(config.read_timeout);
    timed.set_write_timeout(config.write_timeout);
    timed.set_reset_reader_on_write(config.reset_reader_on_write);
    let http = hyper_util::client::legacy::Builder::new(TokioExecutor::new()).build(timed);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(http)
        .map_response(|r| {
            r.map(|body| {
                Box::new(http_body_util::BodyExt::map_err(body, BoxError::from)) as Box<DynBody>
            })
        });
    Ok(ClientBuilder::new(
        BoxService::new(service),
        config.default_namespace,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::Service;

    /// The connector's sockets have `TCP_NODELAY` (kube's own have not: this fails with its
    /// `HttpConnector::new()` settings).
    #[tokio::test]
    async fn connections_are_made_without_nagle() {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let accepting = tokio::spawn(async move { listener.accept().await.map(|_| ()) });
        let mut tcp = tcp_connector(Some(Duration::from_secs(5)));
        let uri: http::Uri = format!("https://{addr}/").parse().expect("uri");
        let io = tcp.call(uri).await.expect("connect");
        assert!(io.inner().nodelay().expect("read the option"));
        accepting.await.expect("task").expect("accept");
    }
}
