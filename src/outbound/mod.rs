//! Outbound requests through a connection: secrets, OAuth token, DNS, TCP, MID server,
//! TLS/mTLS and HTTP, each stage timed and explained. Used by `connection test` and `send`.

pub mod expiry;
pub mod oauth;

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::model::{
    Authentication, Connection, Grant, MidServer, OauthProfile, ProtocolProfile, RecordKind,
    SecretSource, Store,
};
use crate::net::proxy::{Proxy, ProxyEnv};
use crate::net::tls::{ClientIdentity, Roots, TlsSettings};
pub use crate::net::transport::{BodyMode, HttpRequest, Response, Route};
use crate::net::{Stage, Trace, limits, transport};
use crate::secrets::{self, Secret, SecretRef};

/// A connection with the records it refers to, looked up in the store.
#[derive(Debug, Clone)]
pub struct Target {
    pub store_id: String,
    pub name: String,
    pub connection: Connection,
    pub oauth: Option<(String, OauthProfile)>,
    pub protocol: Option<(String, ProtocolProfile)>,
    pub mid: Option<(String, MidServer)>,
    /// The protocol profile an OAuth profile's tls_client_auth presents.
    pub oauth_protocol: Option<(String, ProtocolProfile)>,
    /// Values to try instead of the stored ones (a rotation's test).
    pub trial: Trial,
}

impl Target {
    /// The protocol profile of `oauth`'s tls_client_auth, looked up in the store.
    pub fn oauth_protocol_of(
        store: &Store,
        oauth: &Option<(String, OauthProfile)>,
    ) -> Result<Option<(String, ProtocolProfile)>> {
        match oauth.as_ref().and_then(|(_, p)| p.protocol_profile.clone()) {
            Some(name) => Ok(Some((
                name.clone(),
                store
                    .protocol_profile
                    .get(&name)
                    .ok_or_else(|| Error::not_found("protocol-profile", &name))?
                    .clone(),
            ))),
            None => Ok(None),
        }
    }
}

/// A test of secrets that are not stored yet: `rotate` runs the connection's
/// staged test with the candidate value in place of the stored one.
#[derive(Debug, Clone, Default)]
pub struct Trial {
    /// (kind, record name, field) → the value to use instead of resolving the source.
    pub secrets: Vec<(RecordKind, String, String, Secret)>,
    /// Fetch a fresh OAuth token, neither reading nor writing the token cache.
    pub fresh_token: bool,
}

impl Trial {
    fn value_for(&self, at: &SecretRef) -> Option<Secret> {
        self.secrets
            .iter()
            .find(|(kind, name, field, _)| {
                *kind == at.kind && *name == at.name && *field == at.field
            })
            .map(|(_, _, _, value)| value.clone())
    }
}

impl Target {
    pub fn from_store(store: &Store, name: &str) -> Result<Target> {
        let connection = store
            .connection
            .get(name)
            .ok_or_else(|| Error::not_found("connection", name))?
            .clone();
        let oauth = match connection.oauth_profile_used() {
            Some(p) => Some((
                p.to_string(),
                store
                    .oauth_profile
                    .get(p)
                    .ok_or_else(|| Error::not_found("oauth-profile", p))?
                    .clone(),
            )),
            None => None,
        };
        let protocol = match connection.protocol_profile.clone() {
            Some(p) if connection.mutual_auth => Some((
                p.clone(),
                store
                    .protocol_profile
                    .get(&p)
                    .ok_or_else(|| Error::not_found("protocol-profile", &p))?
                    .clone(),
            )),
            _ => None,
        };
        let mid = match &connection.mid_server {
            Some(m) => Some((
                m.clone(),
                store
                    .mid_server
                    .get(m)
                    .ok_or_else(|| Error::not_found("mid-server", m))?
                    .clone(),
            )),
            None => None,
        };
        let oauth_protocol = Target::oauth_protocol_of(store, &oauth)?;
        Ok(Target {
            store_id: store.store_id.clone(),
            name: name.to_string(),
            connection,
            oauth,
            protocol,
            mid,
            oauth_protocol,
            trial: Trial::default(),
        })
    }
}

