//! Starting a container: the config Python sends, the plan built from it in the parent, the
//! child side that carries the plan out, and the parent side that waits; `exec` into a running
//! one. What a process executes inside is the user's command or pyc-init (the pyc-init crate),
//! never a copy of a host program of ours.

mod caps;
mod child;
pub mod config;
mod exec;
mod mount_opts;
mod parent;
pub mod plan;
mod relay;
mod run;
mod sealed;
mod syspaths;
pub(crate) mod target;

pub use config::RunConfig;
pub(crate) use exec::is_ns_init;
pub use exec::{container_init, exec_in, ExecConfig};
pub use parent::{exit_status, Outcome, Output, Stdio};
pub use run::{run, start, Started};
