//! `connctl oauth-profile token`: fetch (or show the cached) access token.

use serde_json::{Value, json};

use crate::cli::OauthTokenArgs;
use crate::commands::outbound::runtime;
use crate::commands::{Context, not_found};
use crate::error::{Error, Result};
use crate::model::{
    Authentication, Connection, Environment, Grant, OauthProfile, RecordKind, Store,
};
use crate::net::Trace;
use crate::outbound::{Outbound, RequestSpec, Target, oauth};

pub fn run(ctx: &Context, args: OauthTokenArgs) -> Result<()> {
    let store = ctx.load()?;
    let Some(profile) = store.oauth_profile.get(&args.name).cloned() else {
        return Err(not_found(&store, RecordKind::OauthProfile, &args.name));
    };
    let users: Vec<&String> = store
        .connection
        .iter()
        .filter(|(_, c)| c.oauth_profile_used() == Some(args.name.as_str()))
        .map(|(n, _)| n)
        .collect();
    let connection = match &args.connection {
        Some(c) => {
            let conn = store
                .connection
                .get(c)
                .ok_or_else(|| not_found(&store, RecordKind::Connection, c))?;
            if conn.oauth_profile_used() != Some(args.name.as_str()) {
                return Err(Error::invalid(format!(
                    "connection '{c}' does not use OAuth profile '{}'",
                    args.name
                )));
            }
            Some(c.clone())
        }
        // One user of the profile: fetch as it does (its MID server, its user).
        None if users.len() == 1 => Some(users[0].clone()),
        None if profile.grant == Grant::Password => {
            return Err(Error::usage(format!(
                "OAuth profile '{}' uses the password grant: name the connection whose user is the resource owner with --connection",
                args.name
            ))
            .with_hint(if users.is_empty() {
                "no connection uses this profile yet".to_string()
            } else {
                format!("connections using it: {}", users.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
            }));
        }
        None => None,
    };
    let target = match &connection {
        Some(c) => Target::from_store(&store, c)?,
        None => profile_target(&store, &args.name, &profile)?,
    };
    let client = Outbound::new();
    let spec = RequestSpec::default();
    let (trace, token) = runtime(false)?.block_on(async {
        let mut trace = Trace::default();
        let prepared = client.prepare(&target, &spec, &mut trace).await?;
        let token = client.token(&prepared, false, &mut trace).await;
        Ok::<_, Error>((trace, token))
    })?;
    for s in &trace.stages {
        ctx.out.debug(
            1,
            &format!("{}: {} ({:.1} ms)", s.stage.as_str(), s.detail, s.ms),
        );
    }
    let token = token?.ok_or_else(|| Error::failed("no token was obtained"))?;
    let expires_at = crate::model::rfc3339(token.expires_at).unwrap_or_default();
    if let Some(note) = &token.note {
        ctx.out.warn(note);
    }
    if ctx.out.is_json() {
        let mut value = json!({
            "profile": args.name,
            "connection": connection,
            "origin": token.origin,
            "expires_at": expires_at,
            "expires_in": token.expires_in(),
            "scopes": token.scopes,
        });
        if args.print {
            value["access_token"] = Value::String(token.access_token.expose().to_string());
        }
        return ctx.out.json(&value);
    }
    let summary = format!(
        "{} token for '{}'{}: expires {expires_at} (in {}), scopes: {}",
        token.origin,
        args.name,
        connection
            .as_ref()
            .map(|c| format!(" (as connection '{c}')"))
            .unwrap_or_default(),
        oauth::human_secs(token.expires_in()),
        if token.scopes.is_empty() {
            "-".to_string()
        } else {
            token.scopes.join(" ")
        }
    );
    if args.print {
        ctx.out.status(&summary);
        ctx.out
            .raw(format!("{}\n", token.access_token.expose()).as_bytes())
    } else {
        ctx.out.fields(&[
            ("profile", args.name.clone()),
            ("connection", connection.unwrap_or_else(|| "-".into())),
            (
                "token",
                format!("{} (hidden; --print shows it)", token.origin),
            ),
            ("expires_at", expires_at),
            ("expires_in", oauth::human_secs(token.expires_in())),
            (
                "scopes",
                if token.scopes.is_empty() {
                    "-".into()
                } else {
                    token.scopes.join(" ")
                },
            ),
        ])
    }
}

/// The profile on its own, as if a connection to its token endpoint used it:
/// no MID server, the OS trust roots.
pub(super) fn profile_target(store: &Store, name: &str, profile: &OauthProfile) -> Result<Target> {
    let oauth = Some((name.to_string(), profile.clone()));
    Ok(Target {
        store_id: store.store_id.clone(),
        name: format!("(profile {name})"),
        connection: Connection {
            integration: String::new(),
            environment: Environment::Test,
            active: false,
            endpoint_url: profile.token_url.clone(),
            allow_http: true,
            ca_bundle: None,
            authentication: Authentication::Oauth,
            user: None,
            password: None,
            oauth_profile: Some(name.to_string()),
            mutual_auth: false,
            protocol_profile: None,
            mid_server: None,
            inbound_user: None,
            last_activated: None,
            variables: Default::default(),
            secret_variables: Default::default(),
        },
        oauth_protocol: Target::oauth_protocol_of(store, &oauth)?,
        oauth,
        protocol: None,
        mid: None,
        trial: Default::default(),
    })
}
