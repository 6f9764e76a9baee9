//! The change journal: one JSON line per committed change to the store, in a
//! file beside it (`store.toml.journal`), appended and fsynced under the
//! store's lock before the store is renamed into place.
//!
//! Each entry carries the SHA-256 of the store text before and after its
//! change. An entry whose change did not land (a writer killed between the
//! journal's fsync and the store's rename) is recognised by that pair: the
//! store still has the `store_before` digest. Readers skip such a last entry;
//! the next writer, holding the lock, cuts it off (and any torn last line).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::change::{Action as TouchedAction, ChangeRecord, CommitHook};
use crate::error::{Error, Result};
use crate::model::{RecordKind, Store};

/// The journal of a store: `<store file name>.journal` in the same folder,
/// so two stores in one folder keep two journals.
pub fn path_for(store: &Path) -> PathBuf {
    // A symlinked store's journal sits beside its target, where every
    // writer and reader finds it whichever path they were given.
    let store = crate::store::write_target(store).unwrap_or_else(|_| store.to_path_buf());
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".journal");
    store.with_file_name(name)
}

/// The SHA-256 of a store file's text, in hex: what an entry's
/// `store_before`/`store_after` hold.
pub fn digest(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in hash.iter() {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// What was done to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Added,
    Edited,
    Removed,
    Activated,
    Deactivated,
    /// A secret replaced by `rotate` (the field is named, never the value).
    Rotated,
    /// A secret brought back by `rotate --restore`.
    Restored,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Added => "added",
            Action::Edited => "edited",
            Action::Removed => "removed",
            Action::Activated => "activated",
            Action::Deactivated => "deactivated",
            Action::Rotated => "rotated",
            Action::Restored => "restored",
        }
    }

    pub fn is_activation(self) -> bool {
        matches!(self, Action::Activated | Action::Deactivated)
    }
}

/// One record touched by a change. For `activated`/`deactivated`:
/// `integration`, `environment` (of this connection) and `previous`, the
/// integration's active connection before the change (null: none was).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub kind: String,
    pub name: String,
    pub action: Action,
    #[serde(default)]
    pub fields: Vec<String>,
    #[serde(default)]
    pub integration: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub previous: Option<String>,
}

impl Change {
    pub fn new(kind: RecordKind, name: &str, action: Action) -> Self {
        Change {
            kind: kind.cli_name().to_string(),
            name: name.to_string(),
            action,
            fields: Vec::new(),
            integration: None,
            environment: None,
            previous: None,
        }
    }

    /// An activation of the connection that was active already: no change of
    /// which connection is active (rollback looks past it).
    pub fn is_reactivation(&self) -> bool {
        self.action == Action::Activated && self.previous.as_deref() == Some(self.name.as_str())
    }

    pub fn with_fields(mut self, fields: Vec<String>) -> Self {
        self.fields = fields;
        self
    }
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub time: String,
    pub user: String,
    pub host: String,
    /// The command as words, secret-bearing values replaced by `(redacted)`.
    pub command: Vec<String>,
    /// SHA-256 of the store text before the change (null: no store yet).
    pub store_before: Option<String>,
    /// SHA-256 of the store text after the change.
    pub store_after: Option<String>,
    pub changes: Vec<Change>,
}

/// Who made a change and with what command.
#[derive(Debug, Clone)]
pub struct Origin {
    pub user: String,
    pub host: String,
    pub command: Vec<String>,
}

impl Origin {
    /// This process: the OS user, the host name, and its arguments, scrubbed.
    pub fn current() -> Self {
        let mut words: Vec<String> = std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        if let Some(first) = words.first_mut() {
            // The program's name, not the path it was started from.
            let name = Path::new(first.as_str())
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            if let Some(name) = name {
                *first = name;
            }
        }
        Origin {
            user: os_user(),
            host: host_name(),
            command: scrub_command(&words),
        }
    }
}

