//! One HTTP exchange over our own stack, stage by stage: DNS, TCP, proxy CONNECT, TLS, HTTP.
//! Every stage is timed and recorded, and a failure is explained where it happened.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use url::Url;

use super::limits::{self, Limit};
use super::proxy::{self, Proxy};
use super::quickack::QuickAck;
use super::tls::{self, Observed, TlsSettings};
use super::upload::RequestBody;
use super::{Stage, Trace};
use crate::error::{Error, ErrorKind, Result};

/// What to send. `headers` may hold credentials; they are never printed.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub url: Url,
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How to reach the destination.
#[derive(Clone)]
pub struct Route {
    pub proxy: Option<Proxy>,
    pub tls: TlsSettings,
    /// Whether the connection has mutual auth on, to explain a client-certificate refusal.
    pub mutual_auth: bool,
    pub timeout: Duration,
    /// The end of the attempt this exchange is part of, when earlier stages
    /// (reading the secrets, fetching a token) count against the same
    /// `--timeout`: the exchange stops at the earlier of this and `timeout`
    /// from its own start.
    pub deadline: Option<Instant>,
    /// The connection's name, for hints ("connctl connection edit NAME ...").
    pub connection: String,
    /// Addresses already resolved in this run (`test --all` reaches few hosts many times).
    pub dns: Arc<DnsCache>,
}

/// Host lookups of one run. Entries live as long as the process: seconds.
#[derive(Debug, Default)]
pub struct DnsCache {
    entries: Mutex<HashMap<(String, u16), Vec<SocketAddr>>>,
}

impl DnsCache {
    fn get(&self, host: &str, port: u16) -> Option<Vec<SocketAddr>> {
        if host.parse::<std::net::IpAddr>().is_ok() {
            return None;
        }
        self.entries
            .lock()
            .ok()?
            .get(&(host.to_string(), port))
            .cloned()
    }

    fn put(&self, host: &str, port: u16, found: &[SocketAddr]) {
        if host.parse::<std::net::IpAddr>().is_err()
            && let Ok(mut entries) = self.entries.lock()
        {
            entries.insert((host.to_string(), port), found.to_vec());
        }
    }
}

/// How much of an answer's body `execute_with` reads before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// All of it; a longer body is a failure (exit 6) naming the limit.
    Whole(Limit),
    /// At most the limit; the rest is left unread (`Response::truncated`).
    Head(Limit),
    /// None of it: the caller reads `Response::rest` as it arrives.
    Stream,
}

/// The answer, whatever its status. `body` holds what was read of the body;
/// in [`BodyMode::Stream`] the remainder is in `rest`.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The body went on past what was read ([`BodyMode::Head`]).
    pub truncated: bool,
    pub rest: Option<BodyRest>,
}

/// The unread part of a body, read chunk by chunk within the request's deadline.
pub struct BodyRest {
    body: hyper::body::Incoming,
    deadline: Instant,
    timeout: Duration,
    peer: String,
}

impl std::fmt::Debug for BodyRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BodyRest({})", self.peer)
    }
}

impl BodyRest {
    /// The next piece of the body, or `None` at its end. `--timeout` covers
    /// the body too: a body still arriving at the deadline is a network failure.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            if self.body.is_end_stream() {
                return Ok(None);
            }
            let frame = match tokio::time::timeout_at(self.deadline, self.body.frame()).await {
                Err(_) => {
                    return Err(Error::network(format!(
                        "timed out after {} reading the body from {}",
                        format_secs(self.timeout),
                        self.peer
                    ))
                    .with_hint("raise --timeout if the answer is known to be large or slow"));
                }
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => {
                    return Err(Error::network(format!(
                        "the connection to {} broke while the body was read",
                        self.peer
                    ))
                    .with_source(&e));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data()
                && !data.is_empty()
            {
                return Ok(Some(data));
            }
        }
    }

    /// Reads into `buf` until it holds `want` bytes or the body ends; true at the end.
    async fn fill(&mut self, buf: &mut Vec<u8>, want: usize) -> Result<bool> {
        while buf.len() < want {
            match self.chunk().await? {
                Some(data) => buf.extend_from_slice(&data),
                None => return Ok(true),
            }
        }
        Ok(self.body.is_end_stream())
    }
}