/// What to send and how patiently.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub method: Method,
    pub path: Option<String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    pub content_type: Option<String>,
    pub timeout: Duration,
    pub insecure: bool,
    /// How much of the endpoint's body to read (`send` streams it).
    pub read: BodyMode,
    /// Header values that use secret variables, unrendered: filled in after
    /// the secrets stage with `variables` and the resolved secret variables.
    pub secret_headers: Vec<(HeaderName, String)>,
    /// The secret variables those headers use, with their sources.
    pub secret_variables: Vec<(String, SecretSource)>,
    pub variables: Option<crate::template::Variables>,
}

impl Default for RequestSpec {
    fn default() -> Self {
        RequestSpec {
            method: Method::GET,
            path: None,
            headers: Vec::new(),
            body: Bytes::new(),
            content_type: None,
            timeout: Duration::from_secs(30),
            insecure: false,
            read: BodyMode::Head(limits::TEST_BODY),
            secret_headers: Vec::new(),
            secret_variables: Vec::new(),
            variables: None,
        }
    }
}

/// Parses one `-H 'Name: value'`.
pub fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue)> {
    // The value may be a credential (`Authorization Bearer ...` without its
    // colon): a message names the header, never repeats the rest.
    let (name, value) = text.split_once(':').ok_or_else(|| {
        let name = text.split_whitespace().next().unwrap_or_default();
        Error::usage(format!("header '{name} ...' must look like 'Name: value'"))
    })?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| Error::usage(format!("'{}' is not a valid header name", name.trim())))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| Error::usage(format!("the value of header '{name}' is not valid")))?;
    Ok((name, value))
}

/// Joins `--path` to the endpoint URL: `https://h/api` + `/items?x=1` → `https://h/api/items?x=1`.
pub fn join_path(endpoint: &str, path: Option<&str>) -> Result<url::Url> {
    let mut url = url::Url::parse(endpoint).map_err(|e| {
        Error::invalid(format!("the endpoint URL '{endpoint}' is invalid")).with_cause(e)
    })?;
    if let Some(extra) = path.filter(|p| !p.is_empty()) {
        let (extra_path, query) = match extra.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (extra, None),
        };
        if !extra_path.is_empty() {
            let base = url.path().trim_end_matches('/').to_string();
            url.set_path(&format!("{base}/{}", extra_path.trim_start_matches('/')));
        }
        if let Some(q) = query {
            url.set_query(Some(q));
        }
    }
    Ok(url)
}

impl Prepared {
    /// A retry's own `--timeout`, from now (the secrets are read already).
    fn restart_clock(&mut self, timeout: Duration) {
        let at = Some(Instant::now() + timeout);
        self.route.deadline = at;
        if let Some(source) = &mut self.token_source {
            source.route.deadline = at;
        }
    }
}

/// A connection ready to send: secrets resolved, routes and TLS built.
pub struct Prepared {
    pub target: Target,
    pub url: url::Url,
    pub basic: Option<(String, Secret)>,
    pub token_source: Option<oauth::TokenSource>,
    pub route: Route,
    /// Headers filled with secret variables (marked sensitive).
    pub secret_headers: Vec<(HeaderName, HeaderValue)>,
}

/// The result of one exchange through a connection.
#[derive(Debug)]
pub struct Outcome {
    pub connection: String,
    pub trace: Trace,
    pub response: Option<Response>,
    pub error: Option<Error>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    pub fn exit_code(&self) -> u8 {
        self.error.as_ref().map(|e| e.exit_code()).unwrap_or(0)
    }

    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().map(|r| r.status.as_u16())
    }

    /// The JSON object of `connection test -o json`.
    pub fn to_json(&self) -> Value {
        json!({
            "connection": self.connection,
            "ok": self.ok(),
            "failed_stage": self.trace.failed_stage().map(|s| s.as_str()),
            "status": self.status(),
            "exit_code": self.exit_code(),
            "stages": self.trace.stages.iter().map(|s| json!({
                "stage": s.stage.as_str(),
                "ok": s.ok,
                "ms": s.ms,
                "detail": s.detail,
            })).collect::<Vec<_>>(),
        })
    }

    /// Judges the answer: `accept` says which statuses pass. 401/403 are
    /// authentication failures, anything else refused is a failed check.
    pub fn judge(&mut self, accept: impl Fn(u16) -> bool, auth: Authentication) {
        if self.error.is_some() {
            return;
        }
        let Some(response) = &self.response else {
            return;
        };
        let status = response.status;
        if accept(status.as_u16()) {
            return;
        }
        let text = transport::status_text(status);
        let err = match status.as_u16() {
            401 | 403 => {
                let err = Error::auth(format!("the endpoint refused the credentials ({text})"));
                match auth {
                    Authentication::Basic => err.with_hint(format!(
                        "check the user and password of connection '{}'",
                        self.connection
                    )),
                    Authentication::Oauth => err.with_hint(
                        "the endpoint refused the OAuth token: check the profile's scopes and grant",
                    ),
                    Authentication::None => err.with_hint(
                        "the endpoint wants credentials; the connection has authentication none",
                    ),
                }
            }
            _ => Error::failed(format!("the endpoint answered {text}")),
        };
        if let Some(record) = self.trace.last_mut(Stage::Http) {
            record.ok = false;
            record.detail = format!("{}: {}", record.detail, err.message);
        }
        self.error = Some(err);
    }
}

