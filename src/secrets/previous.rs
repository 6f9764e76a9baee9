//! The value a rotation replaced, kept in the keyring beside the secret as
//! `<field>.previous`, so `rotate --restore` can bring it back. It is written
//! (and deleted with its record) by the change transaction (`change`).

use super::{Secret, SecretRef, keyring_get};
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