fn timed_out(route: &Route, what: &str) -> Error {
    Error::network(format!(
        "timed out after {} {what}",
        format_secs(route.timeout)
    ))
    .with_hint("raise --timeout if the remote system is known to be slow")
}

pub fn format_secs(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{} s", secs as u64)
    } else {
        format!("{secs:.1} s")
    }
}

fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Runs the exchange and reads the whole body (at most [`limits::RESPONSE_BODY`]).
pub async fn execute(req: &HttpRequest, route: &Route, trace: &mut Trace) -> Result<Response> {
    execute_with(req, route, trace, BodyMode::Whole(limits::RESPONSE_BODY)).await
}

/// Runs the exchange, recording each stage in `trace`, and reads the body as
/// `mode` says. An error has already been recorded as the failed stage when
/// it is returned.
pub async fn execute_with(
    req: &HttpRequest,
    route: &Route,
    trace: &mut Trace,
    mode: BodyMode,
) -> Result<Response> {
    let own = Instant::now() + route.timeout;
    let deadline = route.deadline.map_or(own, |at| at.min(own));
    let https = match req.url.scheme() {
        "https" => true,
        "http" => false,
        other => {
            return Err(Error::invalid(format!(
                "the URL scheme '{other}' is not http or https"
            )));
        }
    };
    let host = req
        .url
        .host_str()
        .ok_or_else(|| Error::invalid(format!("the URL {} has no host", req.url)))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = req
        .url
        .port_or_known_default()
        .unwrap_or(if https { 443 } else { 80 });
    let target = authority(&host, port);
    let proxy = route.proxy.as_ref();

    // DNS: the proxy's host when there is one; the proxy resolves the target.
    let (dns_host, dns_port) = match proxy {
        Some(p) => (p.host.clone(), p.port),
        None => (host.clone(), port),
    };
    let started = Instant::now();
    let cached = route.dns.get(&dns_host, dns_port);
    let addrs = match cached.clone() {
        Some(found) => Ok(found),
        None => match tokio::time::timeout_at(
            deadline,
            tokio::net::lookup_host((dns_host.as_str(), dns_port)),
        )
        .await
        {
            Err(_) => Err(timed_out(route, &format!("resolving {dns_host}"))),
            Ok(Err(e)) => Err(match proxy {
                Some(p) => {
                    Error::network(format!("cannot resolve the {} host '{dns_host}'", p.label))
                }
                None => Error::network(format!("cannot resolve host '{dns_host}'"))
                    .with_hint("check the host name in the endpoint URL and this machine's DNS"),
            }
            .with_source(&e)),
            Ok(Ok(found)) => {
                let found: Vec<SocketAddr> = found.collect();
                if found.is_empty() {
                    Err(Error::network(format!("host '{dns_host}' has no address")))
                } else {
                    route.dns.put(&dns_host, dns_port, &found);
                    Ok(found)
                }
            }
        },
    };
    let addrs = trace.record(Stage::Dns, started, addrs, |found| {
        let list: Vec<String> = found.iter().take(4).map(|a| a.ip().to_string()).collect();
        let resolved = if dns_host.parse::<std::net::IpAddr>().is_ok() {
            format!("{dns_host} (address literal)")
        } else {
            format!("{dns_host} → {}", list.join(", "))
        };
        let resolved = if cached.is_some() {
            format!("{resolved} (resolved earlier in this run)")
        } else {
            resolved
        };
        match proxy {
            Some(p) => format!("{} {resolved}; {target} is resolved by it", p.label),
            None => resolved,
        }
    })?;

    // TCP: each address in turn, first success wins.
    let started = Instant::now();
    let tcp = async {
        let mut last: Option<std::io::Error> = None;
        for addr in &addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok((QuickAck(stream), *addr));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no address to connect to")))
    };
    let what = match proxy {
        Some(p) => format!("the {} at {}", p.label, authority(&p.host, p.port)),
        None => target.clone(),
    };
    let connected = match tokio::time::timeout_at(deadline, tcp).await {
        Err(_) => Err(timed_out(route, &format!("connecting to {what}"))),
        Ok(Err(e)) => Err(connect_error(&e, &what, proxy).with_source(&e)),
        Ok(Ok(pair)) => Ok(pair),
    };
    let (mut stream, addr) = trace.record(Stage::Tcp, started, connected, |(_, addr)| {
        if what.ends_with(&addr.to_string()) {
            format!("connected to {what}")
        } else {
            format!("connected to {what} ({addr})")
        }
    })?;

    // Proxy: a CONNECT tunnel for https; absolute-form requests for http.
    if let Some(p) = proxy {
        let started = Instant::now();
        if https {
            let reply = match tokio::time::timeout_at(
                deadline,
                proxy::connect(&mut stream, p, &host, port),
            )
            .await
            {
                Err(_) => Err(timed_out(
                    route,
                    &format!("waiting for the {} to open a tunnel", p.label),
                )),
                Ok(Err(e)) => Err(Error::network(format!(
                    "the {} failed during CONNECT to {target}",
                    p.label
                ))
                .with_source(&e)),
                Ok(Ok(reply)) => {
                    proxy_reply(p, &target, reply.status, &reply.reason).map(|_| reply)
                }
            };
            trace.record(Stage::MidConnect, started, reply, |reply| {
                format!(
                    "tunnel to {target} through the {} ({} {})",
                    p.label, reply.status, reply.reason
                )
            })?;
        } else {
            trace.record(Stage::MidConnect, started, Ok(()), |_| {
                format!(
                    "plain http: the request goes to the {} in absolute form",
                    p.label
                )
            })?;
        }
    }

    if https {
        let started = Instant::now();
        let (config, seen) = match route.tls.client_config(true) {
            Ok(pair) => pair,
            Err(e) => {
                return Err(trace.fail(Stage::Tls, started, e));
            }
        };
        let server_name = match rustls::pki_types::ServerName::try_from(host.clone()) {
            Ok(name) => name,
            Err(e) => {
                let err = Error::invalid(format!("'{host}' is not a valid TLS server name"))
                    .with_cause(e);
                return Err(trace.fail(Stage::Tls, started, err));
            }
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        let handshake =
            tokio::time::timeout_at(deadline, connector.connect(server_name, stream)).await;
        let tls_stream = match handshake {
            Err(_) => Err(timed_out(
                route,
                &format!("for the TLS handshake with {target}"),
            )),
            Ok(Err(e)) => Err(handshake_error(&e, &host, &seen, route)),
            Ok(Ok(s)) => Ok(s),
        };
        trace.expiry.server_cert = seen.server_cert().map(|c| c.not_after);
        let tls_stream = trace.record(Stage::Tls, started, tls_stream, |s| {
            tls_detail(s.get_ref().1, &seen, route)
        })?;
        trace.tls = Some(tls::TlsFacts::of(tls_stream.get_ref().1, &seen));
        let h2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2");
        seen.set_tls13(
            tls_stream.get_ref().1.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3),
        );
        let tls_stream = tls::Watched::new(tls_stream, seen.clone());
        let started = Instant::now();
        let exchange = Exchange {
            req,
            host: &host,
            port,
            proxy: None,
            deadline,
            route,
            mode,
            seen: &seen,
        };
        let result = http_exchange(tls_stream, h2, &exchange).await;
        // nginx and its like refuse a client certificate with an HTTP page, not an alert.
        if let Ok(r) = &result
            && let Some(err) = tls::client_cert_page(
                r.status,
                &r.body,
                &seen,
                route.mutual_auth,
                &route.connection,
            )
        {
            trace.fail_last(Stage::Tls, &err);
            return Err(err);
        }
        finish_http(result, trace, started, req, &host, &seen, route)
    } else {
        let started = Instant::now();
        let nothing_seen = Observed::default();
        let exchange = Exchange {
            req,
            host: &host,
            port,
            proxy,
            deadline,
            route,
            mode,
            seen: &nothing_seen,
        };
        let mut result = http_exchange(stream, false, &exchange).await;
        // Through a proxy, a 407 is the proxy's answer, not the endpoint's.
        if let (Ok(r), Some(p)) = (&result, proxy)
            && r.status == StatusCode::PROXY_AUTHENTICATION_REQUIRED
            && let Err(e) = proxy_reply(p, &target, 407, "Proxy Authentication Required")
        {
            result = Err((None, e));
        }
        let _ = addr;
        finish_http(result, trace, started, req, &host, &nothing_seen, route)
    }
}

