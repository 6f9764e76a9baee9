//! Secret values: the redacting `Secret` type, the sources of DESIGN.md §3
//! (keyring, env, file, cmd), the OS keyring behind a timeout, and the ways a
//! secret value enters connctl (stdin, a no-echo prompt, env/file/cmd references).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::model::{RecordKind, SecretSource, Store};

mod deadline;
mod keyring;
mod scrub;

pub use deadline::Deadline;
use deadline::SourceLimit;

pub use keyring::*;
pub mod previous;
pub use scrub::scrub;
pub mod vault;

pub use crate::secret::Secret;

/// Which secret of which record: the keyring account is
/// `<store_id>/<kind>/<name>/<field>`, so two stores never share secrets.
///
/// Fields: `password` (connection, MID server, inbound user), `client_secret`
/// (OAuth profile), and the OAuth token cache under the OAuth profile:
/// `token`, or `token:<connection>` when the token depends on a connection
/// (the `password` grant, or a token fetched through a connection's MID server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub store_id: String,
    pub kind: RecordKind,
    pub name: String,
    pub field: String,
}

impl SecretRef {
    pub fn new(store_id: &str, kind: RecordKind, name: &str, field: &str) -> Self {
        SecretRef {
            store_id: store_id.to_string(),
            kind,
            name: name.to_string(),
            field: field.to_string(),
        }
    }

    pub fn account(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.store_id,
            self.kind.table_name(),
            self.name,
            self.field
        )
    }

    /// The secret in words, for messages: "connection 'x' password".
    pub fn describe(&self) -> String {
        let field = match self.field.as_str() {
            "client_secret" => "client secret".to_string(),
            "token" => "cached token".to_string(),
            other => match other.strip_prefix("token:") {
                Some(connection) => format!("cached token for connection '{connection}'"),
                None => other.replace('_', " "),
            },
        };
        format!("{} '{}' {}", self.kind.cli_name(), self.name, field)
    }

    /// The command that gives this secret a new value from stdin.
    pub fn set_command(&self) -> String {
        match (self.kind, self.field.as_str()) {
            (RecordKind::InboundUser, _) => {
                format!(
                    "connctl inbound-user set-password {} --password-stdin",
                    self.name
                )
            }
            (RecordKind::OauthProfile, "client_secret") => {
                format!(
                    "connctl oauth-profile edit {} --client-secret-stdin",
                    self.name
                )
            }
            (kind, _) => format!(
                "connctl {} edit {} --password-stdin",
                kind.cli_name(),
                self.name
            ),
        }
    }
}

/// The keyring service name of every entry.
pub const SERVICE: &str = "connctl";

/// Chooses the keyring backend (see [`Backend`]).
pub const KEYRING_ENV: &str = "CONNCTL_KEYRING";
/// Seconds a keyring call may take before connctl gives up on it (default 5).
pub const KEYRING_TIMEOUT_ENV: &str = crate::limits::KEYRING_TIMEOUT.name;
/// Seconds a `cmd:` source may run before it is killed (default 30).
pub const CMD_TIMEOUT_ENV: &str = crate::limits::CMD_TIMEOUT.name;

const CI_HINT: &str = "in CI or on a headless host, supply the secret with --password-env, --password-file or --password-cmd (env:/file:/cmd: sources) instead of the keyring";

// ---------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------

/// Reads the value of a secret from its source. Nothing is cached: env, file
/// and cmd sources are read each time a secret is needed.
pub fn resolve(source: &SecretSource, at: &SecretRef) -> Result<Secret> {
    resolve_within(source, at, None)
}

/// [`resolve`] within a command's `--timeout`: a `file:` or `cmd:` source
/// gets the smaller of what is left of `deadline` and its own limit
/// (`CONNCTL_CMD_TIMEOUT`), and the error names the one that ran out.
pub fn resolve_within(
    source: &SecretSource,
    at: &SecretRef,
    deadline: Option<Deadline>,
) -> Result<Secret> {
    match source {
        SecretSource::Keyring => match keyring_get(at)? {
            Some(secret) => Ok(secret),
            None => {
                let backend = keyring().map(|k| k.backend.label()).unwrap_or("keyring");
                Err(Error::secret(format!(
                    "no keyring entry for {} (looked in the {backend})",
                    at.describe()
                ))
                .with_hint(format!("set it with `{}`", at.set_command())))
            }
        },
        SecretSource::Env(var) => resolve_env(var, at),
        SecretSource::File(path) => resolve_file(path, at, SourceLimit::of(deadline)),
        SecretSource::Cmd(command) => resolve_cmd(command, at, SourceLimit::of(deadline)),
        SecretSource::Vault {
            path,
            field,
            version,
        } => vault::read(path, field, *version, at),
    }
}

