//! The one value type for a secret: a string that never prints. A leaf, so
//! every layer (the HTTP building blocks in `net`, the secret sources in
//! `secrets`, the outbound stages) can hold one without importing another.

use std::fmt;

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

impl Drop for Secret {
    fn drop(&mut self) {
        // Overwrite the value so it does not linger in freed memory.
        // SAFETY: zero bytes keep the string valid UTF-8.
        for byte in unsafe { self.0.as_bytes_mut() } {
            unsafe { std::ptr::write_volatile(byte, 0) };
        }
    }
}