fn connect_error(e: &std::io::Error, what: &str, proxy: Option<&Proxy>) -> Error {
    use std::io::ErrorKind as K;
    let mut err = match e.kind() {
        K::ConnectionRefused => Error::network(format!(
            "connection refused by {what}: nothing is listening there"
        )),
        K::TimedOut => Error::network(format!("connecting to {what} timed out")),
        K::ConnectionReset => Error::network(format!("{what} reset the connection")),
        K::HostUnreachable | K::NetworkUnreachable => {
            Error::network(format!("{what} is unreachable from this machine"))
        }
        _ => Error::network(format!("cannot connect to {what}")),
    };
    if let Some(p) = proxy
        && p.is_mid
    {
        err = err.with_hint("check the MID server's URL and that it is running");
    }
    err
}

fn proxy_reply(p: &Proxy, target: &str, status: u16, reason: &str) -> Result<()> {
    match status {
        200..=299 => Ok(()),
        // tinyproxy, among others, answers 401 to wrong credentials and 407 to none.
        401 | 407 => {
            let who = if p.is_mid {
                "the MID server"
            } else {
                "the proxy"
            };
            let err = Error::auth(format!("{who} refused the credentials ({status})"));
            Err(if p.user.is_none() {
                err.with_hint(format!("the {} has no user; set one", p.label))
            } else {
                err.with_hint(format!("check the user and password of the {}", p.label))
            })
        }
        403 => Err(Error::network(format!(
            "the {} refused to open a tunnel to {target} ({status} {reason})",
            p.label
        ))),
        _ => Err(Error::network(format!(
            "the {} could not reach {target} ({status} {reason})",
            p.label
        ))
        .with_hint("the remote system may be down or unreachable from the MID server")),
    }
}

