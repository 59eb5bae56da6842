//! The Kubernetes object types the probe reads, by scope: any k8s-openapi type that deserializes.

use std::fmt;

use kube::Resource;
use serde::de::DeserializeOwned;

/// A namespaced Kubernetes object type of k8s-openapi, as the probe reads it.
pub trait Namespaced:
    Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + fmt::Debug
{
}
impl<K> Namespaced for K where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + fmt::Debug
{
}

/// A cluster-scoped Kubernetes object type (IngressClass, StorageClass, Namespace).
pub trait ClusterScoped:
    Resource<Scope = k8s_openapi::ClusterResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + fmt::Debug
{
}
impl<K> ClusterScoped for K where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + fmt::Debug
{
}