fn resolve_env(name: &str, at: &SecretRef) -> Result<Secret> {
    // The name comes from the store: shown escaped in messages.
    let var = crate::text::escape(name);
    match std::env::var(name) {
        Ok(value) if value.is_empty() => Err(Error::secret(format!(
            "environment variable {var} is empty ({} is env:{var})",
            at.describe()
        ))
        .with_hint(format!(
            "set {var} to the secret value before running connctl"
        ))),
        Ok(value) => Ok(Secret::new(value)),
        Err(std::env::VarError::NotPresent) => Err(Error::secret(format!(
            "environment variable {var} is not set ({} is env:{var})",
            at.describe()
        ))
        .with_hint(format!("export {var} before running connctl"))),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::secret(format!(
            "environment variable {var} is not valid UTF-8 ({} is env:{var})",
            at.describe()
        ))),
    }
}

fn resolve_file(path: &std::path::Path, at: &SecretRef, limit: SourceLimit) -> Result<Secret> {
    // The path comes from the store: shown escaped, so it cannot forge a line.
    let shown = crate::text::escape(&path.display().to_string());
    let context = || format!("{} is file:{shown}", at.describe());
    // On a thread of its own: opening a FIFO with no writer blocks, and so
    // does reading a pipe nobody writes to; the command gives up after the
    // timeout (the blocked thread ends with the process).
    let (tx, rx) = mpsc::channel();
    let owned = path.to_path_buf();
    std::thread::spawn(move || {
        let read = std::fs::File::open(&owned).and_then(read_bounded);
        let _ = tx.send(read);
    });
    let bytes = match rx.recv_timeout(limit.time) {
        Ok(Ok(Some(bytes))) => bytes,
        Ok(Ok(None)) => {
            return Err(Error::secret(format!(
                "secret file {} holds more than {}, the most a secret source may give",
                shown,
                limit_words()
            ))
            .with_cause(context())
            .with_hint("point the source at a file that holds the secret alone"));
        }
        Ok(Err(e)) => {
            return Err(
                Error::secret(format!("cannot read secret file {}: {e}", shown))
                    .with_cause(context()),
            );
        }
        Err(_) => {
            return Err(Error::secret(format!(
                "secret file {} gave no end of file within {}: {} (a FIFO or pipe with no writer?)",
                shown,
                seconds(limit.time),
                limit.which()
            ))
            .with_cause(context())
            .with_hint(format!(
                "make sure something writes the secret into it, or {}",
                limit.raise()
            )));
        }
    };
    let mut text = String::from_utf8(bytes).map_err(|_| {
        Error::secret(format!("secret file {} is not valid UTF-8", shown)).with_cause(context())
    })?;
    trim_one_newline(&mut text);
    if text.is_empty() {
        return Err(Error::secret(format!("secret file {} is empty", shown)).with_cause(context()));
    }
    Ok(Secret::new(text))
}

/// Reads at most [`MAX_SECRET_BYTES`](crate::limits::MAX_SECRET_BYTES);
/// `None` when there is more (an endless source such as `/dev/zero` stops here).
fn read_bounded(reader: impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let limit = crate::limits::MAX_SECRET_BYTES;
    let mut bytes = Vec::new();
    reader.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() <= limit).then_some(bytes))
}

/// The limit in words: "64 KiB (65536 bytes)".
fn limit_words() -> String {
    let limit = crate::limits::MAX_SECRET_BYTES;
    format!("{} KiB ({limit} bytes)", limit / 1024)
}