/// The login name of the real user: the password database, else `$USER`,
/// else the numeric uid.
fn os_user() -> String {
    #[cfg(unix)]
    {
        // SAFETY: getpwuid_r writes into the buffers we pass and nothing else.
        unsafe {
            let uid = libc::getuid();
            let mut pwd: libc::passwd = std::mem::zeroed();
            let mut buf = vec![0 as libc::c_char; 4096];
            let mut result: *mut libc::passwd = std::ptr::null_mut();
            let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
            if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
                let name = std::ffi::CStr::from_ptr(pwd.pw_name).to_string_lossy();
                if !name.is_empty() {
                    return name.into_owned();
                }
            }
            if let Some(user) = env_user() {
                return user;
            }
            return format!("uid {uid}");
        }
    }
    #[allow(unreachable_code)]
    env_user().unwrap_or_else(|| "unknown".to_string())
}

fn env_user() -> Option<String> {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
}

fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: gethostname writes at most buf.len() bytes into buf.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let name = String::from_utf8_lossy(&buf[..end]).into_owned();
            if !name.is_empty() {
                return name;
            }
        }
    }
    std::env::var("HOSTNAME")
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .unwrap_or_else(|_| "unknown".to_string())
}

const REDACTED: &str = "(redacted)";

/// Words of a command line fit for the journal. connctl takes no secret value
/// on its command line, but a value after a secret-looking flag, a
/// credential-like `--var`, or a header's value is replaced all the same,
/// and every word is cut to 200 characters.
pub fn scrub_command(words: &[String]) -> Vec<String> {
    let secretish = |flag: &str| {
        let flag = flag.trim_start_matches('-').to_ascii_lowercase();
        let reference = ["-env", "-file", "-cmd", "-stdin"]
            .iter()
            .any(|s| flag.ends_with(s));
        !reference && credential_like(&flag)
    };
    let mut out = Vec::with_capacity(words.len());
    let mut redact_next = false;
    let mut var_next = false;
    let mut header_next = false;
    for word in words {
        let shown = if redact_next {
            REDACTED.to_string()
        } else if var_next {
            scrub_var(word)
        } else if header_next {
            scrub_header(word)
        } else if let Some((flag, value)) =
            word.split_once('=').filter(|(f, _)| f.starts_with("--"))
        {
            if secretish(flag) {
                format!("{flag}={REDACTED}")
            } else if flag == "--var" {
                format!("{flag}={}", scrub_var(value))
            } else if flag == "--header" {
                format!("{flag}={}", scrub_header(value))
            } else {
                word.clone()
            }
        } else {
            word.clone()
        };
        redact_next = word.starts_with("--") && !word.contains('=') && secretish(word);
        var_next = word == "--var";
        header_next = word == "-H" || word == "--header";
        out.push(shown.chars().take(200).collect());
    }
    out
}

fn credential_like(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "passwd",
        "apikey",
        "api_key",
        "api-key",
        "credential",
    ]
    .iter()
    .any(|w| name.contains(w))
}

fn scrub_var(text: &str) -> String {
    match text.split_once('=') {
        Some((key, _)) if credential_like(key) => format!("{key}={REDACTED}"),
        _ => text.to_string(),
    }
}

fn scrub_header(text: &str) -> String {
    match text.split_once(':') {
        Some((name, _)) => format!("{name}: {REDACTED}"),
        None => REDACTED.to_string(),
    }
}

/// The rows of a change, in a stable order: the records it added, edited
/// (with the fields) and removed, by kind and name, then its activations;
/// `notes` (rows a command gave, e.g. `rotated`) replace the edit rows they cover.
pub fn rows(change: &ChangeRecord<'_>, notes: &[Change]) -> Vec<Change> {
    let mut out = Vec::new();
    for touched in change.touched {
        let action = match touched.action {
            TouchedAction::Added => Action::Added,
            TouchedAction::Removed => Action::Removed,
            TouchedAction::Changed => Action::Edited,
        };
        // Activity is journaled as activations; a kept previous value is
        // part of the rotation that wrote it.
        let fields: Vec<String> = touched
            .fields
            .iter()
            .filter(|f| !matches!(f.as_str(), "active" | "last_activated"))
            .filter(|f| !f.ends_with(".previous"))
            .cloned()
            .collect();
        if action == Action::Edited && fields.is_empty() {
            continue;
        }
        let fields = if action == Action::Edited {
            fields
        } else {
            Vec::new()
        };
        let store = if action == Action::Removed {
            change.before
        } else {
            change.after
        };
        let row = Change::new(touched.kind, &touched.name, action).with_fields(fields);
        let covered = notes.iter().any(|n| {
            n.kind == row.kind
                && n.name == row.name
                && row.fields.iter().all(|f| n.fields.contains(f))
        });
        if action == Action::Edited && covered {
            continue;
        }
        out.push(placed(store, row));
    }
    out.extend(activations(change.before, change.after));
    out.extend(notes.iter().cloned());
    out
}

