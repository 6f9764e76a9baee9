//! HashiCorp Vault / OpenBao behind the `vault:PATH#FIELD` source: where Vault
//! is and how connctl logs in, one login and one read per path for a whole run,
//! writes with check-and-set, and failures in an operator's words (exit 5).
//!
//! Requests go through the project's own transport (`net::transport`): the
//! same TLS, trust roots and `https_proxy` handling as every other request.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Map, Value, json};
use url::Url;

use super::{Secret, SecretRef};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{RecordKind, SecretSource, VaultAuthMethod, VaultSettings, check_http_url};
use crate::net::Trace;
use crate::net::proxy::ProxyEnv;
use crate::net::tls::{Roots, TlsSettings};
use crate::net::transport::{self, HttpRequest, Route};

pub const ADDR_ENV: &str = "VAULT_ADDR";
pub const NAMESPACE_ENV: &str = "VAULT_NAMESPACE";
pub const CACERT_ENV: &str = "VAULT_CACERT";
pub const TOKEN_ENV: &str = "VAULT_TOKEN";
/// Overrides the store's `[vault] auth`: `token`, `approle` or `jwt`.
pub const AUTH_ENV: &str = "CONNCTL_VAULT_AUTH";
/// Seconds one Vault request may take (default 30).
pub const TIMEOUT_ENV: &str = crate::limits::VAULT_TIMEOUT.name;

/// A login token is renewed (or the login repeated) when less than this share
/// of its lease is left, and at the latest 30 s before it ends.
const RENEW_SHARE: u32 = 3;
const RENEW_MARGIN: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------

/// The `[vault]` table of the store loaded last in this process (set by
/// `store::load`); the environment overrides it field by field.
static STORE_SETTINGS: Mutex<Option<VaultSettings>> = Mutex::new(None);

/// Remembers the store's `[vault]` table for the Vault sources read later.
pub fn use_store_settings(settings: Option<&VaultSettings>) {
    let mut slot = STORE_SETTINGS.lock().unwrap_or_else(|p| p.into_inner());
    *slot = settings.cloned();
}

fn env_value(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

/// How connctl logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Login {
    /// `VAULT_TOKEN`, else `~/.vault-token`.
    Token { from_env: bool },
    AppRole {
        mount: String,
        role_id: SecretSource,
        secret_id: SecretSource,
    },
    Jwt {
        mount: String,
        role: String,
        token: SecretSource,
    },
}

impl Login {
    /// The method in words, for every message.
    fn label(&self) -> String {
        match self {
            Login::Token { from_env: true } => format!("token from {TOKEN_ENV}"),
            Login::Token { from_env: false } => "token from ~/.vault-token".to_string(),
            Login::AppRole { mount, role_id, .. } => {
                format!("approle login at auth/{mount} (role id {role_id})")
            }
            Login::Jwt {
                mount, role, token, ..
            } => format!("jwt login at auth/{mount} as role '{role}' (JWT {token})"),
        }
    }
}

/// Where Vault is and who we are, from the environment and the store.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    address: String,
    namespace: Option<String>,
    ca_bundle: Option<PathBuf>,
    login: Login,
    timeout: Duration,
}

fn config_error(message: impl Into<String>) -> Error {
    Error::invalid(message).with_hint(
        "fix the store's [vault] table (see `connctl doctor --help` and the README's Vault section)",
    )
}