fn handshake_error(e: &std::io::Error, host: &str, seen: &Observed, route: &Route) -> Error {
    if let Some(tls_err) = tls::rustls_error(e) {
        return tls::explain(tls_err, host, seen, route.mutual_auth, &route.connection);
    }
    use std::io::ErrorKind as K;
    if matches!(
        e.kind(),
        K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe
    ) && let Some(err) = tls::missing_client_cert(seen, route.mutual_auth, &route.connection, e)
    {
        return err;
    }
    match e.kind() {
        K::UnexpectedEof => Error::tls(format!(
            "{host} closed the connection during the TLS handshake"
        ))
        .with_hint("the server may not speak TLS on this port, or refused this client"),
        K::ConnectionReset => Error::network(format!(
            "{host} reset the connection during the TLS handshake"
        ))
        .with_hint("a firewall or the server dropped the connection; retry, or check the port"),
        _ => Error::tls(format!("TLS handshake with {host} failed")).with_source(e),
    }
}

fn tls_detail(conn: &rustls::ClientConnection, seen: &Observed, route: &Route) -> String {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
        _ => "TLS",
    };
    let alpn = match conn.alpn_protocol() {
        Some(p) => String::from_utf8_lossy(p).into_owned(),
        None => "none".to_string(),
    };
    let server = match seen.server_cert() {
        Some(c) => {
            format!(
                "server {} issued by {}, {}",
                c.subject,
                c.issuer,
                tls::expiry_text(c.days_left())
            )
        }
        None => "server certificate unreadable".to_string(),
    };
    let client = match (seen.requested(), seen.sent(), &route.tls.identity) {
        (false, _, None) => "client certificate not requested".to_string(),
        (false, _, Some(_)) => {
            "mutual auth is on, but the server did not ask for a client certificate".to_string()
        }
        (true, true, Some(id)) => match id.days_left {
            Some(days) => format!(
                "client certificate requested, sent {} ({})",
                id.subject,
                tls::expiry_text(days)
            ),
            None => format!("client certificate requested, sent {}", id.subject),
        },
        (true, _, _) => "client certificate requested, none sent".to_string(),
    };
    let insecure = if route.tls.insecure {
        "; VERIFICATION SKIPPED (--insecure)"
    } else {
        ""
    };
    format!("{version}, ALPN {alpn}; {server}; {client}{insecure}")
}

/// Where an HTTP-stage failure belongs: TLS alerts that arrive after the handshake
/// (TLS 1.3 servers reject client certificates then) are TLS failures.
enum HttpFailure {
    Tls(Error),
    Http(Error),
}

/// One HTTP exchange on an open stream, and how much of its body to read.
struct Exchange<'a> {
    req: &'a HttpRequest,
    host: &'a str,
    port: u16,
    proxy: Option<&'a Proxy>,
    deadline: Instant,
    route: &'a Route,
    mode: BodyMode,
    /// What the TLS handshake showed: a client-certificate page is looked for when asked.
    seen: &'a Observed,
}

