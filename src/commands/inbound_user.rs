//! `connctl inbound-user ...`

use serde_json::Value;

use super::{
    Context, Named, check_new_name, not_found, password_input, record_json, source_text,
    take_secret, used_by,
};
use crate::cli::InboundUserCommand;
use crate::error::{Error, Result};
use crate::model::{InboundUser, RecordKind};
use crate::output::or_dash;

pub fn run(ctx: &Context, cmd: InboundUserCommand) -> Result<()> {
    const KIND: RecordKind = RecordKind::InboundUser;
    match cmd {
        InboundUserCommand::Add { name, password } => {
            crate::model::check_name(KIND, &name).map_err(Error::invalid)?;
            let taken = take_secret(
                password_input(&password),
                Some(&format!("password for inbound user {name}")),
            )?
            .ok_or_else(|| {
                Error::usage(format!("inbound user '{name}' needs a password"))
                    .with_hint("add --password-stdin, --password-env VAR, --password-file PATH, --password-cmd CMD or --password-vault PATH#FIELD")
            })?;
            ctx.change(|store| {
                check_new_name(store, KIND, &name)?;
                let source = store.keep(KIND, &name, "password", taken);
                store.inbound_user.insert(
                    name.clone(),
                    InboundUser {
                        password: Some(source),
                    },
                );
                Ok(())
            })?;
            ctx.out.status(&format!("added inbound-user '{name}'"));
            Ok(())
        }
        InboundUserCommand::List => {
            let store = ctx.load()?;
            if ctx.out.is_json() {
                let items: Vec<Named<'_, InboundUser>> = store
                    .inbound_user
                    .iter()
                    .map(|(name, record)| Named { name, record })
                    .collect();
                return ctx.out.json_of(&items);
            }
            let rows = store
                .inbound_user
                .iter()
                .map(|(n, u)| {
                    // Rule 5, as `inbound check` applies it.
                    let admitted_by = crate::inbound::check::admission(&store, n)
                        .ok()
                        .map(|a| a.connection);
                    vec![
                        n.clone(),
                        source_text(&u.password),
                        or_dash(admitted_by.as_deref()),
                        used_by(&store, KIND, n),
                    ]
                })
                .collect();
            ctx.out
                .table(&["name", "password", "admitted by", "connections"], rows)
        }
        InboundUserCommand::Show { name } => {
            let store = ctx.load()?;
            let u = store
                .inbound_user
                .get(&name)
                .ok_or_else(|| not_found(&store, KIND, &name))?;
            if ctx.out.is_json() {
                return ctx.out.json(&Value::Object(record_json(&name, u)?));
            }
            ctx.out.fields(&[
                ("name", name.clone()),
                ("password", source_text(&u.password)),
                ("connections", used_by(&store, KIND, &name)),
            ])
        }
        InboundUserCommand::Remove { name } => super::remove_record(ctx, KIND, &name),
        InboundUserCommand::SetPassword { name, password } => {
            {
                let store = ctx.load()?;
                if !store.inbound_user.contains_key(&name) {
                    return Err(not_found(&store, KIND, &name));
                }
            }
            let taken = take_secret(
                password_input(&password),
                Some(&format!("new password for inbound user {name}")),
            )?
            .ok_or_else(|| {
                Error::usage("no password given")
                    .with_hint("add --password-stdin, --password-env VAR, --password-file PATH, --password-cmd CMD or --password-vault PATH#FIELD")
            })?;
            ctx.change(|store| {
                if !store.inbound_user.contains_key(&name) {
                    return Err(not_found(store, KIND, &name));
                }
                let source = store.keep(KIND, &name, "password", taken);
                if let Some(u) = store.inbound_user.get_mut(&name) {
                    u.password = Some(source);
                }
                Ok(())
            })?;
            ctx.out
                .status(&format!("set the password of inbound-user '{name}'"));
            Ok(())
        }
    }
}