impl Config {
    fn current() -> Result<Config> {
        let settings = STORE_SETTINGS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default();
        let address = match env_value(ADDR_ENV) {
            Some(address) => address,
            None => settings.address.clone().ok_or_else(|| {
                Error::secret("no Vault address: a secret of this store is kept in Vault")
                    .with_hint(format!(
                        "export {ADDR_ENV}=https://vault.example.com:8200, or set `address` in the store's [vault] table"
                    ))
            })?,
        };
        check_http_url(&address)
            .map_err(|e| config_error(format!("the Vault address is not usable: {e}")))?;
        let address = address.trim_end_matches('/').to_string();
        let namespace = env_value(NAMESPACE_ENV).or(settings.namespace.clone());
        let ca_bundle = env_value(CACERT_ENV)
            .map(PathBuf::from)
            .or(settings.ca_bundle.clone());
        let method = match env_value(AUTH_ENV) {
            Some(text) => text
                .parse::<VaultAuthMethod>()
                .map_err(|e| Error::usage(format!("{AUTH_ENV}: {e}")))?,
            None => settings.auth.unwrap_or_default(),
        };
        let no_vault = |what: &str, source: &SecretSource| match source {
            SecretSource::Vault { .. } | SecretSource::Keyring => Err(config_error(format!(
                "{what} is {source}: a Vault login secret must come from env:, file: or cmd:"
            ))),
            _ => Ok(()),
        };
        let login = match method {
            VaultAuthMethod::Token => Login::Token {
                from_env: env_value(TOKEN_ENV).is_some(),
            },
            VaultAuthMethod::Approle => {
                let approle = settings.approle.clone().ok_or_else(|| {
                    config_error(
                        "the Vault login method is approle, but the store has no [vault.approle] table with role_id and secret_id",
                    )
                })?;
                no_vault("[vault.approle] role_id", &approle.role_id)?;
                no_vault("[vault.approle] secret_id", &approle.secret_id)?;
                Login::AppRole {
                    mount: mount_name(approle.mount.as_deref(), "approle")?,
                    role_id: approle.role_id,
                    secret_id: approle.secret_id,
                }
            }
            VaultAuthMethod::Jwt => {
                let jwt = settings.jwt.clone().ok_or_else(|| {
                    config_error(
                        "the Vault login method is jwt, but the store has no [vault.jwt] table with role and token",
                    )
                })?;
                no_vault("[vault.jwt] token", &jwt.token)?;
                if jwt.role.trim().is_empty() {
                    return Err(config_error("[vault.jwt] role is empty"));
                }
                Login::Jwt {
                    mount: mount_name(jwt.mount.as_deref(), "jwt")?,
                    role: jwt.role,
                    token: jwt.token,
                }
            }
        };
        Ok(Config {
            address,
            namespace,
            ca_bundle,
            login,
            timeout: crate::limits::VAULT_TIMEOUT.from_env(),
        })
    }
}

fn mount_name(mount: Option<&str>, default: &str) -> Result<String> {
    let mount = mount.unwrap_or(default).trim_matches('/');
    if mount.is_empty() || mount.contains(['?', '#']) {
        return Err(config_error(format!("'{mount}' is not an auth mount path")));
    }
    Ok(mount.to_string())
}

// ---------------------------------------------------------------------------
// The client of one run
// ---------------------------------------------------------------------------

static CLIENT: Mutex<Option<Arc<Client>>> = Mutex::new(None);

/// The client for the current settings: one per process while they stay the
/// same, so its login token and reads serve every secret of the run.
fn client() -> Result<Arc<Client>> {
    let config = Config::current()?;
    let mut slot = CLIENT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(client) = slot.as_ref()
        && client.config == config
    {
        return Ok(client.clone());
    }
    let client = Arc::new(Client::new(config)?);
    *slot = Some(client.clone());
    Ok(client)
}

struct Token {
    value: Secret,
    /// When the lease ends; `None` when unknown or never.
    expires: Option<Instant>,
    lease: Duration,
    renewable: bool,
}

impl Token {
    fn due(&self) -> bool {
        match self.expires {
            None => false,
            Some(at) => {
                let margin = (self.lease / RENEW_SHARE).min(RENEW_MARGIN);
                at.saturating_duration_since(Instant::now()) <= margin
            }
        }
    }
}

/// A KV secrets engine: where it is mounted (`secret/`) and its version.
#[derive(Debug, Clone)]
struct Mount {
    path: String,
    version: u8,
}

impl Mount {
    /// The path below the mount: `partner/orders` of `secret/partner/orders`.
    fn rest<'a>(&self, path: &'a str) -> &'a str {
        path.strip_prefix(self.path.trim_end_matches('/'))
            .unwrap_or(path)
            .trim_start_matches('/')
    }

    fn kind(&self) -> String {
        format!("KV v{} engine mounted at {}", self.version, self.path)
    }

    /// The API path of the secret's data (`secret/data/partner/orders` for v2).
    fn data_path(&self, path: &str) -> String {
        match self.version {
            2 => format!("{}data/{}", self.path, self.rest(path)),
            _ => format!("{}{}", self.path, self.rest(path)),
        }
    }
}

/// The fields of one secret as Vault answered them.
struct Fields(Map<String, Value>);

type Shared<T> = Arc<OnceLock<Result<T>>>;
/// Reads of this run by path and pinned version, each done once.
type Reads = HashMap<(String, Option<u64>), Shared<Arc<Fields>>>;

struct Client {
    config: Config,
    route: Route,
    token: Mutex<Option<Token>>,
    mounts: Mutex<Vec<Mount>>,
    reads: Mutex<Reads>,
}

/// An answer of Vault: status, JSON body (`Null` when there is none) and its `errors`.
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn errors(&self) -> String {
        let list: Vec<String> = self.body["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(shown).collect())
            .unwrap_or_default();
        list.join("; ")
    }

    fn sealed(&self) -> bool {
        self.status == StatusCode::SERVICE_UNAVAILABLE
            && self.body["errors"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|e| e.as_str().is_some_and(|t| t.contains("sealed")))
            })
    }
}

