//! Records, environments, secret sources and the rules of DESIGN.md §1.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod choice;
mod rules;

pub use choice::CONNECTION_CHOICE;
pub use rules::RuleViolation;

/// The store format this build reads and writes.
pub const STORE_VERSION: u32 = 1;

/// The record kinds, with the names users type and the TOML table names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    Integration,
    Connection,
    OauthProfile,
    ProtocolProfile,
    MidServer,
    InboundUser,
}

impl RecordKind {
    pub const ALL: [RecordKind; 6] = [
        RecordKind::Integration,
        RecordKind::Connection,
        RecordKind::OauthProfile,
        RecordKind::ProtocolProfile,
        RecordKind::MidServer,
        RecordKind::InboundUser,
    ];

    /// The command-line spelling: `oauth-profile`.
    pub fn cli_name(self) -> &'static str {
        match self {
            RecordKind::Integration => "integration",
            RecordKind::Connection => "connection",
            RecordKind::OauthProfile => "oauth-profile",
            RecordKind::ProtocolProfile => "protocol-profile",
            RecordKind::MidServer => "mid-server",
            RecordKind::InboundUser => "inbound-user",
        }
    }

    /// The TOML table name: `oauth_profile`. Also the `<kind>` of keyring accounts.
    pub fn table_name(self) -> &'static str {
        match self {
            RecordKind::Integration => "integration",
            RecordKind::Connection => "connection",
            RecordKind::OauthProfile => "oauth_profile",
            RecordKind::ProtocolProfile => "protocol_profile",
            RecordKind::MidServer => "mid_server",
            RecordKind::InboundUser => "inbound_user",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cli_name())
    }
}

/// `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub fn check_name(kind: RecordKind, name: &str) -> Result<(), String> {
    if is_valid_name(name) {
        Ok(())
    } else {
        // The name is the user's argument or a key of a hand-edited store: escaped.
        Err(format!(
            "'{}' is not a valid {kind} name: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            crate::text::escape(name)
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Environment {
    Production,
    PreProduction,
    Test,
    Development,
    Sandbox,
}

impl Environment {
    pub const ALL: [Environment; 5] = [
        Environment::Production,
        Environment::PreProduction,
        Environment::Test,
        Environment::Development,
        Environment::Sandbox,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::PreProduction => "pre-production",
            Environment::Test => "test",
            Environment::Development => "development",
            Environment::Sandbox => "sandbox",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Environment::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "'{s}' is not an environment: use one of production, pre-production, test, development, sandbox"
                )
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Authentication {
    Basic,
    Oauth,
    #[default]
    None,
}

impl Authentication {
    pub fn as_str(self) -> &'static str {
        match self {
            Authentication::Basic => "basic",
            Authentication::Oauth => "oauth",
            Authentication::None => "none",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    #[default]
    ClientCredentials,
    Password,
    /// RFC 6749 §4.1 with PKCE: a person logs in once (`oauth-profile login`).
    AuthorizationCode,
    /// RFC 8628: a person approves on another device (`oauth-profile login`).
    DeviceCode,
    /// RFC 7523 §2.1: a signed assertion is the grant.
    JwtBearer,
}

impl Grant {
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::Password => "password",
            Grant::AuthorizationCode => "authorization_code",
            Grant::DeviceCode => "device_code",
            Grant::JwtBearer => "jwt_bearer",
        }
    }

    /// Grants a person starts with `oauth-profile login`, kept alive by refresh tokens.
    pub fn needs_login(self) -> bool {
        matches!(self, Grant::AuthorizationCode | Grant::DeviceCode)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    Basic,
    Body,
    /// A public client: its id only (PKCE, device flow).
    None,
    /// RFC 7523 §2.2: a JWT signed with the profile's signing key.
    PrivateKeyJwt,
    /// RFC 8705: the protocol profile's client certificate.
    TlsClientAuth,
}

impl ClientAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::Basic => "basic",
            ClientAuth::Body => "body",
            ClientAuth::None => "none",
            ClientAuth::PrivateKeyJwt => "private_key_jwt",
            ClientAuth::TlsClientAuth => "tls_client_auth",
        }
    }

    /// Whether the client proves itself with a client secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, ClientAuth::Basic | ClientAuth::Body)
    }
}

