//! The store file: where it lives, loading with located errors, and locked,
//! validated, atomic saves (DESIGN.md §2).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::model::{RuleViolation, STORE_VERSION, Store};

/// The store path: `--store` / `CONNCTL_STORE` (both arrive as `explicit`),
/// else `<config dir>/connctl/store.toml`.
pub fn resolve_path(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        if path.as_os_str().is_empty() {
            return Err(Error::usage("the store path is empty")
                .with_hint("give --store a file path, or unset CONNCTL_STORE to use the default"));
        }
        return Ok(path);
    }
    let dir = dirs::config_dir().ok_or_else(|| {
        Error::usage("cannot find a configuration folder for the default store")
            .with_hint("set HOME, or pass --store PATH (or CONNCTL_STORE)")
    })?;
    Ok(dir.join("connctl").join("store.toml"))
}

/// Loads the store for reading. A missing file is an empty store (not yet
/// written). Readers take no lock: saves replace the file atomically.
///
/// The store's `[vault]` table is remembered for the Vault sources read later
/// in this process (`secrets::vault`).
pub fn load(path: &Path) -> Result<Store> {
    let store = match fs::read_to_string(path) {
        Ok(text) => parse(path, &text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Store::new(),
        Err(e) => {
            return Err(
                Error::invalid(format!("cannot read the store {}", path.display())).with_source(&e),
            );
        }
    };
    crate::secrets::vault::use_store_settings(store.vault.as_ref());
    Ok(store)
}

/// Parses and validates store text; errors carry `path:line:column`.
pub fn parse(path: &Path, text: &str) -> Result<Store> {
    let store: Store = match toml::from_str(text) {
        Ok(store) => store,
        Err(e) => {
            if let Some(version) = top_level_version(text)
                && version > STORE_VERSION
            {
                return Err(newer_version(path, version));
            }
            let (line, col) = e
                .span()
                .map(|span| line_col(text, span.start))
                .unwrap_or((1, 1));
            return Err(Error::invalid(format!(
                "{}:{line}:{col}: the store is not valid: {}",
                path.display(),
                e.message().trim_end()
            ))
            .with_hint("fix the file by hand (nothing was written), or restore it from a backup"));
        }
    };
    if store.version > STORE_VERSION {
        return Err(newer_version(path, store.version));
    }
    if store.version == 0 {
        return Err(Error::invalid(format!(
            "{}: store format version 0 does not exist (this connctl writes version {STORE_VERSION})",
            path.display()
        )));
    }
    if let Err(message) = crate::model::check_store_id(&store.store_id) {
        return Err(Error::invalid(format!(
            "{}:{}: {message}",
            path.display(),
            find_line(text, |l| l.starts_with("store_id")).unwrap_or(1)
        ))
        .with_hint("restore the store_id from a backup or an export of this store (its keyring entries carry it); nothing was written"));
    }
    let violations = store.validate();
    if !violations.is_empty() {
        return Err(broken_rules(path, text, &violations));
    }
    Ok(store)
}

fn newer_version(path: &Path, version: u32) -> Error {
    Error::invalid(format!(
        "{}: the store has format version {version}, newer than this connctl understands ({STORE_VERSION})",
        path.display()
    ))
    .with_hint("upgrade connctl; nothing was written")
}

fn broken_rules(path: &Path, text: &str, violations: &[RuleViolation]) -> Error {
    let located: Vec<String> = violations
        .iter()
        .map(|v| {
            let (line, col) = locate(text, v);
            format!("{}:{line}:{col}: {v}", path.display())
        })
        .collect();
    let mut err = Error::invalid(format!(
        "the store breaks {} rule{}: {}",
        located.len(),
        if located.len() == 1 { "" } else { "s" },
        located[0]
    ));
    for more in &located[1..] {
        err = err.with_cause(more);
    }
    err.with_hint("fix the file by hand; connctl writes nothing while the store is invalid")
}

fn top_level_version(text: &str) -> Option<u32> {
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            return None;
        }
        if let Some(rest) = line.strip_prefix("version") {
            let rest = rest.trim_start().strip_prefix('=')?;
            return rest.split('#').next()?.trim().parse().ok();
        }
    }
    None
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn find_line(text: &str, pred: impl Fn(&str) -> bool) -> Option<usize> {
    text.lines().position(|l| pred(l.trim())).map(|i| i + 1)
}

/// Splits a table header's key path (`connection."a.b".variables`) into parts.
fn header_keys(header: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for ch in header.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => quote = Some(ch),
            (None, '.') => keys.push(std::mem::take(&mut current).trim().to_string()),
            (None, c) => current.push(c),
        }
    }
    keys.push(current.trim().to_string());
    keys
}

/// The line and column of the record (and field) a violation is about.
fn locate(text: &str, v: &RuleViolation) -> (usize, usize) {
    let table = v.kind.table_name();
    let mut in_record = false;
    let mut record_line = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_start_matches('[');
            let header = header.split(']').next().unwrap_or("");
            let keys = header_keys(header);
            in_record = keys.len() == 2 && keys[0] == table && keys[1] == v.name;
            if in_record && record_line.is_none() {
                record_line = Some(i + 1);
            }
            continue;
        }
        if in_record
            && let Some(field) = v.field
            && let Some(rest) = line.strip_prefix(field)
            && rest.trim_start().starts_with('=')
        {
            let col = raw.len() - raw.trim_start().len() + 1;
            return (i + 1, col);
        }
    }
    (record_line.unwrap_or(1), 1)
}

