//! Real parts for the outbound tests, all on loopback: a private PKI (rcgen +
//! openssl for key formats), TLS/mTLS HTTP servers, an OAuth token endpoint,
//! fault servers, and tinyproxy with Basic authentication.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

/// Certificates and keys written as PEM files in a folder.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub expired_cert: PathBuf,
    pub wrong_host_cert: PathBuf,
    /// The good client certificate (ECDSA) with its key in PKCS#8 and SEC1.
    pub client_cert: PathBuf,
    pub client_key_pkcs8: PathBuf,
    pub client_key_sec1: PathBuf,
    /// A good RSA client certificate with its key in PKCS#1.
    pub client_rsa_cert: PathBuf,
    pub client_rsa_key_pkcs1: PathBuf,
    /// Issued by another CA that the servers do not trust.
    pub rogue_cert: PathBuf,
    pub rogue_key: PathBuf,
}

fn ca(name: &str) -> (CertificateParams, KeyPair) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (params, key)
}

fn leaf(
    names: &[&str],
    cn: &str,
    client: bool,
    issuer: &Issuer<'_, KeyPair>,
    key: &KeyPair,
    expired: bool,
) -> String {
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let now = time::OffsetDateTime::now_utc();
    if expired {
        params.not_before = now - time::Duration::days(40);
        params.not_after = now - time::Duration::days(3) - time::Duration::hours(1);
    } else {
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(90);
    }
    params.signed_by(key, issuer).expect("sign leaf").pem()
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is needed to write PKCS#1 and SEC1 keys (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).expect("pki dir");
        let path = |name: &str| dir.join(name);
        let write = |name: &str, text: &str| {
            std::fs::write(path(name), text).expect("write pem");
            path(name)
        };
        let (ca_params, ca_key) = ca("connctl test CA");
        let ca_pem = ca_params.self_signed(&ca_key).expect("CA").pem();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().expect("key");
        let names = ["localhost", "127.0.0.1"];
        let server_cert = leaf(&names, "localhost", false, &issuer, &server_key, false);
        let expired_cert = leaf(&names, "localhost", false, &issuer, &server_key, true);
        let wrong_host_cert = leaf(
            &["other.example"],
            "other.example",
            false,
            &issuer,
            &server_key,
            false,
        );

        let client_key = KeyPair::generate().expect("key");
        let client_cert = leaf(&[], "connctl-client", true, &issuer, &client_key, false);
        let rsa_key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            .expect("rsa key");
        let rsa_cert = leaf(&[], "connctl-client-rsa", true, &issuer, &rsa_key, false);

        let (rogue_params, rogue_ca_key) = ca("rogue CA");
        let rogue_issuer = Issuer::new(rogue_params, rogue_ca_key);
        let rogue_key = KeyPair::generate().expect("key");
        let rogue_cert = leaf(&[], "rogue-client", true, &rogue_issuer, &rogue_key, false);

        let pki = Pki {
            dir: dir.to_path_buf(),
            ca: write("ca.pem", &ca_pem),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key.serialize_pem()),
            expired_cert: write("expired.pem", &expired_cert),
            wrong_host_cert: write("wrong-host.pem", &wrong_host_cert),
            client_cert: write("client.pem", &client_cert),
            client_key_pkcs8: write("client.pkcs8.key", &client_key.serialize_pem()),
            client_key_sec1: path("client.sec1.key"),
            client_rsa_cert: write("client-rsa.pem", &rsa_cert),
            client_rsa_key_pkcs1: path("client-rsa.pkcs1.key"),
            rogue_cert: write("rogue.pem", &rogue_cert),
            rogue_key: write("rogue.key", &rogue_key.serialize_pem()),
        };
        let rsa_pkcs8 = write("client-rsa.pkcs8.key", &rsa_key.serialize_pem());
        openssl(&[
            "ec",
            "-in",
            pki.client_key_pkcs8.to_str().unwrap(),
            "-out",
            pki.client_key_sec1.to_str().unwrap(),
        ]);
        openssl(&[
            "rsa",
            "-traditional",
            "-in",
            rsa_pkcs8.to_str().unwrap(),
            "-out",
            pki.client_rsa_key_pkcs1.to_str().unwrap(),
        ]);
        let sec1 = std::fs::read_to_string(&pki.client_key_sec1).unwrap();
        assert!(sec1.contains("BEGIN EC PRIVATE KEY"), "{sec1}");
        let pkcs1 = std::fs::read_to_string(&pki.client_rsa_key_pkcs1).unwrap();
        assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"), "{pkcs1}");
        pki
    }
}

/// One request as a server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// Version as hyper reports it, e.g. "HTTP/2.0".
    pub version: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// What a server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait before answering (a server that never answers).
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn new(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            delay: None,
        }
    }
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

pub type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A running server: its port and every request it saw.
pub struct Server {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    pub fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|s| s.path == path).count()
    }
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }
}

