//! `-t`: a pseudo-terminal between the user's terminal and the container's process.
//!
//! The pty is made inside the container, from its own devpts (its /dev/ptmx), as runc and
//! conmon do: a pty of the host's devpts would have no name inside (`tty` says "not a tty",
//! and programs that look their terminal up fail). The child side opens it, keeps the slave as
//! stdio and controlling terminal (so its line discipline turns a typed Ctrl-C into SIGINT for
//! the foreground process group inside), and passes the master to us over a socket. We copy
//! the user's input to the master and its output to the user in one thread, the user's
//! terminal in raw mode meanwhile (so that Ctrl-C and every other key go through as bytes),
//! restored however the run ends. The window size is set before the command starts and copied
//! to the master on each SIGWINCH (the kernel then signals the foreground group inside).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::thread::JoinHandle;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

use crate::error::{Error, Result};

pub type Winsize = libc::winsize;

pub use pyc_init::tty::Inside;

pub struct Terminal {
    /// Our end of the socket the master comes through, and the child's (closed in `start`).
    socket: OwnedFd,
    child_socket: Option<OwnedFd>,
    size: Option<Winsize>,
    master: Option<OwnedFd>,
    /// The user's side: where input comes from (None without `-i`) and output goes.
    input: Option<RawFd>,
    output: RawFd,
    /// The input terminal's settings before raw mode, restored on drop.
    saved: Option<Termios>,
    /// Written to (closed) to tell the copier to drain what is left and stop.
    stop: Option<OwnedFd>,
    copier: Option<JoinHandle<()>>,
}

fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    unsafe { BorrowedFd::borrow_raw(fd) }
}

fn window_size(fd: RawFd) -> Option<Winsize> {
    let mut ws: Winsize = unsafe { std::mem::zeroed() };
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0).then_some(ws)
}

impl Terminal {
    /// Ready to receive a pty made inside, sized as the user's terminal (the output's, else
    /// the input's) if there is one.
    pub fn open(input: Option<RawFd>, output: RawFd) -> Result<Terminal> {
        let size = window_size(output).or_else(|| input.and_then(window_size));
        let (socket, child) = socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).map_err(|e| Error::sys("socketpair", e))?;
        Ok(Terminal { socket, child_socket: Some(child), size, master: None, input, output, saved: None, stop: None, copier: None })
    }

    /// For the child side; valid until `start`.
    pub fn inside(&self) -> Inside {
        let size = self.size.map(|w| [w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel]);
        Inside { socket: self.child_socket.as_ref().map_or(-1, |s| s.as_raw_fd()), size }
    }

    /// Our end of the socket, for the child to close.
    pub fn socket_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// The command has started: take the master it sent, make the user's terminal raw, and
    /// start copying.
    pub fn start(&mut self) -> Result<()> {
        self.child_socket = None;
        let master = receive_fd(&self.socket)?;
        if self.output < 0 {
            // Held, not copied (pyc-monitor with -d -t): the caller takes it with take_master.
            self.master = Some(master);
            return Ok(());
        }
        if let Some(fd) = self.input {
            if let Ok(saved) = tcgetattr(borrow(fd)) {
                let mut raw = saved.clone();
                cfmakeraw(&mut raw);
                tcsetattr(borrow(fd), SetArg::TCSANOW, &raw).map_err(|e| Error::sys("set the terminal to raw mode", e))?;
                self.saved = Some(saved);
            }
        }
        let (stop_r, stop_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::sys("pipe", e))?;
        let copy_master = master.try_clone().map_err(|e| Error::io("dup", "pty master", e))?;
        self.master = Some(master);
        let (input, output) = (self.input, self.output);
        self.stop = Some(stop_w);
        let copier = std::thread::Builder::new().name("pyc-tty".into()).spawn(move || copy(copy_master, input, output, stop_r));
        self.copier = Some(copier.map_err(|e| Error::io("spawn", "tty copier", e))?);
        Ok(())
    }

    /// The master of a terminal opened with no output (-1), for its holder to serve.
    pub fn take_master(&mut self) -> Option<OwnedFd> {
        self.master.take()
    }

    /// The user's window changed (SIGWINCH): pass its size on.
    pub fn resize(&self) {
        if let (Some(ws), Some(m)) = (window_size(self.output).or_else(|| self.input.and_then(window_size)), &self.master) {
            unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        }
    }
}

impl Drop for Terminal {
    /// Drain the output still in the pty, stop copying, give the user's terminal back.
    fn drop(&mut self) {
        self.stop = None;
        if let Some(t) = self.copier.take() {
            let _ = t.join();
        }
        if let (Some(fd), Some(saved)) = (self.input, &self.saved) {
            let _ = tcsetattr(borrow(fd), SetArg::TCSADRAIN, saved);
        }
    }
}

fn write_all(fd: RawFd, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        match nix::unistd::write(borrow(fd), buf) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR | Errno::EAGAIN) => continue,
            Err(_) => return false,
        }
    }
    true
}

/// The copier thread: input to master, master to output, until the master ends (EIO: nothing
/// inside holds the slave any more) or we are told to stop (then what is buffered is drained).
fn copy(master: OwnedFd, mut input: Option<RawFd>, output: RawFd, stop: OwnedFd) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut stopping = false;
    loop {
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if !stopping {
            fds.push(PollFd::new(stop.as_fd(), PollFlags::POLLIN));
            if let Some(fd) = input {
                fds.push(PollFd::new(borrow(fd), PollFlags::POLLIN));
            }
        }
        // Once stopping, only what is already in the pty is read: do not wait for more.
        let timeout = if stopping { PollTimeout::ZERO } else { PollTimeout::NONE };
        match poll(&mut fds, timeout) {
            Ok(0) => return,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
        let ready: Vec<bool> = fds.iter().map(|p| p.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        if ready[0] {
            match nix::unistd::read(&master, &mut buf) {
                Ok(n) if n > 0 => {
                    if !write_all(output, &buf[..n]) {
                        return;
                    }
                }
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                _ => return, // EIO: the last slave closed
            }
        }
        if stopping {
            continue;
        }
        if ready[1] {
            stopping = true;
        }
        if let (Some(fd), Some(true)) = (input, ready.get(2).copied()) {
            match nix::unistd::read(borrow(fd), &mut buf) {
                Ok(0) | Err(Errno::EBADF | Errno::EIO) => input = None,
                Ok(n) => {
                    if !write_all(master.as_raw_fd(), &buf[..n]) {
                        input = None;
                    }
                }
                Err(_) => {}
            }
        }
    }
}

fn receive_fd(socket: &OwnedFd) -> Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let msg = nix::sys::socket::recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(|e| Error::sys("receive the terminal", e))?;
    for c in msg.cmsgs().map_err(|e| Error::sys("receive the terminal", e))? {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::Start("the container sent no terminal".into()))
}