/// Where a secret value lives. The store holds only this, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Keyring,
    Env(String),
    File(PathBuf),
    Cmd(String),
    /// A field of a secret in HashiCorp Vault / OpenBao (KV v1 or v2): `vault:PATH#FIELD`,
    /// `vault:PATH?version=N#FIELD` pins a KV v2 version.
    Vault {
        path: String,
        field: String,
        version: Option<u64>,
    },
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Keyring => f.write_str("keyring"),
            SecretSource::Env(var) => write!(f, "env:{var}"),
            SecretSource::File(path) => write!(f, "file:{}", path.display()),
            SecretSource::Cmd(cmd) => write!(f, "cmd:{cmd}"),
            SecretSource::Vault {
                path,
                field,
                version,
            } => match version {
                Some(n) => write!(f, "vault:{path}?version={n}#{field}"),
                None => write!(f, "vault:{path}#{field}"),
            },
        }
    }
}

impl FromStr for SecretSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let nonempty = |rest: &str, what: &str| {
            if rest.trim().is_empty() {
                Err(format!("secret source '{s}' names no {what}"))
            } else {
                Ok(rest.to_string())
            }
        };
        if s == "keyring" {
            Ok(SecretSource::Keyring)
        } else if let Some(var) = s.strip_prefix("env:") {
            let var = nonempty(var, "variable")?;
            if var.contains('=') || var.contains('\0') {
                return Err(format!("'{var}' is not an environment variable name"));
            }
            Ok(SecretSource::Env(var))
        } else if let Some(path) = s.strip_prefix("file:") {
            Ok(SecretSource::File(PathBuf::from(nonempty(path, "file")?)))
        } else if let Some(cmd) = s.strip_prefix("cmd:") {
            Ok(SecretSource::Cmd(nonempty(cmd, "command")?))
        } else if let Some(reference) = s.strip_prefix("vault:") {
            parse_vault_reference(reference)
        } else {
            // Never echo the text: a user may have pasted a secret value here.
            Err(NOT_A_SOURCE.to_string())
        }
    }
}

impl Serialize for SecretSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

const NOT_A_SOURCE: &str = "a secret field must hold a source: \"keyring\", \"env:VAR\", \"file:PATH\", \"cmd:COMMAND\" or \"vault:PATH#FIELD\"";

/// `PATH#FIELD`, with `?version=N` after the path or after the field.
/// The path is kept without leading or trailing slashes.
fn parse_vault_reference(reference: &str) -> Result<SecretSource, String> {
    const FORM: &str = "write vault:PATH#FIELD, e.g. vault:secret/partner/orders#password (add ?version=N to pin a KV v2 version)";
    let Some((mut path, mut field)) = reference.split_once('#') else {
        return Err(format!(
            "the Vault reference 'vault:{reference}' names no field: {FORM}"
        ));
    };
    let parse_version = |text: &str| match text.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "'{text}' is not a KV version: ?version= takes a whole number from 1 up"
        )),
    };
    let mut version = None;
    if let Some((before, pinned)) = path.split_once("?version=") {
        version = Some(parse_version(pinned)?);
        path = before;
    } else if let Some((before, pinned)) = field.rsplit_once("?version=") {
        version = Some(parse_version(pinned)?);
        field = before;
    }
    let path = path.trim_matches('/');
    if path.is_empty() {
        return Err(format!(
            "the Vault reference 'vault:{reference}' names no path: {FORM}"
        ));
    }
    if path.contains(['?', '#'])
        || path.chars().any(char::is_control)
        || path.split('/').any(str::is_empty)
    {
        return Err(format!(
            "'{path}' is not a Vault path: use names separated by single '/', without '?' or '#'"
        ));
    }
    if field.is_empty() {
        return Err(format!(
            "the Vault reference 'vault:{path}#' names no field: {FORM}"
        ));
    }
    if field.chars().any(char::is_control) {
        return Err("a Vault field name must not hold control characters".to_string());
    }
    Ok(SecretSource::Vault {
        path: path.to_string(),
        field: field.to_string(),
        version,
    })
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Anything but a string is refused without repeating it: serde's own
        // "invalid type: integer `1234`" would print a PIN typed in by hand.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Other(serde::de::IgnoredAny),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
            Raw::Other(_) => Err(serde::de::Error::custom(NOT_A_SOURCE)),
        }
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Integration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    pub integration: String,
    pub environment: Environment,
    #[serde(default)]
    pub active: bool,
    pub endpoint_url: String,
    /// Set when the operator allowed `http` to a production endpoint (`--allow-http`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_http: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<PathBuf>,
    #[serde(default)]
    pub authentication: Authentication,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_profile: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub mutual_auth: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid_server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_user: Option<String>,
    /// RFC 3339 time of the last activation; lets `integration activate` pick
    /// the most recently active connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activated: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// Variables whose value is a secret: only the source is stored
    /// (`[connection."X".secret_variables]`); resolved in the secrets stage.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_variables: BTreeMap<String, SecretSource>,
}