fn resolve_cmd(line: &str, at: &SecretRef, limit: SourceLimit) -> Result<Secret> {
    // The command comes from the store: shown escaped, so it cannot forge a line.
    let command = crate::text::escape(line);
    let context = || format!("{} is cmd:{command}", at.describe());
    let words = split_words(line).map_err(|e| {
        Error::secret(format!("cannot run secret command `{command}`: {e}")).with_cause(context())
    })?;
    let Some((program, args)) = words.split_first() else {
        return Err(
            Error::secret(format!("secret command `{command}` is empty")).with_cause(context()),
        );
    };
    let output = run_with_timeout(program, args, limit.time).map_err(|e| {
        let message = match &e {
            CmdFailure::Spawn(err) => format!(
                "cannot run secret command `{}`: {err}",
                crate::text::escape(program)
            ),
            CmdFailure::TimedOut => format!(
                "secret command `{command}` did not finish within {}: {}; it was killed (with its process group)",
                seconds(limit.time),
                limit.which()
            ),
            CmdFailure::TooLong => format!(
                "secret command `{command}` printed more than {}, the most a secret source may give; it was killed",
                limit_words()
            ),
        };
        let hint = match &e {
            CmdFailure::Spawn(_) => "the command runs without a shell: write `cmd:sh -c '...'` to use one, and check that the program is on PATH".to_string(),
            CmdFailure::TimedOut => format!("{} if the command is slow", limit.raise()),
            CmdFailure::TooLong => "the command must print the secret alone".to_string(),
        };
        Error::secret(message).with_cause(context()).with_hint(hint)
    })?;
    let stderr_line = first_line(&output.stderr);
    if !output.status.success() {
        let status = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => "a signal".to_string(),
        };
        // What the command printed before it failed may be the secret, and
        // its error text may repeat it.
        let printed = Secret::new(String::from_utf8_lossy(&output.stdout).trim().to_string());
        let detail = match &stderr_line {
            Some(text) => format!(
                " (stderr: {})",
                crate::text::escape(&scrub(text, &[&printed]))
            ),
            None => String::new(),
        };
        return Err(Error::secret(format!(
            "secret command `{command}` failed with {status}{detail}"
        ))
        .with_cause(context()));
    }
    let Ok(mut text) = String::from_utf8(output.stdout) else {
        return Err(Error::secret(format!(
            "secret command `{command}` printed output that is not valid UTF-8"
        ))
        .with_cause(context()));
    };
    let kept = text.trim_end_matches(['\n', '\r']).len();
    text.truncate(kept);
    if text.is_empty() {
        // A command that succeeds but writes to stderr alone most likely wrote the
        // secret there (`>&2` by mistake): say so, never repeat it.
        let detail = match &stderr_line {
            Some(_) => " on stdout; it wrote to stderr instead (not shown: it may be the secret)",
            None => "",
        };
        return Err(Error::secret(format!(
            "secret command `{command}` printed nothing{detail}"
        ))
        .with_cause(context())
        .with_hint("the secret is read from the command's stdout"));
    }
    Ok(Secret::new(text))
}

enum CmdFailure {
    Spawn(std::io::Error),
    TimedOut,
    TooLong,
}

struct CmdOutput {
    status: std::process::ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs a program with no stdin and captured output, in a process group of
/// its own; after `timeout`, or once stdout passes the secret limit, the
/// whole group is killed (so are children it started in the background).
/// The output readers run on their own threads so a grandchild that keeps a
/// pipe open cannot hang connctl either.
fn run_with_timeout(
    program: &str,
    args: &[String],
    timeout: Duration,
) -> std::result::Result<CmdOutput, CmdFailure> {
    let deadline = Instant::now() + timeout;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().map_err(CmdFailure::Spawn)?;
    let group = ProcessGroup(child.id());
    let stdout = read_pipe_in_background(child.stdout.take());
    let stderr = read_pipe_in_background(child.stderr.take());
    let mut out: Option<Vec<u8>> = None;
    let status = loop {
        if out.is_none()
            && let Ok(bytes) = stdout.try_recv()
        {
            match bytes {
                Some(bytes) => out = Some(bytes),
                None => {
                    group.kill();
                    let _ = child.wait();
                    return Err(CmdFailure::TooLong);
                }
            }
        }
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                group.kill();
                let _ = child.wait();
                return Err(CmdFailure::TimedOut);
            }
            Err(e) => return Err(CmdFailure::Spawn(e)),
        }
    };
    let remaining = || deadline.saturating_duration_since(Instant::now());
    let stdout = match out {
        Some(bytes) => bytes,
        None => match stdout.recv_timeout(remaining()) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                group.kill();
                return Err(CmdFailure::TooLong);
            }
            Err(_) => {
                // Something the command started still holds stdout open.
                group.kill();
                return Err(CmdFailure::TimedOut);
            }
        },
    };
    let stderr = stderr
        .recv_timeout(remaining())
        .ok()
        .flatten()
        .unwrap_or_default();
    Ok(CmdOutput {
        status,
        stdout,
        stderr,
    })
}