/// Text from Vault made safe to print: at most 300 characters, escaped as all outside text is.
fn shown(text: &str) -> String {
    crate::text::escape(&text.chars().take(300).collect::<String>())
}

impl Client {
    fn new(config: Config) -> Result<Client> {
        let url = Url::parse(&config.address)
            .map_err(|e| config_error(format!("the Vault address is not a URL: {e}")))?;
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(8200);
        let proxy = ProxyEnv::from_env().for_url(url.scheme(), &host, port)?;
        let bundles: Vec<PathBuf> = config.ca_bundle.iter().cloned().collect();
        let roots = Roots::default().get(&bundles).map_err(|e| Error {
            kind: ErrorKind::Secret,
            message: format!("the Vault CA bundle cannot be used: {}", e.message),
            ..e
        })?;
        let route = Route {
            proxy,
            tls: TlsSettings {
                roots,
                identity: None,
                insecure: false,
            },
            mutual_auth: false,
            timeout: config.timeout,
            deadline: None,
            connection: "vault".to_string(),
            dns: Default::default(),
        };
        Ok(Client {
            config,
            route,
            token: Mutex::new(None),
            mounts: Mutex::new(Vec::new()),
            reads: Mutex::new(HashMap::new()),
        })
    }

    fn auth(&self) -> String {
        self.config.login.label()
    }

    /// "(Vault http://..., path P, auth A)": what every message ends with.
    fn place(&self, path: &str) -> String {
        format!(
            "(Vault {}, path {path}, auth: {})",
            self.config.address,
            self.auth()
        )
    }

