//! Secret values: the redacting `Secret` type, the sources of DESIGN.md §3
//! (keyring, env, file, cmd) and the OS keyring behind a timeout.

use std::fmt;

use crate::error::{Error, Result};
use crate::model::{RecordKind, SecretSource};

/// A secret value. `Debug` and `Display` print `(redacted)`, so a secret
/// cannot reach a log or an error message by accident; `expose` is the one
/// way to the value, used only where it goes on the wire or into the keyring.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

/// Which secret of which record: the keyring account is
/// `<store_id>/<kind>/<name>/<field>`, so two stores never share secrets.
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
}

/// The keyring service name of every entry.
pub const SERVICE: &str = "connctl";

/// Reads the value of a secret from its source.
pub fn resolve(source: &SecretSource, at: &SecretRef) -> Result<Secret> {
    let _ = (source, at);
    Err(Error::secret("secret sources are not implemented yet"))
}

/// Stores `value` in the OS keyring under `at`.
pub fn keyring_set(at: &SecretRef, value: &Secret) -> Result<()> {
    let _ = (at, value);
    Err(Error::secret("the keyring is not implemented yet"))
}

/// Reads `at` from the OS keyring; `Ok(None)` when there is no entry.
pub fn keyring_get(at: &SecretRef) -> Result<Option<Secret>> {
    let _ = at;
    Err(Error::secret("the keyring is not implemented yet"))
}

/// Removes `at` from the OS keyring; a missing entry is not an error.
pub fn keyring_delete(at: &SecretRef) -> Result<()> {
    let _ = at;
    Ok(())
}

/// A secret as the command line supplies it (DESIGN.md §3): never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretInput {
    /// Read the value from standard input now; keep it in the keyring.
    Stdin,
    Env(String),
    File(std::path::PathBuf),
    Cmd(String),
}

/// Turns a secret input into the source to record and, for stdin or a
/// prompt, the value to put in the keyring. With no input, prompts without
/// echo when `prompt` is given and stdin is a terminal; otherwise `None`.
pub fn take_input(
    input: Option<SecretInput>,
    prompt: Option<&str>,
) -> Result<Option<(SecretSource, Option<Secret>)>> {
    use std::io::{IsTerminal, Read};
    match input {
        Some(SecretInput::Stdin) => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| {
                Error::usage("cannot read the secret from standard input").with_source(&e)
            })?;
            let value = text
                .strip_suffix("\r\n")
                .or_else(|| text.strip_suffix('\n'))
                .unwrap_or(&text);
            if value.is_empty() {
                return Err(Error::usage("standard input held no secret (it was empty)")
                    .with_hint("pipe the value in, e.g. printf '%s' \"$PW\" | connctl ... --password-stdin"));
            }
            Ok(Some((SecretSource::Keyring, Some(Secret::new(value)))))
        }
        Some(SecretInput::Env(var)) => Ok(Some((SecretSource::Env(var), None))),
        Some(SecretInput::File(path)) => Ok(Some((SecretSource::File(path), None))),
        Some(SecretInput::Cmd(cmd)) => Ok(Some((SecretSource::Cmd(cmd), None))),
        None => match prompt {
            Some(label) if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() => {
                let value = rpassword::prompt_password(format!("{label}: ")).map_err(|e| {
                    Error::usage("cannot read the secret from the terminal").with_source(&e)
                })?;
                if value.is_empty() {
                    return Err(Error::usage("no secret was entered"));
                }
                Ok(Some((SecretSource::Keyring, Some(Secret::new(value)))))
            }
            _ => Ok(None),
        },
    }
}