/// The process group a `cmd:` source runs in (its id is the leader's pid).
struct ProcessGroup(u32);

impl ProcessGroup {
    fn kill(&self) {
        #[cfg(unix)]
        if let Ok(pid) = libc::pid_t::try_from(self.0) {
            // SAFETY: kill(2) with a negative pid signals the group we created.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
    }
}

/// Reads a pipe to its end (at most the secret limit: `None` past it) on a thread.
fn read_pipe_in_background(
    pipe: Option<impl Read + Send + 'static>,
) -> mpsc::Receiver<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel();
    if let Some(pipe) = pipe {
        std::thread::spawn(move || {
            let _ = tx.send(read_bounded(pipe).unwrap_or_default());
        });
    } else {
        let _ = tx.send(Some(Vec::new()));
    }
    rx
}

fn first_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(200).collect())
}

fn trim_one_newline(text: &mut String) {
    if text.ends_with("\r\n") {
        text.truncate(text.len() - 2);
    } else if text.ends_with('\n') {
        text.truncate(text.len() - 1);
    }
}

/// Splits a command line into words the way a POSIX shell would, without
/// running one: whitespace separates words, '...' is literal, "..." keeps
/// spaces and honours \" \\ \$ \`, and a backslash outside quotes escapes
/// the next character. No variables, globs, pipes or redirections.
pub fn split_words(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote".to_string()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".to_string()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => word.push(c),
                    None => return Err("a trailing backslash escapes nothing".to_string()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        // What is left of a --timeout is rarely a round number.
        format!("{s:.1}s")
    }
}

// ---------------------------------------------------------------------------
// Ways in
// ---------------------------------------------------------------------------

/// How a command was told to take a secret (`--password-stdin|-env|-file|-cmd`
/// and the `--client-secret-*` twins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretInput {
    Stdin,
    Env(String),
    File(PathBuf),
    Cmd(String),
    /// `PATH#FIELD` in Vault (with or without the `vault:` prefix).
    Vault(String),
    /// `--password-stdin` with `--password-vault`: the value from stdin, to be written to Vault.
    VaultWrite(String),
}

/// Turns a secret input into what the store records (the source) and, for a
/// value that goes into the keyring, the value itself.
///
/// With no input: when `prompt` is given and stdin and stderr are a terminal,
/// asks for the value without echo; otherwise returns `None` (the caller
/// decides whether that is an error).
/// `--password-stdin` reads all of stdin and trims one trailing newline.
/// env/file/cmd references are checked for form only: they are read when the
/// secret is used. A relative file path is made absolute, so the reference
/// keeps working from another directory.
pub fn take_input(
    input: Option<SecretInput>,
    prompt: Option<&str>,
) -> Result<Option<(SecretSource, Option<Secret>)>> {
    if let Some(SecretInput::Env(var) | SecretInput::Cmd(var)) = &input
        && var.trim().is_empty()
    {
        return Err(Error::usage("the secret source is empty"));
    }
    match input {
        Some(SecretInput::Stdin) => Ok(Some((SecretSource::Keyring, Some(read_stdin_secret()?)))),
        Some(SecretInput::Env(var)) => {
            let source = format!("env:{var}")
                .parse::<SecretSource>()
                .map_err(Error::usage)?;
            Ok(Some((source, None)))
        }
        Some(SecretInput::File(path)) => {
            if path.as_os_str().is_empty() {
                return Err(Error::usage("the secret file path is empty"));
            }
            let path = std::path::absolute(&path).map_err(|e| {
                Error::usage(format!("cannot make {} absolute: {e}", path.display()))
            })?;
            Ok(Some((SecretSource::File(path), None)))
        }
        Some(SecretInput::Cmd(command)) => {
            let words = split_words(&command)
                .map_err(|e| Error::usage(format!("cannot parse the secret command: {e}")))?;
            if words.is_empty() {
                return Err(Error::usage("the secret command is empty"));
            }
            Ok(Some((SecretSource::Cmd(command), None)))
        }
        Some(SecretInput::Vault(reference)) => Ok(Some((vault_reference(&reference)?, None))),
        Some(SecretInput::VaultWrite(reference)) => {
            let source = vault_reference(&reference)?;
            if let SecretSource::Vault {
                version: Some(n), ..
            } = &source
            {
                return Err(Error::usage(format!(
                    "?version={n} pins a version to read; a write makes a new version"
                ))
                .with_hint("drop ?version=N to write the value, or drop --password-stdin to read the pinned version"));
            }
            // Checked before stdin is read: a refused command reads nothing.
            Ok(Some((source, Some(read_stdin_secret()?))))
        }
        None => {
            let Some(label) = prompt else {
                return Ok(None);
            };
            if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
                return Ok(None);
            }
            let value = prompt_hidden(&format!("{label}: ")).map_err(|e| {
                Error::usage(format!("cannot read the secret from the terminal: {e}"))
            })?;
            if value.is_empty() {
                return Err(Error::usage("the secret is empty"));
            }
            Ok(Some((SecretSource::Keyring, Some(Secret::new(value)))))
        }
    }
}

