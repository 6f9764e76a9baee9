//! A change to records and their secrets, carried out as one transaction:
//! planned, validated in full, then committed in an order that never leaves
//! the store naming a secret that is gone.
//!
//! # Using it
//!
//! ```ignore
//! let done = change::commit(&store_path, &[], |draft| {
//!     // `draft` derefs to an edited copy of the store: change records freely.
//!     let source = draft.keep(RecordKind::InboundUser, "remote", "password", taken);
//!     draft.inbound_user.insert("remote".into(), InboundUser { password: Some(source) });
//!     Ok(())                       // any Err here: nothing happened
//! })?;
//! done.touched;                    // which records (kind, name, action, fields) changed
//! done.leftovers;                  // keyring entries that could not be deleted (warn)
//! ```
//!
//! Commands never call the keyring themselves. They edit records on the
//! [`Draft`] and hand it new secret values ([`Draft::keep`],
//! [`Draft::set_secret`]); every keyring entry that a change leaves unnamed
//! (a record removed, a secret moved to `env:`/`file:`/`cmd:`, a connection
//! moved to another OAuth profile, a profile removed) is deleted by the
//! transaction itself, derived from the difference between the store before
//! and after, so no command can forget one. [`Draft::delete_secret`] adds
//! a delete the difference cannot see.
//!
//! # The steps ([`commit`])
//! 1. Take the store's write lock; load and validate the store.
//! 2. Plan: run the command's edits on a copy (a [`Draft`]); an error ends
//!    here with nothing done.
//! 3. Validate the planned store against every rule (`Store::check_change`:
//!    `Store::validate`, the same check every load makes, with the broken
//!    rule's hint; a dangling reference the change introduced is exit 3, a
//!    removal others still reference exit 4) and render it; check that every new
//!    value goes to a record that exists after the change.
//! 4. Read the previous value of every entry to be set (a read only).
//! 5. Hooks' [`CommitHook::prepare`] (a journal's write-ahead goes here);
//!    an error ends here with nothing done.
//! 6. Vault writes (`--password-stdin` with `--password-vault`), then keyring
//!    sets, in order. If one fails, the ones already made are put back
//!    (previous value, or the new entry deleted; a Vault secret rewritten as
//!    it was) and the error returned.
//! 7. Write the new store to a temporary file, fsync, rename over the store,
//!    fsync the folder. If that fails, the sets and Vault writes are put back likewise.
//! 8. Hooks' [`CommitHook::committed`]: the change is in place.
//! 9. Keyring deletes. A failure is a leftover (an orphan entry reported to
//!    the caller; `doctor --fix` removes it later), not an error: the store
//!    no longer names it.
//!
//! A crash after 6 and before 7 leaves new entries nobody names (orphans)
//! or, for a value that replaced another, the new value under an entry the
//! old store still names; a crash after 7 leaves the entries step 9 would
//! have deleted (orphans). The store never names an entry that is gone.

use std::collections::BTreeSet;
use std::ops::{Deref, DerefMut};
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{RecordKind, SecretSource, Store};
use crate::secrets::{self, Secret, SecretRef};
use crate::store;

/// A secret taken from the command line before the store lock is held: the
/// source to record, and a value bound for the keyring (`None` for env:,
/// file:, cmd: sources, which hold no value of their own).
pub struct TakenSecret {
    pub source: SecretSource,
    pub value: Option<Secret>,
}

/// The planned store and the secret values to store with it.
pub struct Draft {
    store: Store,
    store_id: String,
    sets: Vec<(SecretRef, Secret)>,
    deletes: Vec<SecretRef>,
    vault_writes: Vec<VaultWrite>,
}

/// A value bound for Vault (`--password-stdin` with `--password-vault`):
/// written on commit, before the store records the reference.
struct VaultWrite {
    at: SecretRef,
    source: SecretSource,
    value: Secret,
}

impl Deref for Draft {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl DerefMut for Draft {
    fn deref_mut(&mut self) -> &mut Store {
        &mut self.store
    }
}

impl Draft {
    /// Where a secret of a record of this store lives in the keyring.
    pub fn secret_ref(&self, kind: RecordKind, name: &str, field: &str) -> SecretRef {
        SecretRef::new(&self.store_id, kind, name, field)
    }