async fn http_exchange<S>(
    stream: S,
    h2: bool,
    x: &Exchange<'_>,
) -> std::result::Result<Response, (Option<hyper::Error>, Error)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (req, host, port, route) = (x.req, x.host, x.port, x.route);
    let default_port = if req.url.scheme() == "https" { 443 } else { 80 };
    let host_header = if port == default_port {
        if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        }
    } else {
        authority(host, port)
    };
    // http/1.1 wants origin-form (absolute-form through a proxy); h2 wants the full URI.
    let uri = if h2 || x.proxy.is_some() {
        req.url.as_str().to_string()
    } else {
        let mut path = req.url.path().to_string();
        if let Some(q) = req.url.query() {
            path.push('?');
            path.push_str(q);
        }
        path
    };
    let mut builder = http::Request::builder().method(req.method.clone()).uri(uri);
    if let Some(headers) = builder.headers_mut() {
        headers.extend(req.headers.clone());
        if !h2 && let Ok(value) = HeaderValue::from_str(&host_header) {
            headers.insert(http::header::HOST, value);
        }
        if !headers.contains_key(http::header::USER_AGENT) {
            headers.insert(
                http::header::USER_AGENT,
                HeaderValue::from_static(concat!("connctl/", env!("CARGO_PKG_VERSION"))),
            );
        }
        if let Some(p) = x.proxy
            && let Some(auth) = p.authorization()
            && let Ok(mut value) = HeaderValue::from_str(&auth)
        {
            value.set_sensitive(true);
            headers.insert(http::header::PROXY_AUTHORIZATION, value);
        }
    }
    let mut request = builder.body(()).map_err(|e| {
        (
            None,
            Error::invalid("cannot build the HTTP request").with_cause(e),
        )
    })?;
    // A large HTTP/1.1 body waits for `100 Continue`, so that an early refusal is read.
    let body = if h2 {
        RequestBody::ready(req.body.clone())
    } else {
        RequestBody::expecting(&mut request, req.body.clone())
    };
    let request = request.map(|()| body);

    let io = TokioIo::new(stream);
    let head_max = limits::RESPONSE_HEAD.bytes;
    let exchange = async {
        let (response, conn_task) = if h2 {
            let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .max_header_list_size(head_max as u32)
                .handshake(io)
                .await?;
            let task = tokio::spawn(conn);
            (sender.send_request(request).await, task)
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
                .max_buf_size(head_max)
                .handshake(io)
                .await?;
            let task = tokio::spawn(conn);
            (sender.send_request(request).await, task)
        };
        match response {
            Ok(r) => Ok(r),
            Err(e) => {
                // The connection task often holds the real cause (an alert, a reset).
                if let Ok(Err(conn_err)) = conn_task.await {
                    return Err(conn_err);
                }
                Err(e)
            }
        }
    };
    let peer = authority(host, port);
    let response = match tokio::time::timeout_at(x.deadline, exchange).await {
        Err(_) => {
            return Err((
                None,
                timed_out(
                    route,
                    &format!("waiting for {peer} to answer the HTTP request"),
                ),
            ));
        }
        Ok(Err(e)) => return Err((Some(e), Error::network("HTTP exchange failed"))),
        Ok(Ok(r)) => r,
    };
    let (parts, body) = response.into_parts();
    let mut rest = BodyRest {
        body,
        deadline: x.deadline,
        timeout: route.timeout,
        peer,
    };
    let peer = rest.peer.clone();
    let too_long = |limit: Limit| {
        Error::network(format!(
            "the answer of {peer} is larger than {} bytes, {}; connctl stopped reading it",
            limit.bytes,
            limit.describe()
        ))
        .with_hint("the endpoint sent more than connctl reads for this purpose; check the URL")
    };
    let mut buf = Vec::new();
    let (truncated, rest) = match x.mode {
        BodyMode::Whole(limit) => {
            let declared = parts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if declared.is_some_and(|n| n > limit.bytes as u64) {
                return Err((None, too_long(limit)));
            }
            let ended = rest
                .fill(&mut buf, limit.bytes + 1)
                .await
                .map_err(|e| (None, e))?;
            if !ended || buf.len() > limit.bytes {
                return Err((None, too_long(limit)));
            }
            (false, None)
        }
        BodyMode::Head(limit) => {
            let ended = rest
                .fill(&mut buf, limit.bytes)
                .await
                .map_err(|e| (None, e))?;
            let truncated = !ended || buf.len() > limit.bytes;
            buf.truncate(limit.bytes);
            (truncated, None)
        }
        BodyMode::Stream => {
            let want = if x.seen.requested() && tls::may_be_client_cert_page(parts.status) {
                limits::CLIENT_CERT_PAGE.bytes
            } else {
                0
            };
            let ended = rest.fill(&mut buf, want).await.map_err(|e| (None, e))?;
            (false, (!ended).then_some(rest))
        }
    };
    Ok(Response {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body: Bytes::from(buf),
        truncated,
        rest,
    })
}

