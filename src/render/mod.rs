//! Renderers turn a [`Report`](crate::report::Report) into output. They know nothing about checks.
pub mod fix;
pub mod fleet;
pub mod json;
pub mod junit;
pub mod prometheus;
pub mod sarif;
pub mod text;
