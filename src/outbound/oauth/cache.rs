//! Where access tokens are kept between runs: the OS keyring (the default),
//! or, with `CONNCTL_TOKEN_CACHE=DIR`, an owner-only folder holding access
//! tokens only (never refresh tokens or secrets) for hosts without a keyring.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::secrets::{self, Secret, SecretRef};

pub const CACHE_ENV: &str = "CONNCTL_TOKEN_CACHE";

/// The token cache this process uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cache {
    Keyring,
    Dir(PathBuf),
}

impl Cache {
    pub fn from_env() -> Cache {
        match std::env::var_os(CACHE_ENV) {
            Some(dir) if !dir.is_empty() => Cache::Dir(PathBuf::from(dir)),
            _ => Cache::Keyring,
        }
    }

    /// Whether refresh tokens may be kept with the access token.
    pub fn holds_refresh_tokens(&self) -> bool {
        *self == Cache::Keyring
    }

    /// For `doctor`: which cache, and whether it is usable.
    pub fn describe(&self) -> (String, std::result::Result<(), String>) {
        match self {
            Cache::Keyring => (
                "the OS keyring (set CONNCTL_TOKEN_CACHE=DIR for a folder instead)".into(),
                Ok(()),
            ),
            Cache::Dir(dir) => (
                format!(
                    "folder {} (CONNCTL_TOKEN_CACHE; access tokens only)",
                    dir.display()
                ),
                ensure_dir(dir).map(|_| ()).map_err(|e| e.message),
            ),
        }
    }

    pub fn get(&self, at: &SecretRef) -> Result<Option<Secret>> {
        match self {
            Cache::Keyring => secrets::keyring_get(at),
            Cache::Dir(dir) => {
                let path = file_of(&ensure_dir(dir)?, at);
                match std::fs::read(&path) {
                    Ok(bytes) if bytes.len() <= 1024 * 1024 => {
                        Ok(String::from_utf8(bytes).ok().map(Secret::new))
                    }
                    Ok(_) => Ok(None),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::secret(format!(
                        "cannot read the token cache file {}",
                        path.display()
                    ))
                    .with_source(&e)),
                }
            }
        }
    }

    pub fn set(&self, at: &SecretRef, value: &Secret) -> Result<()> {
        match self {
            Cache::Keyring => secrets::keyring_set(at, value),
            Cache::Dir(dir) => {
                let dir = ensure_dir(dir)?;
                let path = file_of(&dir, at);
                let fail = |e: std::io::Error| {
                    Error::secret(format!(
                        "cannot write the token cache file {}",
                        path.display()
                    ))
                    .with_source(&e)
                };
                let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(fail)?;
                tmp.write_all(value.expose().as_bytes()).map_err(fail)?;
                tmp.persist(&path).map_err(|e| fail(e.error))?;
                Ok(())
            }
        }
    }

    pub fn delete(&self, at: &SecretRef) -> Result<()> {
        match self {
            Cache::Keyring => secrets::keyring_delete(at),
            Cache::Dir(dir) => {
                let path = file_of(dir, at);
                match std::fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(Error::secret(format!(
                        "cannot remove the token cache file {}",
                        path.display()
                    ))
                    .with_source(&e)),
                }
            }
        }
    }
}

/// One file per cache entry, named after its keyring account.
fn file_of(dir: &Path, at: &SecretRef) -> PathBuf {
    let name: String = at
        .account()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{name}.json"))
}

/// Creates the folder owner-only, or refuses one that others can read.
fn ensure_dir(dir: &Path) -> Result<PathBuf> {
    let refuse = |why: String| {
        Error::secret(format!("token cache folder {}: {why}", dir.display())).with_hint(format!(
            "give {CACHE_ENV} a folder only you can read (chmod 700), or unset it to use the keyring"
        ))
    };
    if !dir.exists() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| refuse(format!("cannot create it: {e}")))?;
        }
        #[cfg(not(unix))]
        std::fs::create_dir_all(dir).map_err(|e| refuse(format!("cannot create it: {e}")))?;
    }
    let meta = std::fs::metadata(dir).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    if !meta.is_dir() {
        return Err(refuse("it is not a folder".into()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(refuse(format!(
                "others may read it (mode {mode:03o}); it must be owner-only"
            )));
        }
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(refuse("it belongs to another user".into()));
        }
    }
    Ok(dir.to_path_buf())
}