/// A connection's row also names its integration and environment (as in
/// `store`), so `history --integration` finds edits of its connections.
fn placed(store: &Store, mut change: Change) -> Change {
    if change.kind == RecordKind::Connection.cli_name()
        && let Some(c) = store.connection.get(&change.name)
    {
        change.integration = Some(c.integration.clone());
        change.environment = Some(c.environment.to_string());
    }
    change
}

fn activations(before: &Store, after: &Store) -> Vec<Change> {
    let mut activated = Vec::new();
    let mut deactivated = Vec::new();
    let activation = |name: &str, action, integration: &str, env: String, previous| Change {
        kind: RecordKind::Connection.cli_name().to_string(),
        name: name.to_string(),
        action,
        fields: Vec::new(),
        integration: Some(integration.to_string()),
        environment: Some(env),
        previous,
    };
    for (name, c) in &after.connection {
        let was = before
            .connection
            .get(name)
            .is_some_and(|o| o.active && o.integration == c.integration);
        // Activating the active connection again stamps `last_activated`:
        // journaled as an activation whose previous is itself.
        let again = was
            && before
                .connection
                .get(name)
                .is_some_and(|o| o.last_activated != c.last_activated);
        if c.active && (!was || again) {
            let previous = before
                .active_connection_of(&c.integration)
                .map(str::to_string);
            activated.push(activation(
                name,
                Action::Activated,
                &c.integration,
                c.environment.to_string(),
                previous,
            ));
        }
    }
    for (name, o) in &before.connection {
        if !o.active {
            continue;
        }
        let still = after
            .connection
            .get(name)
            .is_some_and(|c| c.active && c.integration == o.integration);
        if !still {
            deactivated.push(activation(
                name,
                Action::Deactivated,
                &o.integration,
                o.environment.to_string(),
                Some(name.clone()),
            ));
        }
    }
    activated.extend(deactivated);
    activated
}

/// An appended entry, kept until the store's rename so a failed rename can
/// take the entry back.
pub struct Appended {
    file: File,
    offset: u64,
}

impl Appended {
    /// Removes the entry again: its change is not going to land.
    pub fn undo(self) {
        let _ = self.file.set_len(self.offset);
        let _ = self.file.sync_data();
    }
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::invalid(format!("cannot {what} the journal {}", path.display())).with_source(e)
}

/// Appends one entry and fsyncs it. Call with the store's lock held, before
/// the store is renamed; `current` is the digest of the store on disk now
/// (None: no store file). First cuts off what a killed writer left at the
/// end: a torn line, or an entry whose change never landed.
pub fn append(store_path: &Path, current: Option<&str>, entry: &Entry) -> Result<Appended> {
    let path = path_for(store_path);
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .map_err(|e| io_error("open", &path, &e))?;
    let end = repair(&mut file, current).map_err(|e| io_error("read", &path, &e))?;
    let mut line = serde_json::to_string(entry)
        .map_err(|e| Error::invalid("cannot render the journal entry").with_source(&e))?;
    line.push('\n');
    file.seek(SeekFrom::Start(end))
        .and_then(|_| file.write_all(line.as_bytes()))
        .and_then(|()| file.sync_data())
        .map_err(|e| {
            let _ = file.set_len(end);
            io_error("write", &path, &e)
        })?;
    Ok(Appended { file, offset: end })
}

