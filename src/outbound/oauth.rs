//! OAuth 2.0 access tokens on the `oauth2` crate: the client_credentials,
//! password, jwt_bearer, authorization_code and device_code grants, refresh,
//! revocation, discovery, and the cache that spares a token request per send.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod answer;
pub mod cache;
mod http;
pub mod jwt;
pub mod login;

use base64::Engine;
use oauth2::TokenResponse;
use serde_json::{Value, json};

use super::off_runtime;
use crate::error::{Error, Result};
use crate::model::{ClientAuth, Grant, OauthProfile};
use crate::net::transport::{self, Route};
use crate::secrets::{self, Secret, SecretRef};
pub use cache::Cache;

/// A cached token is used until this long before it expires.
const EXPIRY_MARGIN_SECS: i64 = 30;
/// How long a token whose answer had no `expires_in` is reused.
const DEFAULT_LIFETIME_SECS: i64 = 300;
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Everything needed to obtain a token for one connection (or for the profile alone).
pub struct TokenSource {
    pub profile_name: String,
    pub profile: OauthProfile,
    pub client_secret: Option<Secret>,
    /// The resource owner of the password grant: the connection's user and password.
    pub owner: Option<(String, Secret)>,
    pub cache_at: SecretRef,
    /// Where the refresh token of a login grant is kept (the keyring).
    pub refresh_at: SecretRef,
    /// The PEM signing key and where it came from (for messages).
    pub signing_key: Option<(Secret, String)>,
    /// Neither read nor write the cache: a token for a trial of a new secret.
    pub uncached: bool,
    /// The way to the token endpoint: the connection's MID server and trust
    /// roots; the client certificate for tls_client_auth.
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

/// The keyring field of a login grant's refresh token.
pub const REFRESH_FIELD: &str = "refresh_token";

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

/// The cached form. A login grant's refresh token is kept on its own
/// (`refresh_token` field), and a folder cache never holds one.
fn cache_json(source: &TokenSource, token: &Token, cache: &Cache) -> Secret {
    let refresh = if cache.holds_refresh_tokens() && !source.profile.grant.needs_login() {
        token.refresh_token.as_ref().map(|t| t.expose())
    } else {
        None
    };
    Secret::new(
        json!({
            "access_token": token.access_token.expose(),
            "expires_at": token.expires_at,
            "refresh_token": refresh,
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
    off_runtime(move || Cache::from_env().delete(&at)).await
}

/// For `oauth-profile show`: whether a refresh token is held (login grants:
/// the keyring entry; other grants: inside the cached token) and when the
/// cached access token expires. Never a value.
pub fn stored_state(
    store_id: &str,
    name: &str,
    profile: &OauthProfile,
) -> (Result<bool>, Option<i64>) {
    let kind = crate::model::RecordKind::OauthProfile;
    let cache_at = SecretRef::new(store_id, kind, name, &cache_field(profile, None));
    let cached = Cache::from_env()
        .get(&cache_at)
        .ok()
        .flatten()
        .and_then(|json| serde_json::from_str::<Value>(json.expose()).ok())
        .filter(|v| {
            v.get("token_url").and_then(Value::as_str) == Some(profile.token_url.as_str())
                && v.get("client_id").and_then(Value::as_str) == Some(profile.client_id.as_str())
        });
    let expires_at = cached
        .as_ref()
        .and_then(|v| v.get("expires_at"))
        .and_then(Value::as_i64);
    let held = if profile.grant.needs_login() {
        let at = SecretRef::new(store_id, kind, name, REFRESH_FIELD);
        secrets::keyring_get(&at).map(|v| v.is_some())
    } else {
        Ok(cached
            .as_ref()
            .and_then(|v| v.get("refresh_token"))
            .is_some_and(Value::is_string))
    };
    (held, expires_at)
}

/// Keeps a login grant's refresh token. The one place that writes it.
pub async fn keep_refresh_token(at: &SecretRef, value: &Secret) -> Result<()> {
    let (at, value) = (at.clone(), value.clone());
    off_runtime(move || secrets::keyring_set(&at, &value)).await
}

async fn cache_token(source: &TokenSource, token: &Token) -> Result<()> {
    let cache = Cache::from_env();
    let value = cache_json(source, token, &cache);
    let at = source.cache_at.clone();
    off_runtime(move || cache.set(&at, &value)).await
}

fn login_hint(source: &TokenSource) -> String {
    format!("run `connctl oauth-profile login {}`", source.profile_name)
}

/// A usable token: the cached one unless it is about to expire (then refreshed,
/// or fetched again), or a fresh one when `fresh` is set.
pub async fn obtain(source: &TokenSource, fresh: bool) -> Result<Token> {
    let lock = entry_lock(&source.cache_at.account());
    let _guard = lock.lock().await;
    let mut notes = Vec::new();
    let login = source.profile.grant.needs_login();

    let cached = if fresh || source.uncached {
        None
    } else {
        let at = source.cache_at.clone();
        match off_runtime(move || Cache::from_env().get(&at)).await {
            Ok(found) => found.and_then(|json| read_cache(source, json.expose())),
            Err(e) => {
                notes.push(format!("token cache unavailable: {}", e.message));
                None
            }
        }
    };

    let mut refresh = None;
    if let Some(cached) = cached {
        let usable = answer::check_bearer(cached.access_token.expose(), "").is_ok();
        if usable && cached.expires_in() > EXPIRY_MARGIN_SECS {
            return Ok(cached);
        }
        refresh = cached.refresh_token;
    }
    if login {
        let at = source.refresh_at.clone();
        refresh = off_runtime(move || secrets::keyring_get(&at)).await?;
        if refresh.is_none() {
            return Err(no_refresh_token(source));
        }
    }

    let mut token = None;
    if let Some(refresh) = &refresh {
        match request(source, Some(refresh)).await {
            Ok(mut t) => {
                t.origin = "refreshed";
                match &t.refresh_token {
                    // A rotated refresh token replaces the old one.
                    Some(new) if login && new.expose() != refresh.expose() => {
                        keep_refresh_token(&source.refresh_at, new).await?;
                    }
                    Some(_) => {}
                    None => t.refresh_token = Some(refresh.clone()),
                }
                token = Some(t);
            }
            Err(e) if login => {
                return Err(Error {
                    message: format!(
                        "the refresh token of OAuth profile '{}' was refused: {}",
                        source.profile_name, e.message
                    ),
                    hint: Some(format!("{} again", login_hint(source))),
                    ..e
                });
            }
            Err(e) => notes.push(format!("refresh refused ({}), fetched anew", e.message)),
        }
    }
    let mut token = match token {
        Some(t) => t,
        None => request(source, None).await?,
    };

    if source.uncached {
        notes.push("fetched for this test only, not cached".to_string());
    } else if let Err(e) = cache_token(source, &token).await {
        notes.push(format!("token not cached: {}", e.message));
    }
    if !notes.is_empty() {
        token.note = Some(notes.join("; "));
    }
    Ok(token)
}

/// The crate's client for one profile: endpoints, client id, secret, and
/// how the client authenticates.
type CrateClient = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    answer::TokenAnswer,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointMaybeSet,
    oauth2::EndpointMaybeSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointMaybeSet,
    oauth2::EndpointSet,
>;

fn bad_url(source: &TokenSource, field: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid(format!(
        "the {field} of OAuth profile '{}' is invalid",
        source.profile_name
    ))
    .with_cause(e)
}

fn crate_client(source: &TokenSource) -> Result<CrateClient> {
    let profile = &source.profile;
    let token_url = oauth2::TokenUrl::new(profile.token_url.clone())
        .map_err(|e| bad_url(source, "token URL", e))?;
    let auth_url = match &profile.authorization_url {
        Some(u) => Some(
            oauth2::AuthUrl::new(u.clone()).map_err(|e| bad_url(source, "authorization URL", e))?,
        ),
        None => None,
    };
    let device_url = match &profile.device_authorization_url {
        Some(u) => Some(
            oauth2::DeviceAuthorizationUrl::new(u.clone())
                .map_err(|e| bad_url(source, "device authorization URL", e))?,
        ),
        None => None,
    };
    let revocation_url = match &profile.revocation_url {
        Some(u) => Some(
            oauth2::RevocationUrl::new(u.clone())
                .map_err(|e| bad_url(source, "revocation URL", e))?,
        ),
        None => None,
    };
    let mut client = oauth2::Client::new(oauth2::ClientId::new(profile.client_id.clone()))
        .set_auth_uri_option(auth_url)
        .set_device_authorization_url_option(device_url)
        .set_revocation_url_option(revocation_url)
        .set_token_uri(token_url)
        .set_auth_type(match profile.client_auth {
            ClientAuth::Basic => oauth2::AuthType::BasicAuth,
            _ => oauth2::AuthType::RequestBody,
        });
    if profile.client_auth.uses_secret() {
        // A client without a secret sends an empty one, as connctl always has.
        let secret = source
            .client_secret
            .as_ref()
            .map(|s| s.expose().to_string())
            .unwrap_or_default();
        client = client.set_client_secret(oauth2::ClientSecret::new(secret));
    }
    Ok(client)
}

fn signing_key(source: &TokenSource) -> Result<jwt::SigningKey> {
    let (pem, label) = source.signing_key.as_ref().ok_or_else(|| {
        Error::invalid(format!(
            "OAuth profile '{}' has no signing key",
            source.profile_name
        ))
        .with_hint(format!(
            "connctl oauth-profile edit {} --signing-key KEY.pem",
            source.profile_name
        ))
    })?;
    jwt::SigningKey::from_pem(pem.expose(), label, source.profile.key_id.clone())
}

fn audience(profile: &OauthProfile) -> &str {
    profile.audience.as_deref().unwrap_or(&profile.token_url)
}

/// The form parameters of the client's authentication that the crate does not
/// build: `client_assertion` for private_key_jwt.
fn auth_params(source: &TokenSource) -> Result<Vec<(String, Secret)>> {
    if source.profile.client_auth != ClientAuth::PrivateKeyJwt {
        return Ok(Vec::new());
    }
    let id = &source.profile.client_id;
    let assertion = signing_key(source)?.sign(id, id, audience(&source.profile), now())?;
    Ok(vec![
        (
            "client_assertion_type".into(),
            Secret::new(CLIENT_ASSERTION_TYPE),
        ),
        ("client_assertion".into(), assertion),
    ])
}

/// Adds extra form parameters to any of the crate's request builders.
macro_rules! with_params {
    ($builder:expr, $params:expr) => {{
        let mut b = $builder;
        for (k, v) in $params {
            b = b.add_extra_param(k.as_str(), v.expose());
        }
        b
    }};
}

fn scopes_of(profile: &OauthProfile) -> Vec<oauth2::Scope> {
    profile
        .scopes
        .iter()
        .map(|s| oauth2::Scope::new(s.clone()))
        .collect()
}

/// One token request: the profile's grant, or the refresh_token grant.
async fn request(source: &TokenSource, refresh: Option<&Secret>) -> Result<Token> {
    let profile = &source.profile;
    let client = crate_client(source)?;
    let scopes = scopes_of(profile);
    let endpoint = endpoint_text(&profile.token_url);
    let http = http::Client::new(&source.route, &endpoint);
    let params = auth_params(source)?;
    let mut sent: Vec<Secret> = params.iter().map(|(_, v)| v.clone()).collect();
    let answer = match (refresh, profile.grant) {
        (Some(r), _) => {
            let r = oauth2::RefreshToken::new(r.expose().to_string());
            // A login grant's refresh keeps the scopes the person granted (RFC 6749 §6):
            // servers refuse scopes the refresh token lacks (offline_access, often).
            let scopes = if profile.grant.needs_login() {
                Vec::new()
            } else {
                scopes
            };
            with_params!(
                client.exchange_refresh_token(&r).add_scopes(scopes),
                &params
            )
            .request_async(&http)
            .await
        }
        (None, Grant::ClientCredentials) => {
            with_params!(
                client.exchange_client_credentials().add_scopes(scopes),
                &params
            )
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
            with_params!(
                client
                    .exchange_password(&user, &password)
                    .add_scopes(scopes),
                &params
            )
            .request_async(&http)
            .await
        }
        (None, Grant::JwtBearer) => {
            let subject = profile.subject.as_deref().unwrap_or(&profile.client_id);
            let assertion =
                signing_key(source)?.sign(&profile.client_id, subject, audience(profile), now())?;
            sent.push(assertion.clone());
            let mut form = vec![
                ("grant_type".to_string(), Secret::new(JWT_BEARER)),
                ("assertion".to_string(), assertion),
            ];
            form.extend(params.iter().cloned());
            jwt_bearer(source, &client, &http, &form).await
        }
        (None, Grant::AuthorizationCode | Grant::DeviceCode) => {
            return Err(no_refresh_token(source));
        }
    };
    let answer =
        answer.map_err(|e| refusal(source, refresh, &sent, &endpoint, http.last_status(), e))?;
    token_of(source, &endpoint, answer)
}

/// A login grant (authorization code, device) with no refresh token kept.
fn no_refresh_token(source: &TokenSource) -> Error {
    Error::auth(format!(
        "OAuth profile '{}' uses the {} grant and holds no refresh token",
        source.profile_name,
        source.profile.grant.as_str()
    ))
    .with_hint(format!("{} first", login_hint(source)))
}

fn token_of(source: &TokenSource, endpoint: &str, answer: answer::TokenAnswer) -> Result<Token> {
    let access_token = answer.access_token().secret();
    answer::check_bearer(access_token, endpoint)?;
    let lifetime = answer
        .expires_in()
        .map(|d| d.as_secs().min(i64::MAX as u64 / 2) as i64)
        .unwrap_or(DEFAULT_LIFETIME_SECS);
    let scopes = match answer.scopes() {
        Some(s) => s.iter().map(|s| s.to_string()).collect(),
        None => source.profile.scopes.clone(),
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

type CrateError<T = oauth2::basic::BasicErrorResponseType> =
    oauth2::RequestTokenError<http::TransportError, oauth2::StandardErrorResponse<T>>;

/// The jwt_bearer grant (RFC 7523 §2.1), which the crate does not build: our
/// form through the same client, the answer read as the crate reads one.
async fn jwt_bearer(
    source: &TokenSource,
    client: &CrateClient,
    http: &http::Client<'_>,
    form: &[(String, Secret)],
) -> std::result::Result<answer::TokenAnswer, CrateError> {
    let mut pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
    let scope = source.profile.scopes.join(" ");
    if !scope.is_empty() {
        pairs.push(("scope", &scope));
    }
    let mut builder = ::http::Request::builder()
        .method(::http::Method::POST)
        .uri(client.token_uri().as_str())
        .header(::http::header::ACCEPT, "application/json")
        .header(
            ::http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
    match (source.profile.client_auth, &source.client_secret) {
        (ClientAuth::Basic, Some(secret)) => {
            let enc = |t: &str| -> String {
                url::form_urlencoded::byte_serialize(t.as_bytes()).collect()
            };
            let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                enc(&source.profile.client_id),
                enc(secret.expose())
            ));
            let mut value = ::http::HeaderValue::from_str(&format!("Basic {basic}"))
                .map_err(|e| oauth2::RequestTokenError::Other(e.to_string()))?;
            value.set_sensitive(true);
            builder = builder.header(::http::header::AUTHORIZATION, value);
        }
        (ClientAuth::Body, secret) => {
            pairs.push(("client_id", &source.profile.client_id));
            pairs.push((
                "client_secret",
                secret.as_ref().map(|s| s.expose()).unwrap_or(""),
            ));
        }
        _ => pairs.push(("client_id", &source.profile.client_id)),
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let request = builder
        .body(body.into_bytes())
        .map_err(|e| oauth2::RequestTokenError::Other(e.to_string()))?;
    let response = http
        .exchange(request)
        .await
        .map_err(oauth2::RequestTokenError::Request)?;
    let body = response.body();
    if response.status() != ::http::StatusCode::OK {
        if body.is_empty() {
            return Err(oauth2::RequestTokenError::Other(
                "server returned empty error response".into(),
            ));
        }
        return Err(
            match serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body))
            {
                Ok(e) => oauth2::RequestTokenError::ServerResponse(e),
                Err(e) => oauth2::RequestTokenError::Parse(e, body.to_vec()),
            },
        );
    }
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body))
        .map_err(|e| oauth2::RequestTokenError::Parse(e, body.to_vec()))
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
            escape(u.as_str())
        }
        Err(_) => escape(url),
    }
}

