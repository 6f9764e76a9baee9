//! `connctl integration ...`; `rollback` in its own file.

mod rollback;

mod diff;

use std::collections::HashMap;

use serde_json::Value;

use super::{Context, check_new_name, not_found, record_json};
use crate::cli::IntegrationCommand;
use crate::error::Result;
use crate::model::{Integration, RecordKind, Store, now_rfc3339};
use crate::output::or_dash;

const KIND: RecordKind = RecordKind::Integration;

pub fn run(ctx: &Context, cmd: IntegrationCommand) -> Result<()> {
    match cmd {
        IntegrationCommand::Add {
            name,
            application,
            description,
        } => {
            ctx.update(|store| {
                check_new_name(store, KIND, &name)?;
                store.integration.insert(
                    name.clone(),
                    Integration {
                        application: non_empty(application),
                        description: non_empty(description),
                    },
                );
                Ok(())
            })?;
            ctx.out.status(&format!("added integration '{name}'"));
            ctx.out.hint(&format!(
                "add a connection: connctl connection add {name}.test --integration {name} --env test --url https://..."
            ));
            Ok(())
        }
        IntegrationCommand::List => list(ctx),
        IntegrationCommand::Show { name } => show(ctx, &name),
        IntegrationCommand::Edit {
            name,
            application,
            description,
        } => {
            let changed = ctx.update(|store| {
                let record = store
                    .integration
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| not_found(store, KIND, &name))?;
                let before = record.clone();
                let mut record = record;
                if let Some(app) = application {
                    record.application = non_empty(Some(app));
                }
                if let Some(desc) = description {
                    record.description = non_empty(Some(desc));
                }
                let changed = record != before;
                store.integration.insert(name.clone(), record);
                Ok(changed)
            })?;
            super::edited(ctx, KIND, &name, changed);
            Ok(())
        }
        IntegrationCommand::Activate {
            name,
            connection,
            env,
        } => {
            let (chosen, deactivated) = ctx.update(|store| {
                let chosen = store
                    .choose_connection(&name, connection.as_deref(), env.map(Into::into))?
                    .to_string();
                let deactivated = store.activate_connection(&chosen, &now_rfc3339());
                Ok((chosen, deactivated))
            })?;
            ctx.out.status(&format!(
                "integration '{name}' is active through connection '{chosen}'"
            ));
            for other in deactivated {
                ctx.out.status(&format!("deactivated connection '{other}'"));
            }
            Ok(())
        }
        IntegrationCommand::Deactivate { name } => {
            let was = ctx.update(|store| {
                if !store.integration.contains_key(&name) {
                    return Err(not_found(store, KIND, &name));
                }
                Ok(store.deactivate_integration(&name))
            })?;
            match was {
                Some(c) => ctx.out.status(&format!(
                    "integration '{name}' is inactive (deactivated connection '{c}')"
                )),
                None => ctx
                    .out
                    .status(&format!("integration '{name}' was already inactive")),
            }
            Ok(())
        }
        IntegrationCommand::Rollback { name, to } => rollback::run(ctx, &name, to.as_deref()),
        IntegrationCommand::Remove { name } => super::remove_record(ctx, KIND, &name),
        IntegrationCommand::Diff(args) => diff::run(ctx, args),
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn integration_json(store: &Store, name: &str, record: &Integration) -> Result<Value> {
    let mut map = record_json(name, record)?;
    let active = store.active_connection_of(name);
    map.insert("active".into(), Value::Bool(active.is_some()));
    map.insert(
        "active_connection".into(),
        active.map_or(Value::Null, |a| Value::String(a.to_string())),
    );
    Ok(Value::Object(map))
}

/// An integration in `-o json` lists: its fields plus the derived activity.
#[derive(serde::Serialize)]
struct IntegrationItem<'a> {
    name: &'a str,
    #[serde(flatten)]
    record: &'a Integration,
    active: bool,
    active_connection: Option<&'a str>,
}

fn list(ctx: &Context) -> Result<()> {
    let store = ctx.load()?;
    // One pass over the connections, not one per integration.
    let mut active: HashMap<&str, &str> = HashMap::new();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (name, c) in &store.connection {
        *counts.entry(c.integration.as_str()).or_default() += 1;
        if c.active {
            active.insert(c.integration.as_str(), name.as_str());
        }
    }
    if ctx.out.is_json() {
        let items: Vec<IntegrationItem<'_>> = store
            .integration
            .iter()
            .map(|(name, record)| IntegrationItem {
                name,
                record,
                active: active.contains_key(name.as_str()),
                active_connection: active.get(name.as_str()).copied(),
            })
            .collect();
        return ctx.out.json_of(&items);
    }
    let rows = store
        .integration
        .iter()
        .map(|(name, r)| {
            let active = active.get(name.as_str()).copied();
            vec![
                name.clone(),
                yes_no(active.is_some()),
                or_dash(active),
                counts.get(name.as_str()).copied().unwrap_or(0).to_string(),
                or_dash(r.application.as_deref()),
            ]
        })
        .collect();
    ctx.out.table(
        &[
            "name",
            "active",
            "active connection",
            "connections",
            "application",
        ],
        rows,
    )
}

fn show(ctx: &Context, name: &str) -> Result<()> {
    let store = ctx.load()?;
    let record = store
        .integration
        .get(name)
        .ok_or_else(|| not_found(&store, KIND, name))?;
    if ctx.out.is_json() {
        let mut value = integration_json(&store, name, record)?;
        let connections: Vec<Value> = store
            .connections_of(name)
            .map(|(n, _)| Value::String(n.clone()))
            .collect();
        if let Value::Object(map) = &mut value {
            map.insert("connections".into(), Value::Array(connections));
        }
        return ctx.out.json(&value);
    }
    let active = store.active_connection_of(name);
    let connections: Vec<String> = store
        .connections_of(name)
        .map(|(n, c)| {
            format!(
                "{n} ({}{})",
                c.environment,
                if c.active { ", active" } else { "" }
            )
        })
        .collect();
    ctx.out.fields(&[
        ("name", name.to_string()),
        ("application", or_dash(record.application.as_deref())),
        ("description", or_dash(record.description.as_deref())),
        ("active", yes_no(active.is_some())),
        ("active connection", or_dash(active)),
        (
            "connections",
            if connections.is_empty() {
                "-".to_string()
            } else {
                connections.join(", ")
            },
        ),
    ])
}

pub fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}
