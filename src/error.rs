//! Typed errors that map one-to-one onto the exit codes of DESIGN.md §5.

use std::fmt;

/// What went wrong, as far as the exit code is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 1: the check failed (test found a problem, send got a non-2xx, inbound check denied).
    Failed,
    /// 2: bad or missing arguments.
    Usage,
    /// 3: a named record does not exist.
    NotFound,
    /// 4: the store or an input file is invalid, a rule would be broken, a confirmation was declined.
    Invalid,
    /// 5: a secret could not be read.
    Secret,
    /// 6: DNS, connect, MID server, timeout.
    Network,
    /// 7: TLS handshake, certificate verification, client certificate.
    Tls,
    /// 8: 401/403 from the endpoint, 407 from the MID server, OAuth token refused.
    Auth,
    /// 9: `connection test` passed, but a certificate expires within `--warn-days` (RENEW).
    Renew,
    /// 0, and nothing printed: stdout's reader went away (`connctl ... | head`).
    /// The command stops where it is (ripgrep does the same).
    BrokenPipe,
}

impl ErrorKind {
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Failed => 1,
            ErrorKind::Usage => 2,
            ErrorKind::NotFound => 3,
            ErrorKind::Invalid => 4,
            ErrorKind::Secret => 5,
            ErrorKind::Network => 6,
            ErrorKind::Tls => 7,
            ErrorKind::Auth => 8,
            ErrorKind::Renew => 9,
            ErrorKind::BrokenPipe => 0,
        }
    }
}

/// An error an operator can act on: a message, the chain of causes, and an optional hint.
///
/// Messages and causes must never contain secret values; every constructor takes
/// text the caller composed, and `Secret` values print as `(redacted)`.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub causes: Vec<String>,
    pub hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            causes: Vec::new(),
            hint: None,
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }
    pub fn secret(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Secret, message)
    }
    pub fn network(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Network, message)
    }
    pub fn tls(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Tls, message)
    }
    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Auth, message)
    }

    /// `kind` is the record kind as users write it (`connection`, `mid-server`, ...).
    pub fn not_found(kind: &str, name: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            // The name is the user's argument: shown escaped.
            format!("{kind} '{}' does not exist", crate::text::escape(name)),
        )
        .with_hint(format!("run `connctl {kind} list` to see the names"))
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Add one "caused by" line.
    pub fn with_cause(mut self, cause: impl fmt::Display) -> Self {
        self.causes.push(cause.to_string());
        self
    }

    /// Add the whole source chain of a std error as "caused by" lines.
    pub fn with_source(mut self, err: &(dyn std::error::Error + 'static)) -> Self {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = current {
            let text = e.to_string();
            if self.causes.last() != Some(&text) {
                self.causes.push(text);
            }
            current = e.source();
        }
        self
    }

    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }

    /// stdout was closed by its reader: not worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        self.kind == ErrorKind::BrokenPipe
    }
}

impl Error {
    /// The error as stderr shows it: the message, each cause and the hint on
    /// a line of their own, each escaped whole (`text::escape`). Outside text
    /// in any of them (a server's error text, a certificate's name, a store
    /// value or an argument holding a newline or an escape sequence) can
    /// neither drive the terminal nor forge a line; connctl's own parts never
    /// hold a newline.
    pub fn shown(&self) -> String {
        let mut out = crate::text::escape(&self.message);
        for cause in &self.causes {
            out.push_str("\n  caused by: ");
            out.push_str(&crate::text::escape(cause));
        }
        if let Some(hint) = &self.hint {
            out.push_str("\n  hint: ");
            out.push_str(&crate::text::escape(hint));
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for cause in &self.causes {
            write!(f, "\n  caused by: {cause}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::invalid("I/O error").with_source(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_keeps_each_part_on_one_line() {
        let err = Error::auth("token endpoint said: bad\nerror: forged \x1b[2J")
            .with_cause("issuer CN=a\nb")
            .with_hint("check it");
        assert_eq!(
            err.shown(),
            "token endpoint said: bad\\nerror: forged \\x1b[2J\n  caused by: issuer CN=a\\nb\n  hint: check it"
        );
    }
}