    /// One request to `/v1/<api_path>`, on a thread of its own with a runtime
    /// of its own, so it works from any caller (a command, a secrets thread, a
    /// blocking task of `inbound serve`).
    fn call(
        &self,
        method: Method,
        api_path: &str,
        query: Option<&str>,
        body: Option<&Value>,
        token: Option<&Secret>,
        path: &str,
    ) -> Result<Answer> {
        let encoded: Vec<String> = api_path
            .split('/')
            .map(|s| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>())
            .map(|s| s.replace('+', "%20"))
            .collect();
        let mut text = format!("{}/v1/{}", self.config.address, encoded.join("/"));
        if let Some(q) = query {
            text.push('?');
            text.push_str(q);
        }
        let url = Url::parse(&text)
            .map_err(|e| Error::secret(format!("cannot build the Vault URL {text}: {e}")))?;
        let mut headers = HeaderMap::new();
        headers.insert("x-vault-request", HeaderValue::from_static("true"));
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token.expose()).map_err(|_| {
                Error::secret("the Vault token holds characters a header cannot carry")
            })?;
            value.set_sensitive(true);
            headers.insert("x-vault-token", value);
        }
        if let Some(ns) = &self.config.namespace
            && let Ok(value) = HeaderValue::from_str(ns)
        {
            headers.insert("x-vault-namespace", value);
        }
        let body = match body {
            Some(value) => {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Bytes::from(value.to_string())
            }
            None => Bytes::new(),
        };
        let request = HttpRequest {
            url,
            method,
            headers,
            body,
        };
        let route = &self.route;
        let result = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| {
                            Error::secret("cannot start the Vault client").with_source(&e)
                        })?;
                    runtime.block_on(async {
                        let mut trace = Trace::default();
                        transport::execute(&request, route, &mut trace).await
                    })
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(Error::secret(
                        "the Vault request did not finish (it panicked)",
                    ))
                })
        });
        let response = result.map_err(|e| self.unreachable(e, path))?;
        let body = if response.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&response.body).unwrap_or(Value::Null)
        };
        let answer = Answer {
            status: response.status,
            body,
        };
        if answer.sealed() {
            return Err(Error::secret(format!(
                "Vault at {} is sealed: it serves no secrets until it is unsealed {}",
                self.config.address,
                self.place(path)
            ))
            .with_hint(
                "ask Vault's operators to unseal it (`bao operator unseal` / `vault operator unseal`), or point VAULT_ADDR at a node that is unsealed",
            ));
        }
        Ok(answer)
    }

    /// A failure below HTTP (DNS, connect, TLS, a timeout), as a secret error.
    fn unreachable(&self, e: Error, path: &str) -> Error {
        let hint = match e.kind {
            ErrorKind::Tls => format!(
                "Vault's certificate must be trusted: set {CACERT_ENV} or `ca_bundle` in the store's [vault] table to the CA that issued it"
            ),
            _ => format!(
                "check {ADDR_ENV} (or the store's [vault] address) and that Vault is running and reachable from here"
            ),
        };
        let what = if e.kind == ErrorKind::Tls {
            "TLS with Vault failed"
        } else {
            "cannot reach Vault"
        };
        Error {
            kind: ErrorKind::Secret,
            message: format!("{what}: {} {}", e.message, self.place(path)),
            causes: e.causes,
            hint: Some(hint),
        }
    }

    /// An answer that is neither success nor one of the cases a caller handles.
    fn unexpected(&self, answer: &Answer, doing: &str, path: &str) -> Error {
        let errors = answer.errors();
        let detail = if errors.is_empty() {
            String::new()
        } else {
            format!(": {errors}")
        };
        Error::secret(format!(
            "Vault answered {} {doing}{detail} {}",
            transport::status_text(answer.status),
            self.place(path)
        ))
    }

    // ----- the token -------------------------------------------------------

    /// The token of this run: logged in once, renewed (or logged in again)
    /// when it would expire, never written anywhere.
    fn token(&self, path: &str) -> Result<Secret> {
        let mut slot = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(token) = slot.as_ref()
            && !token.due()
        {
            return Ok(token.value.clone());
        }
        let renewed = match slot.take() {
            Some(old) if old.renewable => self.renew(&old, path).ok(),
            _ => None,
        };
        let token = match renewed {
            Some(token) => token,
            None => self.login(path)?,
        };
        let value = token.value.clone();
        *slot = Some(token);
        Ok(value)
    }

    fn renew(&self, old: &Token, path: &str) -> Result<Token> {
        let body = json!({ "increment": format!("{}s", old.lease.as_secs()) });
        let answer = self.call(
            Method::POST,
            "auth/token/renew-self",
            None,
            Some(&body),
            Some(&old.value),
            path,
        )?;
        if !answer.status.is_success() {
            return Err(self.unexpected(&answer, "renewing the token", path));
        }
        Ok(token_of(&answer.body["auth"]).unwrap_or(Token {
            value: old.value.clone(),
            expires: old.expires,
            lease: old.lease,
            renewable: false,
        }))
    }

    fn login(&self, path: &str) -> Result<Token> {
        let (mount, body, secrets) = match &self.config.login {
            Login::Token { from_env } => return self.token_from_environment(*from_env),
            Login::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let role_id = login_secret(role_id, "[vault.approle] role_id")?;
                let secret_id = login_secret(secret_id, "[vault.approle] secret_id")?;
                let body = json!({ "role_id": role_id.expose(), "secret_id": secret_id.expose() });
                (mount, body, vec![role_id, secret_id])
            }
            Login::Jwt { mount, role, token } => {
                let jwt = login_secret(token, "[vault.jwt] token")?;
                let body = json!({ "role": role, "jwt": jwt.expose() });
                (mount, body, vec![jwt])
            }
        };
        let login_path = format!("auth/{mount}/login");
        let answer = self.call(Method::POST, &login_path, None, Some(&body), None, path)?;
        if answer.status.is_success()
            && let Some(token) = token_of(&answer.body["auth"])
        {
            return Ok(token);
        }
        let refs: Vec<&Secret> = secrets.iter().collect();
        let errors = super::scrub(&answer.errors(), &refs);
        let detail = if errors.is_empty() {
            transport::status_text(answer.status)
        } else {
            format!("{} ({errors})", transport::status_text(answer.status))
        };
        let hint = match &self.config.login {
            Login::AppRole { .. } => format!(
                "check the role id and secret id (a secret id may have expired or been used up), and that AppRole is enabled at auth/{mount}"
            ),
            _ => format!(
                "check that the JWT is fresh, that its audience and claims match the role's bound_audiences/bound_claims, and that JWT auth is enabled at auth/{mount}"
            ),
        };
        Err(Error::secret(format!(
            "Vault at {} refused the login: {detail} {}",
            self.config.address,
            self.place(path)
        ))
        .with_hint(hint))
    }

    fn token_from_environment(&self, from_env: bool) -> Result<Token> {
        let value = if from_env {
            env_value(TOKEN_ENV).unwrap_or_default()
        } else {
            let file = dirs::home_dir().map(|h| h.join(".vault-token"));
            let text = file
                .as_ref()
                .and_then(|f| read_small(f).ok())
                .unwrap_or_default();
            text.trim().to_string()
        };
        if value.is_empty() {
            return Err(Error::secret(format!(
                "no Vault token: {TOKEN_ENV} is not set and ~/.vault-token is missing or empty (Vault {})",
                self.config.address
            ))
            .with_hint(format!(
                "log in with `bao login` / `vault login` (it writes ~/.vault-token), export {TOKEN_ENV}, or set the store's [vault] auth to approle or jwt"
            )));
        }
        let value = Secret::new(value);
        // Its time left, so a token that would expire mid-run is renewed like
        // a login's. A token that may not look itself up (no default policy),
        // or an answer that is not understood, just leaves the expiry unknown.
        let lookup = "auth/token/lookup-self";
        let (mut expires, mut lease, mut renewable) = (None, Duration::ZERO, false);
        if let Ok(answer) = self.call(Method::GET, lookup, None, None, Some(&value), lookup)
            && answer.status.is_success()
        {
            let data = &answer.body["data"];
            if let Some(ttl) = data["ttl"].as_u64().filter(|t| *t > 0) {
                expires = Some(Instant::now() + Duration::from_secs(ttl));
                let created = data["creation_ttl"].as_u64().unwrap_or(ttl);
                lease = Duration::from_secs(created.max(ttl));
                renewable = data["renewable"].as_bool().unwrap_or(false);
            }
        }
        Ok(Token {
            value,
            expires,
            lease,
            renewable,
        })
    }

    /// After a 403: is the token itself still good? A token Vault no longer
    /// knows (expired, revoked) is refused by `lookup-self` too.
    fn denied(&self, token: &Secret, doing: &str, api_path: &str, path: &str, caps: &str) -> Error {
        let token_dead = self
            .call(
                Method::GET,
                "auth/token/lookup-self",
                None,
                None,
                Some(token),
                path,
            )
            .map(|a| a.status == StatusCode::FORBIDDEN)
            .unwrap_or(false);
        if token_dead {
            let hint = match &self.config.login {
                Login::Token { .. } => format!(
                    "log in again (`bao login` / `vault login`) or export a fresh {TOKEN_ENV}"
                ),
                _ => "the login token ended early: check the role's token_ttl and token_max_ttl"
                    .to_string(),
            };
            return Error::secret(format!(
                "the Vault token has expired or was revoked: Vault at {} refused it {doing} {}",
                self.config.address,
                self.place(path)
            ))
            .with_hint(hint);
        }
        Error::secret(format!(
            "permission denied: the token's policies do not allow {doing} {}",
            self.place(path)
        ))
        .with_hint(format!(
            "a policy of the token needs: path \"{api_path}\" {{ capabilities = [{caps}] }}"
        ))
    }

    // ----- mounts ----------------------------------------------------------

    /// The KV engine a path lives in, as `vault kv get` finds it
    /// (`sys/internal/ui/mounts/<path>`); known mounts are not asked again.
    fn mount(&self, path: &str, token: &Secret) -> Result<Mount> {
        let mut mounts = self.mounts.lock().unwrap_or_else(|p| p.into_inner());
        let slashed = format!("{path}/");
        if let Some(mount) = mounts.iter().find(|m| slashed.starts_with(&m.path)) {
            return Ok(mount.clone());
        }
        let api_path = format!("sys/internal/ui/mounts/{path}");
        let answer = self.call(Method::GET, &api_path, None, None, Some(token), path)?;
        match answer.status {
            s if s.is_success() => {}
            StatusCode::FORBIDDEN => {
                let err = self.denied(token, &format!("reading {path}"), path, path, "\"read\"");
                if err.message.starts_with("permission denied") {
                    return Err(Error::secret(format!(
                        "no secrets engine at {path} that this token may read: Vault knows no mount there, or the token's policies grant nothing on it {}",
                        self.place(path)
                    ))
                    .with_hint(format!(
                        "check the path's first segment (`bao secrets list`), and that a policy of the token allows reading it, e.g. path \"{}\" {{ capabilities = [\"read\"] }}",
                        guess_policy_path(path)
                    )));
                }
                return Err(err);
            }
            _ => {
                return Err(self.unexpected(
                    &answer,
                    &format!("looking up the mount of {path}"),
                    path,
                ));
            }
        }
        let data = &answer.body["data"];
        let mount_path = data["path"].as_str().unwrap_or_default().to_string();
        let kind = data["type"].as_str().unwrap_or_default();
        if mount_path.is_empty() {
            return Err(self.unexpected(&answer, &format!("looking up the mount of {path}"), path));
        }
        if kind != "kv" && kind != "generic" {
            return Err(Error::secret(format!(
                "{path} is in a '{}' secrets engine mounted at {}: connctl reads KV secrets only {}",
                shown(kind),
                shown(&mount_path),
                self.place(path)
            )));
        }
        let version = match data["options"]["version"].as_str() {
            Some("2") => 2,
            _ => 1,
        };
        let mount = Mount {
            path: if mount_path.ends_with('/') {
                mount_path
            } else {
                format!("{mount_path}/")
            },
            version,
        };
        mounts.push(mount.clone());
        Ok(mount)
    }

    // ----- reading ---------------------------------------------------------

    /// The fields of a secret, read once per run for each path and version.
    fn fields(&self, path: &str, version: Option<u64>) -> Result<Arc<Fields>> {
        let cell = {
            let mut reads = self.reads.lock().unwrap_or_else(|p| p.into_inner());
            reads
                .entry((path.to_string(), version))
                .or_default()
                .clone()
        };
        cell.get_or_init(|| self.fetch(path, version).map(Arc::new))
            .clone()
    }

    fn fetch(&self, path: &str, version: Option<u64>) -> Result<Fields> {
        let token = self.token(path)?;
        let mount = self.mount(path, &token)?;
        if mount.rest(path).is_empty() {
            return Err(Error::secret(format!(
                "{path} is the mount point of a {}, not a secret in it {}",
                mount.kind(),
                self.place(path)
            ))
            .with_hint(format!(
                "write the secret's path after the mount, e.g. vault:{}NAME#FIELD",
                mount.path
            )));
        }
        if version.is_some() && mount.version != 2 {
            return Err(Error::secret(format!(
                "{path} is in a {}: KV v1 keeps no versions, so ?version= cannot be used {}",
                mount.kind(),
                self.place(path)
            ))
            .with_hint("remove ?version=N from the reference"));
        }
        let (answer, api_path) = self.read_raw(&mount, path, version, &token)?;
        match answer.status {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => {
                let what = match version {
                    Some(n) => format!("no version {n} of a secret at {path}"),
                    None => format!("no secret at {path}"),
                };
                let deleted = answer.body["data"]["metadata"]["deletion_time"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty());
                let why = if deleted {
                    " (that version was deleted)"
                } else {
                    ""
                };
                return Err(Error::secret(format!(
                    "{what}{why} in the {} {}",
                    mount.kind(),
                    self.place(path)
                ))
                .with_hint(format!(
                    "check the path: `bao kv list {}` shows what is there",
                    parent_of(path)
                )));
            }
            StatusCode::FORBIDDEN => {
                return Err(self.denied(
                    &token,
                    &format!("reading {path}"),
                    &api_path,
                    path,
                    "\"read\"",
                ));
            }
            _ => return Err(self.unexpected(&answer, &format!("reading {path}"), path)),
        }
        let data = match mount.version {
            2 => &answer.body["data"]["data"],
            _ => &answer.body["data"],
        };
        match data {
            Value::Object(map) => Ok(Fields(map.clone())),
            _ => Err(Error::secret(format!(
                "no data in the secret at {path} (deleted or destroyed?) {}",
                self.place(path)
            ))),
        }
    }

    fn read_raw(
        &self,
        mount: &Mount,
        path: &str,
        version: Option<u64>,
        token: &Secret,
    ) -> Result<(Answer, String)> {
        let api_path = mount.data_path(path);
        let query = version.map(|n| format!("version={n}"));
        let answer = self.call(
            Method::GET,
            &api_path,
            query.as_deref(),
            None,
            Some(token),
            path,
        )?;
        Ok((answer, api_path))
    }

    fn read(&self, path: &str, field: &str, version: Option<u64>) -> Result<Secret> {
        let fields = self.fields(path, version)?;
        match fields.0.get(field) {
            Some(Value::String(text)) => Ok(Secret::new(text.clone())),
            Some(value @ (Value::Number(_) | Value::Bool(_))) => Ok(Secret::new(value.to_string())),
            Some(_) => Err(Error::secret(format!(
                "the field '{field}' of {path} is not text (a list, object or null) {}",
                self.place(path)
            ))),
            None => {
                let names: Vec<String> =
                    fields.0.keys().map(|k| format!("'{}'", shown(k))).collect();
                let present = if names.is_empty() {
                    "it has no fields".to_string()
                } else {
                    format!("its fields: {}", names.join(", "))
                };
                Err(Error::secret(format!(
                    "the secret at {path} has no field '{field}'; {present} {}",
                    self.place(path)
                ))
                .with_hint(format!(
                    "name one of its fields after '#': vault:{path}#FIELD"
                )))
            }
        }
    }

    // ----- writing ---------------------------------------------------------

    /// Sets one field: KV v2 writes a new version holding the other fields as
    /// they were (check-and-set on the version read); KV v1 merges the field in.
    fn write(&self, path: &str, field: &str, value: &Secret) -> Result<Written> {
        let token = self.token(path)?;
        let mount = self.mount(path, &token)?;
        let (answer, api_path) = self.read_raw(&mount, path, None, &token)?;
        let caps = "\"create\", \"update\", \"read\"";
        let (previous, current) = match answer.status {
            s if s.is_success() => {
                let data = match mount.version {
                    2 => &answer.body["data"]["data"],
                    _ => &answer.body["data"],
                };
                (
                    data.as_object().cloned(),
                    answer.body["data"]["metadata"]["version"].as_u64(),
                )
            }
            StatusCode::NOT_FOUND => (
                None,
                // A deleted latest version still counts for check-and-set.
                answer.body["data"]["metadata"]["version"].as_u64(),
            ),
            StatusCode::FORBIDDEN => {
                return Err(self.denied(
                    &token,
                    &format!("reading {path} (before writing it)"),
                    &api_path,
                    path,
                    caps,
                ));
            }
            _ => return Err(self.unexpected(&answer, &format!("reading {path}"), path)),
        };
        let mut fields = previous.clone().unwrap_or_default();
        fields.insert(field.to_string(), Value::String(value.expose().to_string()));
        let version = self.put(&mount, path, &api_path, fields, current, &token)?;
        Ok(Written {
            path: path.to_string(),
            previous,
            version,
        })
    }

    /// Writes a whole secret (KV v2: with check-and-set on `current`).
    fn put(
        &self,
        mount: &Mount,
        path: &str,
        api_path: &str,
        fields: Map<String, Value>,
        current: Option<u64>,
        token: &Secret,
    ) -> Result<Option<u64>> {
        let caps = "\"create\", \"update\", \"read\"";
        let body = match mount.version {
            2 => json!({ "options": { "cas": current.unwrap_or(0) }, "data": fields }),
            _ => Value::Object(fields),
        };
        let answer = self.call(Method::POST, api_path, None, Some(&body), Some(token), path)?;
        drop(body);
        match answer.status {
            s if s.is_success() => {}
            StatusCode::FORBIDDEN => {
                return Err(self.denied(token, &format!("writing {path}"), api_path, path, caps));
            }
            StatusCode::BAD_REQUEST if answer.errors().contains("check-and-set") => {
                return Err(Error::secret(format!(
                    "the secret at {path} changed while connctl wrote it: nothing was written {}",
                    self.place(path)
                ))
                .with_hint("run the command again"));
            }
            _ => return Err(self.unexpected(&answer, &format!("writing {path}"), path)),
        }
        // Later reads in this run see the new value.
        let mut reads = self.reads.lock().unwrap_or_else(|p| p.into_inner());
        reads.retain(|(p, _), _| p != path);
        Ok(answer.body["data"]["version"].as_u64())
    }

    /// Puts a secret back as it was before `written` (a change that failed
    /// after the write): the old fields as a new version, or the new secret
    /// deleted when there was none.
    fn undo(&self, written: &Written) -> Result<()> {
        let path = written.path.as_str();
        let token = self.token(path)?;
        let mount = self.mount(path, &token)?;
        let api_path = mount.data_path(path);
        match &written.previous {
            Some(fields) => self
                .put(
                    &mount,
                    path,
                    &api_path,
                    fields.clone(),
                    written.version,
                    &token,
                )
                .map(|_| ()),
            None => {
                let answer =
                    self.call(Method::DELETE, &api_path, None, None, Some(&token), path)?;
                if answer.status.is_success() {
                    Ok(())
                } else {
                    Err(self.unexpected(&answer, &format!("deleting {path}"), path))
                }
            }
        }
    }
}

