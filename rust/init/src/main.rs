//! pyc-init: the program pyc runs inside containers, always from a sealed memfd copy (see the
//! crate's docs). Not meant to be run by hand.
//!
//!   pyc-init --report-fd N -- COMMAND [ARG...]   the --init reaper as pid 1 (reaper.rs)
//!   pyc-init --enter N                           the entry of `pyc exec` (enter.rs)

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let text: Vec<&str> = args.iter().map(|a| a.to_str().unwrap_or("")).collect();
    match text.as_slice() {
        [_, "--version"] => println!("pyc-init {}", env!("CARGO_PKG_VERSION")),
        [_, "--enter", fd] => match fd.parse() {
            Ok(fd) => pyc_init::enter::main(fd),
            Err(_) => usage(),
        },
        [_, "--report-fd", fd, "--", ..] if args.len() > 4 => {
            let Ok(fd) = fd.parse() else { usage() };
            let argv: Vec<CString> = args[4..].iter().map(|a| cstring(a.clone().into_vec())).collect();
            let env: Vec<CString> = std::env::vars_os()
                .map(|(k, v)| {
                    let mut kv = k.into_vec();
                    kv.push(b'=');
                    kv.extend(v.into_vec());
                    cstring(kv)
                })
                .collect();
            match pyc_init::command::Command::new(argv, env) {
                Ok(command) => pyc_init::reaper::main(fd, &command),
                Err(_) => usage(),
            }
        }
        _ => usage(),
    }
}

fn cstring(bytes: Vec<u8>) -> CString {
    // An argument or variable from execve cannot hold a NUL byte.
    CString::new(bytes).expect("no NUL in an argument")
}

fn usage() -> ! {
    eprintln!("pyc-init: run by pyc inside containers; not meant to be run by hand");
    std::process::exit(2)
}