    /// Records a taken secret for a record's field: a value is stored in the
    /// keyring on commit. Returns the source to put in the record. (Moving
    /// away from a keyring source needs nothing more: the old entry is
    /// deleted once the store no longer names it.)
    pub fn keep(
        &mut self,
        kind: RecordKind,
        name: &str,
        field: &str,
        taken: TakenSecret,
    ) -> SecretSource {
        if let Some(value) = taken.value {
            let at = self.secret_ref(kind, name, field);
            if let SecretSource::Vault { .. } = &taken.source {
                self.vault_writes.retain(|w| w.at != at);
                self.vault_writes.push(VaultWrite {
                    at,
                    source: taken.source.clone(),
                    value,
                });
            } else {
                self.set_secret(at, value);
            }
        }
        taken.source
    }

    /// Stores `value` under `at` on commit (replacing a value set earlier in
    /// this draft). The record must exist after the change; a secret field
    /// of the record must then have the keyring source.
    pub fn set_secret(&mut self, at: SecretRef, value: Secret) {
        self.sets.retain(|(a, _)| *a != at);
        self.deletes.retain(|a| *a != at);
        self.sets.push((at, value));
    }

    /// Deletes `at` after the commit (a token cache, a rotated-out value):
    /// for entries the difference of the records does not show.
    pub fn delete_secret(&mut self, at: SecretRef) {
        self.sets.retain(|(a, _)| *a != at);
        if !self.deletes.contains(&at) {
            self.deletes.push(at);
        }
    }
}

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Added,
    Changed,
    Removed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Added => "added",
            Action::Changed => "changed",
            Action::Removed => "removed",
        }
    }
}

/// A record a change touched, with the fields that differ (store field
/// names; a secret field whose keyring value was replaced counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    pub kind: RecordKind,
    pub name: String,
    pub action: Action,
    pub fields: Vec<String>,
}

/// A keyring operation a commit made. Never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretChange {
    Set(SecretRef),
    Deleted(SecretRef),
    /// A value written to Vault for a record's field; `version` is the new KV v2 version.
    VaultWritten {
        at: SecretRef,
        source: SecretSource,
        version: Option<u64>,
    },
}

/// A keyring entry the commit should have deleted and could not.
#[derive(Debug, Clone)]
pub struct Leftover {
    pub at: SecretRef,
    pub error: Error,
}

/// What a hook sees of a change: both stores, the records touched and the
/// keyring operations (sets already made when `committed` runs; deletes
/// still to come).
pub struct ChangeRecord<'a> {
    pub store_path: &'a Path,
    pub before: &'a Store,
    pub after: &'a Store,
    /// The text the store is replaced with (None: the store file stays as it is).
    pub text: Option<&'a str>,
    pub touched: &'a [Touched],
    pub sets: Vec<SecretRef>,
    pub deletes: Vec<SecretRef>,
}

/// Something that follows commits (a journal). Both calls run under the
/// store's write lock, so hooks see changes in the order they are made.
pub trait CommitHook {
    /// Before any side effect (step 5): an error cancels the change.
    fn prepare(&self, _change: &ChangeRecord<'_>) -> Result<()> {
        Ok(())
    }

    /// After the store is renamed into place (step 8). The change stands
    /// whatever happens here: return warnings, not errors.
    fn committed(&self, _change: &ChangeRecord<'_>) -> Vec<String> {
        Vec::new()
    }