/// A write made by a change, with what it replaced, so a change that fails
/// later can put it back. Holds secret values: no `Debug`.
pub struct Written {
    path: String,
    previous: Option<Map<String, Value>>,
    /// The new KV v2 version.
    pub version: Option<u64>,
}

/// The token of a login (or renewal) answer's `auth` object.
fn token_of(auth: &Value) -> Option<Token> {
    let value = auth["client_token"].as_str().filter(|t| !t.is_empty())?;
    let lease = Duration::from_secs(auth["lease_duration"].as_u64().unwrap_or(0));
    Some(Token {
        value: Secret::new(value),
        expires: (!lease.is_zero()).then(|| Instant::now() + lease),
        lease,
        renewable: auth["renewable"].as_bool().unwrap_or(false),
    })
}

/// A login secret (role id, secret id, JWT) from its env/file/cmd source.
fn login_secret(source: &SecretSource, what: &str) -> Result<Secret> {
    // The reference only names the secret in messages: it is never a keyring account.
    let at = SecretRef::new("vault", RecordKind::Connection, "vault", "login");
    super::resolve(source, &at).map_err(|e| {
        let name = at.describe();
        let fix = |text: &str| text.replace(&name, what);
        Error {
            message: format!("cannot log in to Vault: {}", fix(&e.message)),
            causes: e.causes.iter().map(|c| fix(c)).collect(),
            ..e
        }
    })
}

