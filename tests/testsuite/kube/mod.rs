//! The kube config as kubectl reads it (kubectl the oracle), and the one answer only the in-test API
//! server gives: silence. Everything else of the kube path is on the real control plane
//! (`control_plane/`).

use crate::support;

use std::{path::Path, time::Duration};

use serde_json::Value;
use support::{kube::Cluster, run_once};

mod in_test;
mod kubeconfig;
