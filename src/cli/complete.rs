//! Shell completion: the registration scripts (`connctl completions SHELL`,
//! `COMPLETE=SHELL connctl`) and the record names offered while completing,
//! read from the store at completion time.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap_complete::engine::{
    ArgValueCandidates, ArgValueCompleter, CompletionCandidate, PathCompleter, ValueCompleter as _,
};
use clap_complete::env::{Elvish, EnvCompleter, Fish, Powershell, Shells};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::error::{Error, Result};
use crate::model::RecordKind;
use crate::output::sh_quote;

/// The variable the registration scripts set when they call back into
/// connctl (`COMPLETE=bash connctl -- WORDS...`); main hands such runs to
/// clap_complete before parsing anything.
pub const COMPLETE_VAR: &str = "COMPLETE";

/// The command the registration scripts call back: found on `PATH`, so the
/// scripts survive upgrades and moves of the binary.
const COMPLETER: &str = "connctl";

/// The script that registers completion for `connctl` in `shell`; it calls
/// `COMPLETE=SHELL connctl -- WORDS...` on every TAB, so the names offered
/// are read from the store at that moment. The same text as
/// `COMPLETE=SHELL connctl` prints when connctl is run from `PATH`.
pub fn registration_script(shell: clap_complete::Shell) -> Result<Vec<u8>> {
    let name = shell.to_string();
    let completer = SHELLS
        .completer(&name)
        .ok_or_else(|| Error::usage(format!("no completion support for {name}")))?;
    let mut buf = Vec::new();
    completer
        .write_registration(COMPLETE_VAR, COMPLETER, COMPLETER, COMPLETER, &mut buf)
        .map_err(|e| Error::failed("cannot write the completion script").with_source(&e))?;
    Ok(buf)
}

/// The shells `COMPLETE=SHELL` knows: clap_complete's, with bash's
/// registration replaced by one that copes with `--flag=value`, and zsh's
/// completing from the first TAB when installed on `fpath`.
pub const SHELLS: Shells<'static> = Shells(&[&Bash, &Elvish, &Fish, &Powershell, &Zsh]);

/// Bash: clap_complete's protocol, with a registration script that joins the
/// words bash splits at `=` and `:` (COMP_WORDBREAKS) before calling back,
/// so `--store=PATH` and `--env=pro<TAB>` work (clap-rs/clap#3920, #6280).
#[derive(Debug, Clone, Copy)]
pub struct Bash;

const BASH_REGISTRATION: &str = include_str!("completions.bash");

impl EnvCompleter for Bash {
    fn name(&self) -> &'static str {
        "bash"
    }

    fn is(&self, name: &str) -> bool {
        name == "bash"
    }

    fn write_registration(
        &self,
        var: &str,
        _name: &str,
        bin: &str,
        completer: &str,
        buf: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        let script = BASH_REGISTRATION
            .replace("@VAR@", var)
            .replace("@COMPLETER@", &sh_quote(completer))
            .replace("@BIN@", &sh_quote(bin));
        buf.write_all(script.as_bytes())
    }

    fn write_complete(
        &self,
        cmd: &mut clap::Command,
        args: Vec<OsString>,
        current_dir: Option<&Path>,
        buf: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        clap_complete::env::Bash.write_complete(cmd, args, current_dir, buf)
    }
}

/// Zsh: clap_complete's script, which registers its function with `compdef`.
/// Installed on `fpath` as `_connctl`, the file itself is the completion
/// function: its first run (the first TAB) only registered and offered
/// nothing. Now it completes right away when run that way.
#[derive(Debug, Clone, Copy)]
pub struct Zsh;