pub use crate::text::escape;

/// The crate's error as connctl's: transport failures keep their own kind;
/// the server's refusals are explained (exit 8), other answers are exit 1.
fn refusal<T: oauth2::ErrorResponseType + AsRef<str> + std::fmt::Display + 'static>(
    source: &TokenSource,
    refresh: Option<&Secret>,
    sent: &[Secret],
    endpoint: &str,
    status: Option<::http::StatusCode>,
    err: CrateError<T>,
) -> Error {
    let scrub = |text: &str| escape(&scrubbed(source, refresh, sent, text));
    match err {
        oauth2::RequestTokenError::Request(e) => e.0,
        oauth2::RequestTokenError::ServerResponse(answer) => token_refusal(
            source,
            refresh,
            status.unwrap_or(::http::StatusCode::BAD_REQUEST),
            Some(&scrub(answer.error().as_ref())),
            answer.error_description().map(|d| scrub(d)).as_deref(),
        ),
        oauth2::RequestTokenError::Parse(e, _) => match status {
            Some(s) if s == ::http::StatusCode::OK => Error::failed(format!(
                "the token endpoint {endpoint} answered 200 OK with no usable token"
            ))
            .with_cause(scrub(&e.to_string())),
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
            .with_cause(scrub(&text)),
        },
    }
}

