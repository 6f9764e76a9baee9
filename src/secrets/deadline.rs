//! How long a `file:` or `cmd:` source may take: its own limit
//! (`CONNCTL_CMD_TIMEOUT`), or what is left of the command's `--timeout`
//! when that is less (`connection test`/`send`, `oauth-profile token`).

use std::time::{Duration, Instant};

/// The end of a command's `--timeout`, for the secrets it reads.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    /// The `--timeout` it comes from (named in the error).
    pub timeout: Duration,
}

impl Deadline {
    /// `timeout` from now.
    pub fn after(timeout: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + timeout,
            timeout,
        }
    }
}

/// The time a source gets, and which limit that is.
#[derive(Debug, Clone, Copy)]
pub(super) struct SourceLimit {
    pub time: Duration,
    /// The command's `--timeout` (true) or the source's own limit.
    pub by_command: bool,
    pub command_timeout: Duration,
}

impl SourceLimit {
    /// The smaller of the source's own limit and what is left of `deadline`.
    pub fn of(deadline: Option<Deadline>) -> SourceLimit {
        let own = crate::limits::CMD_TIMEOUT.from_env();
        match deadline {
            Some(d) => {
                let left = d.at.saturating_duration_since(Instant::now());
                SourceLimit {
                    time: own.min(left),
                    by_command: left < own,
                    command_timeout: d.timeout,
                }
            }
            None => SourceLimit {
                time: own,
                by_command: false,
                command_timeout: Duration::ZERO,
            },
        }
    }

    /// Which limit ran out, in words: "the command's --timeout (1s) ran out"
    /// or "CONNCTL_CMD_TIMEOUT ran out".
    pub fn which(&self) -> String {
        if self.by_command {
            format!(
                "the command's --timeout ({}) ran out",
                super::seconds(self.command_timeout)
            )
        } else {
            format!("{} ran out", crate::limits::CMD_TIMEOUT.name)
        }
    }

    /// What to raise.
    pub fn raise(&self) -> String {
        if self.by_command {
            "raise --timeout (seconds)".to_string()
        } else {
            format!("raise {} (seconds)", crate::limits::CMD_TIMEOUT.name)
        }
    }
}