impl Connection {
    /// The OAuth profile the connection authenticates with: its
    /// `oauth_profile` when `authentication = oauth` (rule 3 keeps one
    /// nowhere else).
    pub fn oauth_profile_used(&self) -> Option<&str> {
        match self.authentication {
            Authentication::Oauth => self.oauth_profile.as_deref(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OauthProfile {
    pub token_url: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretSource>,
    #[serde(default)]
    pub grant: Grant,
    #[serde(default)]
    pub client_auth: ClientAuth,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    // Issue 15 additions (docs/design.md, "OAuth 2.0 on the oauth2 crate"):
    // all optional, so older stores read unchanged and write back byte-identical.
    /// The issuer whose discovery metadata filled the endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<String>,
    /// The loopback redirect URI registered for the authorization code grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// The private key (PEM) for jwt_bearer and private_key_jwt: a secret source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<SecretSource>,
    /// The `kid` put in the header of signed assertions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The `sub` of a jwt_bearer assertion [default: the client id].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The `aud` of signed assertions [default: the token URL].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The protocol profile whose certificate tls_client_auth presents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolProfile {
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MidServer {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretSource>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundUser {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretSource>,
}

/// The `[vault]` table: where Vault / OpenBao is and how to log in. `VAULT_ADDR`,
/// `VAULT_NAMESPACE` and `VAULT_CACERT` override the first three;
/// `CONNCTL_VAULT_AUTH` overrides `auth`. A token is never kept here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<PathBuf>,
    /// The login method; `token` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<VaultAuthMethod>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approle: Option<VaultAppRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<VaultJwt>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VaultAuthMethod {
    /// `VAULT_TOKEN`, else `~/.vault-token`.
    #[default]
    Token,
    Approle,
    Jwt,
}

impl VaultAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            VaultAuthMethod::Token => "token",
            VaultAuthMethod::Approle => "approle",
            VaultAuthMethod::Jwt => "jwt",
        }
    }
}

impl FromStr for VaultAuthMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "token" => Ok(VaultAuthMethod::Token),
            "approle" => Ok(VaultAuthMethod::Approle),
            "jwt" => Ok(VaultAuthMethod::Jwt),
            _ => Err(format!(
                "'{s}' is not a Vault login method: use token, approle or jwt"
            )),
        }
    }
}

/// `[vault.approle]`: the role id and secret id come from any source but `vault:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultAppRole {
    /// Where the auth method is mounted; `approle` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    pub role_id: SecretSource,
    pub secret_id: SecretSource,
}

/// `[vault.jwt]`: a CI job's OIDC token (from `env:` or `file:`) and the Vault role it logs in as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultJwt {
    /// Where the auth method is mounted; `jwt` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    pub role: String,
    pub token: SecretSource,
}

/// Everything in one store file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    pub version: u32,
    pub store_id: String,
    /// Where Vault / OpenBao is and how connctl logs in to it (never a token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultSettings>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub integration: BTreeMap<String, Integration>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub connection: BTreeMap<String, Connection>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub oauth_profile: BTreeMap<String, OauthProfile>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub protocol_profile: BTreeMap<String, ProtocolProfile>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mid_server: BTreeMap<String, MidServer>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inbound_user: BTreeMap<String, InboundUser>,
}