fn classify_http_error(
    e: &hyper::Error,
    host: &str,
    seen: &Observed,
    route: &Route,
) -> HttpFailure {
    // HTTP/2 keeps only the text of an I/O error; the watch on the stream kept the TLS error.
    if let Some(tls_err) = tls::rustls_error(e).cloned().or_else(|| seen.tls_error()) {
        return HttpFailure::Tls(tls::explain(
            &tls_err,
            host,
            seen,
            route.mutual_auth,
            &route.connection,
        ));
    }
    let io = {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
        let mut found = None;
        while let Some(err) = current {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                found = Some(io.kind());
                break;
            }
            current = err.source();
        }
        found
    };
    use std::io::ErrorKind as K;
    let dropped = matches!(
        io,
        Some(K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof)
    ) || e.is_incomplete_message()
        || e.is_closed();
    if dropped {
        if let Some(err) = tls::missing_client_cert(seen, route.mutual_auth, &route.connection, e) {
            return HttpFailure::Tls(err);
        }
        // TLS 1.3 servers check the client certificate after the client's handshake is
        // done; a refusal reaches the client as a reset as often as an alert.
        if seen.requested() && seen.sent() && seen.tls13() {
            return HttpFailure::Tls(
                Error::tls(format!(
                    "{host} dropped the connection right after the TLS handshake: it probably rejected the client certificate"
                ))
                .with_hint("the remote system must trust the issuer of the protocol profile's client certificate")
                .with_source(e),
            );
        }
    }
    let err = match io {
        Some(K::ConnectionReset) | Some(K::BrokenPipe) => {
            Error::network(format!("{host} reset the connection before answering"))
        }
        _ if e.is_incomplete_message() || io == Some(K::UnexpectedEof) => {
            Error::network(format!("{host} closed the connection without answering"))
        }
        _ if e.is_parse_too_large() => Error::network(format!(
            "the status line and headers from {host} are longer than {}",
            limits::RESPONSE_HEAD.describe()
        )),
        _ if e.is_parse() => Error::failed(format!("the answer from {host} is not HTTP"))
            .with_hint("if the server speaks TLS, use an https:// URL"),
        _ => Error::network(format!("the HTTP exchange with {host} failed")),
    };
    HttpFailure::Http(err.with_source(e))
}

fn finish_http(
    result: std::result::Result<Response, (Option<hyper::Error>, Error)>,
    trace: &mut Trace,
    started: Instant,
    req: &HttpRequest,
    host: &str,
    seen: &Observed,
    route: &Route,
) -> Result<Response> {
    let result = match result {
        Ok(r) => Ok(r),
        Err((None, err)) => Err(err),
        Err((Some(e), _)) => match classify_http_error(&e, host, seen, route) {
            HttpFailure::Tls(err) => {
                trace.fail_last(Stage::Tls, &err);
                return Err(err);
            }
            HttpFailure::Http(err) => Err(err),
        },
    };
    let path = req.url.path();
    trace.record(Stage::Http, started, result, |r| {
        let version = match r.version {
            Version::HTTP_2 => "HTTP/2",
            Version::HTTP_10 => "HTTP/1.0",
            _ => "HTTP/1.1",
        };
        let size = if r.rest.is_some() {
            "body streamed".to_string()
        } else if r.truncated {
            format!("first {} bytes of the body read", r.body.len())
        } else {
            format!("{} bytes", r.body.len())
        };
        format!(
            "{} {path} → {} ({version}, {size})",
            req.method,
            status_text(r.status),
        )
    })
}

pub fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// Whether an error is worth retrying in `send`: connection-level network failures.
pub fn is_retryable(err: &Error) -> bool {
    err.kind == ErrorKind::Network
}
