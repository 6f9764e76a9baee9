//! How much connctl reads from a server it does not control. Each limit is
//! named in the error that reports it; docs/design.md lists them ("Limits").

/// A bound on what is read from a peer, with the name its error gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub name: &'static str,
    pub bytes: usize,
}

impl Limit {
    /// "the response body limit (1 MiB)".
    pub fn describe(&self) -> String {
        format!("the {} ({})", self.name, size_text(self.bytes))
    }
}

/// A body read whole before it is used (a token endpoint's answer, the
/// default of `transport::execute`): more is a failure (exit 6).
pub const RESPONSE_BODY: Limit = Limit {
    name: "response body limit",
    bytes: 1024 * 1024,
};

/// An issuer's discovery metadata (`/.well-known/openid-configuration`).
pub const DISCOVERY_METADATA: Limit = Limit {
    name: "discovery metadata limit",
    bytes: 256 * 1024,
};

/// `connection test` reads at most this much of the endpoint's body and
/// leaves the rest unread: a large answer is no failure of a test.
pub const TEST_BODY: Limit = Limit {
    name: "test body read limit",
    bytes: 64 * 1024,
};

/// The status line and headers of an answer (HTTP/1.1 buffer, HTTP/2 header list).
pub const RESPONSE_HEAD: Limit = Limit {
    name: "response head limit",
    bytes: 64 * 1024,
};

/// A proxy's (MID server's) answer to CONNECT: status line and headers.
pub const PROXY_ANSWER: Limit = Limit {
    name: "proxy answer limit",
    bytes: 16 * 1024,
};

/// How much of a 400/403/495/496 body `send` reads before streaming, to tell
/// a web server's client-certificate page (nginx) from an ordinary refusal.
pub const CLIENT_CERT_PAGE: Limit = Limit {
    name: "client-certificate page check",
    bytes: 8 * 1024,
};

/// "64 KiB", "1 MiB", "512 bytes".
pub fn size_text(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size_text(64 * 1024), "64 KiB");
        assert_eq!(size_text(1024 * 1024), "1 MiB");
        assert_eq!(size_text(1500), "1500 bytes");
        assert_eq!(RESPONSE_BODY.describe(), "the response body limit (1 MiB)");
    }
}
