//! TLS for outbound requests: trust roots, the client identity of mutual TLS,
//! and observers that let a failed handshake be explained in an operator's words.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::{Error, Result};

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// The OS trust roots, read once per process.
fn os_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// Reads every certificate of a PEM file; a bad file is a TLS failure (exit 7)
/// when it stops a connection.
pub fn read_pem_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    crate::pem::load_certs(path, what).map_err(as_tls)
}

fn as_tls(err: Error) -> Error {
    Error {
        kind: crate::error::ErrorKind::Tls,
        ..err
    }
}

/// Trust roots (OS + extra CA bundles), shared between requests with the same bundles.
pub struct Roots {
    cache: Mutex<Vec<(Vec<PathBuf>, Arc<RootCertStore>)>>,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            cache: Mutex::new(Vec::new()),
        }
    }
}

impl Roots {
    /// The OS roots plus every certificate of `bundles`.
    pub fn get(&self, bundles: &[PathBuf]) -> Result<Arc<RootCertStore>> {
        if let Ok(cache) = self.cache.lock()
            && let Some((_, store)) = cache.iter().find(|(key, _)| key == bundles)
        {
            return Ok(store.clone());
        }
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(os_roots().iter().cloned());
        for bundle in bundles {
            for cert in read_pem_certs(bundle, "CA bundle")? {
                store.add(cert).map_err(|e| {
                    Error::tls(format!(
                        "a certificate in the CA bundle {} cannot be a trust root",
                        bundle.display()
                    ))
                    .with_cause(e)
                })?;
            }
        }
        let store = Arc::new(store);
        if let Ok(mut cache) = self.cache.lock() {
            cache.push((bundles.to_vec(), store.clone()));
        }
        Ok(store)
    }
}

/// The client certificate and key of mutual TLS, loaded and checked.
#[derive(Clone)]
pub struct ClientIdentity {
    pub key: Arc<CertifiedKey>,
    /// Subject of the client certificate, for the stage detail.
    pub subject: String,
    /// Days until the client certificate expires (negative when expired).
    pub days_left: Option<i64>,
    /// When the client certificate expires (Unix seconds).
    pub not_after: Option<i64>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientIdentity({})", self.subject)
    }
}

impl ClientIdentity {
    /// Loads a PEM certificate chain and its key (PKCS#8, PKCS#1 or SEC1).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self> {
        let certs = read_pem_certs(cert_path, "client certificate")?;
        let key = crate::pem::load_key(key_path, "client key").map_err(as_tls)?;
        let signing = provider().key_provider.load_private_key(key).map_err(|e| {
            Error::tls(format!(
                "the client key {} is not a usable private key",
                key_path.display()
            ))
            .with_cause(e)
        })?;
        let summary = cert_summary(&certs[0]);
        let days_left = summary.as_ref().map(CertSummary::days_left);
        let not_after = summary.as_ref().map(|c| c.not_after);
        let subject = summary
            .map(|c| c.subject)
            .unwrap_or_else(|| "(unparsable certificate)".to_string());
        let key = CertifiedKey::new(certs, signing);
        key.keys_match().map_err(|e| {
            Error::tls(format!(
                "the client key {} does not belong to the client certificate {}",
                key_path.display(),
                cert_path.display()
            ))
            .with_cause(e)
        })?;
        Ok(ClientIdentity {
            key: Arc::new(key),
            subject,
            days_left,
            not_after,
        })
    }
}

/// What one handshake showed: the server's certificate and the client-certificate exchange.
#[derive(Debug, Default)]
pub struct Observed {
    pub server_cert: Mutex<Option<CertificateDer<'static>>>,
    pub cert_requested: AtomicBool,
    pub cert_sent: AtomicBool,
    pub tls13: AtomicBool,
    /// The first TLS error after the handshake (an alert), seen by [`Watched`].
    pub late_error: Mutex<Option<rustls::Error>>,
}

