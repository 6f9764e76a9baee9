//! `connctl doctor`: which keyring backend is in use and whether it works (a
//! round trip on a throwaway entry), then every secret field of every record:
//! resolvable or not, and why. Never a value. With Vault in use: its address,
//! the login method, and the token's remaining time (`auth/token/lookup-self`).
//! Then the orphans: keyring entries under this store's id that no record
//! names; `--fix` removes them.

use serde_json::{Value, json};

use super::Context;
use crate::change;
use crate::cli::DoctorArgs;
use crate::error::{Error, Result};
use crate::model::{SecretSource, Store};
use crate::secrets::vault::{self, VaultCheck};
use crate::secrets::{self, KeyringCheck};

/// One secret field and whether it resolved.
struct FieldCheck {
    record: String,
    kind: &'static str,
    name: String,
    field: String,
    source: SecretSource,
    error: Option<Error>,
}

/// The orphan keyring entries, or why they could not be listed.
enum Orphans {
    Listed(Vec<String>),
    Unknown(String),
}

fn find_orphans(store: &Store, keyring: &KeyringCheck) -> Orphans {
    if keyring.error.is_some() {
        return Orphans::Unknown("the keyring does not work".to_string());
    }
    match change::orphans(store) {
        Ok(Some(accounts)) => Orphans::Listed(accounts),
        Ok(None) => Orphans::Unknown(format!(
            "the {} cannot list its entries",
            keyring.backend.map_or("keyring", |b| b.label())
        )),
        Err(e) => Orphans::Unknown(e.message),
    }
}

pub fn run(ctx: &Context, args: DoctorArgs) -> Result<()> {
    let store = ctx.load()?;
    ctx.out.debug(1, "keyring: probing with a throwaway entry");
    let keyring = secrets::keyring_check(&store.store_id);
    let uses_vault = secrets::secret_fields(&store)
        .iter()
        .any(|(_, source)| matches!(source, SecretSource::Vault { .. }));
    let vault = (uses_vault || store.vault.is_some()).then(|| {
        ctx.out
            .debug(1, "vault: logging in and looking up the token");
        vault::check()
    });
    let fields: Vec<FieldCheck> = secrets::secret_fields(&store)
        .into_iter()
        .map(|(at, source)| {
            ctx.out
                .debug(1, &format!("resolving {} from {source}", at.describe()));
            let error = secrets::resolve(&source, &at).err();
            FieldCheck {
                record: format!("{} {}", at.kind.cli_name(), at.name),
                kind: at.kind.cli_name(),
                name: at.name.clone(),
                field: at.field.clone(),
                source,
                error,
            }
        })
        .collect();
    let orphans = find_orphans(&store, &keyring);

    if !ctx.out.is_json() {
        if let Some(check) = &vault {
            print_vault(ctx, check)?;
        }
        print_tables(ctx, &keyring, &fields)?;
        print_orphans(ctx, &orphans, args.fix)?;
    }
    let removed = if args.fix {
        fix(ctx, &orphans)?
    } else {
        Vec::new()
    };
    if ctx.out.is_json() {
        let mut report = report_json(&keyring, &fields);
        report["vault"] = vault_json(vault.as_ref());
        if vault.as_ref().is_some_and(|v| v.error.is_some()) {
            report["ok"] = Value::Bool(false);
        }
        report["orphans"] = match &orphans {
            Orphans::Listed(accounts) => json!(accounts),
            Orphans::Unknown(_) => Value::Null,
        };
        report["orphans_note"] = match &orphans {
            Orphans::Listed(_) => Value::Null,
            Orphans::Unknown(why) => json!(why),
        };
        report["removed"] = json!(removed);
        ctx.out.json(&report)?;
    }
    if let Some(check) = &vault
        && let Some(ttl) = check.ttl
        && ttl < 300
        && check.error.is_none()
    {
        ctx.out.warn(&format!(
            "the Vault token expires in {ttl} s: log in again before a long run"
        ));
    }

    let failed = fields.iter().filter(|f| f.error.is_some()).count();
    if failed > 0 {
        return Err(Error::secret(format!(
            "{failed} of {} secret{} cannot be resolved",
            fields.len(),
            if fields.len() == 1 { "" } else { "s" }
        )));
    }
    if let Some(err) = vault.as_ref().and_then(|v| v.error.as_ref()) {
        return Err(err.clone());
    }
    if let Some(err) = &keyring.error {
        if !all_fine(&keyring, &fields) {
            return Err(err.clone());
        }
        ctx.out
            .warn("the keyring does not work, but no secret in this store is kept in it");
    }
    Ok(())
}

