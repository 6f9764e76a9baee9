//! `connctl export` and `connctl import`.

use std::collections::BTreeMap;
use std::io::Read;

use super::Context;
use crate::cli::{ExportArgs, ImportArgs};
use crate::error::{Error, Result};
use crate::model::{SecretSource, Store};

pub fn export(ctx: &Context, _args: ExportArgs) -> Result<()> {
    let store = ctx.load()?;
    if ctx.out.is_json() {
        return ctx.out.json_of(&store);
    }
    // The store holds sources, never values: the export is the store itself.
    ctx.out.raw(crate::store::render(&store)?.as_bytes())
}

/// What an import would do to one kind of record.
#[derive(Default)]
struct Plan {
    added: Vec<String>,
    replaced: Vec<String>,
    unchanged: usize,
    conflicts: Vec<String>,
}

fn merge<R: Clone + PartialEq>(
    kind: &str,
    ours: &mut BTreeMap<String, R>,
    theirs: &BTreeMap<String, R>,
    replace: bool,
    plan: &mut Plan,
) {
    for (name, record) in theirs {
        match ours.get(name) {
            None => {
                plan.added.push(format!("{kind} {name}"));
                ours.insert(name.clone(), record.clone());
            }
            Some(existing) if existing == record => plan.unchanged += 1,
            Some(_) if replace => {
                plan.replaced.push(format!("{kind} {name}"));
                ours.insert(name.clone(), record.clone());
            }
            Some(_) => plan.conflicts.push(format!("{kind} {name}")),
        }
    }
}

pub fn import(ctx: &Context, args: ImportArgs) -> Result<()> {
    let (label, text) = if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::invalid("cannot read standard input").with_source(&e))?;
        ("<stdin>".to_string(), text)
    } else {
        let text = std::fs::read_to_string(&args.file).map_err(|e| {
            Error::invalid(format!("cannot read {}", args.file.display())).with_source(&e)
        })?;
        (args.file.display().to_string(), text)
    };
    let incoming = crate::store::parse(std::path::Path::new(&label), &text)?;
    let keyring_sources = keyring_records(&incoming);
    let apply = |store: &mut Store| -> Result<Plan> {
        let mut plan = Plan::default();
        merge(
            "integration",
            &mut store.integration,
            &incoming.integration,
            args.replace,
            &mut plan,
        );
        merge(
            "connection",
            &mut store.connection,
            &incoming.connection,
            args.replace,
            &mut plan,
        );
        merge(
            "oauth-profile",
            &mut store.oauth_profile,
            &incoming.oauth_profile,
            args.replace,
            &mut plan,
        );
        merge(
            "protocol-profile",
            &mut store.protocol_profile,
            &incoming.protocol_profile,
            args.replace,
            &mut plan,
        );
        merge(
            "mid-server",
            &mut store.mid_server,
            &incoming.mid_server,
            args.replace,
            &mut plan,
        );
        merge(
            "inbound-user",
            &mut store.inbound_user,
            &incoming.inbound_user,
            args.replace,
            &mut plan,
        );
        if !plan.conflicts.is_empty() {
            return Err(Error::invalid(format!(
                "{} record{} in {label} differ from the store: {}",
                plan.conflicts.len(),
                if plan.conflicts.len() == 1 { "" } else { "s" },
                plan.conflicts.join(", ")
            ))
            .with_hint("pass --replace to overwrite them; nothing was written"));
        }
        Ok(plan)
    };
    let plan = if args.dry_run {
        // A real import is checked on commit; a dry run the same way.
        let before = ctx.load()?;
        let mut store = before.clone();
        let plan = apply(&mut store)?;
        store.check_change(&before)?;
        plan
    } else {
        ctx.update(apply)?
    };
    let verb = if args.dry_run { "would add" } else { "added" };
    if ctx.out.is_json() {
        ctx.out.json(&serde_json::json!({
            "dry_run": args.dry_run,
            "added": plan.added,
            "replaced": plan.replaced,
            "unchanged": plan.unchanged,
        }))?;
    } else {
        ctx.out.status(&format!(
            "{verb} {}, {} {}, {} unchanged",
            plan.added.len(),
            if args.dry_run {
                "would replace"
            } else {
                "replaced"
            },
            plan.replaced.len(),
            plan.unchanged
        ));
    }
    if !keyring_sources.is_empty() {
        ctx.out.warn(&format!(
            "keyring secrets are not part of an export; set them again for: {}",
            keyring_sources.join(", ")
        ));
    }
    Ok(())
}

/// The records whose secret lives in the keyring, as `KIND NAME`.
fn keyring_records(store: &Store) -> Vec<String> {
    crate::secrets::secret_fields(store)
        .into_iter()
        .filter(|(_, source)| *source == SecretSource::Keyring)
        .map(|(at, _)| format!("{} {}", at.kind.cli_name(), at.name))
        .collect()
}