fn read_small(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(64 * 1024)
        .read_to_string(&mut text)?;
    Ok(text)
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(parent, _)| parent)
}

/// A policy path for a path whose mount is unknown: KV v2 at `secret/` is the default.
fn guess_policy_path(path: &str) -> String {
    match path.split_once('/') {
        Some(("secret", rest)) => format!("secret/data/{rest}"),
        _ => path.to_string(),
    }
}

// ---------------------------------------------------------------------------
// What the rest of connctl calls
// ---------------------------------------------------------------------------

fn with_record(err: Error, at: &SecretRef, source: &str) -> Error {
    err.with_cause(format!("{} is {source}", at.describe()))
}

/// Reads one field of a secret (`vault:PATH#FIELD`).
pub fn read(path: &str, field: &str, version: Option<u64>, at: &SecretRef) -> Result<Secret> {
    let source = SecretSource::Vault {
        path: path.to_string(),
        field: field.to_string(),
        version,
    }
    .to_string();
    client()
        .and_then(|c| c.read(path, field, version))
        .map_err(|e| with_record(e, at, &source))
}

/// The names of a secret's fields (escaped for messages), to help pick one.
pub fn field_names(path: &str) -> Result<Vec<String>> {
    let client = client()?;
    let fields = client.fields(path, None)?;
    Ok(fields.0.keys().map(|k| shown(k)).collect())
}