    /// The change failed after `prepare` (a keyring set or the rename): it
    /// did not happen; undo what `prepare` wrote.
    fn aborted(&self, _change: &ChangeRecord<'_>) {}
}

/// The result of a commit.
#[derive(Debug)]
pub struct Committed<T> {
    /// What the command's edit function returned.
    pub value: T,
    /// Records that changed; empty when the change changed nothing.
    pub touched: Vec<Touched>,
    /// The keyring operations made, in order.
    pub secrets: Vec<SecretChange>,
    /// Deletes that failed after the commit (orphan entries left behind).
    pub leftovers: Vec<Leftover>,
    /// Warnings from hooks.
    pub warnings: Vec<String>,
}

impl<T> Committed<T> {
    /// Whether anything changed (a record, or a keyring value).
    pub fn changed(&self) -> bool {
        !self.touched.is_empty()
    }
}

/// Plans, validates and carries out one change (see the module's steps).
///
/// A store path that is a symbolic link is resolved once, here: the lock,
/// the read and the write are all the target's (`store::write_target`).
pub fn commit<T>(
    path: &Path,
    wait: &store::LockWait,
    hooks: &[&dyn CommitHook],
    edit: impl FnOnce(&mut Draft) -> Result<T>,
) -> Result<Committed<T>> {
    let path = &store::write_target(path)?;
    let _lock = store::lock(path, wait)?;
    let before = store::load(path)?;
    let mut draft = Draft {
        store_id: before.store_id.clone(),
        store: before.clone(),
        sets: Vec::new(),
        deletes: Vec::new(),
        vault_writes: Vec::new(),
    };
    let value = edit(&mut draft)?;
    let Draft {
        store: after,
        sets,
        deletes: explicit_deletes,
        vault_writes,
        ..
    } = draft;

    let text = if after != before {
        after.check_change(&before)?;
        Some(store::render(&after)?)
    } else {
        None
    };
    for (at, _) in &sets {
        check_set_target(&after, at)?;
    }
    for write in &vault_writes {
        check_vault_target(&after, write)?;
    }
    let deletes = deletes_for(&before, &after, &sets, explicit_deletes);
    let touched = {
        // A value written to Vault changes the field even when the reference stays.
        let mut changed: Vec<(SecretRef, Secret)> = sets.clone();
        changed.extend(vault_writes.iter().map(|w| (w.at.clone(), w.value.clone())));
        touched(&before, &after, &changed)
    };

    let record = ChangeRecord {
        store_path: path,
        before: &before,
        after: &after,
        text: text.as_deref(),
        touched: &touched,
        sets: sets.iter().map(|(at, _)| at.clone()).collect(),
        deletes: deletes.clone(),
    };
    hold_for_tests();
    let mut previous = Vec::with_capacity(sets.len());
    for (at, _) in &sets {
        previous.push((at.clone(), secrets::keyring_get(at)?));
    }
    for hook in hooks {
        hook.prepare(&record)?;
    }

    let mut made = Vec::new();
    // Vault first: a write there is the step most likely to be refused
    // (policy, sealed), and it is undone like the keyring sets if a later step fails.
    let mut written = Vec::with_capacity(vault_writes.len());
    for write in &vault_writes {
        let SecretSource::Vault { path, field, .. } = &write.source else {
            continue;
        };
        match secrets::vault::write(path, field, &write.value, &write.at) {
            Ok(receipt) => {
                made.push(SecretChange::VaultWritten {
                    at: write.at.clone(),
                    source: write.source.clone(),
                    version: receipt.version,
                });
                written.push(receipt);
            }
            Err(err) => {
                hooks.iter().for_each(|hook| hook.aborted(&record));
                return Err(with_vault_undone(err, &written));
            }
        }
    }
    for (done, (at, value)) in sets.iter().enumerate() {
        if let Err(err) = secrets::keyring_set(at, value) {
            hooks.iter().for_each(|hook| hook.aborted(&record));
            let err = with_restored(err, &previous[..done]);
            return Err(with_vault_undone(err, &written));
        }
        made.push(SecretChange::Set(at.clone()));
    }
    if let Some(text) = &text
        && let Err(err) = store::write_store(path, text)
    {
        hooks.iter().for_each(|hook| hook.aborted(&record));
        return Err(with_vault_undone(with_restored(err, &previous), &written));
    }

    let mut warnings = Vec::new();
    for hook in hooks {
        warnings.extend(hook.committed(&record));
    }
    let mut leftovers = Vec::new();
    for at in deletes {
        match secrets::keyring_delete(&at) {
            Ok(()) => made.push(SecretChange::Deleted(at)),
            Err(error) => leftovers.push(Leftover { at, error }),
        }
    }
    Ok(Committed {
        value,
        touched,
        secrets: made,
        leftovers,
        warnings,
    })
}

/// A new value must belong to a record of the planned store, and a secret
/// field must then name the keyring: otherwise it would be an orphan.
fn check_set_target(after: &Store, at: &SecretRef) -> Result<()> {
    if !after.contains(at.kind, &at.name) {
        return Err(Error::failed(format!(
            "internal: a value for {} was planned, but the record does not exist after the change",
            at.describe()
        )));
    }
    let field = secrets::secret_fields(after)
        .into_iter()
        .find(|(f, _)| f == at)
        .map(|(_, source)| source);
    let is_store_field = ["password", "client_secret", "signing_key"].contains(&at.field.as_str())
        || at.field.starts_with("var.");
    if is_store_field && field != Some(SecretSource::Keyring) {
        return Err(Error::failed(format!(
            "internal: a value for {} was planned, but the record does not keep it in the keyring",
            at.describe()
        )));
    }
    Ok(())
}

/// A value for Vault must go to a record of the planned store whose field
/// names that very Vault secret.
fn check_vault_target(after: &Store, write: &VaultWrite) -> Result<()> {
    let field = secrets::secret_fields(after)
        .into_iter()
        .find(|(f, _)| *f == write.at)
        .map(|(_, source)| source);
    if field.as_ref() != Some(&write.source) {
        return Err(Error::failed(format!(
            "internal: a Vault value for {} was planned, but the record does not name {}",
            write.at.describe(),
            write.source
        )));
    }
    Ok(())
}

/// Puts back the Vault secrets a failed commit had written, newest first.
fn with_vault_undone(mut err: Error, written: &[secrets::vault::Written]) -> Error {
    for receipt in written.iter().rev() {
        if let Err(e) = secrets::vault::undo(receipt) {
            err = err.with_cause(format!(
                "a value written to Vault could not be put back: {}",
                e.message
            ));
        }
    }
    err
}

/// Every keyring entry the change leaves unnamed (see
/// `secrets::named_entries`), plus the explicit deletes; never one being set.
fn deletes_for(
    before: &Store,
    after: &Store,
    sets: &[(SecretRef, Secret)],
    explicit: Vec<SecretRef>,
) -> Vec<SecretRef> {
    let kept: BTreeSet<String> = secrets::named_entries(after)
        .iter()
        .map(SecretRef::account)
        .collect();
    let mut out: Vec<SecretRef> = secrets::named_entries(before)
        .into_iter()
        .filter(|at| !kept.contains(&at.account()))
        .collect();
    // The value a rotation replaced (`<field>.previous`) goes with its record
    // (looked for where the record kept its secret in the keyring: a record
    // without one does not make a removal depend on a reachable keyring).
    for (at, source) in secrets::secret_fields(before) {
        if source == SecretSource::Keyring && !after.contains(at.kind, &at.name) {
            out.push(secrets::previous::previous_of(&at));
        }
    }
    for at in explicit {
        if !out.contains(&at) {
            out.push(at);
        }
    }
    out.retain(|at| !sets.iter().any(|(s, _)| s == at));
    out
}

/// The records that differ between two stores, by kind then name.
fn touched(before: &Store, after: &Store, sets: &[(SecretRef, Secret)]) -> Vec<Touched> {
    let tables = |store: &Store| match serde_json::to_value(store) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (old, new) = (tables(before), tables(after));
    let none = serde_json::Map::new();
    fn object<'a>(
        value: Option<&'a Value>,
        none: &'a serde_json::Map<String, Value>,
    ) -> &'a serde_json::Map<String, Value> {
        match value {
            Some(Value::Object(map)) => map,
            _ => none,
        }
    }
    let mut out = Vec::new();
    for kind in RecordKind::ALL {
        let old = object(old.get(kind.table_name()), &none);
        let new = object(new.get(kind.table_name()), &none);
        let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        for name in names {
            let (a, b) = (old.get(name), new.get(name));
            let set_fields = sets
                .iter()
                .filter(|(at, _)| at.kind == kind && at.name == *name)
                .map(|(at, _)| at.field.clone());
            if a == b && set_fields.clone().next().is_none() {
                continue;
            }
            let (a, b) = (object(a, &none), object(b, &none));
            let mut changed: BTreeSet<String> = a
                .keys()
                .chain(b.keys())
                .filter(|k| a.get(*k) != b.get(*k))
                .cloned()
                .collect();
            changed.extend(set_fields);
            let action = match (old.contains_key(name), new.contains_key(name)) {
                (false, true) => Action::Added,
                (true, false) => Action::Removed,
                _ => Action::Changed,
            };
            out.push(Touched {
                kind,
                name: name.clone(),
                action,
                fields: changed.into_iter().collect(),
            });
        }
    }
    out
}