impl EnvCompleter for Zsh {
    fn name(&self) -> &'static str {
        "zsh"
    }

    fn is(&self, name: &str) -> bool {
        name == "zsh"
    }

    fn write_registration(
        &self,
        var: &str,
        name: &str,
        bin: &str,
        completer: &str,
        buf: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        let mut script = Vec::new();
        clap_complete::env::Zsh.write_registration(var, name, bin, completer, &mut script)?;
        let script = String::from_utf8_lossy(&script);
        let function = format!("_clap_dynamic_completer_{}", name.replace('-', "_"));
        let register = format!("compdef {function} {}", sh_quote(bin));
        let dispatch = format!(
            "if [[ ${{funcstack[1]}} == _{bin} ]]; then\n    \
             # Autoloaded from fpath as the completion function itself: complete now.\n    \
             {register}\n    {function} \"$@\"\nelse\n    {register}\nfi"
        );
        buf.write_all(script.replacen(&register, &dispatch, 1).as_bytes())
    }

    fn write_complete(
        &self,
        cmd: &mut clap::Command,
        args: Vec<OsString>,
        current_dir: Option<&Path>,
        buf: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        clap_complete::env::Zsh.write_complete(cmd, args, current_dir, buf)
    }
}

// ----- record names, read while completing ---------------------------------

/// Integration names from the store, for `#[arg(add = ...)]`.
pub fn integrations() -> ArgValueCandidates {
    ArgValueCandidates::new(|| record_names(RecordKind::Integration))
}

/// Connection names from the store, with integration and environment as help.
pub fn connections() -> ArgValueCandidates {
    ArgValueCandidates::new(|| record_names(RecordKind::Connection))
}

pub fn oauth_profiles() -> ArgValueCandidates {
    ArgValueCandidates::new(|| record_names(RecordKind::OauthProfile))
}

pub fn protocol_profiles() -> ArgValueCandidates {
    ArgValueCandidates::new(|| record_names(RecordKind::ProtocolProfile))
}

pub fn mid_servers() -> ArgValueCandidates {
    ArgValueCandidates::new(|| record_names(RecordKind::MidServer))
}

pub fn inbound_users() -> ArgValueCandidates {
    ArgValueCandidates::new(|| record_names(RecordKind::InboundUser))
}

/// `integration activate NAME --connection`: the connections of NAME (all
/// connections when NAME is not an integration with connections).
pub fn integration_connections() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let args: Vec<OsString> = std::env::args_os().collect();
        let words = completion_words(&args);
        let integration = activated_integration(&words).map(str::to_string);
        // One read of the store serves both the names and the filter.
        let Some(names) =
            completion_store_path(args).and_then(|path| store_names(&path, RecordKind::Connection))
        else {
            return Vec::new();
        };
        let of_integration: Vec<String> = match &integration {
            Some(integration) => names
                .connection
                .iter()
                .filter(|(_, hint)| hint.integration.as_ref() == Some(integration))
                .map(|(name, _)| name.clone())
                .collect(),
            None => Vec::new(),
        };
        let all = names.candidates(RecordKind::Connection);
        if of_integration.is_empty() {
            all
        } else {
            all.into_iter()
                .filter(|c| of_integration.iter().any(|n| c.get_value() == n.as_str()))
                .collect()
        }
    })
}

/// `--data TEXT|@FILE|@-`: after an `@`, complete file names.
pub fn at_file() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &std::ffi::OsStr| {
        let Some(path) = current.to_str().and_then(|c| c.strip_prefix('@')) else {
            return Vec::new();
        };
        let mut files = PathCompleter::file()
            .complete(std::ffi::OsStr::new(path))
            .into_iter()
            .map(|c| c.add_prefix("@"))
            .collect::<Vec<_>>();
        if path.is_empty() {
            files.push(CompletionCandidate::new("@-").help(Some("standard input".into())));
        }
        files
    })
}

/// The names of one kind of record in the store the command line being
/// completed points at. Never fails and prints nothing: an unreadable or
/// broken store offers no names.
pub fn record_names(kind: RecordKind) -> Vec<CompletionCandidate> {
    let Some(path) = completion_store_path(std::env::args_os().collect()) else {
        return Vec::new();
    };
    names_in(&path, kind)
}

