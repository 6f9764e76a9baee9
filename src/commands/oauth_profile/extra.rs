//! What `oauth-profile add|edit` take for the newer grants and client
//! authentications: discovery (`--issuer`), endpoints, the redirect URI, the
//! signing key (checked now, exit 4 naming the file) and the protocol profile.

use std::time::Duration;

use crate::change::{Draft, TakenSecret};
use crate::cli::OauthExtraArgs;
use crate::commands::outbound::runtime;
use crate::commands::{Context, check_url, take_secret};
use crate::error::{Error, Result};
use crate::model::{OauthProfile, RecordKind, SecretSource};
use crate::outbound::oauth::{self, login::Metadata};
use crate::secrets::{Secret, SecretInput};

/// Taken before the store lock: the discovered endpoints and the signing key.
pub struct Prepared {
    metadata: Option<Metadata>,
    key: Option<TakenSecret>,
}

fn key_input(args: &OauthExtraArgs) -> Option<SecretInput> {
    let k = &args.key;
    if k.signing_key_stdin {
        Some(SecretInput::Stdin)
    } else if let Some(var) = &k.signing_key_env {
        Some(SecretInput::Env(var.clone()))
    } else if let Some(path) = &k.signing_key_file {
        Some(SecretInput::File(path.clone()))
    } else {
        k.signing_key_cmd.clone().map(SecretInput::Cmd)
    }
}

/// Reads the issuer's metadata and the signing key; checks URLs and the key.
pub fn prepare(ctx: &Context, args: &OauthExtraArgs) -> Result<Prepared> {
    let given = [
        args.key.signing_key.is_some(),
        args.key.signing_key_stdin,
        args.key.signing_key_env.is_some(),
        args.key.signing_key_file.is_some(),
        args.key.signing_key_cmd.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(Error::usage(
            "give the signing key once: --signing-key, or one of --signing-key-stdin/-env/-file/-cmd",
        ));
    }
    for (flag, url) in [
        ("--issuer", &args.issuer),
        ("--authorization-url", &args.authorization_url),
        ("--device-authorization-url", &args.device_authorization_url),
        ("--revocation-url", &args.revocation_url),
    ] {
        if let Some(url) = url {
            check_url(flag, url)?;
        }
    }
    if let Some(uri) = &args.redirect_uri {
        check_url("--redirect-uri", uri)?;
    }
    let key = match &args.key.signing_key {
        Some(path) => {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            let pem = read_key_file(&path)?;
            oauth::login::check_signing_key(pem.expose(), &path.display().to_string())?;
            Some(TakenSecret {
                source: SecretSource::File(path),
                value: None,
            })
        }
        None => {
            let taken = take_secret(key_input(args), None)?;
            if let Some(t) = &taken {
                match (&t.source, &t.value) {
                    (_, Some(pem)) => {
                        oauth::login::check_signing_key(pem.expose(), "(from standard input)")?;
                    }
                    (SecretSource::File(path), None) => {
                        let pem = read_key_file(path)?;
                        oauth::login::check_signing_key(pem.expose(), &path.display().to_string())?;
                    }
                    _ => {}
                }
            }
            taken
        }
    };
    let metadata = match &args.issuer {
        Some(issuer) => {
            let route =
                crate::outbound::Outbound::new().plain_route(issuer, Duration::from_secs(30))?;
            let found = runtime(false)?.block_on(oauth::login::discover(issuer, &route))?;
            ctx.out.debug(
                1,
                &format!("discovery: {} endpoints read", oauth::escape(&found.issuer)),
            );
            Some(found)
        }
        None => None,
    };
    Ok(Prepared { metadata, key })
}

fn read_key_file(path: &std::path::Path) -> Result<Secret> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::invalid(format!("cannot read the signing key {}", path.display())).with_source(&e)
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::invalid(format!(
            "the signing key {} is not a PEM file (not text)",
            path.display()
        ))
    })?;
    Ok(Secret::new(text))
}

/// Applies the flags to `p` inside the store update. `token_url_given` says
/// whether `--token-url` was given (it wins over discovery).
pub fn apply(
    draft: &mut Draft,
    name: &str,
    p: &mut OauthProfile,
    args: &OauthExtraArgs,
    prepared: Prepared,
    token_url_given: bool,
) -> Result<()> {
    if let Some(m) = prepared.metadata {
        p.issuer = Some(m.issuer.clone());
        match (&m.token_endpoint, token_url_given) {
            (Some(t), false) => p.token_url = t.clone(),
            (None, false) => {
                return Err(missing_token_endpoint(&m));
            }
            _ => {}
        }
        p.authorization_url = m
            .authorization_endpoint
            .clone()
            .or(p.authorization_url.take());
        p.device_authorization_url = m
            .device_authorization_endpoint
            .clone()
            .or(p.device_authorization_url.take());
        p.revocation_url = m.revocation_endpoint.clone().or(p.revocation_url.take());
        // What the grant needs (an authorization endpoint, ...) is the model's
        // rule, checked on commit with its hint.
    }
    let set = |field: &mut Option<String>, value: &Option<String>| {
        if let Some(v) = value {
            *field = Some(v.clone());
        }
    };
    set(&mut p.authorization_url, &args.authorization_url);
    set(
        &mut p.device_authorization_url,
        &args.device_authorization_url,
    );
    set(&mut p.revocation_url, &args.revocation_url);
    set(&mut p.redirect_uri, &args.redirect_uri);
    set(&mut p.key_id, &args.key_id);
    set(&mut p.subject, &args.subject);
    set(&mut p.audience, &args.audience);
    set(&mut p.protocol_profile, &args.protocol_profile);
    if let Some(key) = prepared.key {
        p.signing_key = Some(draft.keep(RecordKind::OauthProfile, name, "signing_key", key));
    }
    Ok(())
}

fn missing_token_endpoint(m: &Metadata) -> Error {
    Error::invalid(format!(
        "the discovery metadata of issuer {} has no token_endpoint",
        oauth::escape(&m.issuer)
    ))
    .with_hint("give --token-url")
}