/// Serializes a store: the text a commit writes (`change::commit` has
/// validated it with `Store::check_change` first).
pub fn render(store: &Store) -> Result<String> {
    toml::to_string(store).map_err(|e| Error::invalid("cannot serialize the store").with_source(&e))
}

/// Holds the store's cross-process write lock until dropped.
pub struct StoreLock {
    _file: File,
}

/// How long a writer waits for a lock another process holds, and where it
/// says that it is waiting (after [`LOCK_NOTICE_AFTER`]).
pub struct LockWait<'a> {
    pub timeout: Duration,
    pub notice: &'a dyn Fn(&str),
}

/// A writer that has waited this long for the lock says so on stderr.
pub const LOCK_NOTICE_AFTER: Duration = Duration::from_secs(1);

/// Takes the exclusive lock that serializes writers (a sibling `.lock` file,
/// since the store itself is replaced by rename). Gives up after
/// `wait.timeout` with exit 4, naming the lock file.
pub fn lock(path: &Path, wait: &LockWait) -> Result<StoreLock> {
    let dir = parent_dir(path);
    create_private_dir(dir)?;
    let lock_path = lock_path(path);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode_private()
        .open(&lock_path)
        .map_err(|e| {
            Error::invalid(format!("cannot open the lock file {}", lock_path.display()))
                .with_source(&e)
        })?;
    let started = Instant::now();
    let mut noticed = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(StoreLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(
                    Error::invalid(format!("cannot lock {}", lock_path.display())).with_source(&e),
                );
            }
        }
        let waited = started.elapsed();
        if waited >= wait.timeout {
            return Err(Error::invalid(format!(
                "gave up after {} waiting for the store lock {}: another process holds it",
                crate::limits::format_seconds(wait.timeout),
                lock_path.display()
            ))
            .with_hint(format!(
                "nothing was written; see who holds it with `fuser {}`, or wait longer with --lock-timeout SECONDS (CONNCTL_LOCK_TIMEOUT)",
                crate::output::sh_quote(&lock_path.to_string_lossy())
            )));
        }
        if !noticed && waited >= LOCK_NOTICE_AFTER {
            noticed = true;
            (wait.notice)(&format!(
                "waiting for the store lock {} (another process is writing the store; giving up after {})",
                lock_path.display(),
                crate::limits::format_seconds(wait.timeout)
            ));
        }
        std::thread::sleep(Duration::from_millis(20).min(wait.timeout.saturating_sub(waited)));
    }
}

/// Where writes to `path` go: a symbolic link is followed to its target (also
/// a dangling one: the first write creates the target), so the link stays a
/// link and the lock is the target's, shared with writers that use the
/// target's own path.
pub fn write_target(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&current).map_err(|e| {
                    Error::invalid(format!("cannot read the link {}", current.display()))
                        .with_source(&e)
                })?;
                current = parent_dir(&current).join(link);
            }
            _ => return Ok(current),
        }
    }
    Err(Error::invalid(format!(
        "the store path {} is a loop of symbolic links",
        path.display()
    )))
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| {
        Error::invalid(format!("cannot create the store folder {}", dir.display())).with_source(&e)
    })
}

trait PrivateMode {
    fn mode_private(&mut self) -> &mut Self;
}

impl PrivateMode for OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600);
        self
    }
}

/// Writes `text` to `path` atomically: a temporary file in the same folder,
/// fsync, rename, fsync of the folder. The file is owner-only.
pub fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let dir = parent_dir(path);
    create_private_dir(dir)?;
    let fail = |what: &str, e: &std::io::Error| {
        Error::invalid(format!("cannot {what} {}", path.display())).with_source(e)
    };
    let prefix = temp_prefix(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| fail("create a temporary file beside", &e))?;
    tmp.write_all(text.as_bytes())
        .map_err(|e| fail("write", &e))?;
    tmp.as_file().sync_all().map_err(|e| fail("sync", &e))?;
    tmp.persist(path).map_err(|e| fail("replace", &e.error))?;
    if let Ok(d) = File::open(dir) {
        // Makes the rename durable; not every filesystem supports it.
        let _ = d.sync_all();
    }
    Ok(())
}

/// The name start of a store's temporary files: `.store.toml.` for
/// `store.toml`, so two stores in one folder never touch each other's.
fn temp_prefix(path: &Path) -> String {
    format!(
        ".{}.",
        path.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// Removes temporary files a killed writer left behind. Only a holder of
/// the store's lock creates them, so under the lock any that exist are stale.
fn remove_stale_temps(path: &Path) {
    let prefix = temp_prefix(path);
    let Ok(entries) = fs::read_dir(parent_dir(path)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Replaces the store with `text` (already rendered and validated). The
/// caller holds the write lock ([`lock`]); temporary files a killed writer
/// left behind are removed first. `change::commit` is the one caller.
pub fn write_store(path: &Path, text: &str) -> Result<()> {
    remove_stale_temps(path);
    write_atomic(path, text)
}

/// What identifies one version of the store file: a write replaces the file
/// (new inode) or at least changes its size or modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

pub fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode,
    })
}

/// The store's text on disk, or None when there is no store file yet.
pub fn read_text(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => {
            Err(Error::invalid(format!("cannot read the store {}", path.display())).with_source(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_keys_handle_quotes() {
        assert_eq!(
            header_keys(r#"connection."a.b".variables"#),
            vec!["connection", "a.b", "variables"]
        );
        assert_eq!(header_keys("mid_server.dmz"), vec!["mid_server", "dmz"]);
    }

    #[test]
    fn version_scan() {
        assert_eq!(top_level_version("version = 7\nx = 1"), Some(7));
        assert_eq!(top_level_version("[a]\nversion = 7"), None);
    }
}