fn print_orphans(ctx: &Context, orphans: &Orphans, fixing: bool) -> Result<()> {
    match orphans {
        Orphans::Listed(accounts) if accounts.is_empty() => {
            ctx.out.status("no orphan keyring entries");
        }
        Orphans::Listed(accounts) => {
            ctx.out.raw(b"\n")?;
            let rows = accounts.iter().map(|a| vec![a.clone()]).collect();
            ctx.out.table(&["orphan keyring entry"], rows)?;
            if !fixing {
                ctx.out.hint(&format!(
                    "no record names {}: `connctl doctor --fix` removes {}",
                    if accounts.len() == 1 { "it" } else { "them" },
                    if accounts.len() == 1 { "it" } else { "them" },
                ));
            }
        }
        Orphans::Unknown(why) => {
            ctx.out
                .status(&format!("orphan keyring entries not checked: {why}"));
        }
    }
    Ok(())
}

/// `--fix`: removes the orphans after a yes (or `--yes`); returns the
/// accounts removed.
fn fix(ctx: &Context, orphans: &Orphans) -> Result<Vec<String>> {
    let accounts = match orphans {
        Orphans::Listed(accounts) => accounts,
        Orphans::Unknown(why) => {
            return Err(Error::secret(format!(
                "cannot look for orphan keyring entries: {why}"
            )));
        }
    };
    if accounts.is_empty() {
        return Ok(Vec::new());
    }
    let count = format!(
        "{} orphan keyring entr{}",
        accounts.len(),
        if accounts.len() == 1 { "y" } else { "ies" }
    );
    if !ctx.yes {
        match ctx.out.confirm(&format!("Remove {count} of this store?"))? {
            Some(true) => {}
            Some(false) => {
                return Err(Error::invalid(format!("{count} not removed: declined")));
            }
            None => {
                return Err(Error::invalid(format!(
                    "{count} not removed: removing needs a confirmation"
                ))
                .with_hint("run `connctl doctor --fix` on a terminal, or pass --yes"));
            }
        }
    }
    let change::OrphanRemoval { removed, failed } =
        ctx.with_lock_wait(|wait| change::remove_orphans(&ctx.store_path, wait, accounts))?;
    for account in &removed {
        ctx.out
            .status(&format!("removed orphan keyring entry {account}"));
    }
    if let Some((account, err)) = failed.first() {
        let mut error = Error::secret(format!(
            "{} orphan keyring entr{} could not be removed: {account}: {}",
            failed.len(),
            if failed.len() == 1 { "y" } else { "ies" },
            err.message
        ));
        for (account, err) in &failed[1..] {
            error = error.with_cause(format!("{account}: {}", err.message));
        }
        return Err(error);
    }
    Ok(removed)
}

/// Every secret resolves, and the keyring works or no secret is kept in it
/// (a store with only env/file/cmd sources, as in CI, needs no keyring).
fn all_fine(keyring: &KeyringCheck, fields: &[FieldCheck]) -> bool {
    fields.iter().all(|f| f.error.is_none())
        && (keyring.error.is_none() || fields.iter().all(|f| f.source != SecretSource::Keyring))
}

fn report_json(keyring: &KeyringCheck, fields: &[FieldCheck]) -> Value {
    let error_json = |e: &Option<Error>| match e {
        None => (Value::Null, json!([]), Value::Null),
        Some(e) => (
            Value::String(e.message.clone()),
            json!(e.causes),
            e.hint.clone().map(Value::String).unwrap_or(Value::Null),
        ),
    };
    let (k_error, k_causes, k_hint) = error_json(&keyring.error);
    let secrets: Vec<Value> = fields
        .iter()
        .map(|f| {
            let (error, causes, hint) = error_json(&f.error);
            json!({
                "kind": f.kind,
                "name": f.name,
                "field": f.field,
                "source": f.source.to_string(),
                "ok": f.error.is_none(),
                "error": error,
                "causes": causes,
                "hint": hint,
            })
        })
        .collect();
    json!({
        "ok": all_fine(keyring, fields),
        "keyring": {
            "backend": keyring.backend.map(|b| b.id()),
            "label": keyring.backend.map(|b| b.label()),
            "reason": keyring.reason,
            "persistent": keyring.backend.map(|b| b.persistent()),
            "ok": keyring.error.is_none(),
            "error": k_error,
            "causes": k_causes,
            "hint": k_hint,
        },
        "secrets": secrets,
        "token_cache": token_cache_json(),
    })
}

