//! `connctl oauth-profile login NAME`: the authorization_code grant (PKCE,
//! loopback redirect) or the device flow, once, by a person; the refresh
//! token is kept for later sends. Also what `show` says about held tokens.

use crate::cli::OauthLoginArgs;
use crate::commands::outbound::runtime;
use crate::commands::{Context, not_found};
use crate::error::{Error, Result};
use crate::model::{Grant, OauthProfile, RecordKind, Store};
use crate::net::Trace;
use crate::outbound::{Outbound, RequestSpec, oauth};

pub fn run(ctx: &Context, args: OauthLoginArgs) -> Result<()> {
    let store = ctx.load()?;
    let Some(profile) = store.oauth_profile.get(&args.name).cloned() else {
        return Err(not_found(&store, RecordKind::OauthProfile, &args.name));
    };
    if !profile.grant.needs_login() {
        return Err(Error::usage(format!(
            "OAuth profile '{}' uses the {} grant, which needs no login: connctl fetches its tokens itself",
            args.name,
            profile.grant.as_str()
        ))
        .with_hint(format!(
            "login is for --grant authorization_code or device_code; try `connctl oauth-profile token {}`",
            args.name
        )));
    }
    let timeout = args.timeout;
    let target = super::token::profile_target(&store, &args.name, &profile)?;
    let client = Outbound::new();
    // The token requests themselves get the usual 30 s each.
    let spec = RequestSpec::default();
    // What the person must do is shown even with -q: the login cannot go on without it.
    let say = |text: String| ctx.out.notice(&text);
    let rt = runtime(false)?;
    let mut trace = Trace::default();
    let prepared = rt.block_on(client.prepare(&target, &spec, &mut trace))?;
    let source = prepared
        .token_source
        .as_ref()
        .ok_or_else(|| Error::failed("the profile has no token source"))?;
    let token = rt.block_on(async {
        match profile.grant {
            Grant::DeviceCode => oauth::login::device(source, &say, timeout).await,
            _ => oauth::login::authorization_code(source, &say, timeout).await,
        }
    })?;
    // The refresh token goes in through the records-and-secrets transaction.
    if let Some(refresh) = &token.refresh_token {
        let name = args.name.clone();
        ctx.change(|draft| {
            if !draft.oauth_profile.contains_key(&name) {
                return Err(not_found(draft, RecordKind::OauthProfile, &name));
            }
            let at = draft.secret_ref(RecordKind::OauthProfile, &name, oauth::REFRESH_FIELD);
            draft.set_secret(at, refresh.clone());
            Ok(())
        })?;
    }
    let token = rt.block_on(oauth::login::keep_access_token(source, token));
    if let Some(note) = &token.note {
        ctx.out.warn(note);
    }
    let held = if token.refresh_token.is_some() {
        "refresh token kept in the keyring"
    } else {
        "no refresh token"
    };
    ctx.out.status(&format!(
        "logged in to oauth-profile '{}': access token expires {} (in {}), {held}",
        args.name,
        rfc3339(token.expires_at),
        oauth::human_secs(token.expires_in())
    ));
    Ok(())
}

fn rfc3339(unix: i64) -> String {
    crate::model::rfc3339(unix).unwrap_or_default()
}

/// `show`'s two lines: whether a refresh token is held, when the cached access token expires.
pub fn token_state(store: &Store, name: &str, p: &OauthProfile) -> (String, String) {
    let (held, expires_at) = oauth::stored_state(&store.store_id, name, p);
    let refresh = match held {
        Ok(true) => "held (not shown)".to_string(),
        Ok(false) if p.grant.needs_login() => {
            format!("none: run `connctl oauth-profile login {name}`")
        }
        Ok(false) => "none".to_string(),
        Err(e) => format!("unknown ({})", e.message),
    };
    let expiry = match expires_at {
        Some(at) => {
            let left = at - time::OffsetDateTime::now_utc().unix_timestamp();
            if left > 0 {
                format!(
                    "cached, expires {} (in {})",
                    rfc3339(at),
                    oauth::human_secs(left)
                )
            } else {
                format!("cached, expired {}", rfc3339(at))
            }
        }
        None => "none cached".to_string(),
    };
    (refresh, expiry)
}
