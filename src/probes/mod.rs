//! Shared services that checks use to look at the world. Each probe opens its connection once per run.
pub mod conninfo;
pub mod error_text;
pub mod forward;
pub mod forward_stream;
pub mod graphql;
pub mod http;
pub mod http_exchange;
pub mod http_failure;
pub mod kube;
pub mod kube_client;
pub mod kube_error;
pub mod kube_options;
pub mod kube_tape;
pub mod kube_types;
pub mod kubeconfig;
pub mod pg_auth;
pub mod pg_connect;
pub mod pg_env;
pub mod pg_failure;
pub mod pg_hosts;
pub mod pg_row;
pub mod pg_target;
pub mod pg_tls;
pub mod postgres;
pub mod prefect_config;
pub mod tape;
pub mod tls;

/// An answer shared by every asker: `work` runs as a task of its own, spawned when first awaited
/// (inside the runtime), so an asker dropped mid-way neither cuts it short nor makes the next one
/// start it again. `stopped` says what a task that ended without an answer (a panic) gives.
pub(crate) fn shared_task<T: Clone + Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
    stopped: impl FnOnce(String) -> T + Send + 'static,
) -> futures::future::Shared<futures::future::BoxFuture<'static, T>> {
    use futures::FutureExt as _;
    let fut: futures::future::BoxFuture<'static, T> = Box::pin(async move {
        match tokio::spawn(work).await {
            Ok(v) => v,
            Err(e) => stopped(e.to_string()),
        }
    });
    fut.shared()
}

/// An answer already known, in the same shape as [`shared_task`]'s.
pub(crate) fn shared_ready<T: Clone + Send + 'static>(
    v: T,
) -> futures::future::Shared<futures::future::BoxFuture<'static, T>> {
    use futures::FutureExt as _;
    let fut: futures::future::BoxFuture<'static, T> = Box::pin(async move { v });
    fut.shared()
}
