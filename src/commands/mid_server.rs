//! `connctl mid-server ...`

use serde_json::Value;

use super::{
    Context, check_new_name, list_records, not_found, password_input, record_json, source_text,
    take_secret, used_by,
};
use crate::cli::MidServerCommand;
use crate::error::{Error, Result};
use crate::model::{MidServer, RecordKind};
use crate::output::or_dash;

/// `--url`, checked before a secret is read (the rule is the model's:
/// `model::check_proxy_url`, checked again on commit).
fn check_mid_url(url: &str) -> Result<()> {
    crate::model::check_proxy_url(url)
        .map_err(|(message, hint)| Error::invalid(format!("--url: {message}")).with_hint(hint))
}

pub fn run(ctx: &Context, cmd: MidServerCommand) -> Result<()> {
    const KIND: RecordKind = RecordKind::MidServer;
    match cmd {
        MidServerCommand::Add(args) => {
            let name = args.name.clone();
            crate::model::check_name(KIND, &name).map_err(Error::invalid)?;
            check_mid_url(&args.url)?;
            let prompt = args
                .user
                .as_ref()
                .map(|u| format!("password of {u} on MID server {name}"));
            let taken = take_secret(password_input(&args.password), prompt.as_deref())?;
            // A user without a password (or the reverse) is refused on commit,
            // by the model's rule, with its hint.
            ctx.change(|store| {
                check_new_name(store, KIND, &name)?;
                let password = taken.map(|t| store.keep(KIND, &name, "password", t));
                store.mid_server.insert(
                    name.clone(),
                    MidServer {
                        url: args.url.clone(),
                        user: args.user.clone(),
                        password,
                    },
                );
                Ok(())
            })?;
            ctx.out.status(&format!("added mid-server '{name}'"));
            Ok(())
        }
        MidServerCommand::List => {
            let store = ctx.load()?;
            list_records(
                ctx,
                &store.mid_server,
                &["name", "url", "user", "password"],
                |n, m| {
                    vec![
                        n.to_string(),
                        m.url.clone(),
                        or_dash(m.user.as_deref()),
                        source_text(&m.password),
                    ]
                },
            )
        }
        MidServerCommand::Show { name } => {
            let store = ctx.load()?;
            let m = store
                .mid_server
                .get(&name)
                .ok_or_else(|| not_found(&store, KIND, &name))?;
            if ctx.out.is_json() {
                return ctx.out.json(&Value::Object(record_json(&name, m)?));
            }
            ctx.out.fields(&[
                ("name", name.clone()),
                ("url", m.url.clone()),
                ("user", or_dash(m.user.as_deref())),
                ("password", source_text(&m.password)),
                ("used by", used_by(&store, KIND, &name)),
            ])
        }
        MidServerCommand::Edit(args) => {
            let name = args.name.clone();
            if let Some(url) = &args.url {
                check_mid_url(url)?;
            }
            let taken = take_secret(password_input(&args.password), None)?;
            let done = ctx.change(|store| {
                let mut m = store
                    .mid_server
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| not_found(store, KIND, &name))?;
                if let Some(url) = &args.url {
                    m.url = url.clone();
                }
                if let Some(user) = &args.user {
                    m.user = Some(user.clone());
                }
                if args.no_user {
                    m.user = None;
                    m.password = None;
                }
                if let Some(t) = taken {
                    m.password = Some(store.keep(KIND, &name, "password", t));
                }
                store.mid_server.insert(name.clone(), m);
                Ok(())
            })?;
            super::edited(ctx, KIND, &name, done.changed());
            Ok(())
        }
        MidServerCommand::Remove { name } => super::remove_record(ctx, KIND, &name),
        MidServerCommand::Rotate(args) => super::rotate::run(
            ctx,
            super::rotate::Rotate {
                kind: KIND,
                name: &args.name,
                input: password_input(&args.password),
                restore: args.options.restore,
                no_test: args.options.no_test,
                connection: args.connection.as_deref(),
                timeout: args.options.timeout,
            },
        ),
    }
}
