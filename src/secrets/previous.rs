//! The value a rotation replaced, kept in the keyring beside the secret as
//! `<field>.previous`, so `rotate --restore` can bring it back.

use super::{Secret, SecretRef, keyring_delete, keyring_get, keyring_set};
use crate::error::Result;

/// Where the previous value of `at` is kept: field `<field>.previous`.
pub fn previous_of(at: &SecretRef) -> SecretRef {
    SecretRef {
        field: format!("{}.previous", at.field),
        ..at.clone()
    }
}

/// The value the last rotation of `at` replaced, if one is kept.
pub fn previous_value(at: &SecretRef) -> Result<Option<Secret>> {
    keyring_get(&previous_of(at))
}

/// What the keyring entries a swap touched held before it, to put back when
/// the commit that follows fails.
pub struct Undo {
    entries: Vec<(SecretRef, Option<Secret>)>,
}

impl Undo {
    /// Puts every touched entry back as it was (best effort: the commit has
    /// failed already, and the error reported is that failure).
    pub fn run(self) {
        for (at, value) in self.entries.into_iter().rev() {
            let _ = match value {
                Some(v) => keyring_set(&at, &v),
                None => keyring_delete(&at),
            };
        }
    }
}

/// The keyring side of a rotation: `outgoing` (the value being replaced, if
/// it could be read) becomes `<field>.previous`, and `incoming` (None when the
/// new value lives in an env/file/cmd source) becomes the keyring value of
/// `at`. On an error, what was changed is put back before returning it.
pub fn swap(at: &SecretRef, incoming: Option<&Secret>, outgoing: Option<&Secret>) -> Result<Undo> {
    let previous_at = previous_of(at);
    let mut undo = Undo {
        entries: Vec::new(),
    };
    let held = keyring_get(&previous_at)?;
    let kept = match outgoing {
        Some(value) => keyring_set(&previous_at, value),
        None => keyring_delete(&previous_at),
    };
    undo.entries.push((previous_at, held));
    if let Err(e) = kept {
        undo.run();
        return Err(e);
    }
    if let Some(value) = incoming {
        let held = match keyring_get(at) {
            Ok(held) => held,
            Err(e) => {
                undo.run();
                return Err(e);
            }
        };
        let set = keyring_set(at, value);
        undo.entries.push((at.clone(), held));
        if let Err(e) = set {
            undo.run();
            return Err(e);
        }
    }
    Ok(undo)
}

/// Removes the keyring value of `at` once its record names another source
/// (the value lives on as `<field>.previous`).
pub fn drop_replaced(at: &SecretRef) -> Result<()> {
    keyring_delete(at)
}

/// Removes the kept previous value of `at` (its record is going away).
pub fn forget_previous(at: &SecretRef) -> Result<()> {
    keyring_delete(&previous_of(at))
}
