//! OAuth 2.0 access tokens: the client_credentials and password grants, the
//! refresh_token grant, and the keyring cache that spares a token request per send.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::{Value, json};

use super::transport::{self, HttpRequest, Route};
use super::{Trace, off_runtime};
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
        if cached.expires_in() > EXPIRY_MARGIN_SECS {
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

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        form.append_pair(k, v);
    }
    form.finish()
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// One token request: the profile's grant, or the refresh_token grant.
async fn request(source: &TokenSource, refresh: Option<&Secret>) -> Result<Token> {
    let profile = &source.profile;
    let scope = profile.scopes.join(" ");
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    match (refresh, profile.grant) {
        (Some(r), _) => {
            pairs.push(("grant_type", "refresh_token"));
            pairs.push(("refresh_token", r.expose()));
        }
        (None, Grant::ClientCredentials) => pairs.push(("grant_type", "client_credentials")),
        (None, Grant::Password) => {
            let (user, password) = source.owner.as_ref().ok_or_else(|| {
                Error::usage(
                    "the password grant needs a connection: its user and password are the resource owner",
                )
            })?;
            pairs.push(("grant_type", "password"));
            pairs.push(("username", user));
            pairs.push(("password", password.expose()));
        }
    }
    if !scope.is_empty() {
        pairs.push(("scope", &scope));
    }
    let secret = source
        .client_secret
        .as_ref()
        .map(|s| s.expose())
        .unwrap_or("");
    let mut headers = HeaderMap::new();
    let mut basic_credentials = None;
    match profile.client_auth {
        ClientAuth::Basic => {
            // RFC 6749 §2.3.1: id and secret are form-encoded before Base64.
            let token = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                urlencode(&profile.client_id),
                urlencode(secret)
            ));
            basic_credentials = Some(Secret::new(token.clone()));
            if let Ok(mut value) = HeaderValue::from_str(&format!("Basic {token}")) {
                value.set_sensitive(true);
                headers.insert(http::header::AUTHORIZATION, value);
            }
        }
        ClientAuth::Body => {
            pairs.push(("client_id", &profile.client_id));
            pairs.push(("client_secret", secret));
        }
    }
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(
        http::header::ACCEPT,
        HeaderValue::from_static("application/json"),
    );
    let url = url::Url::parse(&profile.token_url).map_err(|e| {
        Error::invalid(format!(
            "the token URL of OAuth profile '{}' is invalid",
            source.profile_name
        ))
        .with_cause(e)
    })?;
    let req = HttpRequest {
        url,
        method: Method::POST,
        headers,
        body: Bytes::from(form_encode(&pairs)),
    };
    let mut trace = Trace::default();
    let response = transport::execute(&req, &source.route, &mut trace)
        .await
        .map_err(|e| {
            let stage = trace
                .failed_stage()
                .map(|s| s.as_str())
                .unwrap_or("request");
            Error {
                message: format!("token endpoint ({stage}): {}", e.message),
                ..e
            }
        })?;
    let body: Option<Value> = serde_json::from_slice(&response.body).ok();
    let status = response.status;
    if !status.is_success() {
        return Err(token_refusal(
            source,
            refresh,
            basic_credentials.as_ref(),
            status,
            body.as_ref(),
        ));
    }
    let body = body.ok_or_else(|| {
        Error::failed(format!(
            "the token endpoint answered {} without a JSON body",
            transport::status_text(status)
        ))
    })?;
    let access_token = body
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::failed("the token endpoint's answer has no access_token"))?;
    let lifetime = match body.get("expires_in") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .unwrap_or(DEFAULT_LIFETIME_SECS);
    let scopes = match body.get("scope").and_then(Value::as_str) {
        Some(s) => s.split_whitespace().map(str::to_string).collect(),
        None => profile.scopes.clone(),
    };
    Ok(Token {
        access_token: Secret::new(access_token),
        expires_at: now() + lifetime,
        refresh_token: body
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(Secret::new),
        scopes,
        origin: "fetched",
        note: None,
    })
}

fn token_refusal(
    source: &TokenSource,
    refresh: Option<&Secret>,
    basic_credentials: Option<&Secret>,
    status: http::StatusCode,
    body: Option<&Value>,
) -> Error {
    // The server's words are repeated, minus anything it echoed of what it was sent.
    let mut sent: Vec<&Secret> = source.client_secret.iter().collect();
    sent.extend(source.owner.iter().map(|(_, password)| password));
    sent.extend(refresh);
    sent.extend(basic_credentials);
    let code = body
        .and_then(|b| b.get("error"))
        .and_then(Value::as_str)
        .map(|c| secrets::scrub(c, &sent))
        .unwrap_or_default();
    let code = code.as_str();
    let description = body
        .and_then(|b| b.get("error_description"))
        .and_then(Value::as_str)
        .map(|d| secrets::scrub(d, &sent));
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