impl Observed {
    pub fn server_cert(&self) -> Option<CertSummary> {
        let cert = self.server_cert.lock().ok()?.clone()?;
        cert_summary(&cert)
    }
    pub fn requested(&self) -> bool {
        self.cert_requested.load(Ordering::Relaxed)
    }
    pub fn sent(&self) -> bool {
        self.cert_sent.load(Ordering::Relaxed)
    }
    pub fn tls13(&self) -> bool {
        self.tls13.load(Ordering::Relaxed)
    }
    pub fn set_tls13(&self, on: bool) {
        self.tls13.store(on, Ordering::Relaxed)
    }
    pub fn tls_error(&self) -> Option<rustls::Error> {
        self.late_error.lock().ok()?.clone()
    }
    fn note(&self, err: &std::io::Error) {
        if let Some(tls) = rustls_error(err)
            && let Ok(mut slot) = self.late_error.lock()
            && slot.is_none()
        {
            *slot = Some(tls.clone());
        }
    }
}

/// A TLS stream that remembers the first TLS error read or written through it: the
/// HTTP/2 client keeps only an error's text, and the alert that explains it would be lost.
pub struct Watched<S> {
    inner: S,
    seen: Arc<Observed>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, seen: Arc<Observed>) -> Self {
        Watched { inner, seen }
    }
    fn check<T>(&self, result: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if let Poll::Ready(Err(e)) = &result {
            self.seen.note(e);
        }
        result
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.check(result)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(result)
    }
}

/// Verifies like WebPKI (or not at all with `--insecure`), remembering the certificate shown.
#[derive(Debug)]
struct ObservingVerifier {
    inner: Option<Arc<WebPkiServerVerifier>>,
    seen: Arc<Observed>,
}

impl ServerCertVerifier for ObservingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut slot) = self.seen.server_cert.lock() {
            *slot = Some(end_entity.clone().into_owned());
        }
        match &self.inner {
            Some(inner) => {
                inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Hands out the client certificate (if any), remembering that the server asked for one.
#[derive(Debug)]
struct ObservingResolver {
    identity: Option<Arc<CertifiedKey>>,
    seen: Arc<Observed>,
}

impl ResolvesClientCert for ObservingResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.seen.cert_requested.store(true, Ordering::Relaxed);
        if self.identity.is_some() {
            self.seen.cert_sent.store(true, Ordering::Relaxed);
        }
        self.identity.clone()
    }

    fn has_certs(&self) -> bool {
        // Always true, so the handshake keeps what it needs to answer a request.
        true
    }
}

/// The TLS settings of one destination.
#[derive(Clone)]
pub struct TlsSettings {
    pub roots: Arc<RootCertStore>,
    pub identity: Option<ClientIdentity>,
    pub insecure: bool,
}

impl TlsSettings {
    /// A client config for one handshake, with fresh observers.
    pub fn client_config(&self, alpn_h2: bool) -> Result<(Arc<ClientConfig>, Arc<Observed>)> {
        let seen = Arc::new(Observed::default());
        let inner = if self.insecure {
            None
        } else {
            Some(
                WebPkiServerVerifier::builder_with_provider(self.roots.clone(), provider())
                    .build()
                    .map_err(|e| {
                        Error::tls("cannot build the certificate verifier").with_cause(e)
                    })?,
            )
        };
        let verifier = Arc::new(ObservingVerifier {
            inner,
            seen: seen.clone(),
        });
        let resolver = Arc::new(ObservingResolver {
            identity: self.identity.as_ref().map(|i| i.key.clone()),
            seen: seen.clone(),
        });
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::tls("cannot set up TLS").with_cause(e))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(resolver);
        config.alpn_protocols = if alpn_h2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok((Arc::new(config), seen))
    }
}

/// What a completed handshake showed, kept on the trace for comparisons (`diff --live`).
#[derive(Debug, Clone)]
pub struct TlsFacts {
    /// `TLS 1.3`, `TLS 1.2`.
    pub version: String,
    pub alpn: Option<String>,
    pub server: Option<CertSummary>,
    pub client_cert_requested: bool,
}