/// Writes one field of a secret (the other fields kept); the receipt can undo it.
pub fn write(path: &str, field: &str, value: &Secret, at: &SecretRef) -> Result<Written> {
    let source = format!("vault:{path}#{field}");
    client()
        .and_then(|c| c.write(path, field, value))
        .map_err(|e| with_record(e, at, &source))
}

/// Puts back what [`write`] replaced.
pub fn undo(written: &Written) -> Result<()> {
    client().and_then(|c| c.undo(written))
}

/// What `doctor` reports about Vault.
pub struct VaultCheck {
    pub address: String,
    pub auth: String,
    /// Seconds the token has left; `None` when it never expires.
    pub ttl: Option<u64>,
    pub error: Option<Error>,
}

/// Logs in (or takes the token) and asks Vault about the token
/// (`auth/token/lookup-self`): reachable, unsealed, token valid, time left.
pub fn check() -> VaultCheck {
    let address = env_value(ADDR_ENV)
        .or_else(|| {
            STORE_SETTINGS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .and_then(|s| s.address.clone())
        })
        .unwrap_or_else(|| "(not set)".to_string());
    let mut report = VaultCheck {
        address,
        auth: String::new(),
        ttl: None,
        error: None,
    };
    let client = match client() {
        Ok(client) => client,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    report.address = client.config.address.clone();
    report.auth = client.auth();
    let looked_up = client.token("auth/token/lookup-self").and_then(|token| {
        let answer = client.call(
            Method::GET,
            "auth/token/lookup-self",
            None,
            None,
            Some(&token),
            "auth/token/lookup-self",
        )?;
        match answer.status {
            s if s.is_success() => Ok(answer.body["data"]["ttl"].as_u64()),
            StatusCode::FORBIDDEN => Err(Error::secret(format!(
                "the Vault token has expired or was revoked {}",
                client.place("auth/token/lookup-self")
            ))
            .with_hint(match &client.config.login {
                Login::Token { .. } => format!(
                    "log in again (`bao login` / `vault login`) or export a fresh {TOKEN_ENV}"
                ),
                _ => "check the role's token_ttl".to_string(),
            })),
            _ => Err(client.unexpected(&answer, "looking up the token", "auth/token/lookup-self")),
        }
    });
    match looked_up {
        Ok(ttl) => report.ttl = ttl.filter(|t| *t > 0),
        Err(e) => report.error = Some(e),
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_split_paths() {
        let v2 = Mount {
            path: "secret/".into(),
            version: 2,
        };
        assert_eq!(
            v2.data_path("secret/partner/orders"),
            "secret/data/partner/orders"
        );
        let v1 = Mount {
            path: "kv/team/".into(),
            version: 1,
        };
        assert_eq!(v1.data_path("kv/team/a"), "kv/team/a");
        assert_eq!(v1.rest("kv/team"), "");
    }

    #[test]
    fn renewal_is_due_near_the_end_of_the_lease() {
        let token = |left: u64, lease: u64| Token {
            value: Secret::new("t"),
            expires: Some(Instant::now() + Duration::from_secs(left)),
            lease: Duration::from_secs(lease),
            renewable: true,
        };
        assert!(!token(3000, 3600).due());
        assert!(token(20, 3600).due());
        assert!(!token(8, 10).due());
        assert!(token(2, 10).due());
    }

    #[test]
    fn text_from_vault_is_escaped() {
        assert_eq!(shown("a\u{1b}[31mb\n"), "a\\x1b[31mb\\n");
        assert_eq!(shown(&"x".repeat(400)).len(), 300, "at most 300 characters");
    }
}