/// What connctl sent, to be scrubbed from anything the server says back.
fn scrubbed(source: &TokenSource, refresh: Option<&Secret>, more: &[Secret], text: &str) -> String {
    let mut sent: Vec<&Secret> = source.client_secret.iter().collect();
    sent.extend(source.owner.iter().map(|(_, password)| password));
    sent.extend(refresh);
    sent.extend(more);
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
    // The caller scrubbed and escaped the server's words.
    let code = code.unwrap_or_default();
    let description = description.map(str::to_string);
    let profile = &source.profile_name;
    let status_text = transport::status_text(status);
    let err = match code {
        "invalid_client" if !source.profile.client_auth.uses_secret() => Error::auth(format!(
            "token endpoint rejected the client's {} authentication (invalid_client, {status_text})",
            source.profile.client_auth.as_str()
        ))
        .with_hint(format!(
            "check the client id, signing key or certificate of OAuth profile '{profile}'"
        )),
        "invalid_client" => Error::auth(format!(
            "token endpoint rejected the client secret (invalid_client, {status_text})"
        ))
        .with_hint(format!(
            "check the client id and secret of OAuth profile '{profile}'"
        )),
        "invalid_grant" if refresh.is_some() => {
            Error::auth("token endpoint refused the refresh token (invalid_grant)")
        }
        "invalid_grant" if source.profile.grant == Grant::Password => Error::auth(format!(
            "token endpoint rejected the resource owner's user or password (invalid_grant, {status_text})"
        ))
        .with_hint("check the connection's user and password"),
        "invalid_grant" => Error::auth(format!(
            "token endpoint refused the {} grant (invalid_grant, {status_text})",
            source.profile.grant.as_str()
        )),
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
