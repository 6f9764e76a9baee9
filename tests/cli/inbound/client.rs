//! A small HTTPS client and load generator for `inbound serve`, shared by the
//! tests and `examples/inbound_load.rs` (which includes this file by path).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where and how to send.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// None: plain HTTP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub user: String,
    pub password: String,
    pub http2: bool,
}

/// Trust `ca`, present `client` (cert, key) when given; ALPN h2 or http/1.1.
pub fn tls_config(
    ca: &Path,
    client: Option<(&Path, &Path)>,
    http2: bool,
) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    let mut config = match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .expect("read client cert")
                .collect::<Result<Vec<_>, _>>()
                .expect("client cert PEM");
            let key = PrivateKeyDer::from_pem_file(key).expect("client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Arc::new(config)
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// One connection to the server, reused for many requests.
pub struct Client {
    target: Target,
    sender: Sender,
}

async fn handshake<I>(io: I, http2: bool) -> Result<Sender, BoxError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    if http2 {
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        Ok(Sender::H2(sender))
    } else {
        let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(conn);
        Ok(Sender::H1(sender))
    }
}

impl Client {
    pub async fn connect(target: &Target) -> Result<Client, BoxError> {
        let tcp = TcpStream::connect(target.addr).await?;
        tcp.set_nodelay(true)?;
        let sender = match &target.tls {
            None => handshake(tcp, target.http2).await?,
            Some(config) => {
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let stream = connector
                    .connect(ServerName::try_from("localhost")?, tcp)
                    .await?;
                handshake(stream, target.http2).await?
            }
        };
        Ok(Client {
            target: target.clone(),
            sender,
        })
    }

    /// POSTs a JSON body; returns the status and the response body.
    pub async fn post(&mut self, path: &str, body: &str) -> Result<(u16, String), BoxError> {
        let credentials = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.target.user, self.target.password));
        let scheme = if self.target.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let uri = format!("{scheme}://localhost:{}{path}", self.target.addr.port());
        let mut builder = http::Request::post(&uri)
            .header("authorization", format!("Basic {credentials}"))
            .header("content-type", "application/json");
        if matches!(self.sender, Sender::H1(_)) {
            builder = builder.header("host", format!("localhost:{}", self.target.addr.port()));
        }
        let request = builder.body(Full::new(Bytes::from(body.to_string())))?;
        let response = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(request).await?
            }
            Sender::H2(s) => {
                s.ready().await?;
                s.send_request(request).await?
            }
        };
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// What a load run saw.
#[derive(Default, Debug)]
pub struct LoadReport {
    /// The ids of every 202 answer.
    pub accepted_ids: Vec<String>,
    pub statuses: BTreeMap<u16, usize>,
    pub errors: usize,
    /// Latency of each answered request.
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
}

impl LoadReport {
    pub fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index]
    }
}

/// `senders` concurrent connections each POST `messages` messages in turn. A
/// sender whose connection fails reconnects once per message and gives up on
/// the message when that fails too (the server may be shutting down).
pub async fn run_load(target: &Target, senders: usize, messages: usize) -> LoadReport {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for sender in 0..senders {
        let target = target.clone();
        tasks.spawn(async move {
            let mut report = LoadReport::default();
            let mut client = Client::connect(&target).await.ok();
            for message in 0..messages {
                let body = format!(r#"{{"sender":{sender},"message":{message}}}"#);
                if client.is_none() {
                    client = Client::connect(&target).await.ok();
                }
                let Some(c) = client.as_mut() else {
                    report.errors += 1;
                    continue;
                };
                let sent = Instant::now();
                match c.post("/load", &body).await {
                    Ok((status, text)) => {
                        report.latencies.push(sent.elapsed());
                        *report.statuses.entry(status).or_default() += 1;
                        if status == 202 {
                            let value: serde_json::Value =
                                serde_json::from_str(&text).expect("202 body is JSON");
                            report
                                .accepted_ids
                                .push(value["id"].as_str().expect("id").to_string());
                        }
                    }
                    Err(_) => {
                        report.errors += 1;
                        client = None;
                    }
                }
            }
            report
        });
    }
    let mut total = LoadReport::default();
    while let Some(done) = tasks.join_next().await {
        let report = done.expect("sender task");
        total.accepted_ids.extend(report.accepted_ids);
        for (status, n) in report.statuses {
            *total.statuses.entry(status).or_default() += n;
        }
        total.errors += report.errors;
        total.latencies.extend(report.latencies);
    }
    total.elapsed = started.elapsed();
    total
}