/// Shared state of one run: trust roots read once, the proxy environment.
pub struct Outbound {
    roots: Roots,
    proxy_env: ProxyEnv,
    dns: std::sync::Arc<transport::DnsCache>,
}

impl Default for Outbound {
    fn default() -> Self {
        Self::new()
    }
}

fn secret_ref(target: &Target, kind: RecordKind, name: &str, field: &str) -> SecretRef {
    SecretRef::new(&target.store_id, kind, name, field)
}

/// One secret, within the command's `--timeout` (`deadline`): a `file:` or
/// `cmd:` source stops itself at the smaller of that and its own limit (a
/// timed-out command's process group is killed); a keyring or Vault read
/// that outlasts it is given up here (its thread ends with the process).
async fn resolve(
    source: SecretSource,
    at: SecretRef,
    deadline: secrets::Deadline,
) -> Result<Secret> {
    let own_limit = matches!(source, SecretSource::File(_) | SecretSource::Cmd(_));
    let label = source.to_string();
    let read = off_runtime(move || secrets::resolve_within(&source, &at, Some(deadline)));
    if own_limit {
        return read.await;
    }
    match tokio::time::timeout_at(deadline.at.into(), read).await {
        Ok(result) => result,
        Err(_) => Err(Error::secret(format!(
            "reading the secret ({label}) did not finish within the command's --timeout ({})",
            transport::format_secs(deadline.timeout)
        ))
        .with_hint("raise --timeout (seconds), or check why the secret store is slow")),
    }
}

/// Runs a blocking secrets call on a plain thread, outside the runtime's
/// context, so a keyring backend may start its own runtime as it does when
/// called from the synchronous commands.
pub(crate) async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("connctl-secrets".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| Error::secret("cannot start a thread for the secrets").with_source(&e))?;
    rx.await
        .map_err(|_| Error::secret("reading a secret did not finish (the call panicked)"))?
}

impl Outbound {
    pub fn new() -> Self {
        Outbound {
            roots: Roots::default(),
            proxy_env: ProxyEnv::from_env(),
            dns: Default::default(),
        }
    }

    /// A route to `url` outside any connection (discovery): OS roots (and
    /// `SSL_CERT_FILE`), the environment's proxy, no client certificate.
    pub fn plain_route(&self, url: &str, timeout: Duration) -> Result<Route> {
        let parsed = url::Url::parse(url)
            .map_err(|e| Error::invalid(format!("'{url}' is not a URL")).with_cause(e))?;
        let proxy = self.proxy_env.for_url(
            parsed.scheme(),
            parsed.host_str().unwrap_or_default(),
            parsed.port_or_known_default().unwrap_or(443),
        )?;
        Ok(Route {
            proxy,
            tls: TlsSettings {
                roots: self.roots.get(&[])?,
                identity: None,
                insecure: false,
            },
            mutual_auth: false,
            timeout,
            deadline: None,
            connection: String::new(),
            dns: self.dns.clone(),
        })
    }

