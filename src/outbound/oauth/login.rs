//! The grants a person starts: authorization code with PKCE through a
//! loopback redirect (RFC 8252), and the device flow (RFC 8628); then
//! revocation (RFC 7009) and discovery (RFC 8414 / OpenID Connect Discovery).
//! The `oauth2` crate builds and reads every OAuth message; the loopback
//! listener, the browser and discovery are ours.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{
    Token, TokenSource, auth_params, cache_token, crate_client, endpoint_text, escape, http, jwt,
    refusal, scopes_of, token_of,
};
use crate::error::{Error, Result};
use crate::net::transport::{self, HttpRequest, Route};
use crate::outbound::off_runtime;
use crate::secrets::{self, Secret};

/// The most of the redirect request that is read.
const REDIRECT_LIMIT: usize = 16 * 1024;

/// Keeps a login's access token in the cache (the caller keeps the refresh
/// token, through the records-and-secrets transaction). Notes what it could not do.
pub async fn keep_access_token(source: &TokenSource, mut token: Token) -> Token {
    if token.refresh_token.is_none() {
        token.note = Some(
            "the server issued no refresh token (ask for the offline_access scope?): \
             sends work until the access token expires"
                .into(),
        );
    }
    if let Err(e) = cache_token(source, &token).await {
        let note = format!("token not cached: {}", e.message);
        token.note = Some(match token.note.take() {
            Some(n) => format!("{n}; {note}"),
            None => note,
        });
    }
    token
}

fn config_error(source: &TokenSource, field: &str, flag: &str) -> Error {
    Error::invalid(format!(
        "OAuth profile '{}' has no {field}",
        source.profile_name
    ))
    .with_hint(format!(
        "connctl oauth-profile edit {} {flag} URL (or --issuer URL)",
        source.profile_name
    ))
}

/// The device flow: asks for a code, shows it with `say`, polls the token
/// endpoint honouring `interval` and `slow_down` until approved, denied or
/// expired (the server's `expires_in`, or `timeout` if shorter).
pub async fn device(
    source: &TokenSource,
    say: &(dyn Fn(String) + Sync),
    timeout: Duration,
) -> Result<Token> {
    let profile = &source.profile;
    let client = crate_client(source)?;
    let device_url = profile
        .device_authorization_url
        .as_deref()
        .map(endpoint_text)
        .unwrap_or_default();
    let endpoint = endpoint_text(&profile.token_url);
    let params = auth_params(source)?;
    let sent: Vec<Secret> = params.iter().map(|(_, v)| v.clone()).collect();
    let http_device = http::Client::new(&source.route, &device_url);
    let request = client.exchange_device_code().map_err(|_| {
        config_error(
            source,
            "device_authorization_url",
            "--device-authorization-url",
        )
    })?;
    let mut request = request.add_scopes(scopes_of(profile));
    for (k, v) in &params {
        request = request.add_extra_param(k.as_str(), v.expose());
    }
    let details: oauth2::StandardDeviceAuthorizationResponse =
        request.request_async(&http_device).await.map_err(|e| {
            let err = refusal(
                source,
                None,
                &sent,
                &device_url,
                http_device.last_status(),
                e,
            );
            Error {
                message: format!("device authorization endpoint: {}", err.message),
                ..err
            }
        })?;
    let uri = escape(details.verification_uri().as_str());
    let code = escape(details.user_code().secret());
    let mut text = format!("To log in, open {uri} and enter the code {code}");
    if let Some(complete) = details.verification_uri_complete() {
        text.push_str(&format!(
            "\n  (or open {} directly)",
            escape(complete.secret())
        ));
    }
    text.push_str(&format!(
        "\n  waiting up to {} for the approval...",
        super::human_secs(details.expires_in().min(timeout).as_secs() as i64)
    ));
    say(text);
    // Each poll authenticates anew: a private_key_jwt assertion is single-use.
    let http_token =
        http::Client::new(&source.route, &endpoint).with_fresh_params(|| auth_params(source));
    let answer = client
        .exchange_device_access_token(&details)
        .request_async(&http_token, tokio::time::sleep, Some(timeout))
        .await
        .map_err(|e| {
            if let oauth2::RequestTokenError::ServerResponse(r) = &e {
                match r.error() {
                    oauth2::DeviceCodeErrorResponseType::ExpiredToken => {
                        return Error::auth(
                            "the device code expired before anyone approved it (expired_token)",
                        )
                        .with_hint(format!(
                            "run `connctl oauth-profile login {}` again and approve within the time shown",
                            source.profile_name
                        ));
                    }
                    oauth2::DeviceCodeErrorResponseType::AccessDenied => {
                        return Error::auth("the login was denied at the authorization server (access_denied)");
                    }
                    _ => {}
                }
            }
            let mut sent = sent.clone();
            sent.extend(http_token.issued());
            refusal(source, None, &sent, &endpoint, http_token.last_status(), e)
        })?;
    token_of(source, &endpoint, answer)
}