/// Which OAuth token cache this run uses (the keyring, or CONNCTL_TOKEN_CACHE's folder).
fn token_cache_json() -> Value {
    let cache = crate::outbound::oauth::Cache::from_env();
    let (text, check) = cache.describe();
    json!({
        "kind": match cache {
            crate::outbound::oauth::Cache::Keyring => "keyring",
            crate::outbound::oauth::Cache::Dir(_) => "folder",
        },
        "description": text,
        "ok": check.is_ok(),
        "error": check.err(),
    })
}

fn vault_json(check: Option<&VaultCheck>) -> Value {
    let Some(check) = check else {
        return Value::Null;
    };
    json!({
        "address": check.address,
        "auth": check.auth,
        "ok": check.error.is_none(),
        "token_ttl_seconds": check.ttl,
        "error": check.error.as_ref().map(|e| e.message.clone()),
        "causes": check.error.as_ref().map(|e| e.causes.clone()).unwrap_or_default(),
        "hint": check.error.as_ref().and_then(|e| e.hint.clone()),
    })
}

fn print_vault(ctx: &Context, check: &VaultCheck) -> Result<()> {
    let mut lines: Vec<(&str, String)> = vec![("vault", check.address.clone())];
    if !check.auth.is_empty() {
        lines.push(("vault auth", check.auth.clone()));
    }
    match &check.error {
        None => lines.push((
            "vault token",
            match check.ttl {
                Some(ttl) => format!("ok, {ttl} s left"),
                None => "ok, does not expire".to_string(),
            },
        )),
        Some(e) => {
            lines.push(("vault token", format!("FAILED: {}", e.message)));
            for cause in &e.causes {
                lines.push(("caused by", cause.clone()));
            }
        }
    }
    ctx.out.fields(&lines)?;
    if let Some(hint) = check.error.as_ref().and_then(|e| e.hint.as_deref()) {
        ctx.out.hint(hint);
    }
    Ok(())
}

fn print_tables(ctx: &Context, keyring: &KeyringCheck, fields: &[FieldCheck]) -> Result<()> {
    let mut lines: Vec<(&str, String)> = vec![(
        "keyring",
        keyring
            .backend
            .map(|b| b.label().to_string())
            .unwrap_or_else(|| "unavailable".to_string()),
    )];
    if let Some(reason) = &keyring.reason {
        lines.push(("chosen because", reason.clone()));
    }
    match &keyring.error {
        None => lines.push(("round trip", "ok".to_string())),
        Some(e) => {
            lines.push(("round trip", format!("FAILED: {}", e.message)));
            for cause in &e.causes {
                lines.push(("caused by", cause.clone()));
            }
        }
    }
    if keyring.backend.is_some_and(|b| !b.persistent()) {
        lines.push((
            "note",
            "kernel keyutils keeps values until reboot only".to_string(),
        ));
    }
    let (cache_text, cache_check) = crate::outbound::oauth::Cache::from_env().describe();
    lines.push(("token cache", cache_text));
    if let Err(e) = cache_check {
        lines.push(("token cache", format!("FAILED: {e}")));
    }
    ctx.out.fields(&lines)?;
    if let Some(hint) = keyring.error.as_ref().and_then(|e| e.hint.as_deref()) {
        ctx.out.hint(hint);
    }

    if fields.is_empty() {
        ctx.out.status("no record in the store has a secret field");
        return Ok(());
    }
    ctx.out.raw(b"\n")?;
    let rows = fields
        .iter()
        .map(|f| {
            let status = match &f.error {
                None => "ok".to_string(),
                Some(e) => format!("unavailable: {}", e.message),
            };
            vec![
                f.record.clone(),
                f.field.clone(),
                f.source.to_string(),
                status,
            ]
        })
        .collect();
    ctx.out
        .table(&["record", "field", "source", "status"], rows)?;
    let mut hints: Vec<&str> = fields
        .iter()
        .filter_map(|f| f.error.as_ref()?.hint.as_deref())
        .collect();
    let mut seen = std::collections::HashSet::new();
    hints.retain(|h| seen.insert(*h));
    for hint in hints {
        ctx.out.hint(hint);
    }
    Ok(())
}