/// Where the next entry goes: the end of the file once a torn last line or a
/// last entry whose change did not land has been cut off.
fn repair(file: &mut File, current: Option<&str>) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    let (start, last) = last_line(file, len)?;
    let complete = last.ends_with(b"\n");
    let parsed: Option<Entry> = serde_json::from_slice(trim_newline(&last)).ok();
    let mut end = len;
    match parsed {
        // A torn append: the entry never finished, so its store was never renamed.
        None if !complete => end = start,
        Some(entry) if !landed(&entry, current) => end = start,
        Some(_) if !complete => {
            // A whole entry without its newline (edited by hand): keep it.
            file.seek(SeekFrom::End(0))?;
            file.write_all(b"\n")?;
            end = len + 1;
        }
        _ => {}
    }
    if end < len {
        file.set_len(end)?;
        file.sync_data()?;
    }
    Ok(end)
}

/// Whether the last entry's change is in the store: it is not when the store
/// still has the digest from before the change (and the change altered it).
fn landed(entry: &Entry, current: Option<&str>) -> bool {
    let before = entry.store_before.as_deref();
    let after = entry.store_after.as_deref();
    !(before == current && after != current)
}

fn trim_newline(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(b"\n").unwrap_or(bytes)
}

/// The last line of the file (with its newline if it has one) and its offset,
/// read backwards in blocks so a long journal is not read whole.
fn last_line(file: &mut File, len: u64) -> std::io::Result<(u64, Vec<u8>)> {
    const BLOCK: u64 = 8192;
    let mut tail: Vec<u8> = Vec::new();
    let mut pos = len;
    loop {
        let from = pos.saturating_sub(BLOCK);
        let mut block = vec![0u8; (pos - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut block)?;
        block.extend_from_slice(&tail);
        tail = block;
        pos = from;
        // The newline that ends the previous line, ignoring the file's last byte.
        let search = &tail[..tail.len().saturating_sub(1)];
        if let Some(i) = search.iter().rposition(|&b| b == b'\n') {
            let start = pos + i as u64 + 1;
            return Ok((start, tail[i + 1..].to_vec()));
        }
        if pos == 0 {
            return Ok((0, tail));
        }
    }
}

/// Journals every commit it is handed to (`change::commit`'s hook): appends
/// the entry in `prepare`, before any keyring write or the rename, and takes
/// it back when the commit is aborted.
pub struct JournalHook {
    origin: Origin,
    notes: Vec<Change>,
    appended: std::sync::Mutex<Option<Appended>>,
}

impl JournalHook {
    pub fn new(origin: Origin, notes: Vec<Change>) -> Self {
        JournalHook {
            origin,
            notes,
            appended: std::sync::Mutex::new(None),
        }
    }
}

impl CommitHook for JournalHook {
    fn prepare(&self, change: &ChangeRecord<'_>) -> Result<()> {
        let rows = rows(change, &self.notes);
        if rows.is_empty() && change.text.is_none() {
            return Ok(());
        }
        // Under the store's lock: the file is the one the change started from.
        let current = crate::store::read_text(change.store_path)?
            .as_deref()
            .map(digest);
        let after = change.text.map(digest).or_else(|| current.clone());
        let entry = Entry {
            time: crate::model::now_rfc3339(),
            user: self.origin.user.clone(),
            host: self.origin.host.clone(),
            command: self.origin.command.clone(),
            store_before: current.clone(),
            store_after: after,
            changes: rows,
        };
        let appended = append(change.store_path, current.as_deref(), &entry)?;
        if let Ok(mut slot) = self.appended.lock() {
            *slot = Some(appended);
        }
        Ok(())
    }

    fn committed(&self, _change: &ChangeRecord<'_>) -> Vec<String> {
        if let Ok(mut slot) = self.appended.lock() {
            slot.take();
        }
        Vec::new()
    }

    fn aborted(&self, _change: &ChangeRecord<'_>) {
        if let Ok(mut slot) = self.appended.lock()
            && let Some(appended) = slot.take()
        {
            appended.undo();
        }
    }
}

/// The most recent entry that changed which connection of `integration` is
/// active, and the connection active before it (None: none was). Activating
/// the active connection again is no such change.
pub fn last_activation_change<'a>(
    entries: &'a [(usize, Entry)],
    integration: &str,
) -> Option<(&'a Entry, Option<&'a str>)> {
    entries.iter().rev().find_map(|(_, entry)| {
        entry
            .changes
            .iter()
            .find(|c| {
                c.action.is_activation()
                    && c.integration.as_deref() == Some(integration)
                    && !c.is_reactivation()
            })
            .map(|c| (entry, c.previous.as_deref()))
    })
}

