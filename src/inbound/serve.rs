//! `inbound serve`: the HTTP/1.1 + HTTP/2 endpoint remote systems send to.
//!
//! Every request carries Basic credentials of an inbound user; it is accepted
//! (202) only through an active connection naming that user, and only after
//! its JSON line is durable in the spool. GET, HEAD and OPTIONS carry no
//! message: they get 200 and the admitting connection, and nothing is recorded. The store is re-read whenever the
//! file changes, so activation takes effect without a restart.
//! A refusal is sent before the body is read; `early` makes sure a client
//! that is still sending reads it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::check::{self, Denial};
use super::early::{self, LingerOnClose, Lingering};
use super::spool::{self, SPOOL_FILE, Spool};
use crate::error::{Error, Result};
use crate::model::{SecretSource, Store, now_rfc3339};
use crate::output::{Printer, escape};
use crate::secrets::{self, Secret};
use crate::store::{Stamp, stamp};

/// How long shutdown waits for requests in flight before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Headers whose values never reach the spool.
const REDACTED_HEADERS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// Everything `inbound serve` is told on its command line.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub store_path: PathBuf,
    pub listen: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
    pub spool: Option<PathBuf>,
    pub max_body: u64,
    /// Limit for reading a request's headers, a TLS handshake and a body.
    pub request_timeout: Duration,
    /// Where its stderr lines go: `-q` drops the request log and the status
    /// lines, never the address, warnings or errors.
    pub out: Printer,
}

/// Runs the server until SIGINT or SIGTERM, then finishes requests in flight.
pub fn serve(options: ServeOptions) -> Result<()> {
    let tls = match (&options.tls_cert, &options.tls_key) {
        (Some(cert), Some(key)) => Some(TlsAcceptor::from(super::tls::server_config(
            cert,
            key,
            options.client_ca.as_deref(),
        )?)),
        (None, None) => None,
        _ => {
            return Err(Error::usage("--tls-cert and --tls-key go together"));
        }
    };
    if tls.is_none() && options.client_ca.is_some() {
        return Err(Error::usage(
            "--client-ca needs TLS: give --tls-cert and --tls-key as well",
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed("cannot start the async runtime").with_source(&e))?;
    runtime.block_on(run(options, tls))
}

async fn run(options: ServeOptions, tls: Option<TlsAcceptor>) -> Result<()> {
    let listener = TcpListener::bind(&options.listen).await.map_err(|e| {
        Error::network(format!("cannot listen on '{}'", options.listen)).with_source(&e)
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::network("cannot read the listening address").with_source(&e))?;
    // Watch for signals before announcing, so a signal right after the
    // announcement already stops the server cleanly.
    let shutdown = shutdown_signal()?;
    // A store that cannot be read fails the start, before anything is announced.
    let store = StoreWatch::new(&options.store_path, options.out.clone())?;
    let (spool, writer) = Spool::open(options.spool.as_deref())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let out = &options.out;
    // The first stderr line, also with -q: tests and `connctl demo` read the port from it.
    out.notice(&format!("listening on {scheme}://{local}"));
    match &options.spool {
        Some(dir) => out.status(&format!("spool: {}", shown(&dir.join(SPOOL_FILE)))),
        None => out.status("spool: stdout (one JSON line per accepted message)"),
    }
    if let Some(ca) = &options.client_ca {
        out.status(&format!(
            "client certificates: required, issued by '{}'",
            shown(ca)
        ));
    }
    if !options.store_path.exists() {
        out.warn(&format!(
            "the store '{}' does not exist yet: every request is refused until an inbound user is on an active connection",
            shown(&options.store_path)
        ));
    }

    let shared = Arc::new(Shared {
        store,
        passwords: Mutex::new(PasswordCache::default()),
        spool,
        max_body: options.max_body,
        request_timeout: options.request_timeout,
        out: options.out.clone(),
    });

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.request_timeout);
    builder.http2().timer(TokioTimer::new());

    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let tcp = IdleTimeout::new(tcp, options.request_timeout * 2);
                    let linger = LingerOnClose::new(peer, shared.out.clone());
                    let tcp = Lingering::new(tcp, linger.clone());
                    let watcher = graceful.watcher();
                    let builder = builder.clone();
                    let shared = shared.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        match tls {
                            None => {
                                let info = Arc::new(PeerInfo { peer, client_cert: None, linger });
                                serve_io(&builder, tcp, shared, info, watcher).await;
                            }
                            Some(acceptor) => {
                                let timeout = shared.request_timeout;
                                match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                                    Ok(Ok(stream)) => {
                                        let client_cert = stream
                                            .get_ref()
                                            .1
                                            .peer_certificates()
                                            .and_then(|chain| chain.first())
                                            .and_then(|der| certificate_subject(der));
                                        let info = Arc::new(PeerInfo { peer, client_cert, linger });
                                        serve_io(&builder, stream, shared, info, watcher).await;
                                    }
                                    Ok(Err(e)) => {
                                        shared.out.log(&format!("{peer}: TLS handshake failed: {e}"));
                                    }
                                    Err(_) => {
                                        shared.out.log(&format!("{peer}: TLS handshake timed out"));
                                    }
                                }
                            }
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    out.warn(&format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    out.status(&format!(
        "stopping: finishing {} open connection(s)",
        graceful.count()
    ));
    let finished = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    // Every handler holds a `Spool` through `shared`; once the last is gone the writer ends.
    drop(shared);
    // Not joined: a connection abandoned after the grace period may still hold a handle.
    let writer_done = tokio::task::spawn_blocking(move || writer.join());
    if finished.is_err() {
        out.warn(&format!(
            "requests still in flight after {}s were abandoned (none of them was answered 202)",
            SHUTDOWN_GRACE.as_secs()
        ));
    } else {
        let _ = writer_done.await;
    }
    out.status("stopped");
    Ok(())
}

/// A path of the command line or store in a status line: one line, escaped.
fn shown(path: &Path) -> String {
    escape(&path.display().to_string())
}

async fn serve_io<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    shared: Arc<Shared>,
    info: Arc<PeerInfo>,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let shared = shared.clone();
        let info = info.clone();
        async move { Ok::<_, Infallible>(handle(&shared, req, &info).await) }
    });
    let conn = builder.serve_connection(TokioIo::new(io), service);
    // Errors here are the client's (reset, bad framing); hyper has answered what it could.
    let _ = watcher.watch(conn).await;
}

