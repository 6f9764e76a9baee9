//! Command handlers: thin glue from parsed arguments to the store, the
//! secrets, the network and the printer. One module per command group.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Map, Value};

pub use crate::change::TakenSecret;
use crate::change::{self, Committed, Draft, SecretChange};
use crate::cli::{ClientSecretArgs, Command, PasswordArgs};
use crate::error::{Error, Result};
use crate::model::{RecordKind, SecretSource, Store};
use crate::output::{Printer, or_dash};
use crate::secrets::{self, SecretInput};

pub mod completions;
pub mod connection;
pub mod demo;
pub mod doctor;
pub mod history;
pub mod inbound;
pub mod inbound_user;
pub mod integration;
pub mod mid_server;
pub mod monitor;
pub mod oauth_profile;
pub mod outbound;
pub mod protocol_profile;
pub mod rotate;
pub mod transfer;

/// What every command gets: the store path and the printer with the global flags.
#[derive(Debug, Clone)]
pub struct Context {
    pub store_path: PathBuf,
    pub out: Printer,
    pub yes: bool,
    /// How long a write waits for another process's store lock.
    pub lock_timeout: std::time::Duration,
}

impl Context {
    /// `--yes`, or a yes on the terminal to `question`, before acting on
    /// production connection `connection`; otherwise exit 4 ("not VERB
    /// without confirmation") and nothing is done. `question` is `None`
    /// when the terminal cannot be asked (stdin carries the body).
    pub fn confirm_production(
        &self,
        connection: &str,
        verb: &str,
        question: Option<&str>,
    ) -> Result<()> {
        if self.yes {
            return Ok(());
        }
        let answer = match question {
            Some(q) => self.out.confirm(q)?,
            None => None,
        };
        if answer == Some(true) {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "connection '{connection}' is a production connection: not {verb} without confirmation"
        ))
        .with_hint("confirm on a terminal, or pass --yes"))
    }

    pub fn load(&self) -> Result<Store> {
        self.out
            .debug(1, &format!("store: {}", self.store_path.display()));
        crate::store::load(&self.store_path)
    }

    /// Carries out one change to records and their secrets (see
    /// `change::commit`): the only way commands write the store or the keyring.
    /// Every commit is journaled. Logs the keyring operations at `-v` and
    /// warns about entries left behind.
    pub fn change<T>(&self, edit: impl FnOnce(&mut Draft) -> Result<T>) -> Result<Committed<T>> {
        self.change_noted(Vec::new(), edit)
    }

    /// `change`, with journal rows that say more than the records' difference
    /// (a rotated secret: `rotated`, not `edited`).
    pub fn change_noted<T>(
        &self,
        notes: Vec<crate::journal::Change>,
        edit: impl FnOnce(&mut Draft) -> Result<T>,
    ) -> Result<Committed<T>> {
        self.out
            .debug(1, &format!("store (write): {}", self.store_path.display()));
        let journal = crate::journal::JournalHook::new(crate::journal::Origin::current(), notes);
        let done =
            self.with_lock_wait(|wait| change::commit(&self.store_path, wait, &[&journal], edit))?;
        for op in &done.secrets {
            match op {
                SecretChange::Set(at) => self
                    .out
                    .debug(1, &format!("keyring: stored {}", at.account())),
                SecretChange::Deleted(at) => self
                    .out
                    .debug(1, &format!("keyring: removed {}", at.account())),
                SecretChange::VaultWritten {
                    source, version, ..
                } => self.out.debug(
                    1,
                    &match version {
                        Some(n) => format!("vault: wrote {source} (version {n})"),
                        None => format!("vault: wrote {source}"),
                    },
                ),
            }
        }
        for left in &done.leftovers {
            self.out.warn(&format!(
                "the keyring entry {} could not be removed: {}",
                left.at.account(),
                crate::text::escape(&left.error.message)
            ));
        }
        if !done.leftovers.is_empty() {
            self.out
                .hint("`connctl doctor --fix` removes keyring entries no record names");
        }
        for warning in &done.warnings {
            self.out.warn(warning);
        }
        Ok(done)
    }

    /// How writes wait for another process's store lock: `--lock-timeout`,
    /// with the waiting notice on stderr.
    pub fn with_lock_wait<R>(&self, f: impl FnOnce(&crate::store::LockWait) -> R) -> R {
        let notice = |message: &str| self.out.status(message);
        f(&crate::store::LockWait {
            timeout: self.lock_timeout,
            notice: &notice,
        })
    }

    /// A change to records alone, returning what `edit` returned.
    pub fn update<T>(&self, edit: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        self.change(|draft| edit(draft)).map(|done| done.value)
    }
}