    /// The secrets stage and everything that needs no network.
    pub async fn prepare(
        &self,
        target: &Target,
        spec: &RequestSpec,
        trace: &mut Trace,
    ) -> Result<Prepared> {
        let started = Instant::now();
        // One --timeout for the attempt: reading the secrets, the token, and
        // DNS to the last body byte all count against it.
        let deadline = secrets::Deadline::after(spec.timeout);
        let conn = &target.connection;
        let mut used = Vec::new();
        // Each keyring lookup is a D-Bus round trip: resolve them all at once.
        let secrets = async {
            let needs_password = conn.authentication == Authentication::Basic
                || target
                    .oauth
                    .as_ref()
                    .is_some_and(|(_, p)| p.grant == Grant::Password);
            let mut wanted: Vec<(String, SecretSource, SecretRef)> = Vec::new();
            let mut user = None;
            if needs_password {
                user = Some(conn.user.clone().ok_or_else(|| {
                    Error::invalid(format!("connection '{}' has no user", target.name))
                })?);
                let source = conn.password.clone().ok_or_else(|| {
                    Error::secret(format!(
                        "connection '{}' has no password source",
                        target.name
                    ))
                })?;
                let at = secret_ref(target, RecordKind::Connection, &target.name, "password");
                wanted.push(("connection password".into(), source, at));
            }
            if let Some((name, profile)) = &target.oauth
                && let Some(source) = &profile.client_secret
            {
                let at = secret_ref(target, RecordKind::OauthProfile, name, "client_secret");
                wanted.push(("OAuth client secret".into(), source.clone(), at));
            }
            if let Some((name, profile)) = &target.oauth
                && let Some(source) = &profile.signing_key
                && (profile.grant == Grant::JwtBearer
                    || profile.client_auth == crate::model::ClientAuth::PrivateKeyJwt)
            {
                let at = secret_ref(target, RecordKind::OauthProfile, name, "signing_key");
                wanted.push(("OAuth signing key".to_string(), source.clone(), at));
            }
            if let Some((name, mid)) = &target.mid
                && let Some(source) = &mid.password
            {
                let at = secret_ref(target, RecordKind::MidServer, name, "password");
                wanted.push(("MID server password".into(), source.clone(), at));
            }
            for (key, source) in &spec.secret_variables {
                let field = format!("var.{key}");
                let at = secret_ref(target, RecordKind::Connection, &target.name, &field);
                wanted.push((format!("secret variable '{key}'"), source.clone(), at));
            }
            let mut pending = Vec::new();
            for (what, source, at) in &wanted {
                if let Some(value) = target.trial.value_for(at) {
                    used.push(format!("{what} (the value on trial)"));
                    pending.push(tokio::spawn(async move { Ok(value) }));
                    continue;
                }
                used.push(format!("{what} ({source})"));
                let (source, at) = (source.clone(), at.clone());
                pending.push(tokio::spawn(resolve(source, at, deadline)));
            }
            let mut values = std::collections::HashMap::new();
            for ((what, _, _), task) in wanted.iter().zip(pending) {
                let value = task
                    .await
                    .map_err(|e| Error::secret("reading a secret did not finish").with_cause(e))?
                    .map_err(|e| Error {
                        message: format!("{what}: {}", e.message),
                        ..e
                    })?;
                values.insert(what.clone(), value);
            }
            let basic_or_owner = match (user, values.remove("connection password")) {
                (Some(user), Some(password)) => Some((user, password)),
                _ => None,
            };
            let signing_key = values.remove("OAuth signing key").map(|pem| {
                let label = target
                    .oauth
                    .as_ref()
                    .and_then(|(_, p)| p.signing_key.as_ref())
                    .map(|s| match s {
                        SecretSource::File(path) => path.display().to_string(),
                        other => format!("({other})"),
                    })
                    .unwrap_or_default();
                (pem, label)
            });
            let mut secret_values = std::collections::BTreeMap::new();
            for (key, _) in &spec.secret_variables {
                if let Some(value) = values.remove(&format!("secret variable '{key}'")) {
                    secret_values.insert(key.clone(), value);
                }
            }
            Ok::<_, Error>((
                basic_or_owner,
                (values.remove("OAuth client secret"), signing_key),
                values.remove("MID server password"),
                secret_values,
            ))
        }
        .await;
        let (basic_or_owner, (client_secret, signing_key), mid_password, secret_values) = trace
            .record(Stage::Secrets, started, secrets, |_| {
                if used.is_empty() {
                    "no secrets needed".to_string()
                } else {
                    format!("resolved {}", used.join(", "))
                }
            })?;

        let mut secret_headers = Vec::new();
        for (name, template) in &spec.secret_headers {
            let what = format!("header '{name}'");
            let filled = match &spec.variables {
                Some(vars) => vars.render_secret_text(&what, template, &secret_values)?,
                None => Secret::new(template.clone()),
            };
            // The message never repeats the value: it holds a secret.
            let mut value = HeaderValue::from_str(filled.expose().trim()).map_err(|_| {
                Error::invalid(format!(
                    "the value of header '{name}' is not valid once its secret variables are filled in"
                ))
                .with_hint("a header value is one line of visible characters; check the secret's value")
            })?;
            value.set_sensitive(true);
            secret_headers.push((name.clone(), value));
        }

        let url = join_path(&conn.endpoint_url, spec.path.as_deref())?;
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(443);

        let mid_proxy = match &target.mid {
            Some((name, mid)) => {
                let mut p = Proxy::parse(&mid.url, format!("MID server '{name}'"), true)?;
                if mid.user.is_some() {
                    p.user = mid.user.clone();
                    p.password = mid_password.clone();
                }
                Some(p)
            }
            None => None,
        };
        let proxy = match &mid_proxy {
            Some(p) => Some(p.clone()),
            None => self.proxy_env.for_url(url.scheme(), &host, port)?,
        };

        let tls_started = Instant::now();
        let tls = (|| {
            let mut bundles: Vec<PathBuf> = Vec::new();
            bundles.extend(conn.ca_bundle.clone());
            if let Some((_, p)) = &target.protocol {
                bundles.extend(p.ca_bundle.clone());
            }
            let roots = self.roots.get(&bundles)?;
            let identity = match &target.protocol {
                Some((name, p)) => Some(
                    ClientIdentity::load(&p.client_cert, &p.client_key).map_err(|e| Error {
                        message: format!("protocol profile '{name}': {}", e.message),
                        ..e
                    })?,
                ),
                None => None,
            };
            Ok::<_, Error>((roots, identity))
        })();
        let (roots, identity) = match tls {
            Ok(pair) => pair,
            Err(e) => return Err(trace.fail(Stage::Tls, tls_started, e)),
        };
        trace.expiry.client_cert = identity.as_ref().and_then(|i| i.not_after);
        let route = Route {
            proxy,
            tls: TlsSettings {
                roots: roots.clone(),
                identity,
                insecure: spec.insecure,
            },
            mutual_auth: conn.mutual_auth,
            timeout: spec.timeout,
            deadline: Some(deadline.at.into()),
            connection: target.name.clone(),
            dns: self.dns.clone(),
        };

        let (basic, owner) = match conn.authentication {
            Authentication::Basic => (basic_or_owner, None),
            _ => (None, basic_or_owner),
        };
        let token_source = match &target.oauth {
            Some((name, profile)) => {
                let token_url = url::Url::parse(&profile.token_url).map_err(|e| {
                    Error::invalid(format!(
                        "the token URL of OAuth profile '{name}' is invalid"
                    ))
                    .with_cause(e)
                })?;
                let token_proxy = match &mid_proxy {
                    Some(p) => Some(p.clone()),
                    None => self.proxy_env.for_url(
                        token_url.scheme(),
                        token_url.host_str().unwrap_or_default(),
                        token_url.port_or_known_default().unwrap_or(443),
                    )?,
                };
                let field = oauth::cache_field(profile, Some(&target.name));
                // tls_client_auth (RFC 8705): the OAuth profile's protocol profile
                // is presented to the token endpoint, and its CA bundle trusted.
                let (token_roots, token_identity) = match &target.oauth_protocol {
                    Some((pname, p))
                        if profile.client_auth == crate::model::ClientAuth::TlsClientAuth =>
                    {
                        let started = Instant::now();
                        let loaded = (|| {
                            let mut bundles: Vec<PathBuf> = Vec::new();
                            bundles.extend(conn.ca_bundle.clone());
                            bundles.extend(p.ca_bundle.clone());
                            let roots = self.roots.get(&bundles)?;
                            let identity = ClientIdentity::load(&p.client_cert, &p.client_key)
                                .map_err(|e| Error {
                                    message: format!("protocol profile '{pname}': {}", e.message),
                                    ..e
                                })?;
                            Ok::<_, Error>((roots, Some(identity)))
                        })();
                        match loaded {
                            Ok(pair) => pair,
                            Err(e) => return Err(trace.fail(Stage::OauthToken, started, e)),
                        }
                    }
                    _ => (roots, None),
                };
                Some(oauth::TokenSource {
                    profile_name: name.clone(),
                    profile: profile.clone(),
                    client_secret,
                    owner,
                    cache_at: secret_ref(target, RecordKind::OauthProfile, name, &field),
                    refresh_at: secret_ref(
                        target,
                        RecordKind::OauthProfile,
                        name,
                        oauth::REFRESH_FIELD,
                    ),
                    signing_key,
                    uncached: target.trial.fresh_token,
                    route: Route {
                        proxy: token_proxy,
                        tls: TlsSettings {
                            roots: token_roots,
                            identity: token_identity,
                            insecure: false,
                        },
                        mutual_auth: false,
                        timeout: spec.timeout,
                        deadline: Some(deadline.at.into()),
                        connection: target.name.clone(),
                        dns: self.dns.clone(),
                    },
                })
            }
            None => None,
        };
        Ok(Prepared {
            target: target.clone(),
            url,
            basic,
            token_source,
            route,
            secret_headers,
        })
    }

