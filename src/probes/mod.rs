//! Shared services that checks use to look at the world. Each probe opens its connection once per run.
pub mod conninfo;
pub mod forward;
pub mod graphql;
pub mod http;
pub mod http_failure;
pub mod kube;
pub mod kube_tape;
pub mod kubeconfig;
pub mod pg_row;
pub mod pg_target;
pub mod pg_tls;
pub mod postgres;
pub mod prefect_config;
pub mod tape;
pub mod tls;