/// A stream that fails with `TimedOut` when nothing was read or written for
/// `idle`: drops clients that connect and send nothing (hyper's header
/// timeout starts only once it knows the protocol) and idle keep-alives.
struct IdleTimeout<I> {
    inner: I,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl<I> IdleTimeout<I> {
    fn new(inner: I, idle: Duration) -> Self {
        IdleTimeout {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn active(&mut self) {
        self.timer
            .as_mut()
            .reset(tokio::time::Instant::now() + self.idle);
    }

    fn check(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection was idle too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for IdleTimeout<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.active();
                Poll::Ready(result)
            }
            Poll::Pending => this.check(cx),
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                this.active();
                Poll::Ready(result)
            }
            Poll::Pending => this.check(cx).map(|r| r.map(|()| 0)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                this.active();
                Poll::Ready(result)
            }
            Poll::Pending => this.check(cx).map(|r| r.map(|()| 0)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C); also used by `monitor`.
pub fn shutdown_signal() -> Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())
            .map_err(|e| Error::failed("cannot watch for SIGTERM").with_source(&e))?;
        let mut int = signal(SignalKind::interrupt())
            .map_err(|e| Error::failed("cannot watch for SIGINT").with_source(&e))?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

fn certificate_subject(der: &[u8]) -> Option<String> {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, cert)| cert.subject().to_string())
}

struct PeerInfo {
    peer: SocketAddr,
    client_cert: Option<String>,
    /// Set when an HTTP/1.x request is answered before its body was read.
    linger: Arc<LingerOnClose>,
}

struct Shared {
    store: StoreWatch,
    passwords: Mutex<PasswordCache>,
    spool: Spool,
    max_body: u64,
    request_timeout: Duration,
    out: Printer,
}

struct Snapshot {
    stamp: Option<Stamp>,
    store: Arc<Store>,
    generation: u64,
}

/// The store as of the last change seen; one `stat` per request.
struct StoreWatch {
    path: PathBuf,
    snapshot: Mutex<Snapshot>,
    /// Says when the store was reloaded, or could not be.
    out: Printer,
}

