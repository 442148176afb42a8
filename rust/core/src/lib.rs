//! pyc's container primitives. This crate never names Python: the `pyc_core` module is a thin
//! binding over it (rust/python), so everything here is tested with plain `cargo test`.

pub mod blobcopy;
pub mod bundle;
pub mod cgroup;
pub mod container;
pub mod error;
pub mod journal;
pub mod layer;
pub mod overlay;
pub mod pty;
pub mod remove;
pub mod sys;

pub use error::{Error, Result};