/// Where the loopback listener listens and what the redirect URI is.
fn redirect_target(registered: Option<&str>) -> Result<(String, u16, String)> {
    let Some(uri) = registered else {
        return Ok(("127.0.0.1".into(), 0, "/callback".into()));
    };
    let url = url::Url::parse(uri).map_err(|e| {
        Error::invalid(format!("the redirect URI '{}' is invalid", escape(uri))).with_cause(e)
    })?;
    let host = url.host_str().unwrap_or_default().to_string();
    if url.scheme() != "http" || !matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]") {
        return Err(Error::invalid(format!(
            "the redirect URI '{}' is not a loopback http URI",
            escape(uri)
        ))
        .with_hint("register e.g. http://127.0.0.1:8765/callback (RFC 8252 §7.3)"));
    }
    Ok((host, url.port().unwrap_or(80), url.path().to_string()))
}

/// Opens the browser: `BROWSER` when set (empty: none), else the desktop's opener.
fn open_browser(url: &str) -> Option<String> {
    let words: Vec<String> = match std::env::var("BROWSER") {
        Ok(b) if b.trim().is_empty() => return None,
        Ok(b) => b.split_whitespace().map(str::to_string).collect(),
        Err(_) if cfg!(target_os = "macos") => vec!["open".into()],
        Err(_) if cfg!(windows) => vec!["explorer".into()],
        Err(_)
            if std::env::var_os("DISPLAY").is_some()
                || std::env::var_os("WAYLAND_DISPLAY").is_some() =>
        {
            vec!["xdg-open".into()]
        }
        Err(_) => return None,
    };
    let (program, args) = words.split_first()?;
    let mut cmd = std::process::Command::new(program);
    let mut placed = false;
    for a in args {
        if a.contains("%s") {
            cmd.arg(a.replace("%s", url));
            placed = true;
        } else {
            cmd.arg(a);
        }
    }
    if !placed {
        cmd.arg(url);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match cmd.spawn() {
        Ok(_) => Some(program.clone()),
        Err(_) => None,
    }
}

/// One request to the listener: its target (path and query).
async fn read_target(tcp: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() + n > REDIRECT_LIMIT {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = buf.split(|b| *b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    let (method, target) = (parts.next()?, parts.next()?);
    (method == "GET").then(|| target.to_string())
}

async fn answer_page(tcp: &mut tokio::net::TcpStream, status: &str, text: &str) {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>connctl</title><p>{}</p>",
        text.replace('&', "&amp;").replace('<', "&lt;")
    );
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.write_all(reply.as_bytes()).await;
    let _ = tcp.shutdown().await;
}

/// The authorization code grant with PKCE (S256): a loopback listener on
/// 127.0.0.1, the URL shown (and the browser opened), `state` checked, the
/// code exchanged. Nothing is stored unless all of it succeeds.
pub async fn authorization_code(
    source: &TokenSource,
    say: &(dyn Fn(String) + Sync),
    timeout: Duration,
) -> Result<Token> {
    let profile = &source.profile;
    let (host, port, path) = redirect_target(profile.redirect_uri.as_deref())?;
    let bind_host = if host == "[::1]" { "::1" } else { "127.0.0.1" };
    let listener = TcpListener::bind((bind_host, port)).await.map_err(|e| {
        Error::network(format!(
            "cannot listen on {bind_host}:{port} for the login redirect"
        ))
        .with_source(&e)
        .with_hint("another program uses the port: close it, or register another redirect URI")
    })?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    let redirect = format!("http://{host}:{port}{path}");
    let client = crate_client(source)?.set_redirect_uri(
        oauth2::RedirectUrl::new(redirect.clone())
            .map_err(|e| Error::invalid("the redirect URI is invalid").with_cause(e))?,
    );
    let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(oauth2::CsrfToken::new_random)
        .map_err(|_| config_error(source, "authorization_url", "--authorization-url"))?
        .add_scopes(scopes_of(profile))
        .set_pkce_challenge(challenge)
        .url();
    let opened = open_browser(url.as_str());
    say(match opened {
        Some(program) => format!(
            "Opened the browser ({program}) at the login page; if it did not appear, open:\n  {url}\n  waiting for the redirect to {redirect} ..."
        ),
        None => format!(
            "To log in, open this URL in a browser:\n  {url}\n  waiting for the redirect to {redirect} ..."
        ),
    });

    let wait = async {
        loop {
            let (mut tcp, _) = listener
                .accept()
                .await
                .map_err(|e| Error::network("the login listener failed").with_source(&e))?;
            let Some(target) = read_target(&mut tcp).await else {
                answer_page(&mut tcp, "400 Bad Request", "Not a login redirect.").await;
                continue;
            };
            let Ok(seen) = url::Url::parse(&format!("http://{host}:{port}{target}")) else {
                answer_page(&mut tcp, "400 Bad Request", "Not a login redirect.").await;
                continue;
            };
            if seen.path() != path {
                answer_page(&mut tcp, "404 Not Found", "Not found.").await;
                continue;
            }
            let query: std::collections::HashMap<String, String> =
                seen.query_pairs().into_owned().collect();
            return Ok::<_, Error>((tcp, query));
        }
    };
    let (mut tcp, query) = tokio::time::timeout(timeout, wait).await.map_err(|_| {
        Error::auth(format!(
            "no login redirect arrived within {}",
            super::human_secs(timeout.as_secs() as i64)
        ))
        .with_hint("finish the login in the browser sooner, or raise --timeout")
    })??;
    if query.get("state").map(String::as_str) != Some(state.secret().as_str()) {
        answer_page(
            &mut tcp,
            "400 Bad Request",
            "The login failed: the state does not match. Nothing was stored.",
        )
        .await;
        return Err(Error::auth(
            "the login redirect's state does not match the one sent: it was not the answer to this login; nothing was stored",
        )
        .with_hint("start again with `connctl oauth-profile login`"));
    }
    if let Some(code) = query.get("error") {
        let mut words = escape(code);
        if let Some(d) = query.get("error_description") {
            words.push_str(": ");
            words.push_str(&escape(d));
        }
        answer_page(
            &mut tcp,
            "200 OK",
            "The login was refused. Nothing was stored; you can close this window.",
        )
        .await;
        return Err(Error::auth(format!(
            "the authorization server refused the login ({words}); nothing was stored"
        )));
    }
    let Some(code) = query.get("code") else {
        answer_page(&mut tcp, "400 Bad Request", "The redirect carries no code.").await;
        return Err(Error::auth(
            "the login redirect carries no authorization code; nothing was stored",
        ));
    };
    answer_page(
        &mut tcp,
        "200 OK",
        "Logged in: connctl has what it needs. You can close this window.",
    )
    .await;

    let endpoint = endpoint_text(&profile.token_url);
    let http = http::Client::new(&source.route, &endpoint);
    let params = auth_params(source)?;
    let mut sent: Vec<Secret> = params.iter().map(|(_, v)| v.clone()).collect();
    sent.push(Secret::new(code.as_str()));
    sent.push(Secret::new(verifier.secret().as_str()));
    let mut request = client
        .exchange_code(oauth2::AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(verifier);
    for (k, v) in &params {
        request = request.add_extra_param(k.as_str(), v.expose());
    }
    let answer = request
        .request_async(&http)
        .await
        .map_err(|e| refusal(source, None, &sent, &endpoint, http.last_status(), e))?;
    token_of(source, &endpoint, answer)
}

/// What logout did.
pub struct Logout {
    /// Whether a refresh token was held.
    pub held: bool,
    /// Whether the server was asked to revoke it.
    pub revoked: bool,
}

/// Revokes the refresh token (RFC 7009) where the profile has a revocation
/// endpoint, and drops the cached access token.
pub async fn logout(source: &TokenSource) -> Result<Logout> {
    let at = source.refresh_at.clone();
    let held = off_runtime(move || secrets::keyring_get(&at)).await?;
    let mut revoked = false;
    if let (Some(refresh), Some(url)) = (&held, &source.profile.revocation_url) {
        let endpoint = endpoint_text(url);
        let http = http::Client::new(&source.route, &endpoint);
        let params = auth_params(source)?;
        let sent: Vec<Secret> = params.iter().map(|(_, v)| v.clone()).collect();
        let client = crate_client(source)?;
        let mut request = client
            .revoke_token(oauth2::StandardRevocableToken::RefreshToken(
                oauth2::RefreshToken::new(refresh.expose().to_string()),
            ))
            .map_err(|_| config_error(source, "revocation_url", "--revocation-url"))?;
        for (k, v) in &params {
            request = request.add_extra_param(k.as_str(), v.expose());
        }
        request.request_async(&http).await.map_err(|e| {
            let err = refusal(
                source,
                Some(refresh),
                &sent,
                &endpoint,
                http.last_status(),
                e,
            );
            Error {
                message: format!("revocation endpoint: {}", err.message),
                ..err
            }
        })?;
        revoked = true;
    }
    // The caller forgets the refresh token through the transaction.
    super::forget(source).await?;
    Ok(Logout {
        held: held.is_some(),
        revoked,
    })
}

/// An authorization server's endpoints, from its metadata.
#[derive(Debug, Default, Clone)]
pub struct Metadata {
    pub issuer: String,
    pub token_endpoint: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub device_authorization_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
}

/// Reads the issuer's metadata: OpenID Connect Discovery
/// (`ISSUER/.well-known/openid-configuration`), then RFC 8414
/// (`/.well-known/oauth-authorization-server` before the issuer's path).
pub async fn discover(issuer: &str, route: &Route) -> Result<Metadata> {
    let base = url::Url::parse(issuer).map_err(|e| {
        Error::invalid(format!("--issuer '{}' is not a URL", escape(issuer))).with_cause(e)
    })?;
    let trimmed = issuer.trim_end_matches('/');
    let mut candidates = vec![format!("{trimmed}/.well-known/openid-configuration")];
    let mut rfc8414 = base.clone();
    rfc8414.set_path(&format!(
        "/.well-known/oauth-authorization-server{}",
        base.path().trim_end_matches('/')
    ));
    candidates.push(rfc8414.to_string());
    let mut last = None;
    for candidate in candidates {
        let url = url::Url::parse(&candidate)
            .map_err(|e| Error::invalid("bad discovery URL").with_cause(e))?;
        let mut headers = ::http::HeaderMap::new();
        headers.insert(
            ::http::header::ACCEPT,
            ::http::HeaderValue::from_static("application/json"),
        );
        let req = HttpRequest {
            url,
            method: ::http::Method::GET,
            headers,
            body: bytes::Bytes::new(),
        };
        let mut trace = crate::net::Trace::default();
        let shown = endpoint_text(&candidate);
        let response = transport::execute_with(
            &req,
            route,
            &mut trace,
            transport::BodyMode::Whole(crate::net::limits::DISCOVERY_METADATA),
        )
        .await
        .map_err(|e| Error {
            message: format!("discovery {shown}: {}", e.message),
            ..e
        })?;
        if !response.status.is_success() {
            last = Some(Error::invalid(format!(
                "the issuer's metadata {shown} answered {}",
                transport::status_text(response.status)
            )));
            continue;
        }
        let doc: serde_json::Value = serde_json::from_slice(&response.body).map_err(|e| {
            Error::invalid(format!("the issuer's metadata {shown} is not JSON")).with_cause(e)
        })?;
        let field = |name: &str| {
            doc.get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        let said = field("issuer").unwrap_or_default();
        if said.trim_end_matches('/') != trimmed {
            return Err(Error::invalid(format!(
                "the metadata at {shown} names issuer '{}', not '{}'",
                escape(&said),
                escape(issuer)
            ))
            .with_hint("give --issuer exactly as the server names itself (RFC 8414 §3.3)"));
        }
        return Ok(Metadata {
            issuer: said,
            token_endpoint: field("token_endpoint"),
            authorization_endpoint: field("authorization_endpoint"),
            device_authorization_endpoint: field("device_authorization_endpoint"),
            revocation_endpoint: field("revocation_endpoint"),
        });
    }
    Err(last.unwrap_or_else(|| Error::invalid("no metadata found")))
}

/// Checks a signing key as `add`/`edit` take it (exit 4 naming `label`).
pub fn check_signing_key(pem: &str, label: &str) -> Result<&'static str> {
    let key = jwt::SigningKey::from_pem(pem, label, None)?;
    Ok(key.alg_name())
}