pub fn dispatch(ctx: &Context, command: Command) -> Result<()> {
    match command {
        Command::Integration(cmd) => integration::run(ctx, cmd),
        Command::Connection(cmd) => connection::run(ctx, cmd),
        Command::OauthProfile(cmd) => oauth_profile::run(ctx, cmd),
        Command::ProtocolProfile(cmd) => protocol_profile::run(ctx, cmd),
        Command::MidServer(cmd) => mid_server::run(ctx, cmd),
        Command::InboundUser(cmd) => inbound_user::run(ctx, cmd),
        Command::Inbound(cmd) => inbound::run(ctx, cmd),
        Command::Export(args) => transfer::export(ctx, args),
        Command::Import(args) => transfer::import(ctx, args),
        Command::Doctor(args) => doctor::run(ctx, args),
        Command::Demo(args) => demo::run(ctx, args),
        Command::Monitor(args) => monitor::run(ctx, args),
        Command::Completions(args) => completions::run(ctx, args),
        Command::History(args) => history::run(ctx, args),
    }
}

/// The status after an edit: "updated KIND 'NAME'", or, when it changed nothing
/// (no flags given, or only the values the record already had), says so.
pub fn edited(ctx: &Context, kind: RecordKind, name: &str, changed: bool) {
    if changed {
        ctx.out.status(&format!("updated {kind} '{name}'"));
    } else {
        ctx.out.status(&format!(
            "{kind} '{name}' unchanged: it already has these settings"
        ));
        ctx.out.hint(&format!(
            "give the fields to change as flags; see `connctl {kind} edit --help`"
        ));
    }
}

/// A record for `-o json` lists, serialized directly: `name` first, then
/// the store's fields (the same text as `record_json`, without the tree).
#[derive(Serialize)]
pub struct Named<'a, R> {
    pub name: &'a str,
    #[serde(flatten)]
    pub record: &'a R,
}

/// A record as JSON: `name` first, then the store's fields.
pub fn record_json(name: &str, record: &impl Serialize) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    map.insert("name".into(), Value::String(name.to_string()));
    match serde_json::to_value(record) {
        Ok(Value::Object(fields)) => map.extend(fields),
        Ok(_) => {}
        Err(e) => return Err(Error::failed("cannot render JSON").with_source(&e)),
    }
    Ok(map)
}

pub fn password_input(args: &PasswordArgs) -> Option<SecretInput> {
    secret_input(
        args.password_stdin,
        &args.password_env,
        &args.password_file,
        &args.password_cmd,
        &args.password_vault,
    )
}

pub fn client_secret_input(args: &ClientSecretArgs) -> Option<SecretInput> {
    secret_input(
        args.client_secret_stdin,
        &args.client_secret_env,
        &args.client_secret_file,
        &args.client_secret_cmd,
        &args.client_secret_vault,
    )
}