/// The names of `kind` in the store at `path`, with a short help each.
pub fn names_in(path: &Path, kind: RecordKind) -> Vec<CompletionCandidate> {
    store_names(path, kind)
        .map(|names| names.candidates(kind))
        .unwrap_or_default()
}

/// The records of `kind` (at least) in the store at `path`; None when it
/// cannot be read or parsed.
fn store_names(path: &Path, kind: RecordKind) -> Option<StoreNames> {
    // A store is small; anything huge or not a file is not one (and reading
    // /dev/zero would never end).
    const MAX_STORE_BYTES: u64 = 64 << 20;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_STORE_BYTES {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    scan_names(&text, kind).or_else(|| toml::from_str::<StoreNames>(&text).ok())
}

/// The names of `kind` from a store as connctl writes it: standard tables,
/// one single-line `key = value` each. About four times faster than the
/// TOML parser on a big store (30 ms against 110 ms for 10,000 connections,
/// a TAB should not wait); None on anything else
/// (multi-line strings, dotted keys, `[connection]` tables, ...), and the
/// caller parses the TOML.
fn scan_names(text: &str, kind: RecordKind) -> Option<StoreNames> {
    let table = kind.table_name();
    let mut names = StoreNames::default();
    let mut current: Option<(String, ScannedHint)> = None;
    let mut seen_header = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.contains("\"\"\"") || line.contains("'''") {
            return None;
        }
        if let Some(header) = line.strip_prefix('[') {
            if let Some((name, hint)) = current.take() {
                names.insert(kind, name, hint);
            }
            seen_header = true;
            let keys = header_keys(header.strip_suffix(']')?)?;
            match keys.as_slice() {
                [t, name] if t == table => current = Some((name.clone(), ScannedHint::default())),
                [t] if RecordKind::ALL.iter().any(|k| k.table_name() == t) => return None,
                _ => {}
            }
            continue;
        }
        let (key, value) = line.split_once('=')?;
        let key = key.trim();
        if !seen_header {
            // Only the format fields live at the top; anything else may be a
            // record written as dotted keys or an inline table.
            if key != "version" && key != "store_id" {
                return None;
            }
            continue;
        }
        if let Some((_, hint)) = current.as_mut() {
            let value = value.trim();
            match key {
                "integration" => hint.integration = Some(simple_string(value)?),
                "environment" => hint.environment = Some(simple_string(value)?),
                "application" => hint.application = Some(simple_string(value)?),
                "description" => hint.description = Some(simple_string(value)?),
                "active" => hint.active = value.split('#').next().map(str::trim) == Some("true"),
                _ => {}
            }
        }
    }
    if let Some((name, hint)) = current.take() {
        names.insert(kind, name, hint);
    }
    Some(names)
}

#[derive(Default)]
struct ScannedHint {
    integration: Option<String>,
    environment: Option<String>,
    application: Option<String>,
    description: Option<String>,
    active: bool,
}

/// `a.b`, `a."b.c"`: bare keys and quoted keys without escapes.
fn header_keys(header: &str) -> Option<Vec<String>> {
    let mut keys = Vec::new();
    let mut rest = header.trim();
    loop {
        let (key, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            let key = &quoted[..end];
            if key.contains('\\') {
                return None;
            }
            (key, &quoted[end + 1..])
        } else {
            let end = rest
                .find(|c: char| c == '.' || c.is_whitespace())
                .unwrap_or(rest.len());
            let key = &rest[..end];
            if key.is_empty()
                || !key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return None;
            }
            (key, &rest[end..])
        };
        keys.push(key.to_string());
        let after = after.trim_start();
        if after.is_empty() {
            return Some(keys);
        }
        rest = after.strip_prefix('.')?.trim_start();
    }
}

/// `"text"` without escapes, or `'text'`; nothing may follow but a comment.
fn simple_string(value: &str) -> Option<String> {
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let inner = &value[1..];
    let end = inner.find(quote)?;
    let text = &inner[..end];
    let after = inner[end + 1..].trim_start();
    if (quote == '"' && text.contains('\\')) || !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    Some(text.to_string())
}