/// Puts back the keyring values a failed commit had replaced (or deletes
/// the entries it had created), and says so on the error if that fails.
fn with_restored(mut err: Error, previous: &[(SecretRef, Option<Secret>)]) -> Error {
    for (at, value) in previous.iter().rev() {
        let restored = match value {
            Some(value) => secrets::keyring_set(at, value),
            None => secrets::keyring_delete(at),
        };
        if let Err(e) = restored {
            err = err.with_cause(format!(
                "the keyring entry {} could not be put back as it was: {}",
                at.account(),
                e.message
            ));
        }
    }
    err
}

/// Removes every keyring entry a store names (the demo's cleanup). Returns
/// the entries that could not be removed.
pub fn discard_secrets(store: &Store) -> Vec<Leftover> {
    secrets::named_entries(store)
        .into_iter()
        .filter_map(|at| {
            secrets::keyring_delete(&at)
                .err()
                .map(|error| Leftover { at, error })
        })
        .collect()
}

/// The keyring entries under this store's id that no record names (see
/// `secrets::named_entries`): what a crash between the steps of a commit, or
/// a failed delete, leaves behind. `Ok(None)` when the keyring cannot list
/// its entries.
pub fn orphans(store: &Store) -> Result<Option<Vec<String>>> {
    let Some(accounts) = secrets::keyring_accounts(&store.store_id)? else {
        return Ok(None);
    };
    let mut named: BTreeSet<String> = secrets::named_entries(store)
        .iter()
        .map(SecretRef::account)
        .collect();
    // The value a rotation replaced belongs to its record, whatever source
    // the record names now (`rotate --restore` brings it back).
    named.extend(
        secrets::secret_fields(store)
            .iter()
            .map(|(at, _)| secrets::previous::previous_of(at).account()),
    );
    Ok(Some(
        accounts
            .into_iter()
            .filter(|a| !named.contains(a))
            .collect(),
    ))
}