fn secret_input(
    stdin: bool,
    env: &Option<String>,
    file: &Option<PathBuf>,
    cmd: &Option<String>,
    vault: &Option<String>,
) -> Option<SecretInput> {
    if let Some(reference) = vault {
        Some(if stdin {
            SecretInput::VaultWrite(reference.clone())
        } else {
            SecretInput::Vault(reference.clone())
        })
    } else if stdin {
        Some(SecretInput::Stdin)
    } else if let Some(var) = env {
        Some(SecretInput::Env(var.clone()))
    } else if let Some(path) = file {
        // `secrets::take_input` makes the path absolute (and says when it cannot).
        Some(SecretInput::File(path.clone()))
    } else {
        cmd.as_ref().map(|c| SecretInput::Cmd(c.clone()))
    }
}

pub fn take_secret(
    input: Option<SecretInput>,
    prompt: Option<&str>,
) -> Result<Option<TakenSecret>> {
    Ok(secrets::take_input(input, prompt)?.map(|(source, value)| TakenSecret { source, value }))
}

/// A secret field as shown in tables: its source, or `-`.
pub fn source_text(source: &Option<SecretSource>) -> String {
    or_dash(source.as_ref().map(ToString::to_string).as_deref())
}

/// Prints a kind's records: JSON array, or a table from `row`.
pub fn list_records<R: serde::Serialize>(
    ctx: &Context,
    records: &std::collections::BTreeMap<String, R>,
    headers: &[&str],
    row: impl Fn(&str, &R) -> Vec<String>,
) -> Result<()> {
    if ctx.out.is_json() {
        let items: Vec<Named<'_, R>> = records
            .iter()
            .map(|(name, record)| Named { name, record })
            .collect();
        return ctx.out.json_of(&items);
    }
    ctx.out
        .table(headers, records.iter().map(|(n, r)| row(n, r)).collect())
}

pub fn used_by(store: &crate::model::Store, kind: RecordKind, name: &str) -> String {
    let users: Vec<String> = store
        .referrers(kind, name)
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    if users.is_empty() {
        "-".into()
    } else {
        users.join(", ")
    }
}

/// `KIND remove NAME` for every kind but connections: exit 3 when it does
/// not exist; refused (exit 4, naming them) while others reference it
/// (`Store::check_change`); its keyring entries go with it (the transaction
/// deletes what the store no longer names).
pub fn remove_record(ctx: &Context, kind: RecordKind, name: &str) -> Result<()> {
    ctx.update(|store| {
        require(store, kind, name)?;
        store.remove(kind, name);
        Ok(())
    })?;
    ctx.out.status(&format!("removed {kind} '{name}'"));
    Ok(())
}

/// Fails with exit 3 unless the record exists.
pub fn require(store: &Store, kind: RecordKind, name: &str) -> Result<()> {
    if store.contains(kind, name) {
        Ok(())
    } else {
        Err(not_found(store, kind, name))
    }
}

/// "does not exist" (exit 3), with the closest existing name as a hint.
pub fn not_found(store: &Store, kind: RecordKind, name: &str) -> Error {
    store.missing(kind, name)
}

/// Fails with exit 4 when a name breaks the naming rule.
pub fn check_new_name(store: &Store, kind: RecordKind, name: &str) -> Result<()> {
    crate::model::check_name(kind, name).map_err(Error::invalid)?;
    if store.contains(kind, name) {
        return Err(
            Error::invalid(format!("{kind} '{name}' already exists")).with_hint(format!(
                "change it with `connctl {kind} edit {name}`, or pick another name"
            )),
        );
    }
    Ok(())
}

/// `KEY=VALUE` from `--var`.
pub fn parse_var(text: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(Error::usage(format!("--var '{text}' is not KEY=VALUE"))),
    }
}

/// Checks a URL flag; a bad URL is invalid input (exit 4).
pub fn check_url(flag: &str, url: &str) -> Result<String> {
    crate::model::check_http_url(url).map_err(|m| Error::invalid(format!("{flag}: {m}")))
}

/// Makes a file path absolute so the store works from any folder, and checks it exists.
pub fn existing_file(flag: &str, path: &std::path::Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if !abs.is_file() {
        return Err(Error::invalid(format!(
            "{flag}: {} is not a readable file",
            abs.display()
        )));
    }
    Ok(abs)
}
