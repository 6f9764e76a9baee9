//! Forward proxies: the MID server of a connection, or HTTPS_PROXY/NO_PROXY as curl reads them.

use std::net::IpAddr;

use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::secret::Secret;

/// A forward proxy to go through, with its credentials.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// How to name it to an operator: "MID server dmz-mid", "proxy from HTTPS_PROXY".
    pub label: String,
    /// A MID server's failures are MID failures; an environment proxy's are network failures.
    pub is_mid: bool,
}

impl Proxy {
    /// Parses a proxy URL (`http://host:port`, scheme optional as curl allows).
    pub fn parse(url: &str, label: String, is_mid: bool) -> Result<Proxy> {
        // A proxy URL may carry a password: never repeat it in a message.
        let shown = crate::model::without_credentials(url);
        let url_text = url;
        let url = shown.as_str();
        let with_scheme = if url_text.contains("://") {
            url_text.to_string()
        } else {
            format!("http://{url_text}")
        };
        let parsed = url::Url::parse(&with_scheme).map_err(|e| {
            Error::invalid(format!("the {label} URL '{url}' is invalid")).with_cause(e)
        })?;
        if parsed.scheme() != "http" {
            return Err(Error::invalid(format!(
                "the {label} URL '{url}' must be http:// (a TLS connection to the proxy itself is not supported)"
            )));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| Error::invalid(format!("the {label} URL '{url}' has no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let (user, password) = if parsed.username().is_empty() {
            (None, None)
        } else {
            let decode = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            (
                Some(decode(parsed.username())),
                parsed.password().map(|p| Secret::new(decode(p))),
            )
        };
        Ok(Proxy {
            host,
            // curl assumes 1080 for a proxy without a port; a MID server URL follows its scheme.
            port: if is_mid {
                parsed.port_or_known_default().unwrap_or(80)
            } else {
                parsed.port().unwrap_or(1080)
            },
            user,
            password,
            label,
            is_mid,
        })
    }

    /// The `Proxy-Authorization` value, when the proxy has credentials.
    pub fn authorization(&self) -> Option<String> {
        let user = self.user.as_deref()?;
        let password = self.password.as_ref().map(|p| p.expose()).unwrap_or("");
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Some(format!("Basic {token}"))
    }
}

/// The proxy-related environment, read once: `https_proxy`, `HTTPS_PROXY`, `http_proxy`,
/// `all_proxy`/`ALL_PROXY`, `no_proxy`/`NO_PROXY`. Like curl, uppercase `HTTP_PROXY` is ignored.
#[derive(Debug, Clone, Default)]
pub struct ProxyEnv {
    pub https: Option<(String, String)>,
    pub http: Option<(String, String)>,
    pub all: Option<(String, String)>,
    pub no_proxy: Vec<String>,
}

impl ProxyEnv {
    pub fn from_env() -> Self {
        let first = |names: &[&str]| {
            names.iter().find_map(|n| {
                std::env::var(n)
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (n.to_string(), v))
            })
        };
        let no_proxy = first(&["no_proxy", "NO_PROXY"])
            .map(|(_, v)| {
                v.split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        ProxyEnv {
            https: first(&["https_proxy", "HTTPS_PROXY"]),
            http: first(&["http_proxy"]),
            all: first(&["all_proxy", "ALL_PROXY"]),
            no_proxy,
        }
    }

    /// The proxy for a URL, or none when no variable applies or NO_PROXY excludes the host.
    pub fn for_url(&self, scheme: &str, host: &str, port: u16) -> Result<Option<Proxy>> {
        let chosen = match scheme {
            "https" => self.https.as_ref().or(self.all.as_ref()),
            _ => self.http.as_ref().or(self.all.as_ref()),
        };
        let Some((var, url)) = chosen else {
            return Ok(None);
        };
        if self.excludes(host, port) {
            return Ok(None);
        }
        Proxy::parse(url, format!("proxy from {var}"), false).map(Some)
    }

    fn excludes(&self, host: &str, port: u16) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.no_proxy.iter().any(|entry| {
            if entry == "*" {
                return true;
            }
            let (pattern, entry_port) = split_port(entry);
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            if let Some((net, bits)) = pattern.split_once('/')
                && let (Ok(net), Ok(bits), Ok(addr)) = (
                    net.parse::<IpAddr>(),
                    bits.parse::<u32>(),
                    host.parse::<IpAddr>(),
                )
            {
                return in_cidr(addr, net, bits);
            }
            let pattern = pattern.trim_start_matches("*.").trim_start_matches('.');
            host == pattern || host.ends_with(&format!(".{pattern}"))
        })
    }
}

fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(bracketed) = entry.strip_prefix('[')
        && let Some((addr, rest)) = bracketed.split_once(']')
    {
        return (addr, rest.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port.parse().ok()),
        _ => (entry, None),
    }
}

fn in_cidr(addr: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The proxy's answer to CONNECT.
pub struct ConnectReply {
    pub status: u16,
    pub reason: String,
}

/// Sends `CONNECT host:port` and reads the proxy's status line and headers.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> std::io::Result<ConnectReply> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut request = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: connctl/{}\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(auth) = proxy.authorization() {
        request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;

    // Nothing follows the proxy's reply until we speak, so reading up to the blank
    // line cannot swallow tunnel bytes.
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the proxy closed the connection before answering CONNECT",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let status_line = head.lines().next().unwrap_or_default();
            let mut parts = status_line.splitn(3, ' ');
            let _version = parts.next();
            let status = parts
                .next()
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("the proxy answered CONNECT with '{status_line}'"),
                    )
                })?;
            let reason = parts.next().unwrap_or_default().to_string();
            return Ok(ConnectReply { status, reason });
        }
        if buf.len() > super::limits::PROXY_ANSWER.bytes {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "the proxy's answer to CONNECT is longer than {}",
                    super::limits::PROXY_ANSWER.describe()
                ),
            ));
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(no_proxy: &str) -> ProxyEnv {
        ProxyEnv {
            https: Some(("HTTPS_PROXY".into(), "http://p:3128".into())),
            http: None,
            all: None,
            no_proxy: no_proxy.split(',').map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn no_proxy_matches_like_curl() {
        let e = env("example.com,.corp.net,10.0.0.0/8,localhost:8443");
        assert!(e.for_url("https", "example.com", 443).unwrap().is_none());
        assert!(
            e.for_url("https", "api.example.com", 443)
                .unwrap()
                .is_none()
        );
        assert!(e.for_url("https", "x.corp.net", 443).unwrap().is_none());
        assert!(e.for_url("https", "10.1.2.3", 443).unwrap().is_none());
        assert!(e.for_url("https", "localhost", 8443).unwrap().is_none());
        assert!(e.for_url("https", "localhost", 9443).unwrap().is_some());
        assert!(e.for_url("https", "notexample.com", 443).unwrap().is_some());
        assert!(e.for_url("http", "other", 80).unwrap().is_none());
    }

    #[test]
    fn proxy_url_credentials() {
        let p = Proxy::parse("http://u%40x:p%3Aw@mid:8080", "t".into(), true).unwrap();
        assert_eq!(p.user.as_deref(), Some("u@x"));
        assert_eq!(p.password.unwrap().expose(), "p:w");
        assert_eq!(p.port, 8080);
        assert_eq!(Proxy::parse("mid", "t".into(), true).unwrap().port, 80);
        assert_eq!(Proxy::parse("p", "t".into(), false).unwrap().port, 1080);
        let err = Proxy::parse("https://u:hunter2@p:1", "t".into(), false).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