impl StoreWatch {
    fn new(path: &Path, out: Printer) -> Result<Self> {
        let stamp = stamp(path);
        let store = crate::store::load(path)?;
        Ok(StoreWatch {
            path: path.to_path_buf(),
            snapshot: Mutex::new(Snapshot {
                stamp,
                store: Arc::new(store),
                generation: 0,
            }),
            out,
        })
    }

    fn current(&self) -> (Arc<Store>, u64) {
        let now = stamp(&self.path);
        let mut snapshot = self
            .snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if now != snapshot.stamp {
            snapshot.stamp = now;
            match crate::store::load(&self.path) {
                Ok(store) => {
                    snapshot.store = Arc::new(store);
                    snapshot.generation += 1;
                    self.out
                        .status(&format!("store changed: reloaded '{}'", shown(&self.path)));
                }
                Err(e) => {
                    self.out.warn(&format!(
                        "the store changed but cannot be read; still using the previous version: {}",
                        e.shown()
                    ));
                }
            }
        }
        (snapshot.store.clone(), snapshot.generation)
    }
}

/// Resolved inbound passwords of one store generation (keyring and `cmd:`
/// lookups are too slow to repeat per request).
#[derive(Default)]
struct PasswordCache {
    generation: u64,
    entries: HashMap<String, (SecretSource, Secret)>,
}

impl Shared {
    async fn expected_password(
        &self,
        store: &Arc<Store>,
        generation: u64,
        user: &str,
        source: &SecretSource,
    ) -> Result<Secret> {
        {
            let cache = self.passwords.lock().unwrap_or_else(|p| p.into_inner());
            if cache.generation == generation
                && let Some((cached_source, secret)) = cache.entries.get(user)
                && cached_source == source
            {
                return Ok(secret.clone());
            }
        }
        let at = check::password_ref(store, user);
        let resolve_source = source.clone();
        let secret = tokio::task::spawn_blocking(move || secrets::resolve(&resolve_source, &at))
            .await
            .map_err(|e| Error::secret("the password lookup failed").with_source(&e))??;
        let mut cache = self.passwords.lock().unwrap_or_else(|p| p.into_inner());
        if cache.generation < generation {
            cache.generation = generation;
            cache.entries.clear();
        }
        if cache.generation == generation {
            cache
                .entries
                .insert(user.to_string(), (source.clone(), secret.clone()));
        }
        Ok(secret)
    }
}

enum Credentials {
    Missing,
    Malformed(&'static str),
    Basic { user: String, password: Secret },
}

fn credentials(headers: &HeaderMap) -> Credentials {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Credentials::Missing;
    };
    let Ok(text) = value.to_str() else {
        return Credentials::Malformed("the Authorization header is not ASCII");
    };
    let Some((scheme, encoded)) = text.trim().split_once(' ') else {
        return Credentials::Missing;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Credentials::Missing;
    }
    let Ok(decoded) = BASE64.decode(encoded.trim()) else {
        return Credentials::Malformed("the Basic credentials are not base64");
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return Credentials::Malformed("the Basic credentials are not UTF-8");
    };
    let Some((user, password)) = decoded.split_once(':') else {
        return Credentials::Malformed(
            "the Basic credentials have no ':' between user and password",
        );
    };
    Credentials::Basic {
        user: user.to_string(),
        password: Secret::new(password),
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error_reply(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut response = reply(status, json!({ "error": message }));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"connctl\", charset=\"UTF-8\""),
        );
    }
    response
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let essence = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        })
        .unwrap_or(false)
}