/// Whether the journal shows `connection` active for `integration` at some
/// point: activated in it, or the active one an activation change replaced.
pub fn was_active(entries: &[(usize, Entry)], integration: &str, connection: &str) -> bool {
    entries.iter().any(|(_, entry)| {
        entry.changes.iter().any(|c| {
            c.action.is_activation()
                && c.integration.as_deref() == Some(integration)
                && ((c.action == Action::Activated && c.name == connection)
                    || c.previous.as_deref() == Some(connection))
        })
    })
}

/// A line `history` could not use.
#[derive(Debug, Clone)]
pub struct BadLine {
    pub line: usize,
    pub reason: String,
}

/// The journal as read: its entries with their line numbers, oldest first.
#[derive(Debug, Default)]
pub struct JournalRead {
    pub entries: Vec<(usize, Entry)>,
    pub bad: Vec<BadLine>,
}

/// Reads the journal of a store, streaming it line by line. Lines that are
/// not entries are reported in `bad` and skipped; a last entry whose change
/// is not in the store (`store_digest`: the store on disk now) is dropped.
pub fn read(store_path: &Path, store_digest: Option<&str>) -> Result<JournalRead> {
    let path = path_for(store_path);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(JournalRead::default()),
        Err(e) => return Err(io_error("read", &path, &e)),
    };
    let mut reader = BufReader::new(file);
    let mut out = JournalRead::default();
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| io_error("read", &path, &e))?;
        if n == 0 {
            break;
        }
        number += 1;
        let complete = buf.ends_with(b"\n");
        let text = trim_newline(&buf);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Entry>(text) {
            Ok(entry) => out.entries.push((number, entry)),
            Err(_) if !complete => out.bad.push(BadLine {
                line: number,
                reason: "an entry cut short (its writer was stopped; the next change removes it)"
                    .to_string(),
            }),
            Err(e) => out.bad.push(BadLine {
                line: number,
                reason: describe_parse_error(text, &e),
            }),
        }
    }
    if let Some((_, last)) = out.entries.last()
        && !landed(last, store_digest)
    {
        out.entries.pop();
    }
    Ok(out)
}

fn describe_parse_error(text: &[u8], e: &serde_json::Error) -> String {
    if std::str::from_utf8(text).is_err() {
        return "not UTF-8 text".to_string();
    }
    match serde_json::from_slice::<Value>(text) {
        Ok(_) => format!("not a journal entry ({e})"),
        Err(_) => "not JSON".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn scrubs_secret_looking_values() {
        let out = scrub_command(&words(
            "connctl connection add a --password-env PW --password hunter2 --var api_token=abc --var table=x -H Authorization:Bearer.x --client-secret=s3",
        ));
        let text = out.join(" ");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("abc"), "{text}");
        assert!(!text.contains("Bearer"), "{text}");
        assert!(!text.contains("s3"), "{text}");
        assert!(text.contains("--password-env PW"), "{text}");
        assert!(text.contains("table=x"), "{text}");
    }

    #[test]
    fn landed_rule() {
        let entry = |b: Option<&str>, a: Option<&str>| Entry {
            time: String::new(),
            user: String::new(),
            host: String::new(),
            command: Vec::new(),
            store_before: b.map(str::to_string),
            store_after: a.map(str::to_string),
            changes: Vec::new(),
        };
        assert!(!landed(&entry(Some("a"), Some("b")), Some("a")));
        assert!(!landed(&entry(None, Some("b")), None));
        assert!(landed(&entry(Some("a"), Some("b")), Some("b")));
        // Edited by hand since: the entry's change did land once.
        assert!(landed(&entry(Some("a"), Some("b")), Some("c")));
        // A change outside the store file (a rotated keyring secret).
        assert!(landed(&entry(Some("a"), Some("a")), Some("a")));
    }
}
