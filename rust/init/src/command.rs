//! The command a container process executes: where to look for it, and the execve itself.

use std::ffi::{CStr, CString};

use nix::errno::Errno;

use crate::report::{Failure, Step};

/// docker's default `$PATH` for a container whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Command {
    /// The command as the user wrote it, for messages.
    pub name: String,
    /// Where to look for it: the name itself if it has a `/`, else each `$PATH` entry.
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
}

impl Command {
    /// From the arguments and environment as the OCI process has them; `$PATH` from `env`.
    pub fn new(argv: Vec<CString>, env: Vec<CString>) -> Result<Command, String> {
        let first = argv.first().ok_or("no command given and the image has none")?;
        let name = first.to_string_lossy().into_owned();
        let path = env.iter().find_map(|e| e.to_bytes().strip_prefix(b"PATH=")).map(|p| String::from_utf8_lossy(p).into_owned());
        let candidates = candidates(first, path.as_deref().unwrap_or(DEFAULT_PATH));
        Ok(Command { name, candidates, argv, env })
    }
}

/// Where execve is tried for `name`, in order, as a shell's PATH search would.
pub fn candidates(name: &CStr, path: &str) -> Vec<CString> {
    let bytes = name.to_bytes();
    if bytes.contains(&b'/') {
        return vec![name.to_owned()];
    }
    if bytes.is_empty() {
        return vec![];
    }
    path.split(':')
        .filter(|d| !d.is_empty())
        .filter_map(|d| {
            let mut full = d.trim_end_matches('/').as_bytes().to_vec();
            full.push(b'/');
            full.extend_from_slice(bytes);
            CString::new(full).ok()
        })
        .collect()
}

/// Execute the command (allocation-free). Returns only on failure: not found (127), not
/// executable (126), or another error.
pub fn exec(c: &Command) -> Failure {
    // Pointer arrays on the stack: up to 1024 arguments and 1024 variables, no allocation.
    const MAX: usize = 1024;
    if c.argv.len() >= MAX || c.env.len() >= MAX {
        return Failure { step: Step::Exec, index: 0, errno: Errno::E2BIG as i32 };
    }
    let mut argv = [std::ptr::null::<libc::c_char>(); MAX];
    let mut envp = [std::ptr::null::<libc::c_char>(); MAX];
    for (i, a) in c.argv.iter().enumerate() {
        argv[i] = a.as_ptr();
    }
    for (i, v) in c.env.iter().enumerate() {
        envp[i] = v.as_ptr();
    }
    let mut denied = false;
    let mut other: Option<Errno> = None;
    for path in &c.candidates {
        unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        match Errno::last() {
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES | Errno::EISDIR | Errno::EPERM => denied = true,
            err => {
                other.get_or_insert(err);
            }
        }
    }
    match other {
        Some(Errno::ENOEXEC) => Failure { step: Step::NotExecutable, index: 0, errno: Errno::ENOEXEC as i32 },
        Some(err) => Failure { step: Step::Exec, index: 0, errno: err as i32 },
        None => Failure { step: if denied { Step::NotExecutable } else { Step::NotFound }, index: 0, errno: 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_search_as_a_shell_does() {
        assert_eq!(candidates(c"sh", "/usr/bin:/bin/:"), vec![c"/usr/bin/sh".to_owned(), c"/bin/sh".to_owned()]);
        assert_eq!(candidates(c"./x", "/bin"), vec![c"./x".to_owned()]);
        assert!(candidates(c"", "/bin").is_empty());
        let c = Command::new(vec![c"ls".to_owned()], vec![c"A=1".to_owned()]).unwrap();
        assert_eq!(c.candidates.len(), DEFAULT_PATH.split(':').count());
        assert!(Command::new(vec![], vec![]).is_err());
    }
}
