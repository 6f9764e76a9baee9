//! OAuth 2.0 access tokens: the client_credentials and password grants, the
//! refresh_token grant, and the keyring cache that spares a token request per send.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod answer;
mod http;

use base64::Engine;
use serde_json::{Value, json};

use super::off_runtime;
use super::transport::{self, Route};
use crate::error::{Error, Result};
use crate::model::{ClientAuth, Grant, OauthProfile};
use crate::secrets::{self, Secret, SecretRef};

/// A cached token is used until this long before it expires.
const EXPIRY_MARGIN_SECS: i64 = 30;
/// How long a token whose answer had no `expires_in` is reused.
const DEFAULT_LIFETIME_SECS: i64 = 300;

/// Everything needed to obtain a token for one connection (or for the profile alone).
pub struct TokenSource {
    pub profile_name: String,
    pub profile: OauthProfile,
    pub client_secret: Option<Secret>,
    /// The resource owner of the password grant: the connection's user and password.
    pub owner: Option<(String, Secret)>,
    pub cache_at: SecretRef,
    /// Neither read nor write the cache: a token for a trial of a new secret.
    pub uncached: bool,
    /// The way to the token endpoint: the connection's MID server and trust roots.
    pub route: Route,
}

/// An access token and what is known about it.
#[derive(Clone)]
pub struct Token {
    pub access_token: Secret,
    pub expires_at: i64,
    pub refresh_token: Option<Secret>,
    pub scopes: Vec<String>,
    /// How it was obtained: "cached", "refreshed", "fetched".
    pub origin: &'static str,
    /// A note for the operator, e.g. that the cache could not be written.
    pub note: Option<String>,
}

