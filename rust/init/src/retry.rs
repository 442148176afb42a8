//! openat2 with RESOLVE_IN_ROOT or RESOLVE_BENEATH answers EAGAIN when a rename or a mount
//! anywhere on the host raced a `..` of its lookup, and asks to be called again. On a busy host
//! (other containers starting, builds renaming files) that is common enough to fail a start or
//! an unpack, so every such call goes through `eagain`. Allocation-free (the clone child uses it).

use nix::errno::Errno;

/// `call` until it answers something else than EAGAIN, up to many times in a row.
pub fn eagain<T>(mut call: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    for _ in 0..1000 {
        match call() {
            Err(Errno::EAGAIN) => continue,
            other => return other,
        }
    }
    call()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_eagain_only() {
        let mut n = 0;
        assert_eq!(
            eagain(|| {
                n += 1;
                if n < 5 {
                    Err(Errno::EAGAIN)
                } else {
                    Ok(n)
                }
            }),
            Ok(5)
        );
        let mut m = 0;
        assert_eq!(
            eagain(|| -> Result<(), Errno> {
                m += 1;
                Err(Errno::ENOENT)
            }),
            Err(Errno::ENOENT)
        );
        assert_eq!(m, 1);
        assert_eq!(eagain(|| -> Result<(), Errno> { Err(Errno::EAGAIN) }), Err(Errno::EAGAIN));
    }
}