/// The test's servers run on this runtime while the test blocks on the binary.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// TLS settings of a test server.
pub struct TlsOptions<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    /// Require a client certificate issued by this CA (mutual TLS).
    pub client_ca: Option<&'a Path>,
    /// Offer h2 as well as http/1.1.
    pub h2: bool,
}

pub fn server_config(opts: &TlsOptions<'_>) -> rustls::ServerConfig {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(opts.cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(opts.key).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let mut config = match opts.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).unwrap() {
                roots.add(cert.unwrap()).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .unwrap();
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(certs, key)
                .unwrap()
        }
        None => builder
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    };
    config.alpn_protocols = if opts.h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    config
}

pub async fn serve_one<S>(io: S, handler: Handler, seen: Arc<Mutex<Vec<Seen>>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let handler = handler.clone();
        let seen = seen.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let request = Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                // A field sent more than once is one value joined with ", "
                // (RFC 9110 §5.3).
                headers: parts
                    .headers
                    .iter()
                    .fold(HashMap::new(), |mut all, (k, v)| {
                        let v = v.to_str().unwrap_or_default();
                        all.entry(k.as_str().to_string())
                            .and_modify(|seen: &mut String| {
                                seen.push_str(", ");
                                seen.push_str(v);
                            })
                            .or_insert_with(|| v.to_string());
                        all
                    }),
                body: body.to_vec(),
                version: format!("{:?}", parts.version),
            };
            seen.lock().unwrap().push(request.clone());
            let reply = handler(&request);
            if let Some(delay) = reply.delay {
                tokio::time::sleep(delay).await;
            }
            let mut response = hyper::Response::builder().status(reply.status);
            for (k, v) in &reply.headers {
                response = response.header(k, v);
            }
            Ok::<_, std::convert::Infallible>(
                response.body(Full::new(Bytes::from(reply.body))).unwrap(),
            )
        }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// An HTTPS server (mutual TLS when `client_ca` is set) answering with `handler`.
pub fn tls_server(rt: &Runtime, opts: TlsOptions<'_>, handler: Handler) -> Server {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config(&opts)));
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let handler = handler.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve_one(tls, handler, seen).await;
                }
            });
        }
    });
    Server { port, seen }
}

/// A plain-HTTP server answering with `handler`.
pub fn http_server(rt: &Runtime, handler: Handler) -> Server {
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve_one(tcp, handler.clone(), seen2.clone()));
        }
    });
    Server { port, seen }
}

pub fn ok_handler() -> Handler {
    Arc::new(|_| Reply::new(200, "{\"result\":\"ok\"}").header("content-type", "application/json"))
}

pub fn status_handler(status: u16) -> Handler {
    Arc::new(move |_| Reply::new(status, "refused"))
}

/// A port with nothing listening.
pub fn refused_port() -> u16 {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Raw TCP fault servers.
pub enum Fault {
    /// Accept, then reset (RST) at once.
    Reset,
    /// Accept and never say anything.
    Silent,
    /// Answer in plain HTTP whatever arrives (a non-TLS server on an https URL).
    PlainHttp,
}

pub fn fault_server(rt: &Runtime, fault: Fault) -> u16 {
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let port = listener.local_addr().unwrap().port();
    let fault = Arc::new(fault);
    rt.spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            match *fault {
                Fault::Reset => {
                    #[allow(deprecated)]
                    let _ = tcp.set_linger(Some(Duration::ZERO));
                    drop(tcp);
                }
                Fault::Silent => held.push(tcp),
                Fault::PlainHttp => {
                    tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut tcp = tcp;
                        let mut buf = [0u8; 1024];
                        let _ = tcp.read(&mut buf).await;
                        let _ = tcp
                            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await;
                        let _ = tcp.shutdown().await;
                    });
                }
            }
        }
    });
    port
}

/// A small OAuth 2.0 authorization server and a resource API checking its tokens.
pub struct OauthState {
    pub client_id: String,
    pub client_secret: String,
    pub owner: (String, String),
    /// Lifetime of issued tokens, seconds.
    pub expires_in: AtomicU64,
    pub token_requests: AtomicUsize,
    pub grants: Mutex<Vec<String>>,
    /// How the client authenticated: "basic" or "body", per token request.
    pub client_auth_seen: Mutex<Vec<String>>,
    pub scopes_seen: Mutex<Vec<String>>,
    pub tokens: Mutex<HashMap<String, Instant>>,
    pub refresh_tokens: Mutex<Vec<String>>,
    counter: AtomicUsize,
}

impl OauthState {
    pub fn new(expires_in: u64) -> Arc<OauthState> {
        Arc::new(OauthState {
            client_id: "connctl-client".into(),
            client_secret: "s3cret:with&odd=chars".into(),
            owner: ("svc.owner".into(), "owner-pw".into()),
            expires_in: AtomicU64::new(expires_in),
            token_requests: AtomicUsize::new(0),
            grants: Mutex::new(Vec::new()),
            client_auth_seen: Mutex::new(Vec::new()),
            scopes_seen: Mutex::new(Vec::new()),
            tokens: Mutex::new(HashMap::new()),
            refresh_tokens: Mutex::new(Vec::new()),
            counter: AtomicUsize::new(0),
        })
    }

