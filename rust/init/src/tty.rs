//! `-t`, the side inside the container: a pty made from the container's own /dev/ptmx (so the
//! terminal has a name in there), its master sent to pyc over a socket, its slave made the
//! process's stdio and controlling terminal (allocation-free). pyc-core's `pty.rs` is the side
//! that copies between the master and the user's terminal.

use std::os::fd::RawFd;

use nix::errno::Errno;

/// What the process needs to make its pty: where to send the master, the size to set
/// (rows, cols, xpixel, ypixel).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Inside {
    pub socket: RawFd,
    pub size: Option<[u16; 4]>,
}

/// A pty from the container's /dev/ptmx, its master sent over `inside.socket`; returns the slave.
pub fn open_inside(inside: &Inside) -> Result<RawFd, Errno> {
    let master = Errno::result(unsafe { libc::open(c"/dev/ptmx".as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })?;
    let unlock: libc::c_int = 0;
    Errno::result(unsafe { libc::ioctl(master, libc::TIOCSPTLCK, &unlock) })?;
    // The slave by the master's fd (no path lookup: the name is the container's devpts one).
    let slave = Errno::result(unsafe { libc::ioctl(master, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })?;
    if let Some([ws_row, ws_col, ws_xpixel, ws_ypixel]) = inside.size {
        let ws = libc::winsize { ws_row, ws_col, ws_xpixel, ws_ypixel };
        Errno::result(unsafe { libc::ioctl(slave, libc::TIOCSWINSZ, &ws) })?;
    }
    send_fd(inside.socket, master)?;
    unsafe { libc::close(master) };
    Ok(slave)
}

/// SCM_RIGHTS with a buffer on the stack (nix's sendmsg allocates one).
fn send_fd(socket: RawFd, fd: RawFd) -> Result<(), Errno> {
    #[repr(C, align(8))]
    struct Buf([u8; 64]);
    let mut buf = Buf([0; 64]);
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = buf.0.as_mut_ptr().cast();
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as _;
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
    }
    Errno::result(unsafe { libc::sendmsg(socket, &msg, 0) }).map(drop)
}

/// A new session whose controlling terminal is stdin, the slave.
pub fn make_controlling() -> Result<(), Errno> {
    nix::unistd::setsid()?;
    Errno::result(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) }).map(drop)
}
