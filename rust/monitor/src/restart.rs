//! docker's restart policies and back-off: the delay starts at 100 ms and doubles at each
//! restart, up to a minute; a run that lasted 10 s or more starts the count of delays again.

use std::time::Duration;

use crate::config::Restart;

const FIRST: Duration = Duration::from_millis(100);
const MOST: Duration = Duration::from_secs(60);
const STABLE: Duration = Duration::from_secs(10);

pub struct Backoff {
    delay: Duration,
}

impl Backoff {
    pub fn new() -> Self {
        Backoff { delay: FIRST }
    }

    /// The wait before the next start, given how long the last run lasted.
    pub fn next(&mut self, ran: Duration) -> Duration {
        if ran >= STABLE {
            self.delay = FIRST;
        }
        let d = self.delay;
        self.delay = (self.delay * 2).min(MOST);
        d
    }
}

/// Whether the container starts again after exiting with `code`, having restarted `count`
/// times; never after `pyc stop` (`stopped`).
pub fn should_restart(policy: &Restart, code: i32, count: u32, stopped: bool) -> bool {
    if stopped {
        return false;
    }
    match policy.policy.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => code != 0 && (policy.max == 0 || count < policy.max),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(p: &str, max: u32) -> Restart {
        Restart { policy: p.into(), max }
    }

    #[test]
    fn policies() {
        assert!(!should_restart(&policy("no", 0), 1, 0, false));
        assert!(should_restart(&policy("always", 0), 0, 5, false));
        assert!(!should_restart(&policy("always", 0), 0, 5, true));
        assert!(should_restart(&policy("on-failure", 2), 3, 1, false));
        assert!(!should_restart(&policy("on-failure", 2), 3, 2, false));
        assert!(!should_restart(&policy("on-failure", 0), 0, 0, false));
    }

    #[test]
    fn backoff_doubles_and_resets() {
        let mut b = Backoff::new();
        let short = Duration::from_millis(1);
        assert_eq!(b.next(short), FIRST);
        assert_eq!(b.next(short), FIRST * 2);
        assert_eq!(b.next(Duration::from_secs(11)), FIRST);
    }
}