    /// The oauth_token stage: a token for the request, or none without OAuth.
    pub async fn token(
        &self,
        prepared: &Prepared,
        fresh: bool,
        trace: &mut Trace,
    ) -> Result<Option<oauth::Token>> {
        let Some(source) = &prepared.token_source else {
            return Ok(None);
        };
        let started = Instant::now();
        let token = oauth::obtain(source, fresh).await;
        if let Ok(t) = &token {
            trace.expiry.token = Some(t.expires_at);
        }
        trace
            .record(Stage::OauthToken, started, token, |t| {
                format!("profile '{}': {}", source.profile_name, oauth::describe(t))
            })
            .map(Some)
    }

    fn http_request(
        &self,
        prepared: &Prepared,
        spec: &RequestSpec,
        token: Option<&oauth::Token>,
    ) -> HttpRequest {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::ACCEPT, HeaderValue::from_static("*/*"));
        let content_type = match &spec.content_type {
            Some(ct) => Some(ct.as_str()),
            None if !spec.body.is_empty() => Some("application/json"),
            None => None,
        };
        if let Some(ct) = content_type
            && let Ok(value) = HeaderValue::from_str(ct)
        {
            headers.insert(http::header::CONTENT_TYPE, value);
        }
        let authorization = match (&prepared.basic, token) {
            (Some((user, password)), _) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", password.expose()))
            )),
            (None, Some(t)) => Some(format!("Bearer {}", t.access_token.expose())),
            _ => None,
        };
        if let Some(auth) = authorization
            && let Ok(mut value) = HeaderValue::from_str(&auth)
        {
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
        }
        // The operator's own headers replace the defaults; a name given
        // more than once is sent once per value.
        let mut given = std::collections::HashSet::new();
        for (name, value) in spec.headers.iter().chain(&prepared.secret_headers) {
            if given.insert(name) {
                headers.insert(name.clone(), value.clone());
            } else {
                headers.append(name.clone(), value.clone());
            }
        }
        HttpRequest {
            url: prepared.url.clone(),
            method: spec.method.clone(),
            headers,
            body: spec.body.clone(),
        }
    }

    /// One request through a prepared connection, with the OAuth rule: a 401 answered
    /// to a cached token drops the cache, fetches a new token and tries once more.
    pub async fn attempt(
        &self,
        prepared: &Prepared,
        spec: &RequestSpec,
        mut trace: Trace,
    ) -> (Trace, Result<Response>) {
        let token = match self.token(prepared, false, &mut trace).await {
            Ok(t) => t,
            Err(e) => return (trace, Err(e)),
        };
        let before_transport = trace.clone();
        let req = self.http_request(prepared, spec, token.as_ref());
        let result = transport::execute_with(&req, &prepared.route, &mut trace, spec.read).await;
        let retry_with_fresh_token = matches!(
            (&result, &token),
            (Ok(r), Some(t)) if r.status == StatusCode::UNAUTHORIZED && t.origin == "cached"
        );
        if !retry_with_fresh_token {
            return (trace, result);
        }
        let mut trace = before_transport;
        if let Some(source) = &prepared.token_source {
            let _ = oauth::forget(source).await;
        }
        // Replace the oauth_token stage with the fresh fetch.
        trace.stages.retain(|s| s.stage != Stage::OauthToken);
        let token = match self.token(prepared, true, &mut trace).await {
            Ok(t) => t,
            Err(e) => return (trace, Err(e)),
        };
        if let Some(record) = trace
            .stages
            .iter_mut()
            .find(|s| s.stage == Stage::OauthToken)
        {
            record
                .detail
                .push_str(" (the cached token was refused with 401)");
        }
        let req = self.http_request(prepared, spec, token.as_ref());
        let result = transport::execute_with(&req, &prepared.route, &mut trace, spec.read).await;
        (trace, result)
    }

    /// Prepares and sends once: the whole of `connection test` for one connection.
    pub async fn exchange(&self, target: &Target, spec: &RequestSpec) -> Outcome {
        let mut trace = Trace::default();
        let prepared = match self.prepare(target, spec, &mut trace).await {
            Ok(p) => p,
            Err(e) => return outcome(target, trace, Err(e)),
        };
        let (trace, result) = self.attempt(&prepared, spec, trace).await;
        outcome(target, trace, result)
    }

    /// `connection send`: like `exchange`, retrying connection failures and
    /// 502/503/504 up to `retries` times with backoff, honouring `Retry-After`.
    pub async fn send(
        &self,
        target: &Target,
        spec: &RequestSpec,
        retries: u32,
        on_retry: &(dyn Fn(&str) + Sync),
    ) -> Outcome {
        let mut trace = Trace::default();
        let mut prepared = match self.prepare(target, spec, &mut trace).await {
            Ok(p) => p,
            Err(e) => return outcome(target, trace, Err(e)),
        };
        let base = trace;
        let mut attempt = 0;
        loop {
            let (trace, result) = self.attempt(&prepared, spec, base.clone()).await;
            let wait = match &result {
                _ if attempt >= retries => None,
                Ok(r) if matches!(r.status.as_u16(), 502..=504) => Some((
                    retry_after(&r.headers).unwrap_or_else(|| backoff(attempt)),
                    transport::status_text(r.status),
                )),
                Err(e) if transport::is_retryable(e) && retry_safe(&trace, &spec.method) => {
                    Some((backoff(attempt), e.message.clone()))
                }
                _ => None,
            };
            match wait {
                Some((delay, why)) => {
                    attempt += 1;
                    on_retry(&format!(
                        "{why}; retry {attempt}/{retries} in {}",
                        transport::format_secs(delay)
                    ));
                    tokio::time::sleep(delay).await;
                    prepared.restart_clock(spec.timeout);
                }
                None => return outcome(target, trace, result),
            }
        }
    }
}