/// Only what completion needs from the store: the names, and a few fields
/// for the help shown next to them. Parsed leniently, without the rules.
#[derive(Default, Deserialize)]
struct StoreNames {
    #[serde(default)]
    integration: BTreeMap<String, IntegrationHint>,
    #[serde(default)]
    connection: BTreeMap<String, ConnectionHint>,
    #[serde(default)]
    oauth_profile: BTreeMap<String, IgnoredAny>,
    #[serde(default)]
    protocol_profile: BTreeMap<String, IgnoredAny>,
    #[serde(default)]
    mid_server: BTreeMap<String, IgnoredAny>,
    #[serde(default)]
    inbound_user: BTreeMap<String, IgnoredAny>,
}

#[derive(Deserialize)]
struct IntegrationHint {
    application: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
struct ConnectionHint {
    integration: Option<String>,
    environment: Option<String>,
    #[serde(default)]
    active: bool,
}

impl StoreNames {
    fn insert(&mut self, kind: RecordKind, name: String, hint: ScannedHint) {
        match kind {
            RecordKind::Integration => {
                let hint = IntegrationHint {
                    application: hint.application,
                    description: hint.description,
                };
                self.integration.insert(name, hint);
            }
            RecordKind::Connection => {
                let hint = ConnectionHint {
                    integration: hint.integration,
                    environment: hint.environment,
                    active: hint.active,
                };
                self.connection.insert(name, hint);
            }
            RecordKind::OauthProfile => _ = self.oauth_profile.insert(name, IgnoredAny),
            RecordKind::ProtocolProfile => _ = self.protocol_profile.insert(name, IgnoredAny),
            RecordKind::MidServer => _ = self.mid_server.insert(name, IgnoredAny),
            RecordKind::InboundUser => _ = self.inbound_user.insert(name, IgnoredAny),
        }
    }

