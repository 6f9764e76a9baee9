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