impl Token {
    pub fn expires_in(&self) -> i64 {
        self.expires_at - now()
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The cache key for a profile (and the connection, for the password grant).
pub fn cache_field(profile: &OauthProfile, connection: Option<&str>) -> String {
    match (profile.grant, connection) {
        (Grant::Password, Some(c)) => format!("token:{c}"),
        _ => "token".to_string(),
    }
}

/// One lock per cache entry, so concurrent tests of connections sharing a
/// profile fetch one token, not one each.
fn entry_lock(account: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let map = LOCKS.get_or_init(|| Mutex::new(HashMap::new()));
    match map.lock() {
        Ok(mut map) => map.entry(account.to_string()).or_default().clone(),
        Err(_) => Arc::new(tokio::sync::Mutex::new(())),
    }
}

fn read_cache(source: &TokenSource, json: &str) -> Option<Token> {
    let value: Value = serde_json::from_str(json).ok()?;
    if value.get("token_url")?.as_str()? != source.profile.token_url
        || value.get("client_id")?.as_str()? != source.profile.client_id
    {
        return None;
    }
    let scopes: Vec<String> = value
        .get("scopes")?
        .as_array()?
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    Some(Token {
        access_token: Secret::new(value.get("access_token")?.as_str()?),
        expires_at: value.get("expires_at")?.as_i64()?,
        refresh_token: value
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(Secret::new),
        scopes,
        origin: "cached",
        note: None,
    })
}

fn cache_json(source: &TokenSource, token: &Token) -> Secret {
    Secret::new(
        json!({
            "access_token": token.access_token.expose(),
            "expires_at": token.expires_at,
            "refresh_token": token.refresh_token.as_ref().map(|t| t.expose()),
            "scopes": token.scopes,
            "token_url": source.profile.token_url,
            "client_id": source.profile.client_id,
        })
        .to_string(),
    )
}

/// Drops the cached token (after the endpoint refused it).
pub async fn forget(source: &TokenSource) -> Result<()> {
    let at = source.cache_at.clone();
    off_runtime(move || secrets::keyring_delete(&at)).await
}

/// A usable token: the cached one unless it is about to expire (then refreshed,
/// or fetched again), or a fresh one when `fresh` is set.
pub async fn obtain(source: &TokenSource, fresh: bool) -> Result<Token> {
    let lock = entry_lock(&source.cache_at.account());
    let _guard = lock.lock().await;
    let mut notes = Vec::new();

    let cached = if fresh || source.uncached {
        None
    } else {
        let at = source.cache_at.clone();
        match off_runtime(move || secrets::keyring_get(&at)).await {
            Ok(found) => found.and_then(|json| read_cache(source, json.expose())),
            Err(e) => {
                notes.push(format!("token cache unavailable: {}", e.message));
                None
            }
        }
    };

    let mut token = None;
    if let Some(cached) = cached {
        let usable = answer::check_bearer(cached.access_token.expose(), "").is_ok();
        if usable && cached.expires_in() > EXPIRY_MARGIN_SECS {
            return Ok(cached);
        }
        if let Some(refresh) = &cached.refresh_token {
            match request(source, Some(refresh)).await {
                Ok(mut t) => {
                    t.origin = "refreshed";
                    if t.refresh_token.is_none() {
                        t.refresh_token = Some(refresh.clone());
                    }
                    token = Some(t);
                }
                Err(e) => notes.push(format!("refresh refused ({}), fetched anew", e.message)),
            }
        }
    }
    let mut token = match token {
        Some(t) => t,
        None => request(source, None).await?,
    };

    if source.uncached {
        notes.push("fetched for this test only, not cached".to_string());
    } else {
        let at = source.cache_at.clone();
        let value = cache_json(source, &token);
        if let Err(e) = off_runtime(move || secrets::keyring_set(&at, &value)).await {
            notes.push(format!("token not cached: {}", e.message));
        }
    }
    if !notes.is_empty() {
        token.note = Some(notes.join("; "));
    }
    Ok(token)
}

/// The crate's client for one profile: token endpoint, client id and secret,
/// and how the client authenticates.
type CrateClient = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    answer::TokenAnswer,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn crate_client(source: &TokenSource) -> Result<CrateClient> {
    let profile = &source.profile;
    let token_url = oauth2::TokenUrl::new(profile.token_url.clone()).map_err(|e| {
        Error::invalid(format!(
            "the token URL of OAuth profile '{}' is invalid",
            source.profile_name
        ))
        .with_cause(e)
    })?;
    let mut client = oauth2::Client::new(oauth2::ClientId::new(profile.client_id.clone()))
        .set_token_uri(token_url)
        .set_auth_type(match profile.client_auth {
            ClientAuth::Basic => oauth2::AuthType::BasicAuth,
            ClientAuth::Body => oauth2::AuthType::RequestBody,
        });
    // A client without a secret sends an empty one, as connctl always has.
    let secret = source
        .client_secret
        .as_ref()
        .map(|s| s.expose().to_string())
        .unwrap_or_default();
    client = client.set_client_secret(oauth2::ClientSecret::new(secret));
    Ok(client)
}

/// One token request: the profile's grant, or the refresh_token grant.
async fn request(source: &TokenSource, refresh: Option<&Secret>) -> Result<Token> {
    use oauth2::TokenResponse;

    let profile = &source.profile;
    let client = crate_client(source)?;
    let scopes = profile
        .scopes
        .iter()
        .map(|s| oauth2::Scope::new(s.clone()))
        .collect::<Vec<_>>();
    let endpoint = endpoint_text(&profile.token_url);
    let http = http::Client::new(&source.route, &endpoint);
    let answer = match (refresh, profile.grant) {
        (Some(r), _) => {
            let r = oauth2::RefreshToken::new(r.expose().to_string());
            client
                .exchange_refresh_token(&r)
                .add_scopes(scopes)
                .request_async(&http)
                .await
        }
        (None, Grant::ClientCredentials) => {
            client
                .exchange_client_credentials()
                .add_scopes(scopes)
                .request_async(&http)
                .await
        }
        (None, Grant::Password) => {
            let (user, password) = source.owner.as_ref().ok_or_else(|| {
                Error::usage(
                    "the password grant needs a connection: its user and password are the resource owner",
                )
            })?;
            let user = oauth2::ResourceOwnerUsername::new(user.clone());
            let password = oauth2::ResourceOwnerPassword::new(password.expose().to_string());
            client
                .exchange_password(&user, &password)
                .add_scopes(scopes)
                .request_async(&http)
                .await
        }
    };
    let answer = answer.map_err(|e| refusal(source, refresh, &endpoint, http.last_status(), e))?;
    let access_token = answer.access_token().secret();
    answer::check_bearer(access_token, &endpoint)?;
    let lifetime = answer
        .expires_in()
        .map(|d| d.as_secs().min(i64::MAX as u64 / 2) as i64)
        .unwrap_or(DEFAULT_LIFETIME_SECS);
    let scopes = match answer.scopes() {
        Some(s) => s.iter().map(|s| s.to_string()).collect(),
        None => profile.scopes.clone(),
    };
    Ok(Token {
        access_token: Secret::new(access_token),
        expires_at: now().saturating_add(lifetime),
        refresh_token: answer
            .refresh_token()
            .map(|t| Secret::new(t.secret().as_str())),
        scopes,
        origin: "fetched",
        note: None,
    })
}

/// A URL as messages show it: without user info, query or fragment (they may
/// hold credentials), control characters escaped.
pub fn endpoint_text(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => escape(url),
    }
}

/// Server text as it is printed: control characters escaped (`\n`, `\u{1b}`).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

type CrateError =
    oauth2::RequestTokenError<http::TransportError, oauth2::basic::BasicErrorResponse>;

/// The crate's error as connctl's: transport failures keep their own kind;
/// the server's refusals are explained (exit 8), other answers are exit 1.
fn refusal(
    source: &TokenSource,
    refresh: Option<&Secret>,
    endpoint: &str,
    status: Option<::http::StatusCode>,
    err: CrateError,
) -> Error {
    match err {
        oauth2::RequestTokenError::Request(e) => e.0,
        oauth2::RequestTokenError::ServerResponse(answer) => {
            let code = answer.error().as_ref().to_string();
            token_refusal(
                source,
                refresh,
                status.unwrap_or(::http::StatusCode::BAD_REQUEST),
                Some(&code),
                answer.error_description().map(String::as_str),
            )
        }
        oauth2::RequestTokenError::Parse(e, _) => match status {
            Some(s) if s == ::http::StatusCode::OK => Error::failed(format!(
                "the token endpoint {endpoint} answered 200 OK with no usable token"
            ))
            .with_cause(escape(&scrubbed(source, refresh, &e.to_string()))),
            Some(s) => token_refusal(source, refresh, s, None, None),
            None => Error::failed(format!(
                "the token endpoint {endpoint} answered nothing usable"
            )),
        },
        oauth2::RequestTokenError::Other(text) => match status {
            Some(s) if s != ::http::StatusCode::OK => token_refusal(source, refresh, s, None, None),
            _ => Error::failed(format!(
                "the token endpoint {endpoint} answered without a JSON token"
            ))
            .with_cause(escape(&text)),
        },
    }
}

/// What connctl sent, to be scrubbed from anything the server says back.
fn scrubbed(source: &TokenSource, refresh: Option<&Secret>, text: &str) -> String {
    let mut sent: Vec<&Secret> = source.client_secret.iter().collect();
    sent.extend(source.owner.iter().map(|(_, password)| password));
    sent.extend(refresh);
    let basic = source.client_secret.as_ref().map(|secret| {
        let enc =
            |t: &str| -> String { url::form_urlencoded::byte_serialize(t.as_bytes()).collect() };
        Secret::new(base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(&source.profile.client_id),
            enc(secret.expose())
        )))
    });
    sent.extend(basic.as_ref());
    secrets::scrub(text, &sent)
}