/// Removes the given orphan entries, under the store's write lock and only
/// those still orphans then (a command may have committed a record that
/// names one since they were listed).
pub fn remove_orphans(
    path: &Path,
    wait: &store::LockWait,
    listed: &[String],
) -> Result<OrphanRemoval> {
    let path = &store::write_target(path)?;
    let _lock = store::lock(path, wait)?;
    let store = store::load(path)?;
    let still = orphans(&store)?.unwrap_or_default();
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for account in listed.iter().filter(|a| still.contains(a)) {
        match secrets::keyring_delete_account(account) {
            Ok(()) => removed.push(account.clone()),
            Err(e) => failed.push((account.clone(), e)),
        }
    }
    Ok(OrphanRemoval { removed, failed })
}

/// What `remove_orphans` did: the accounts removed, and those that failed.
pub struct OrphanRemoval {
    pub removed: Vec<String>,
    pub failed: Vec<(String, Error)>,
}

/// Test builds only: `CONNCTL_TEST_HOLD=PATH` stops a commit after it is
/// planned and validated, before any side effect: it creates PATH and waits
/// (at most 60 s) until the test removes it. Lets a test break the keyring
/// or the store folder between plan and commit.
fn hold_for_tests() {
    #[cfg(debug_assertions)]
    if let Some(path) = std::env::var_os("CONNCTL_TEST_HOLD") {
        let path = std::path::PathBuf::from(path);
        if std::fs::write(&path, b"planned\n").is_ok() {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while path.exists() && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}