    fn candidates(self, kind: RecordKind) -> Vec<CompletionCandidate> {
        fn plain<V>(map: BTreeMap<String, V>) -> Vec<CompletionCandidate> {
            map.into_keys().map(CompletionCandidate::new).collect()
        }
        match kind {
            RecordKind::Integration => self
                .integration
                .into_iter()
                .map(|(name, hint)| {
                    let help = hint.description.or(hint.application);
                    CompletionCandidate::new(name).help(help.map(Into::into))
                })
                .collect(),
            RecordKind::Connection => self
                .connection
                .into_iter()
                .map(|(name, hint)| {
                    let mut help = [hint.integration, hint.environment]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(", ");
                    if hint.active {
                        help.push_str(" (active)");
                    }
                    let help = (!help.is_empty()).then(|| help.trim_start().to_string().into());
                    CompletionCandidate::new(name).help(help)
                })
                .collect(),
            RecordKind::OauthProfile => plain(self.oauth_profile),
            RecordKind::ProtocolProfile => plain(self.protocol_profile),
            RecordKind::MidServer => plain(self.mid_server),
            RecordKind::InboundUser => plain(self.inbound_user),
        }
    }
}

/// The store a completion run reads: `--store` on the command line being
/// completed, else `CONNCTL_STORE`, else the default path, as for a normal
/// run. `args` is this process's argv: `connctl -- connctl WORDS...`.
pub fn completion_store_path(args: Vec<OsString>) -> Option<PathBuf> {
    let words = completion_words(&args);
    let explicit = store_flag(&words)
        .or_else(|| std::env::var_os("CONNCTL_STORE").map(PathBuf::from))
        .filter(|p| !p.as_os_str().is_empty());
    crate::store::resolve_path(explicit).ok()
}

/// The command line being completed: the words after `--` in this
/// process's argv (`connctl -- connctl WORDS...`).
fn completion_words(args: &[OsString]) -> Vec<String> {
    args.iter()
        .position(|a| a == "--")
        .map(|i| &args[i + 1..])
        .unwrap_or(&[])
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect()
}

/// The NAME of `integration activate NAME` on the command line: the first
/// word after `activate` that is neither a flag nor a flag's value.
fn activated_integration(words: &[String]) -> Option<&str> {
    const TAKE_VALUES: [&str; 6] = ["--connection", "--env", "--to", "--store", "--output", "-o"];
    let start = words
        .iter()
        .position(|w| w == "activate" || w == "rollback")?
        + 1;
    let mut rest = words[start..].iter();
    while let Some(word) = rest.next() {
        if word == "=" {
            rest.next();
        } else if TAKE_VALUES.contains(&word.as_str()) {
            // bash splits `--env=test` into `--env` `=` `test`.
            if rest.next().is_some_and(|value| value == "=") {
                rest.next();
            }
        } else if !word.starts_with('-') && !word.is_empty() {
            return Some(word);
        }
    }
    None
}

/// The value of the last `--store` among the words, as a shell would pass it:
/// `--store PATH`, `--store=PATH`, and bash's split `--store = PATH`.
fn store_flag(words: &[String]) -> Option<PathBuf> {
    let mut found = None;
    let mut i = 1;
    while i < words.len() {
        let word = words[i].as_str();
        if word == "--" {
            break;
        }
        if word == "--store" {
            let mut value = words.get(i + 1).map(String::as_str);
            if value == Some("=") {
                i += 1;
                value = words.get(i + 1).map(String::as_str);
            }
            if let Some(value) = value {
                found = Some(shell_path(value));
                i += 1;
            }
        } else if let Some(value) = word.strip_prefix("--store=") {
            found = Some(shell_path(value));
        }
        i += 1;
    }
    found.flatten()
}

/// A path as typed: bash and zsh pass words unexpanded, so undo simple
/// quoting and a leading `~`.
fn shell_path(word: &str) -> Option<PathBuf> {
    let unquoted = ['\'', '"']
        .iter()
        .find_map(|q| word.strip_prefix(*q).and_then(|w| w.strip_suffix(*q)))
        .map(str::to_string)
        .unwrap_or_else(|| word.replace("\\ ", " "));
    if unquoted.is_empty() {
        return None;
    }
    if let Some(rest) = unquoted.strip_prefix("~/") {
        return dirs::home_dir().map(|home| home.join(rest));
    }
    Some(PathBuf::from(unquoted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &[&str]) -> Vec<String> {
        line.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn store_flag_forms() {
        let at = |w: &[&str]| store_flag(&words(w));
        assert_eq!(at(&["connctl", "connection", "show", ""]), None);
        assert_eq!(
            at(&["connctl", "--store", "/a.toml", "connection", "show", ""]),
            Some(PathBuf::from("/a.toml"))
        );
        assert_eq!(
            at(&["connctl", "connection", "--store=/b.toml", "show"]),
            Some(PathBuf::from("/b.toml"))
        );
        assert_eq!(
            at(&["connctl", "--store", "=", "/c.toml", "connection"]),
            Some(PathBuf::from("/c.toml"))
        );
        assert_eq!(
            at(&["connctl", "--store", "'/my store.toml'", "x"]),
            Some(PathBuf::from("/my store.toml"))
        );
        assert_eq!(
            at(&["connctl", "--", "--store", "/d.toml"]),
            None,
            "after -- it is a value"
        );
    }

    #[test]
    fn the_integration_being_activated() {
        let at = |w: &[&str]| activated_integration(&words(w)).map(str::to_string);
        assert_eq!(
            at(&[
                "connctl",
                "integration",
                "activate",
                "sync",
                "--connection",
                ""
            ]),
            Some("sync".into())
        );
        assert_eq!(
            at(&[
                "connctl",
                "integration",
                "activate",
                "--env",
                "test",
                "sync",
                "--connection",
                "x"
            ]),
            Some("sync".into())
        );
        assert_eq!(
            at(&[
                "connctl",
                "-o",
                "json",
                "integration",
                "activate",
                "--connection",
                ""
            ]),
            None
        );
        assert_eq!(
            at(&[
                "connctl",
                "integration",
                "activate",
                "--connection",
                "=",
                "x",
                "sync"
            ]),
            Some("sync".into())
        );
    }

    const DESIGN_STORE: &str = r#"version = 1
store_id = "6f1c0c7e-0000-4000-8000-000000000000"

[integration.incident-sync]
application = "IT Service Management"
description = "Incidents to the partner's desk"

[integration.other]
application = 'C:\Apps\Other'

[connection."incident-sync.prod"]
integration = "incident-sync"
environment = "production"
active = true   # the one
endpoint_url = "https://api.example.com/api/incident"
oauth_profile = "corp-idp"
[connection."incident-sync.prod".variables]
table = "incident"
integration = "not-a-field-of-the-connection"

[connection."incident-sync.test"]
integration = "incident-sync"
environment = "test"
active = false
password = "keyring"

[oauth_profile.corp-idp]
token_url = "https://idp.example.com/oauth/token"
scopes = ["incident.write", "x = [y]"]

[protocol_profile.corp-mtls]
client_cert = "/etc/connctl/client.pem"

[mid_server.dmz-mid]
url = "http://mid.internal:3128"

[inbound_user."remote.incident"]
password = "keyring"
"#;

    fn shown(names: StoreNames, kind: RecordKind) -> Vec<(String, Option<String>)> {
        names
            .candidates(kind)
            .into_iter()
            .map(|c| {
                (
                    c.get_value().to_string_lossy().into_owned(),
                    c.get_help().map(|h| h.to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn the_fast_scan_agrees_with_the_toml_parser() {
        for kind in RecordKind::ALL {
            let scanned = scan_names(DESIGN_STORE, kind).expect("a store as connctl writes it");
            let parsed: StoreNames = toml::from_str(DESIGN_STORE).unwrap();
            assert_eq!(shown(scanned, kind), shown(parsed, kind), "{kind}");
        }
        let scanned = scan_names(DESIGN_STORE, RecordKind::Connection).unwrap();
        assert_eq!(
            shown(scanned, RecordKind::Connection)[0],
            (
                "incident-sync.prod".to_string(),
                Some("incident-sync, production (active)".to_string())
            )
        );
    }

    #[test]
    fn the_fast_scan_leaves_other_toml_to_the_parser() {
        for text in [
            "version = 1\n[integration.a]\ndescription = \"\"\"\nline\n[integration.b]\"\"\"\n",
            "version = 1\nconnection.a.integration = \"x\"\n",
            "version = 1\n[connection]\na = { integration = \"x\" }\n",
            "version = 1\n[connection.\"a\\u0041\"]\n",
            "version = 1\n[integration.a]\ndescription = \"tab\\there\"\n",
        ] {
            assert!(
                scan_names(text, RecordKind::Connection).is_none()
                    || scan_names(text, RecordKind::Integration).is_none(),
                "{text}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.toml");
        std::fs::write(
            &path,
            "version = 1\nstore_id = \"6f1c0c7e-0000-4000-8000-000000000000\"\n[integration.a]\ndescription = \"\"\"\nline\n[integration.b]\"\"\"\n",
        )
        .unwrap();
        let names: Vec<_> = names_in(&path, RecordKind::Integration)
            .into_iter()
            .map(|c| c.get_value().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["a"],
            "the parser, not the scan, read the multi-line string"
        );
    }

    #[test]
    fn broken_store_offers_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.toml");
        std::fs::write(&path, "version = 1\n[connection.a\n").unwrap();
        assert!(names_in(&path, RecordKind::Connection).is_empty());
        assert!(names_in(dir.path(), RecordKind::Connection).is_empty());
        assert!(names_in(&dir.path().join("none"), RecordKind::Connection).is_empty());
    }
}