fn token_refusal(
    source: &TokenSource,
    refresh: Option<&Secret>,
    status: ::http::StatusCode,
    code: Option<&str>,
    description: Option<&str>,
) -> Error {
    // The server's words are repeated, minus anything it echoed of what it was sent.
    let code = code
        .map(|c| escape(&scrubbed(source, refresh, c)))
        .unwrap_or_default();
    let code = code.as_str();
    let description = description.map(|d| escape(&scrubbed(source, refresh, d)));
    let profile = &source.profile_name;
    let status_text = transport::status_text(status);
    let err = match code {
        "invalid_client" => Error::auth(format!(
            "token endpoint rejected the client secret (invalid_client, {status_text})"
        ))
        .with_hint(format!(
            "check the client id and secret of OAuth profile '{profile}'"
        )),
        "invalid_grant" if refresh.is_some() => {
            Error::auth("token endpoint refused the refresh token (invalid_grant)")
        }
        "invalid_grant" => Error::auth(format!(
            "token endpoint rejected the resource owner's user or password (invalid_grant, {status_text})"
        ))
        .with_hint("check the connection's user and password"),
        "invalid_scope" => Error::auth(format!(
            "token endpoint refused the scopes '{}' (invalid_scope)",
            source.profile.scopes.join(" ")
        )),
        "unauthorized_client" => Error::auth(format!(
            "token endpoint does not allow client '{}' the {} grant (unauthorized_client)",
            source.profile.client_id,
            source.profile.grant.as_str()
        )),
        _ if status.as_u16() == 401 || status.as_u16() == 403 => Error::auth(format!(
            "token endpoint rejected the client credentials ({status_text})"
        ))
        .with_hint(format!(
            "check the client id, secret and client auth style of OAuth profile '{profile}'"
        )),
        _ if status.as_u16() == 400 && !code.is_empty() => Error::auth(format!(
            "token endpoint refused the request ({code}, {status_text})"
        )),
        _ => Error::failed(format!("token endpoint answered {status_text}")),
    };
    match description {
        Some(d) => err.with_cause(d),
        None => err,
    }
}

/// Describes a token for a stage detail or `oauth-profile token`, never showing it.
pub fn describe(token: &Token) -> String {
    let scopes = if token.scopes.is_empty() {
        "no scopes".to_string()
    } else {
        format!("scopes {}", token.scopes.join(" "))
    };
    let mut text = format!(
        "{} token, expires in {}, {scopes}",
        token.origin,
        human_secs(token.expires_in())
    );
    if let Some(note) = &token.note {
        text.push_str("; ");
        text.push_str(note);
    }
    text
}

pub fn human_secs(secs: i64) -> String {
    let d = Duration::from_secs(secs.max(0) as u64);
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
