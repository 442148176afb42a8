//! What enters a container. Two users:
//!
//! - pyc-core's clone child (the container's pid 1 before it execs), which runs in a copy of the
//!   caller's memory (a Python interpreter, or pyc-monitor): the functions it calls from here
//!   allocate nothing and take no lock (see pyc-core's `container/child.rs`).
//! - `pyc-init`, the small static program this crate also builds. pyc never lets a copy of one
//!   of its own host programs be seen inside a container: a process of the container could open
//!   it through `/proc/<pid>/exe` (and later write the host binary, CVE-2019-5736) or reach the
//!   host files it holds open through `/proc/<pid>/fd`. So what is seen in there runs pyc-init,
//!   executed from a sealed memfd copy (pyc-core's `container/sealed.rs`): as pid 1 under
//!   `--init` (`reaper.rs`), and as the process that enters a running container for `pyc exec`
//!   (`enter.rs`).

pub mod command;
pub mod enter;
pub mod fds;
pub mod process;
pub mod reaper;
pub mod report;
pub mod retry;
pub mod seccomp;
pub mod tty;
pub mod user;
