//! Starting a container: the config Python sends, the plan built from it in the parent, the
//! child side that carries the plan out, and the parent side that waits.

mod caps;
mod child;
pub mod config;
mod exec;
mod init;
mod mount_opts;
pub mod plan;
mod run;
mod target;

pub use config::RunConfig;
pub use exec::{exec_in, ExecConfig};
pub use run::{exit_status, run, start, Outcome, Output, Started, Stdio};