impl TlsFacts {
    pub fn of(conn: &rustls::ClientConnection, seen: &Observed) -> TlsFacts {
        TlsFacts {
            version: match conn.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_string(),
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_string(),
                Some(other) => format!("{other:?}"),
                None => "TLS".to_string(),
            },
            alpn: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            server: seen.server_cert(),
            client_cert_requested: seen.requested(),
        }
    }
}

/// "expires in 12 days", with a warning inside 30 days and "EXPIRED" after.
pub fn expiry_text(days: i64) -> String {
    match days {
        d if d < 0 => format!("EXPIRED {} day{} ago", -d, if d == -1 { "" } else { "s" }),
        1 => "expires in 1 day: RENEW SOON".to_string(),
        d if d < 30 => format!("expires in {d} days: RENEW SOON"),
        d => format!("expires in {d} days"),
    }
}

/// The parts of a certificate an operator needs.
#[derive(Debug, Clone)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    pub not_after: i64,
    pub names: Vec<String>,
}

impl CertSummary {
    /// Whole days until expiry (negative when expired).
    pub fn days_left(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        (self.not_after - now).div_euclid(86_400)
    }

    /// Whole days since expiry (0 on the day it expired).
    pub fn days_expired(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        (now - self.not_after).div_euclid(86_400).max(0)
    }
}

pub fn cert_summary(der: &CertificateDer<'_>) -> Option<CertSummary> {
    use x509_parser::prelude::*;
    let (_, cert) = parse_x509_certificate(der.as_ref()).ok()?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => names.push(d.to_string()),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => names.push(
                        std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
                    ),
                    16 => {
                        let mut octets = [0u8; 16];
                        octets.copy_from_slice(bytes);
                        names.push(std::net::Ipv6Addr::from(octets).to_string());
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Some(CertSummary {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after: cert.validity().not_after.timestamp(),
        names,
    })
}

/// Finds the rustls error inside an I/O error chain.
pub fn rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(tls) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(tls);
        }
        current = e.source();
    }
    None
}

/// Explains a failed TLS exchange with `host`, given what the handshake showed.
pub fn explain(
    tls: &rustls::Error,
    host: &str,
    seen: &Observed,
    mutual_auth: bool,
    connection: &str,
) -> Error {
    let server = seen.server_cert();
    let issuer = server
        .as_ref()
        .map(|c| c.issuer.clone())
        .unwrap_or_else(|| "an unknown issuer".to_string());
    match tls {
        rustls::Error::InvalidCertificate(cert_err) => match cert_err {
            CertificateError::UnknownIssuer => Error::tls(format!(
                "server certificate is not trusted: issued by {issuer}"
            ))
            .with_hint(
                "add the CA with --ca-bundle (connection) or to the protocol profile's CA bundle",
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                let days = server.as_ref().map(|c| c.days_expired()).unwrap_or(0);
                let ago = match days {
                    0 => "today".to_string(),
                    1 => "1 day ago".to_string(),
                    n => format!("{n} days ago"),
                };
                Error::tls(format!("server certificate expired {ago}"))
                    .with_hint("the remote system must renew its certificate")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                Error::tls("server certificate is not valid yet (check this machine's clock)")
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                let names = server
                    .as_ref()
                    .map(|c| c.names.join(", "))
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "other names".to_string());
                Error::tls(format!("server certificate is for {names}, not for {host}"))
                    .with_hint("check the host name in the endpoint URL")
            }
            CertificateError::Revoked => Error::tls("server certificate has been revoked"),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                Error::tls(
                    "server certificate is not meant for a TLS server (its extended key usage)",
                )
            }
            CertificateError::BadSignature => Error::tls(format!(
                "server certificate's signature does not verify against its issuer {issuer}"
            )),
            other => Error::tls(format!("server certificate was refused: {other:?}")),
        },
        rustls::Error::AlertReceived(alert) => explain_alert(*alert, seen, mutual_auth, connection),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            Error::tls(format!(
                "{host} did not answer with TLS: the server may speak plain HTTP"
            ))
            .with_hint("check the scheme of the endpoint URL (https:// or http://)")
            .with_cause(tls)
        }
        rustls::Error::NoApplicationProtocol => {
            Error::tls("the server accepts neither HTTP/2 nor HTTP/1.1 over TLS (ALPN)")
        }
        other => Error::tls(format!("TLS handshake with {host} failed")).with_cause(other),
    }
}