/// The request's path and query with the values of credential-like query
/// parameters (`password`, `access_token`, `api_key`, `sig`, ...) replaced by
/// `(redacted)`: a sender that puts a secret in the URL does not get it into
/// the log or the spool. Other parameters are kept as sent.
fn redacted_path(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_string();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_credential_name(name) => format!("{name}=(redacted)"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

fn is_credential_name(raw: &str) -> bool {
    let decoded: String = url::form_urlencoded::parse(format!("{raw}=").as_bytes())
        .next()
        .map(|(name, _)| name.into_owned())
        .unwrap_or_default();
    let name: String = decoded
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "apikey",
        "credential",
    ]
    .iter()
    .any(|word| name.contains(word))
        || ["pwd", "pass", "sig", "signature", "auth", "authorization"].contains(&name.as_str())
}

/// An answer other than 202, with a note for the log line (never a secret).
struct Rejection {
    status: StatusCode,
    message: String,
    note: String,
}

impl Rejection {
    fn new(status: StatusCode, message: impl Into<String>, note: impl Into<String>) -> Self {
        Rejection {
            status,
            message: message.into(),
            note: note.into(),
        }
    }
}

async fn handle(shared: &Shared, req: Request<Incoming>, info: &PeerInfo) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let path = redacted_path(parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    let (response, note) = match admit_and_record(shared, &parts, &path, body, info).await {
        Ok((response, note)) => (response, note),
        Err((rejection, body)) => {
            let mut response = error_reply(rejection.status, &rejection.message);
            let mut note = rejection.note;
            if let Some(body) = body.filter(|body| !body.is_end_stream()) {
                answer_early(&mut response, body, parts.version, info, &shared.out);
                note.push_str(" (answered before the whole body was read)");
            }
            (response, note)
        }
    };
    // One line per request: the user name, path and notes come from the
    // client, so the printer escapes it whole: a newline in them cannot
    // start a forged log line.
    shared.out.log(&format!(
        "{} {} {} {path} {note}",
        info.peer,
        response.status().as_u16(),
        parts.method
    ));
    response
}

/// Sends a refusal while the body is still arriving so that the client can
/// read it (see `early`): over HTTP/1.x the connection closes after the answer,
/// lingering; over HTTP/2 only the stream ends, and its rest is drained.
fn answer_early(
    response: &mut Response<Full<Bytes>>,
    body: Incoming,
    version: Version,
    info: &PeerInfo,
    out: &Printer,
) {
    if version == Version::HTTP_2 {
        tokio::spawn(early::drain_stream(body, info.peer, out.clone()));
    } else {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        info.linger.arm();
    }
}

enum BodyError {
    TooLarge,
    Broken(String),
}

/// Reads a body of at most `max` bytes; stops at the first byte over it (the
/// rest is left to the early answer's drain).
async fn read_body(body: &mut Incoming, max: u64) -> std::result::Result<Bytes, BodyError> {
    let mut buffer = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
        if let Some(data) = frame.data_ref() {
            if buffer.len() as u64 + data.len() as u64 > max {
                return Err(BodyError::TooLarge);
            }
            buffer.extend_from_slice(data);
        }
    }
    Ok(buffer.freeze())
}

type Outcome = std::result::Result<(Response<Full<Bytes>>, String), (Rejection, Option<Incoming>)>;

/// Authenticates, admits, reads the body and records the message.
async fn admit_and_record(
    shared: &Shared,
    parts: &http::request::Parts,
    // The request's path with credential-like query values redacted.
    path: &str,
    mut body: Incoming,
    info: &PeerInfo,
) -> Outcome {
    let admission = match admit(shared, &parts.headers).await {
        Ok(admission) => admission,
        Err(rejection) => return Err((rejection, Some(body))),
    };
    let user = admission.0;
    let admission = admission.1;
    // A safe method carries no message: answer who the sender is admitted as
    // (what `connctl connection test` checks) and record nothing.
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok((
            reply(
                StatusCode::OK,
                json!({
                    "user": user,
                    "integration": admission.integration,
                    "connection": admission.connection,
                }),
            ),
            format!(
                "user={user} connection={} (no message: {})",
                admission.connection, parts.method
            ),
        ));
    }
    let too_large = || {
        Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {} bytes", shared.max_body),
            format!("user={user}: body over {} bytes", shared.max_body),
        )
    };
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared
        && declared > shared.max_body
    {
        return Err((too_large(), Some(body)));
    }
    let read = tokio::time::timeout(
        shared.request_timeout,
        read_body(&mut body, shared.max_body),
    )
    .await;
    let body = match read {
        Err(_) => {
            return Err((
                Rejection::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "the body took too long to arrive",
                    format!("user={user}: body timed out"),
                ),
                Some(body),
            ));
        }
        Ok(Err(BodyError::TooLarge)) => return Err((too_large(), Some(body))),
        Ok(Err(BodyError::Broken(why))) => {
            return Err((
                Rejection::new(
                    StatusCode::BAD_REQUEST,
                    "the body could not be read",
                    format!("user={user}: body unreadable: {why}"),
                ),
                None,
            ));
        }
        Ok(Ok(body)) => body,
    };
    if is_json(&parts.headers) && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        return Err((
            Rejection::new(
                StatusCode::BAD_REQUEST,
                "the body is declared as JSON but is not valid JSON",
                format!("user={user}: invalid JSON body"),
            ),
            None,
        ));
    }

    let id = uuid::Uuid::new_v4().to_string();
    let (body_value, body_base64) = match std::str::from_utf8(&body) {
        Ok(text) => (text.to_string(), false),
        Err(_) => (BASE64.encode(&body), true),
    };
    let (headers, headers_base64) = spool::header_fields(&parts.headers, &REDACTED_HEADERS);
    let record = json!({
        "time": now_rfc3339(),
        "id": id,
        "integration": admission.integration,
        "connection": admission.connection,
        "environment": admission.environment.as_str(),
        "user": user,
        "method": parts.method.as_str(),
        "path": path,
        "version": format!("{:?}", parts.version),
        "peer": info.peer.to_string(),
        "client_cert": info.client_cert,
        "headers": headers,
        "headers_base64": headers_base64,
        "body": body_value,
        "body_base64": body_base64,
    });
    let unrecorded = |note: String| {
        Err((
            Rejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the message could not be recorded",
                note,
            ),
            None,
        ))
    };
    let line = match serde_json::to_vec(&record) {
        Ok(line) => line,
        Err(e) => return unrecorded(format!("user={user}: cannot encode the record: {e}")),
    };
    if let Err(e) = shared.spool.append(line).await {
        shared.out.error(&format!("cannot write to the spool: {e}"));
        return unrecorded(format!("user={user}: spool write failed"));
    }
    let note = format!("user={user} connection={} id={id}", admission.connection);
    Ok((
        reply(
            StatusCode::ACCEPTED,
            json!({
                "id": id,
                "integration": admission.integration,
                "connection": admission.connection,
            }),
        ),
        note,
    ))
}