/// A `--password-vault` reference (with or without `vault:`). One without a
/// `#FIELD` is refused; when Vault can be asked, the error lists the fields
/// the secret has, so the operator can pick one.
fn vault_reference(reference: &str) -> Result<SecretSource> {
    let reference = reference.trim();
    let reference = reference.strip_prefix("vault:").unwrap_or(reference);
    let text = format!("vault:{reference}");
    text.parse::<SecretSource>().map_err(|message| {
        let err = Error::usage(message);
        if reference.contains('#') {
            return err;
        }
        let path = reference
            .split_once('?')
            .map_or(reference, |(p, _)| p)
            .trim_matches('/');
        match vault::field_names(path) {
            Ok(names) if !names.is_empty() => {
                let first = &names[0];
                err.with_hint(format!(
                    "the secret at {path} has the fields {}: write e.g. '{path}#{first}'",
                    names
                        .iter()
                        .map(|n| format!("'{n}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
            _ => err,
        }
    })
}

/// All of stdin, one trailing newline trimmed; empty input is a usage error.
fn read_stdin_secret() -> Result<Secret> {
    let bytes = read_bounded(std::io::stdin().lock())
        .map_err(|e| Error::usage(format!("cannot read the secret from stdin: {e}")))?
        .ok_or_else(|| {
            Error::secret(format!(
                "the secret on stdin is longer than {}, the most a secret may be",
                limit_words()
            ))
        })?;
    let mut text = String::from_utf8(bytes)
        .map_err(|_| Error::usage("the secret on stdin is not valid UTF-8"))?;
    trim_one_newline(&mut text);
    if text.is_empty() {
        return Err(Error::usage("the secret on stdin is empty")
            .with_hint("pipe the value in, e.g. `printf '%s' \"$PW\" | connctl ...`"));
    }
    Ok(Secret::new(text))
}

/// Prompts on the terminal and reads a line without echo. Echo is switched
/// off before the prompt is written, so nothing typed the moment the prompt
/// appears can be echoed.
#[cfg(unix)]
fn prompt_hidden(prompt: &str) -> std::io::Result<String> {
    use std::io::{BufRead, Write};
    use std::os::fd::AsRawFd;

    struct RestoreEcho(i32, libc::termios);
    impl Drop for RestoreEcho {
        fn drop(&mut self) {
            // SAFETY: restores the attributes read from the same open descriptor.
            unsafe { libc::tcsetattr(self.0, libc::TCSANOW, &self.1) };
        }
    }

    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it for an open descriptor.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let _restore = RestoreEcho(fd, term);
    term.c_lflag &= !libc::ECHO;
    term.c_lflag |= libc::ECHONL;
    // SAFETY: sets attributes on the same open descriptor.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    (&tty).write_all(prompt.as_bytes())?;
    (&tty).flush()?;
    let mut line = String::new();
    std::io::BufReader::new(&tty).read_line(&mut line)?;
    let value = line
        .strip_suffix("\r\n")
        .or_else(|| line.strip_suffix('\n'))
        .unwrap_or(&line);
    Ok(value.to_string())
}

#[cfg(not(unix))]
fn prompt_hidden(prompt: &str) -> std::io::Result<String> {
    rpassword::prompt_password(prompt)
}

// ---------------------------------------------------------------------------
// Records and their secrets
// ---------------------------------------------------------------------------

/// Every secret field of every record that has one, with its source: what
/// `doctor` checks. OAuth token caches are not listed (they are filled on use).
pub fn secret_fields(store: &Store) -> Vec<(SecretRef, SecretSource)> {
    let id = store.store_id.as_str();
    let mut fields = Vec::new();
    let mut push = |kind, name: &str, field, source: &Option<SecretSource>| {
        if let Some(source) = source {
            fields.push((SecretRef::new(id, kind, name, field), source.clone()));
        }
    };
    for (name, c) in &store.connection {
        push(RecordKind::Connection, name, "password", &c.password);
    }
    for (name, p) in &store.oauth_profile {
        push(
            RecordKind::OauthProfile,
            name,
            "client_secret",
            &p.client_secret,
        );
        push(
            RecordKind::OauthProfile,
            name,
            "signing_key",
            &p.signing_key,
        );
    }
    for (name, m) in &store.mid_server {
        push(RecordKind::MidServer, name, "password", &m.password);
    }
    for (name, u) in &store.inbound_user {
        push(RecordKind::InboundUser, name, "password", &u.password);
    }
    for (name, c) in &store.connection {
        for (key, source) in &c.secret_variables {
            let field = format!("var.{key}");
            fields.push((
                SecretRef::new(id, RecordKind::Connection, name, &field),
                source.clone(),
            ));
        }
    }
    fields
}

/// Every keyring entry a store names: each secret field with the keyring
/// source, and the OAuth token caches (`token` under each profile,
/// `token:<connection>` under the profile each connection uses). An entry
/// under this store's id that is not in this list is an orphan; an entry that
/// leaves this list in a change is deleted by the change.
pub fn named_entries(store: &Store) -> Vec<SecretRef> {
    let id = store.store_id.as_str();
    let mut named: Vec<SecretRef> = secret_fields(store)
        .into_iter()
        .filter(|(_, source)| *source == SecretSource::Keyring)
        .map(|(at, _)| at)
        .collect();
    for name in store.oauth_profile.keys() {
        named.push(SecretRef::new(id, RecordKind::OauthProfile, name, "token"));
        // A login grant's refresh token (issue 15) lives as long as its profile.
        named.push(SecretRef::new(
            id,
            RecordKind::OauthProfile,
            name,
            "refresh_token",
        ));
    }
    for (name, c) in &store.connection {
        if let Some(profile) = &c.oauth_profile {
            let field = format!("token:{name}");
            named.push(SecretRef::new(
                id,
                RecordKind::OauthProfile,
                profile,
                &field,
            ));
        }
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?}"), "(redacted) (redacted)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn split_words_handles_quotes_without_a_shell() {
        let w = |s: &str| split_words(s).unwrap();
        assert_eq!(w("pass show  corp/api"), ["pass", "show", "corp/api"]);
        assert_eq!(
            w("sh -c 'echo $HOME; exit 1'"),
            ["sh", "-c", "echo $HOME; exit 1"]
        );
        assert_eq!(
            w(r#"op read "op://vault/it em/pw""#),
            ["op", "read", "op://vault/it em/pw"]
        );
        assert_eq!(w(r#"a\ b "c\"d" ''"#), ["a b", "c\"d", ""]);
        assert_eq!(w("x 'it'\"s\""), ["x", "its"]);
        assert!(split_words("echo 'open").is_err());
        assert!(split_words("echo \"open").is_err());
        assert!(w("   ").is_empty());
    }

    #[test]
    fn one_trailing_newline_is_trimmed() {
        let t = |s: &str| {
            let mut s = s.to_string();
            trim_one_newline(&mut s);
            s
        };
        assert_eq!(t("pw\n"), "pw");
        assert_eq!(t("pw\r\n"), "pw");
        assert_eq!(t("pw\n\n"), "pw\n");
        assert_eq!(t("pw "), "pw ");
    }

    #[test]
    fn refs_describe_themselves() {
        let r = SecretRef::new("id", RecordKind::OauthProfile, "idp", "token:c1");
        assert_eq!(r.account(), "id/oauth_profile/idp/token:c1");
        assert_eq!(
            r.describe(),
            "oauth-profile 'idp' cached token for connection 'c1'"
        );
        let r = SecretRef::new("id", RecordKind::InboundUser, "u", "password");
        assert_eq!(
            r.set_command(),
            "connctl inbound-user set-password u --password-stdin"
        );
    }
}