/// The server asked for a client certificate and got none: a failure that follows
/// (an alert, or in TLS 1.3 often just a reset or a closed connection, since the
/// client learns of the refusal only after its handshake is done) is that refusal.
pub fn missing_client_cert(
    seen: &Observed,
    mutual_auth: bool,
    connection: &str,
    cause: impl std::fmt::Display,
) -> Option<Error> {
    if !seen.requested() || seen.sent() {
        return None;
    }
    let message = if mutual_auth {
        "the server requires a client certificate and none was sent"
    } else {
        "the server requires a client certificate and the connection has mutual auth off"
    };
    Some(
        Error::tls(message)
            .with_hint(format!("turn on mutual auth with a protocol profile: connctl connection edit {connection} --mutual-auth --protocol-profile PROFILE"))
            .with_cause(cause),
    )
}

/// Statuses a web server answers a refused client certificate with: nginx's
/// 400 pages (its internal 495/496 show as 400), 403 elsewhere, 495/496 as such.
pub fn may_be_client_cert_page(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 400 | 403 | 495 | 496)
}

/// Words of the pages web servers send for a missing or refused client
/// certificate (nginx: "No required SSL certificate was sent", "The SSL
/// certificate error"; IIS 403.7: "Client certificate required").
const CLIENT_CERT_PAGE_WORDS: &[&str] = &[
    "No required SSL certificate was sent",
    "The SSL certificate error",
    "Client certificate required",
];

/// The server asked for a client certificate and then answered with a page
/// saying it is missing or refused: the same verdict as a TLS alert (exit 7).
pub fn client_cert_page(
    status: http::StatusCode,
    body: &[u8],
    seen: &Observed,
    mutual_auth: bool,
    connection: &str,
) -> Option<Error> {
    if !seen.requested() || !may_be_client_cert_page(status) {
        return None;
    }
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    let said = CLIENT_CERT_PAGE_WORDS
        .iter()
        .find(|w| text.contains(&w.to_ascii_lowercase()));
    let status_text = match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    };
    let cause = match (said, status.as_u16()) {
        (Some(words), _) => format!("the server answered {status_text} saying \"{words}\""),
        (None, 495) => "the server answered 495 (SSL Certificate Error)".to_string(),
        (None, 496) => "the server answered 496 (SSL Certificate Required)".to_string(),
        (None, _) => return None,
    };
    if let Some(err) = missing_client_cert(seen, mutual_auth, connection, &cause) {
        return Some(err);
    }
    Some(
        Error::tls(format!(
            "the server rejected the client certificate ({cause})"
        ))
        .with_hint(
            "the remote system must trust the issuer of the protocol profile's client certificate",
        ),
    )
}

fn explain_alert(
    alert: AlertDescription,
    seen: &Observed,
    mutual_auth: bool,
    connection: &str,
) -> Error {
    let client_cert_alert = matches!(
        alert,
        AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::AccessDenied
            | AlertDescription::DecryptError
            | AlertDescription::HandshakeFailure
    );
    if client_cert_alert
        && let Some(err) = missing_client_cert(
            seen,
            mutual_auth,
            connection,
            format!("the server sent the TLS alert {alert:?}"),
        )
    {
        return err;
    }
    if client_cert_alert && seen.sent() {
        return Error::tls(format!(
            "the server rejected the client certificate (TLS alert {alert:?})"
        ))
        .with_hint(
            "the remote system must trust the issuer of the protocol profile's client certificate",
        );
    }
    Error::tls(format!(
        "the server ended the TLS handshake with the alert {alert:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::expiry_text;

    #[test]
    fn expiry_warns_inside_thirty_days() {
        assert_eq!(expiry_text(90), "expires in 90 days");
        assert_eq!(expiry_text(12), "expires in 12 days: RENEW SOON");
        assert_eq!(expiry_text(1), "expires in 1 day: RENEW SOON");
        assert_eq!(expiry_text(-3), "EXPIRED 3 days ago");
    }
}
