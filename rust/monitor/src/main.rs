//! pyc-monitor: holds one detached container, as conmon does for podman. `pyc` starts it with
//! the container's directory and the write end of a pipe; it leaves pyc's session (double fork,
//! setsid), starts the container, says "ok <pid>" or "err <exit code> <message>" on the pipe,
//! then logs the container's output, records its exit in state.msgpack and its events (start,
//! oom, die) in the events journal, restarts it per policy, and exits. The container's process dies with it (PDEATHSIG), so no container outlives it
//! unnoticed.

mod attach;
mod clock;
mod config;
mod logfile;
mod restart;
mod slim;
mod state;
mod stdio;

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, setsid, ForkResult, Pid};
use pyc_core::container::{exit_status, start, Started};
use pyc_core::journal::ContainerActor;
use pyc_core::Error;

use clock::now_rfc3339;
use config::MonitorConfig;
use logfile::LogFile;
use state::{own_start_time, State, StateFile};
use stdio::{container_stdio, Outputs, Stdout};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "--version") {
        println!("pyc-monitor {}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let (Some(dir), Some(fd)) = (args.get(1), args.get(2).and_then(|s| s.parse::<i32>().ok())) else {
        eprintln!("usage: pyc-monitor CONTAINER_DIR STATUS_FD");
        std::process::exit(2);
    };
    let report = unsafe { OwnedFd::from_raw_fd(fd) };
    daemonize();
    let dir = PathBuf::from(dir);
    let code = monitor(&dir, report);
    std::process::exit(code);
}

/// Leave the caller: the first child starts a session and forks the monitor proper, so it is
/// nobody's child but init's (or a subreaper's) and has no terminal to lose.
fn daemonize() {
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => unsafe { libc::_exit(0) },
        Ok(ForkResult::Child) => {}
        Err(e) => fail_early(e),
    }
    let _ = setsid();
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => unsafe { libc::_exit(0) },
        Ok(ForkResult::Child) => {}
        Err(e) => fail_early(e),
    }
    let _ = std::env::set_current_dir("/");
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        for target in 0..3 {
            unsafe { libc::dup2(null.as_raw_fd(), target) };
        }
    }
    // Rust ignores SIGPIPE, and an ignored signal stays ignored across exec: the container
    // would inherit it. A handler is reset by exec, and here turns SIGPIPE into EPIPE.
    extern "C" fn nothing(_: libc::c_int) {}
    unsafe { libc::signal(libc::SIGPIPE, nothing as *const () as libc::sighandler_t) };
}

fn fail_early(e: Errno) -> ! {
    eprintln!("pyc-monitor: fork: {e}");
    std::process::exit(1)
}

fn say(report: &mut Option<OwnedFd>, message: &str) {
    if let Some(fd) = report.take() {
        let _ = nix::unistd::write(&fd, message.as_bytes());
    }
}