/// A network failure is retried when the request cannot have reached the
/// endpoint (DNS, TCP, proxy, TLS), or, once it may have, when sending it again
/// is harmless (an idempotent method).
fn retry_safe(trace: &Trace, method: &Method) -> bool {
    match trace.failed_stage() {
        Some(Stage::Dns | Stage::Tcp | Stage::MidConnect | Stage::Tls) => true,
        Some(Stage::Http) => method.is_idempotent(),
        _ => false,
    }
}

fn outcome(target: &Target, trace: Trace, result: Result<Response>) -> Outcome {
    let (response, error) = match result {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    Outcome {
        connection: target.name.clone(),
        trace,
        response,
        error,
    }
}

/// 0.5 s, 1 s, 2 s, ... capped at 30 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(30))
}

/// `Retry-After` in seconds or as an HTTP date, capped at five minutes.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let secs = match text.parse::<u64>() {
        Ok(s) => s,
        Err(_) => {
            let format = time::format_description::well_known::Rfc2822;
            let when = time::OffsetDateTime::parse(text, &format).ok()?;
            (when - time::OffsetDateTime::now_utc())
                .whole_seconds()
                .max(0) as u64
        }
    };
    Some(Duration::from_secs(secs.min(300)))
}

/// Whether a status passes a test without `--expect`: 2xx and 3xx.
pub fn default_accept(status: u16) -> bool {
    (200..400).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_paths() {
        let u = |e: &str, p: Option<&str>| join_path(e, p).unwrap().to_string();
        assert_eq!(u("https://h/api", Some("/items")), "https://h/api/items");
        assert_eq!(
            u("https://h/api/", Some("items?x=1")),
            "https://h/api/items?x=1"
        );
        assert_eq!(u("https://h/api", None), "https://h/api");
        assert_eq!(u("https://h/", Some("/x")), "https://h/x");
    }

    #[test]
    fn parses_headers() {
        let (n, v) = parse_header("X-Trace:  abc ").unwrap();
        assert_eq!(n.as_str(), "x-trace");
        assert_eq!(v, "abc");
        assert!(parse_header("nocolon").is_err());
    }

    #[test]
    fn retry_after_seconds() {
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
    }
}