    pub fn requests(&self) -> usize {
        self.token_requests.load(Ordering::SeqCst)
    }

    pub fn grants(&self) -> Vec<String> {
        self.grants.lock().unwrap().clone()
    }

    /// Forgets every access token (the resource API then answers 401).
    pub fn revoke_all(&self) {
        self.tokens.lock().unwrap().clear();
    }

    fn token(&self, req: &Seen) -> Reply {
        self.token_requests.fetch_add(1, Ordering::SeqCst);
        let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        let (id, secret, style) = match req.header("authorization") {
            Some(basic) if basic.starts_with("Basic ") => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(&basic[6..])
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(&decoded).into_owned();
                let (id, secret) = text.split_once(':').unwrap_or((&text, ""));
                let dec = |s: &str| {
                    url::form_urlencoded::parse(format!("x={s}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                (dec(id), dec(secret), "basic")
            }
            _ => (
                form.get("client_id").cloned().unwrap_or_default(),
                form.get("client_secret").cloned().unwrap_or_default(),
                "body",
            ),
        };
        self.client_auth_seen.lock().unwrap().push(style.into());
        if let Some(scope) = form.get("scope") {
            self.scopes_seen.lock().unwrap().push(scope.clone());
        }
        let error = |code: &str, status: u16| {
            Reply::new(status, &format!("{{\"error\":\"{code}\"}}"))
                .header("content-type", "application/json")
        };
        if id != self.client_id || secret != self.client_secret {
            return error("invalid_client", 401);
        }
        let grant = form.get("grant_type").cloned().unwrap_or_default();
        self.grants.lock().unwrap().push(grant.clone());
        match grant.as_str() {
            "client_credentials" => {}
            "password" => {
                if form.get("username") != Some(&self.owner.0)
                    || form.get("password") != Some(&self.owner.1)
                {
                    return error("invalid_grant", 400);
                }
            }
            "refresh_token" => {
                let presented = form.get("refresh_token").cloned().unwrap_or_default();
                let mut known = self.refresh_tokens.lock().unwrap();
                let Some(pos) = known.iter().position(|t| *t == presented) else {
                    return error("invalid_grant", 400);
                };
                known.remove(pos);
            }
            _ => return error("unsupported_grant_type", 400),
        }
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let access = format!("access-{n}");
        let refresh = format!("refresh-{n}");
        let lifetime = self.expires_in.load(Ordering::SeqCst);
        self.tokens.lock().unwrap().insert(
            access.clone(),
            Instant::now() + Duration::from_secs(lifetime),
        );
        self.refresh_tokens.lock().unwrap().push(refresh.clone());
        let scope = form.get("scope").cloned().unwrap_or_default();
        Reply::new(
            200,
            &format!(
                "{{\"access_token\":\"{access}\",\"token_type\":\"Bearer\",\"expires_in\":{lifetime},\"refresh_token\":\"{refresh}\",\"scope\":\"{scope}\"}}"
            ),
        )
        .header("content-type", "application/json")
    }

    fn api(&self, req: &Seen) -> Reply {
        let bearer = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or_default();
        let valid = self
            .tokens
            .lock()
            .unwrap()
            .get(bearer)
            .is_some_and(|until| *until > Instant::now());
        if valid {
            Reply::new(200, "{\"api\":\"ok\"}").header("content-type", "application/json")
        } else {
            Reply::new(401, "{\"error\":\"invalid_token\"}")
                .header("www-authenticate", "Bearer error=\"invalid_token\"")
        }
    }
}

/// `/oauth/token` issues tokens, every other path is the API that checks them.
pub fn oauth_handler(state: Arc<OauthState>) -> Handler {
    Arc::new(move |req| {
        if req.path == "/oauth/token" {
            state.token(req)
        } else {
            state.api(req)
        }
    })
}

/// tinyproxy with Basic authentication, in the foreground, logging each CONNECT.
pub struct Tinyproxy {
    child: Child,
    pub port: u16,
    pub log: PathBuf,
    pub user: String,
    pub password: String,
}

impl Tinyproxy {
    pub fn start(dir: &Path, user: &str, password: &str) -> Tinyproxy {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).unwrap();
        // tinyproxy drops to nobody when started as root: it must write its log here.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = refused_port();
        let log = dir.join("tinyproxy.log");
        let config = dir.join("tinyproxy.conf");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Connect\nMaxClients 50\nBasicAuth {user} {password}\nPidFile \"{}\"\n",
                log.display(),
                dir.join("tinyproxy.pid").display()
            ),
        )
        .unwrap();
        let child = Command::new("tinyproxy")
            .args(["-d", "-c"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy must be installed (scripts/test.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).is_err() {
            assert!(
                Instant::now() < deadline,
                "tinyproxy did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Tinyproxy {
            child,
            port,
            log,
            user: user.to_string(),
            password: password.to_string(),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