/// `text` with the user and password of a URL's authority replaced by
/// `(credentials)`, so a message can repeat a URL without its secret.
///
/// Where `text` does not parse as a URL with an authority (a password with
/// an unencoded `/`, no scheme), everything before the last `@` ahead of any
/// query or fragment counts as credentials: over-hiding in a message about a
/// broken URL is harmless, repeating a password is not.
pub fn without_credentials(text: &str) -> String {
    let start = text.find("://").map_or(0, |i| i + 3);
    let rest = &text[start..];
    let has_authority = url::Url::parse(text).is_ok_and(|u| !u.cannot_be_a_base());
    let end = if has_authority {
        rest.find(['/', '?', '#'])
    } else {
        rest.find(['?', '#'])
    };
    match rest[..end.unwrap_or(rest.len())].rfind('@') {
        Some(at) => format!("{}(credentials){}", &text[..start], &rest[at..]),
        None => text.to_string(),
    }
}

/// A Unix time as RFC 3339 (token and certificate expiries in messages and
/// JSON); `None` outside the calendar's range.
pub fn rfc3339(unix: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The current UTC time as RFC 3339: activation stamps, the inbound spool.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Checks that `text` is an absolute http(s) URL with a host and no
/// credentials (they would sit in the store in plain text); returns the scheme.
/// Messages never repeat a user or password written into the URL.
pub fn check_http_url(original: &str) -> Result<String, String> {
    let shown = without_credentials(original);
    let text = shown.as_str();
    let url = url::Url::parse(text).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => {
            format!(
                "'{text}' is not an absolute URL: write it with its scheme, e.g. https://{text}"
            )
        }
        other => format!("'{text}' is not a valid URL: {other}"),
    })?;
    match url.scheme() {
        "http" | "https" => {}
        // `host:port/path` parses as scheme `host` with an opaque path.
        _ if url.cannot_be_a_base() => {
            return Err(format!(
                "'{text}' is not an absolute URL: write it with its scheme, e.g. https://{text}"
            ));
        }
        other => {
            return Err(format!(
                "'{text}' uses the scheme '{other}': only http and https are supported"
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("'{text}' has no host"));
    }
    if url.port() == Some(0) {
        return Err(format!(
            "'{text}' has port 0, which no server listens on: write the port the server listens on, or none for the scheme's default"
        ));
    }
    if shown != original {
        return Err(format!(
            "'{text}' carries credentials: a URL must not hold a user or password (the store is plain text); give them with their own flags (--user with --password-stdin|-env|-file|-cmd, or --client-id with --client-secret-*)"
        ));
    }
    Ok(url.scheme().to_string())
}

/// Checks a MID server URL: an absolute `http://` URL (connctl speaks no TLS
/// to the proxy itself; a tunnel through it to an https endpoint is still TLS
/// end to end). The error comes with its hint.
pub fn check_proxy_url(original: &str) -> Result<(), (String, &'static str)> {
    const HINT: &str = "give the proxy as http://host:port; https endpoints behind the MID server stay TLS end to end through its tunnel";
    if !original.contains("://") {
        // `host:port` parses as a URL of scheme `host`; never repeat a password
        // written into it (`user:pw@host:3128`).
        let shown = without_credentials(original);
        return Err((
            format!(
                "'{shown}' is not an absolute URL: write it with its scheme, e.g. http://{shown}"
            ),
            HINT,
        ));
    }
    let scheme = check_http_url(original).map_err(|m| (m, HINT))?;
    if scheme != "http" {
        return Err((
            format!(
                "a MID server URL must be http://, not {scheme}:// (TLS to the proxy itself is not supported)"
            ),
            HINT,
        ));
    }
    Ok(())
}

/// The form of a `store_id`: what [`Store::new`] writes, a UUID in its
/// lowercase hyphenated form (`6f1c0c7e-1b2a-4c3d-8e4f-5a6b7c8d9e0f`). It
/// becomes part of keyring account names, so nothing else is accepted.
pub fn check_store_id(id: &str) -> Result<(), String> {
    match uuid::Uuid::parse_str(id) {
        Ok(uuid) if uuid.hyphenated().to_string() == id => Ok(()),
        _ => Err(format!(
            "the store_id \"{}\" is not a store id: connctl writes a random UUID in lowercase hyphenated form (e.g. 6f1c0c7e-1b2a-4c3d-8e4f-5a6b7c8d9e0f); it names the store's keyring entries",
            crate::text::escape(id)
        )),
    }
}

impl Store {
    pub fn new() -> Self {
        Store {
            version: STORE_VERSION,
            store_id: uuid::Uuid::new_v4().to_string(),
            vault: None,
            integration: BTreeMap::new(),
            connection: BTreeMap::new(),
            oauth_profile: BTreeMap::new(),
            protocol_profile: BTreeMap::new(),
            mid_server: BTreeMap::new(),
            inbound_user: BTreeMap::new(),
        }
    }

    pub fn contains(&self, kind: RecordKind, name: &str) -> bool {
        match kind {
            RecordKind::Integration => self.integration.contains_key(name),
            RecordKind::Connection => self.connection.contains_key(name),
            RecordKind::OauthProfile => self.oauth_profile.contains_key(name),
            RecordKind::ProtocolProfile => self.protocol_profile.contains_key(name),
            RecordKind::MidServer => self.mid_server.contains_key(name),
            RecordKind::InboundUser => self.inbound_user.contains_key(name),
        }
    }

    /// Removes a record; whether it was there.
    pub fn remove(&mut self, kind: RecordKind, name: &str) -> bool {
        match kind {
            RecordKind::Integration => self.integration.remove(name).is_some(),
            RecordKind::Connection => self.connection.remove(name).is_some(),
            RecordKind::OauthProfile => self.oauth_profile.remove(name).is_some(),
            RecordKind::ProtocolProfile => self.protocol_profile.remove(name).is_some(),
            RecordKind::MidServer => self.mid_server.remove(name).is_some(),
            RecordKind::InboundUser => self.inbound_user.remove(name).is_some(),
        }
    }

    pub fn names(&self, kind: RecordKind) -> Vec<&str> {
        fn keys<V>(map: &BTreeMap<String, V>) -> Vec<&str> {
            map.keys().map(String::as_str).collect()
        }
        match kind {
            RecordKind::Integration => keys(&self.integration),
            RecordKind::Connection => keys(&self.connection),
            RecordKind::OauthProfile => keys(&self.oauth_profile),
            RecordKind::ProtocolProfile => keys(&self.protocol_profile),
            RecordKind::MidServer => keys(&self.mid_server),
            RecordKind::InboundUser => keys(&self.inbound_user),
        }
    }

    /// The connections of an integration, sorted by name.
    pub fn connections_of<'a>(
        &'a self,
        integration: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Connection)> + 'a {
        self.connection
            .iter()
            .filter(move |(_, c)| c.integration == integration)
    }

    pub fn active_connection_of<'a>(&'a self, integration: &'a str) -> Option<&'a str> {
        self.connections_of(integration)
            .find(|(_, c)| c.active)
            .map(|(n, _)| n.as_str())
    }

    /// The records that refer to `kind`/`name`, as `(kind, name)` pairs.
    pub fn referrers(&self, kind: RecordKind, name: &str) -> Vec<(RecordKind, String)> {
        let mut out = Vec::new();
        let is = |field: &Option<String>| field.as_deref() == Some(name);
        for (cname, c) in &self.connection {
            let refers = match kind {
                RecordKind::Integration => c.integration == name,
                RecordKind::OauthProfile => is(&c.oauth_profile),
                RecordKind::ProtocolProfile => is(&c.protocol_profile),
                RecordKind::MidServer => is(&c.mid_server),
                RecordKind::InboundUser => is(&c.inbound_user),
                RecordKind::Connection => false,
            };
            if refers {
                out.push((RecordKind::Connection, cname.clone()));
            }
        }
        if kind == RecordKind::ProtocolProfile {
            for (pname, p) in &self.oauth_profile {
                if is(&p.protocol_profile) {
                    out.push((RecordKind::OauthProfile, pname.clone()));
                }
            }
        }
        out
    }

    /// Deactivates the integration's active connection (rule 2: the
    /// integration is then inactive); returns its name, `None` when the
    /// integration was inactive already.
    pub fn deactivate_integration(&mut self, integration: &str) -> Option<String> {
        let (name, c) = self
            .connection
            .iter_mut()
            .find(|(_, c)| c.integration == integration && c.active)?;
        c.active = false;
        Some(name.clone())
    }

    /// Activates `name`: deactivates its siblings (rule 1) and stamps the time.
    pub fn activate_connection(&mut self, name: &str, now: &str) -> Vec<String> {
        let Some(integration) = self.connection.get(name).map(|c| c.integration.clone()) else {
            return Vec::new();
        };
        let mut deactivated = Vec::new();
        for (cname, c) in self.connection.iter_mut() {
            if c.integration != integration {
                continue;
            }
            if cname == name {
                c.active = true;
                c.last_activated = Some(now.to_string());
            } else if c.active {
                c.active = false;
                deactivated.push(cname.clone());
            }
        }
        deactivated
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("a"));
        assert!(is_valid_name("incident-sync.prod_2"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("-a"));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name(&"a".repeat(65)));
        assert!(is_valid_name(&"a".repeat(64)));
    }

    #[test]
    fn environments_are_case_insensitive() {
        assert_eq!(
            "Pre-Production".parse::<Environment>(),
            Ok(Environment::PreProduction)
        );
        assert!("prod".parse::<Environment>().is_err());
    }

    #[test]
    fn secret_sources_round_trip() {
        for text in [
            "keyring",
            "env:PW",
            "file:/tmp/x",
            "cmd:pass show x",
            "vault:secret/partner/orders#password",
            "vault:secret/a?version=3#pass word",
        ] {
            let source: SecretSource = text.parse().unwrap();
            assert_eq!(source.to_string(), text);
        }
        let err = "hunter2".parse::<SecretSource>().unwrap_err();
        assert!(!err.contains("hunter2"));
    }

    #[test]
    fn vault_references() {
        let parse = |s: &str| s.parse::<SecretSource>();
        assert_eq!(
            parse("vault:/secret/a/#pw?version=2"),
            Ok(SecretSource::Vault {
                path: "secret/a".into(),
                field: "pw".into(),
                version: Some(2)
            })
        );
        assert_eq!(
            parse("vault:secret/a?version=2#pw"),
            parse("vault:secret/a#pw?version=2")
        );
        let err = parse("vault:secret/a").unwrap_err();
        assert!(err.contains("names no field"), "{err}");
        assert!(parse("vault:secret/a#").is_err());
        assert!(parse("vault:#pw").is_err());
        assert!(parse("vault:secret//a#pw").is_err());
        assert!(parse("vault:secret/a#pw?version=0").is_err());
        assert!(parse("vault:secret/a?version=x#pw").is_err());
    }

    #[test]
    fn urls() {
        assert!(check_http_url("https://a.example/x").is_ok());
        assert!(check_http_url("api.example.com/x").is_err());
        assert!(check_http_url("ftp://a.example").is_err());
        let err = check_http_url("localhost:8080/x").unwrap_err();
        assert!(err.contains("not an absolute URL"), "{err}");
        let err = check_http_url("api.example.com:443").unwrap_err();
        assert!(err.contains("https://api.example.com:443"), "{err}");
        for url in [
            "https://svc:hunter2@api.example.com/x",
            "https://hunter2@api.example.com",
            "http://svc:hunter2@",
            "svc:hunter2@api.example.com/x",
            "ftp://svc:hunter2@a.example",
            "http://svc:hunter2/x@api.example.com",
            "svc:hunter2/x@api.example.com:3128",
        ] {
            let err = check_http_url(url).unwrap_err();
            assert!(!err.contains("hunter2"), "{err}");
        }
        assert_eq!(
            without_credentials("https://u:p@h:1/a@b?c=d@e"),
            "https://(credentials)@h:1/a@b?c=d@e"
        );
        assert!(check_http_url("https://h.example/a@b").is_ok());
        let err = check_http_url("https://h.example:0/x").unwrap_err();
        assert!(err.contains("port 0"), "{err}");
        assert!(check_http_url("https://h.example:1/x").is_ok());
    }

    #[test]
    fn store_ids() {
        assert!(check_store_id(&Store::new().store_id).is_ok());
        for bad in [
            "",
            "x",
            "../../x",
            "6F1C0C7E-1B2A-4C3D-8E4F-5A6B7C8D9E0F",
            "6f1c0c7e1b2a4c3d8e4f5a6b7c8d9e0f",
            "{6f1c0c7e-1b2a-4c3d-8e4f-5a6b7c8d9e0f}",
            "urn:uuid:6f1c0c7e-1b2a-4c3d-8e4f-5a6b7c8d9e0f",
        ] {
            assert!(check_store_id(bad).is_err(), "{bad:?}");
        }
    }
}
