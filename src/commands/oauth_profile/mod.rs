//! `connctl oauth-profile ...`

mod extra;
mod login;
mod logout;
mod token;

use serde_json::Value;

use crate::cli::OauthProfileCommand;
use crate::commands::{
    Context, check_new_name, check_url, client_secret_input, list_records, not_found, record_json,
    source_text, take_secret, used_by,
};
use crate::error::{Error, Result};
use crate::model::{OauthProfile, RecordKind};

pub fn run(ctx: &Context, cmd: OauthProfileCommand) -> Result<()> {
    const KIND: RecordKind = RecordKind::OauthProfile;
    match cmd {
        OauthProfileCommand::Add(args) => {
            let name = args.name.clone();
            crate::model::check_name(KIND, &name).map_err(Error::invalid)?;
            if let Some(url) = &args.token_url {
                check_url("--token-url", url)?;
            }
            let prepared = extra::prepare(ctx, &args.extra)?;
            let taken = take_secret(
                client_secret_input(&args.secret),
                Some(&format!("client secret for {}", args.client_id)),
            )?;
            ctx.change(|store| {
                check_new_name(store, KIND, &name)?;
                let client_secret = taken.map(|t| store.keep(KIND, &name, "client_secret", t));
                let mut profile = OauthProfile {
                    token_url: args.token_url.clone().unwrap_or_default(),
                    client_id: args.client_id.clone(),
                    client_secret,
                    grant: args.grant.into(),
                    client_auth: args.client_auth.into(),
                    scopes: args.scopes.clone(),
                    ..Default::default()
                };
                extra::apply(
                    store,
                    &name,
                    &mut profile,
                    &args.extra,
                    prepared,
                    args.token_url.is_some(),
                )?;
                store.oauth_profile.insert(name.clone(), profile);
                Ok(())
            })?;
            ctx.out.status(&format!("added oauth-profile '{name}'"));
            Ok(())
        }
        OauthProfileCommand::List => {
            let store = ctx.load()?;
            list_records(
                ctx,
                &store.oauth_profile,
                &[
                    "name",
                    "token url",
                    "client id",
                    "grant",
                    "client auth",
                    "scopes",
                    "client secret",
                ],
                |n, p| {
                    vec![
                        n.to_string(),
                        p.token_url.clone(),
                        p.client_id.clone(),
                        p.grant.as_str().into(),
                        p.client_auth.as_str().into(),
                        if p.scopes.is_empty() {
                            "-".into()
                        } else {
                            p.scopes.join(" ")
                        },
                        source_text(&p.client_secret),
                    ]
                },
            )
        }
        OauthProfileCommand::Show { name } => {
            let store = ctx.load()?;
            let p = store
                .oauth_profile
                .get(&name)
                .ok_or_else(|| not_found(&store, KIND, &name))?;
            if ctx.out.is_json() {
                return ctx.out.json(&Value::Object(record_json(&name, p)?));
            }
            let mut fields = vec![
                ("name", name.clone()),
                ("token url", p.token_url.clone()),
                ("client id", p.client_id.clone()),
                ("client secret", source_text(&p.client_secret)),
                ("grant", p.grant.as_str().into()),
                ("client auth", p.client_auth.as_str().into()),
                (
                    "scopes",
                    if p.scopes.is_empty() {
                        "-".into()
                    } else {
                        p.scopes.join(" ")
                    },
                ),
                ("used by", used_by(&store, KIND, &name)),
            ];
            let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            for (label, value) in [
                ("issuer", &p.issuer),
                ("authorization url", &p.authorization_url),
                ("device authorization url", &p.device_authorization_url),
                ("revocation url", &p.revocation_url),
                ("redirect uri", &p.redirect_uri),
                ("key id", &p.key_id),
                ("subject", &p.subject),
                ("audience", &p.audience),
                ("protocol profile", &p.protocol_profile),
            ] {
                if value.is_some() {
                    fields.push((label, opt(value)));
                }
            }
            if p.signing_key.is_some() {
                fields.push(("signing key", source_text(&p.signing_key)));
            }
            let (refresh, expiry) = login::token_state(&store, &name, p);
            fields.push(("refresh token", refresh));
            fields.push(("access token", expiry));
            ctx.out.fields(&fields)
        }
        OauthProfileCommand::Edit(args) => {
            let name = args.name.clone();
            if let Some(url) = &args.token_url {
                check_url("--token-url", url)?;
            }
            let taken = take_secret(client_secret_input(&args.secret), None)?;
            let prepared = extra::prepare(ctx, &args.extra)?;
            let done = ctx.change(|store| {
                let mut p = store
                    .oauth_profile
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| not_found(store, KIND, &name))?;
                if let Some(url) = &args.token_url {
                    p.token_url = url.clone();
                }
                if let Some(id) = &args.client_id {
                    p.client_id = id.clone();
                }
                if let Some(g) = args.grant {
                    p.grant = g.into();
                }
                if let Some(a) = args.client_auth {
                    p.client_auth = a.into();
                }
                if !args.scopes.is_empty() {
                    p.scopes = args.scopes.clone();
                }
                if args.no_scopes {
                    p.scopes.clear();
                }
                if let Some(t) = taken {
                    p.client_secret = Some(store.keep(KIND, &name, "client_secret", t));
                }
                extra::apply(
                    store,
                    &name,
                    &mut p,
                    &args.extra,
                    prepared,
                    args.token_url.is_some(),
                )?;
                store.oauth_profile.insert(name.clone(), p);
                Ok(())
            })?;
            super::edited(ctx, KIND, &name, done.changed());
            Ok(())
        }
        OauthProfileCommand::Remove { name } => super::remove_record(ctx, KIND, &name),
        OauthProfileCommand::Token(args) => token::run(ctx, args),
        OauthProfileCommand::Login(args) => login::run(ctx, args),
        OauthProfileCommand::Logout { name } => logout::run(ctx, &name),
        OauthProfileCommand::Rotate(args) => crate::commands::rotate::run(
            ctx,
            crate::commands::rotate::Rotate {
                kind: RecordKind::OauthProfile,
                name: &args.name,
                input: crate::commands::client_secret_input(&args.client_secret),
                restore: args.options.restore,
                no_test: args.options.no_test,
                connection: args.connection.as_deref(),
                timeout: args.options.timeout,
            },
        ),
    }
}
