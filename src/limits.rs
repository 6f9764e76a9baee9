//! Durations and sizes connctl accepts from flags and environment variables:
//! one parser with a range per setting, so no value panics or silently
//! becomes something else (docs/design.md, "Limits").

use std::time::Duration;

/// A setting measured in seconds and the values it accepts.
#[derive(Debug, Clone, Copy)]
pub struct Seconds {
    /// How users write the setting: `--timeout`, `CONNCTL_CMD_TIMEOUT`.
    pub name: &'static str,
    /// Whether 0 is allowed (it means "do not wait" where it is).
    pub zero_allowed: bool,
    /// The largest value, in seconds.
    pub max: u64,
    pub default: Duration,
}

/// `--timeout` of `connection test` / `send` and `oauth-profile token`.
pub const TIMEOUT: Seconds = Seconds {
    name: "--timeout",
    zero_allowed: false,
    max: 86_400,
    default: Duration::from_secs(30),
};
/// `inbound serve --request-timeout`.
pub const REQUEST_TIMEOUT: Seconds = Seconds {
    name: "--request-timeout",
    zero_allowed: false,
    max: 3_600,
    default: Duration::from_secs(30),
};
/// `--lock-timeout` / `CONNCTL_LOCK_TIMEOUT`: how long a writer waits for
/// another process's store lock (0: do not wait).
pub const LOCK_TIMEOUT: Seconds = Seconds {
    name: "--lock-timeout",
    zero_allowed: true,
    max: 86_400,
    default: Duration::from_secs(30),
};
/// `CONNCTL_KEYRING_TIMEOUT`.
pub const KEYRING_TIMEOUT: Seconds = Seconds {
    name: "CONNCTL_KEYRING_TIMEOUT",
    zero_allowed: false,
    max: 3_600,
    default: Duration::from_secs(5),
};
/// `CONNCTL_CMD_TIMEOUT`.
pub const CMD_TIMEOUT: Seconds = Seconds {
    name: "CONNCTL_CMD_TIMEOUT",
    zero_allowed: false,
    max: 3_600,
    default: Duration::from_secs(30),
};

/// `CONNCTL_VAULT_TIMEOUT`: each request to Vault / OpenBao.
pub const VAULT_TIMEOUT: Seconds = Seconds {
    name: "CONNCTL_VAULT_TIMEOUT",
    zero_allowed: false,
    max: 3_600,
    default: Duration::from_secs(30),
};

/// Every duration read from an environment variable, for the warning pass
/// at start-up ([`env_warnings`]).
pub const ENV_SECONDS: [Seconds; 3] = [KEYRING_TIMEOUT, CMD_TIMEOUT, VAULT_TIMEOUT];

/// The most bytes a secret source (`file:`, `cmd:`, `--password-stdin`,
/// `--password-file`, `--password-cmd`) may yield: no password, key or token
/// is this long, and an endless source (`yes`, `/dev/zero`) stops here.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

impl Seconds {
    /// Parses a number of seconds (`30`, `0.5`) within this setting's range.
    pub fn parse(&self, text: &str) -> Result<Duration, String> {
        let range = self.range();
        let value: f64 = text
            .trim()
            .parse()
            .map_err(|_| format!("'{text}' is not a number of seconds (give {range})"))?;
        let low_ok = if self.zero_allowed {
            value >= 0.0
        } else {
            value > 0.0
        };
        if !value.is_finite() || !low_ok || value > self.max as f64 {
            return Err(format!("{text} seconds is out of range (give {range})"));
        }
        Ok(Duration::from_secs_f64(value))
    }

    /// The range in words: "a number of seconds above 0, at most 86400".
    pub fn range(&self) -> String {
        let low = if self.zero_allowed {
            "from 0"
        } else {
            "above 0"
        };
        format!("a number of seconds {low}, at most {}", self.max)
    }

    /// The value of this setting's environment variable, or the default when
    /// it is unset or invalid ([`env_warnings`] reports the invalid ones).
    pub fn from_env(&self) -> Duration {
        match std::env::var(self.name) {
            Ok(text) => self.parse(&text).unwrap_or(self.default),
            Err(_) => self.default,
        }
    }
}

/// One warning per environment variable that holds an invalid duration:
/// such a variable is ignored (the default applies), never a panic.
pub fn env_warnings() -> Vec<String> {
    ENV_SECONDS
        .iter()
        .filter_map(|setting| {
            let text = std::env::var_os(setting.name)?;
            let text = text.to_string_lossy();
            setting.parse(&text).err().map(|problem| {
                format!(
                    "{}: {problem}; using the default, {}",
                    setting.name,
                    format_seconds(setting.default)
                )
            })
        })
        .collect()
}

/// `5s`, `0.5s`.
pub fn format_seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s}s")
    }
}

/// clap value parsers, so a bad flag is a usage error (exit 2) naming the range.
pub fn timeout_arg(text: &str) -> Result<Duration, String> {
    TIMEOUT.parse(text)
}

pub fn request_timeout_arg(text: &str) -> Result<Duration, String> {
    REQUEST_TIMEOUT.parse(text)
}

pub fn lock_timeout_arg(text: &str) -> Result<Duration, String> {
    LOCK_TIMEOUT.parse(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_within_range_only() {
        assert_eq!(TIMEOUT.parse("2.5"), Ok(Duration::from_millis(2500)));
        for bad in ["0", "-1", "1e30", "1e10", "abc", "NaN", "inf", ""] {
            assert!(TIMEOUT.parse(bad).is_err(), "{bad}");
        }
        assert_eq!(LOCK_TIMEOUT.parse("0"), Ok(Duration::ZERO));
        assert!(TIMEOUT.parse("1e10").unwrap_err().contains("at most 86400"));
    }
}