/// Basic credentials of an inbound user, right password, active connection.
async fn admit(
    shared: &Shared,
    headers: &HeaderMap,
) -> std::result::Result<(String, check::Admission), Rejection> {
    let (user, password) = match credentials(headers) {
        Credentials::Missing => {
            return Err(Rejection::new(
                StatusCode::UNAUTHORIZED,
                "Basic credentials of an inbound user are required",
                "no credentials",
            ));
        }
        Credentials::Malformed(why) => {
            return Err(Rejection::new(StatusCode::BAD_REQUEST, why, why));
        }
        Credentials::Basic { user, password } => (user, password),
    };
    let unauthorized = |note: String| {
        Rejection::new(
            StatusCode::UNAUTHORIZED,
            "the inbound user or password is wrong",
            note,
        )
    };
    let (store, generation) = shared.store.current();
    let source = match store.inbound_user.get(&user) {
        None => {
            // Same work as a wrong password, so timing does not tell which names exist.
            check::constant_time_eq(password.expose().as_bytes(), b"");
            return Err(unauthorized(format!("user={user}: no such inbound user")));
        }
        Some(record) => match &record.password {
            None => {
                return Err(unauthorized(format!(
                    "user={user}: the inbound user has no password"
                )));
            }
            Some(source) => source.clone(),
        },
    };
    let expected = match shared
        .expected_password(&store, generation, &user, &source)
        .await
    {
        Ok(secret) => secret,
        Err(e) => {
            // The user name comes from the client: escaped whole.
            shared.out.error(&escape(&format!(
                "cannot read the password of inbound-user '{user}': {e}"
            )));
            return Err(Rejection::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server cannot check credentials right now",
                format!("user={user}: password unavailable"),
            ));
        }
    };
    if !check::constant_time_eq(expected.expose().as_bytes(), password.expose().as_bytes()) {
        return Err(unauthorized(format!("user={user}: wrong password")));
    }
    match check::admission(&store, &user) {
        Ok(admission) => Ok((user, admission)),
        Err(denial) => {
            let note = match &denial {
                Denial::OnlyInactive(c) => format!(
                    "user={user}: only on inactive connection(s) {}",
                    c.iter()
                        .map(|c| c.connection.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => format!("user={user}: no connection names the user"),
            };
            Err(Rejection::new(
                StatusCode::FORBIDDEN,
                format!("inbound user '{user}' is not admitted: no active connection names it"),
                note,
            ))
        }
    }
}