fn monitor(dir: &Path, report: OwnedFd) -> i32 {
    let mut report = Some(report);
    let mut cfg = match std::fs::read(dir.join("monitor.msgpack")).map_err(|e| e.to_string()).and_then(|b| MonitorConfig::from_msgpack(&b)) {
        Ok(c) => c,
        Err(e) => {
            say(&mut report, &format!("err 125 {e}\n"));
            return 1;
        }
    };
    let mut log = match LogFile::open(&dir.join("ctr.log"), cfg.log.clone()) {
        Ok(l) => l,
        Err(e) => {
            say(&mut report, &format!("err 125 open log {}: {e}\n", dir.join("ctr.log").display()));
            return 1;
        }
    };
    let states = StateFile::new(dir);
    let mut st = State { monitor_pid: std::process::id() as i32, monitor_start: own_start_time(), ..Default::default() };
    let mut backoff = restart::Backoff::new();
    loop {
        let began = Instant::now();
        // `pyc rename` may have renamed the container since: its events go by the new name.
        if let Some(actor) = current_actor(dir) {
            cfg.run.events = Some(actor);
        }
        let mut started = match start(&cfg.run, container_stdio(cfg.run.spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false)), None) {
            Ok(s) => s,
            Err(e) => {
                let code = e.exit_code();
                st = State { status: "exited", pid: 0, exit_code: code, finished_at: now_rfc3339(), error: e.to_string(), ..st };
                if report.is_some() {
                    say(&mut report, &format!("err {code} {e}\n"));
                } else {
                    states.write(&st);
                }
                break;
            }
        };
        st = State { status: "running", pid: started.pid, started_at: now_rfc3339(), finished_at: String::new(), error: String::new(), ..st };
        states.write(&st);
        // The attach socket is there before `pyc start` returns, for `start -a` to connect.
        let outputs = match started.term.as_mut().and_then(|t| t.take_master()) {
            Some(m) => Stdout::Tty(attach::Session::new(dir, m)),
            None => Stdout::Pipes(Outputs::new(std::mem::take(&mut started.captures))),
        };
        say(&mut report, &format!("ok {}\n", started.pid));
        slim::drop_code_pages();
        let (code, oom) = hold(started, outputs, &mut log);
        if let Some(actor) = current_actor(dir).or_else(|| cfg.run.events.clone()) {
            let _ = actor.ended(code, oom); // a record, not a condition: a full disk stops nothing
        }
        st = State { status: "exited", exit_code: code, oom_killed: oom, finished_at: now_rfc3339(), ..st };
        let stopped = dir.join("stopping").exists();
        if !restart::should_restart(&cfg.restart, code, st.restart_count, stopped) {
            states.write(&st);
            break;
        }
        st.status = "restarting";
        states.write(&st);
        if !sleep_unless_stopped(dir, backoff.next(began.elapsed())) {
            st.status = "exited";
            states.write(&st);
            break;
        }
        st.restart_count += 1;
    }
    if let Some((program, args)) = cfg.on_end.split_first() {
        // Its own process, not an exec of this one: `pyc rm` waits for the monitor to be gone.
        let _ = std::process::Command::new(program).args(args).spawn();
    }
    0
}

/// Where the container's events go and the name they give it, as monitor.msgpack says now.
fn current_actor(dir: &Path) -> Option<ContainerActor> {
    let bytes = std::fs::read(dir.join("monitor.msgpack")).ok()?;
    MonitorConfig::from_msgpack(&bytes).ok()?.run.events
}

/// The back-off before a restart, cut short by `pyc stop` (its `stopping` mark), which then
/// need not wait out a delay of up to a minute. Whether the whole delay passed.
fn sleep_unless_stopped(dir: &Path, delay: std::time::Duration) -> bool {
    let end = Instant::now() + delay;
    let step = std::time::Duration::from_millis(50);
    while Instant::now() < end {
        if dir.join("stopping").exists() {
            return false;
        }
        std::thread::sleep(step.min(end.saturating_duration_since(Instant::now())));
    }
    !dir.join("stopping").exists()
}

/// Log the container's output until it ends; its exit code and whether memory ran out.
fn hold(started: Started, mut outputs: Stdout, log: &mut LogFile) -> (i32, bool) {
    let child = Pid::from_raw(started.pid);
    let mut code: Option<i32> = None;
    while code.is_none() || !outputs.is_done() {
        let mut pfds: Vec<PollFd> = Vec::new();
        if code.is_none() {
            pfds.push(PollFd::new(started.pidfd.as_fd(), PollFlags::POLLIN));
        }
        let first_out = pfds.len();
        let fds = outputs.fds();
        pfds.extend(fds.iter().map(|fd| PollFd::new(*fd, PollFlags::POLLIN)));
        match poll(&mut pfds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
        let ready: Vec<bool> = pfds.iter().map(|p| p.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(pfds);
        drop(fds);
        if code.is_none() && ready[0] {
            code = Some(match waitpid(child, None).map_err(|e| Error::sys("wait", e)).and_then(exit_status) {
                Ok((status, _)) => status,
                Err(_) => 137,
            });
        }
        outputs.pump(&ready[first_out..], log);
    }
    let oom = started.finish().unwrap_or(false);
    (code.unwrap_or(137), oom)
}
