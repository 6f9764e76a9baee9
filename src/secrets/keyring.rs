//! The OS keyring behind a timeout: the backend chosen at run time, entries
//! named `<store_id>/<kind>/<name>/<field>`, errors that name the backend.

use std::fmt;
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use keyring_core::{CredentialStore, Entry};

use super::*;
use crate::error::{Error, Result};

/// The keyring backends connctl knows. On Linux the backend is chosen at run
/// time: `CONNCTL_KEYRING=secret-service|keyutils` forces one; otherwise the
/// Secret Service when a D-Bus session bus is configured (and kernel keyutils
/// when that bus has no Secret Service), kernel keyutils when there is no
/// session bus at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    SecretService,
    Keyutils,
    Keychain,
    CredentialManager,
}

impl Backend {
    pub const ALL: [Backend; 4] = [
        Backend::SecretService,
        Backend::Keyutils,
        Backend::Keychain,
        Backend::CredentialManager,
    ];

    /// The name `CONNCTL_KEYRING` takes and `doctor -o json` prints.
    pub fn id(self) -> &'static str {
        match self {
            Backend::SecretService => "secret-service",
            Backend::Keyutils => "keyutils",
            Backend::Keychain => "keychain",
            Backend::CredentialManager => "windows",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Backend::SecretService => "Secret Service",
            Backend::Keyutils => "kernel keyutils",
            Backend::Keychain => "macOS Keychain",
            Backend::CredentialManager => "Windows Credential Manager",
        }
    }

    /// Whether values survive a reboot.
    pub fn persistent(self) -> bool {
        !matches!(self, Backend::Keyutils)
    }

    fn available_here(self) -> bool {
        match self {
            Backend::SecretService | Backend::Keyutils => cfg!(target_os = "linux"),
            Backend::Keychain => cfg!(target_os = "macos"),
            Backend::CredentialManager => cfg!(target_os = "windows"),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The keyring this process uses, opened once on first use.
pub struct Keyring {
    pub backend: Backend,
    /// Why this backend was chosen, for messages and `doctor`.
    pub reason: String,
    store: Arc<CredentialStore>,
}

static KEYRING: OnceLock<Result<Keyring>> = OnceLock::new();

/// The keyring in use, or why there is none.
pub fn keyring() -> Result<&'static Keyring> {
    KEYRING
        .get_or_init(open_keyring)
        .as_ref()
        .map_err(Clone::clone)
}

fn keyring_timeout() -> Duration {
    crate::limits::KEYRING_TIMEOUT.from_env()
}

/// A backend call that did not come back.
enum Stall {
    TimedOut(Duration),
    Crashed,
}

/// Runs a keyring call on its own thread and gives up after the timeout: a
/// D-Bus call waiting on a hung daemon or an unanswered unlock prompt must
/// not hang connctl. The abandoned thread ends with the process.
fn timed<T: Send + 'static>(
    call: impl FnOnce() -> T + Send + 'static,
) -> std::result::Result<T, Stall> {
    // After one call hung, the backend holds its connection lock in the
    // abandoned thread: every later call would hang the same way.
    static HUNG: OnceLock<Duration> = OnceLock::new();
    if let Some(after) = HUNG.get() {
        return Err(Stall::TimedOut(*after));
    }
    let timeout = keyring_timeout();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("keyring".to_string())
        .spawn(move || {
            let _ = tx.send(call());
        })
        .map_err(|_| Stall::Crashed)?;
    rx.recv_timeout(timeout).map_err(|e| match e {
        mpsc::RecvTimeoutError::Timeout => Stall::TimedOut(*HUNG.get_or_init(|| timeout)),
        mpsc::RecvTimeoutError::Disconnected => Stall::Crashed,
    })
}

fn requested_backend() -> Result<Option<Backend>> {
    let Ok(value) = std::env::var(KEYRING_ENV) else {
        return Ok(None);
    };
    let value = value.trim().to_ascii_lowercase();
    if value.is_empty() || value == "auto" {
        return Ok(None);
    }
    let names: Vec<&str> = Backend::ALL
        .iter()
        .filter(|b| b.available_here())
        .map(|b| b.id())
        .collect();
    match Backend::ALL.iter().find(|b| b.id() == value) {
        Some(b) if b.available_here() => Ok(Some(*b)),
        Some(b) => Err(Error::secret(format!(
            "{KEYRING_ENV}={value}: the {} is not available on this platform",
            b.label()
        ))
        .with_hint(format!("use one of: {}", names.join(", ")))),
        None => Err(
            Error::secret(format!("{KEYRING_ENV}={value} is not a keyring backend")).with_hint(
                format!(
                    "use one of: {}, or unset it to choose automatically",
                    names.join(", ")
                ),
            ),
        ),
    }
}

fn open_keyring() -> Result<Keyring> {
    let requested = requested_backend()?;
    platform::open(requested)
}

#[cfg(target_os = "linux")]
mod platform {
    use super::*;

    pub(super) fn open(requested: Option<Backend>) -> Result<Keyring> {
        match requested {
            Some(Backend::SecretService) => {
                secret_service(format!("{KEYRING_ENV}=secret-service")).map_err(|(_, e)| e)
            }
            Some(_) => keyutils(format!("{KEYRING_ENV}=keyutils")),
            None => match session_bus() {
                None => keyutils(
                    "no D-Bus session bus is configured (DBUS_SESSION_BUS_ADDRESS is unset)"
                        .to_string(),
                ),
                Some(bus) => {
                    match secret_service(format!("a D-Bus session bus is configured ({bus})")) {
                        Ok(keyring) => Ok(keyring),
                        // A bus that answers but has no Secret Service (a server with
                        // a systemd user bus, say) is a lasting condition, not an
                        // outage: keyutils is the platform's other store. A bus that
                        // does not answer stays an error: switching stores on an
                        // outage would make existing secrets look missing.
                        Err((true, _)) => keyutils(format!(
                            "the D-Bus session bus ({bus}) has no Secret Service"
                        )),
                        Err((_, e)) => Err(e),
                    }
                }
            },
        }
    }

    /// The session bus address zbus would use, if one is configured.
    fn session_bus() -> Option<String> {
        if let Ok(address) = std::env::var("DBUS_SESSION_BUS_ADDRESS")
            && !address.trim().is_empty()
        {
            return Some(address);
        }
        let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(format!("/run/user/{}", unsafe { libc::getuid() })));
        let socket = runtime_dir.join("bus");
        socket
            .exists()
            .then(|| format!("unix:path={}", socket.display()))
    }

    fn secret_service(reason: String) -> std::result::Result<Keyring, (bool, Error)> {
        let backend = Backend::SecretService;
        let opened = timed(|| {
            zbus_secret_service_keyring_store::Store::new()
                .map(|store| -> Arc<CredentialStore> { store })
        });
        match opened {
            Ok(Ok(store)) => Ok(Keyring {
                backend,
                reason,
                store,
            }),
            Ok(Err(raw)) => {
                let error =
                    describe_failure(backend, &reason, "open the keyring", Failure::Backend(&raw));
                Err((no_provider(&raw), error))
            }
            Err(stall) => Err((
                false,
                describe_failure(backend, &reason, "open the keyring", Failure::Stall(stall)),
            )),
        }
    }

    fn keyutils(reason: String) -> Result<Keyring> {
        // Building the store touches nothing: the session keyring is looked
        // up by each call, and "no session keyring" surfaces there.
        let backend = Backend::Keyutils;
        match linux_keyutils_keyring_store::Store::new() {
            Ok(store) => Ok(Keyring {
                backend,
                reason,
                store,
            }),
            Err(e) => Err(describe_failure(
                backend,
                &reason,
                "open the keyring",
                Failure::Backend(&e),
            )),
        }
    }

    fn no_provider(err: &keyring_core::Error) -> bool {
        matches!(classify_secret_service(err), Some(Problem::NoProvider))
    }

    pub(super) enum Problem {
        BusUnreachable,
        NoProvider,
        Locked,
        NoDefaultCollection,
        PromptDismissed,
    }

    fn platform_error(
        err: &keyring_core::Error,
    ) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match err {
            keyring_core::Error::PlatformFailure(e) | keyring_core::Error::NoStorageAccess(e) => {
                Some(e.as_ref())
            }
            _ => None,
        }
    }

    pub(super) fn classify_secret_service(err: &keyring_core::Error) -> Option<Problem> {
        use secret_service::Error as Ss;
        let ss = platform_error(err)?.downcast_ref::<Ss>()?;
        let dbus_name = |text: String| {
            text.contains("org.freedesktop.DBus.Error.ServiceUnknown")
                || text.contains("org.freedesktop.DBus.Error.NameHasNoOwner")
        };
        Some(match ss {
            Ss::Unavailable => Problem::BusUnreachable,
            Ss::Zbus(
                zbus::Error::Connection(..)
                | zbus::Error::InputOutput(_)
                | zbus::Error::Address(_)
                | zbus::Error::Handshake(_),
            ) => Problem::BusUnreachable,
            Ss::Zbus(e) if dbus_name(e.to_string()) => Problem::NoProvider,
            Ss::ZbusFdo(e) if dbus_name(e.to_string()) => Problem::NoProvider,
            Ss::Locked => Problem::Locked,
            Ss::NoResult => Problem::NoDefaultCollection,
            Ss::Prompt | Ss::PromptDisconnected => Problem::PromptDismissed,
            _ => return None,
        })
    }

    pub(super) fn keyutils_access_denied(err: &keyring_core::Error) -> bool {
        matches!(err, keyring_core::Error::NoStorageAccess(_))
    }

    /// The problem in words and what to do about it.
    pub(super) fn explain(backend: Backend, err: &keyring_core::Error) -> Option<(String, String)> {
        match backend {
            Backend::SecretService => Some(match classify_secret_service(err)? {
                Problem::BusUnreachable => (
                    "no Secret Service available: the D-Bus session bus cannot be reached".to_string(),
                    format!("start connctl inside a desktop or D-Bus session with a Secret Service (gnome-keyring, KeePassXC), or set {KEYRING_ENV}=keyutils; {CI_HINT}"),
                ),
                Problem::NoProvider => (
                    "no Secret Service available: nothing on the session bus provides org.freedesktop.secrets".to_string(),
                    format!("start a Secret Service (gnome-keyring, KeePassXC), or set {KEYRING_ENV}=keyutils; {CI_HINT}"),
                ),
                Problem::Locked => (
                    "the keyring is locked".to_string(),
                    format!("unlock it (log in to the desktop session, or `gnome-keyring-daemon --unlock`); {CI_HINT}"),
                ),
                Problem::NoDefaultCollection => (
                    "the keyring is locked or has no default collection".to_string(),
                    format!("unlock the keyring or create a default (login) collection, e.g. with seahorse or `gnome-keyring-daemon --unlock`; {CI_HINT}"),
                ),
                Problem::PromptDismissed => (
                    "the keyring is locked (or has no default collection) and the prompt to unlock it was dismissed or could not be shown".to_string(),
                    format!("unlock the keyring (log in to the desktop session, or `gnome-keyring-daemon --unlock`) and try again; {CI_HINT}"),
                ),
            }),
            Backend::Keyutils if keyutils_access_denied(err) => Some((
                "no session keyring: the kernel denied access to the session keyring".to_string(),
                format!("run connctl inside a session keyring (`keyctl session - connctl ...`, or a login through pam_keyinit); {CI_HINT}"),
            )),
            _ => None,
        }
    }
}

/// Opens the one native store of macOS or Windows behind the keyring timeout.
#[cfg(any(target_os = "macos", target_os = "windows"))]
fn open_native(
    backend: Backend,
    make: impl FnOnce() -> keyring_core::Result<Arc<CredentialStore>> + Send + 'static,
) -> Result<Keyring> {
    let reason = "the platform's keyring".to_string();
    let failure = match timed(make) {
        Ok(Ok(store)) => {
            return Ok(Keyring {
                backend,
                reason,
                store,
            });
        }
        Ok(Err(e)) => describe_failure(backend, &reason, "open the keyring", Failure::Backend(&e)),
        Err(stall) => describe_failure(backend, &reason, "open the keyring", Failure::Stall(stall)),
    };
    Err(failure)
}

#[cfg(target_os = "macos")]
mod platform {
    use super::*;

    pub(super) fn open(_requested: Option<Backend>) -> Result<Keyring> {
        open_native(Backend::Keychain, || {
            apple_native_keyring_store::keychain::Store::new()
                .map(|s| -> Arc<CredentialStore> { s })
        })
    }

    pub(super) fn explain(_: Backend, _: &keyring_core::Error) -> Option<(String, String)> {
        None
    }
}

#[cfg(target_os = "windows")]
mod platform {
    use super::*;

    pub(super) fn open(_requested: Option<Backend>) -> Result<Keyring> {
        open_native(Backend::CredentialManager, || {
            windows_native_keyring_store::Store::new().map(|s| -> Arc<CredentialStore> { s })
        })
    }

    pub(super) fn explain(_: Backend, _: &keyring_core::Error) -> Option<(String, String)> {
        None
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
mod platform {
    use super::*;

    pub(super) fn open(_requested: Option<Backend>) -> Result<Keyring> {
        Err(Error::secret("no OS keyring is supported on this platform").with_hint(CI_HINT))
    }

    pub(super) fn explain(_: Backend, _: &keyring_core::Error) -> Option<(String, String)> {
        None
    }
}

enum Failure<'a> {
    Backend(&'a keyring_core::Error),
    Stall(Stall),
}

/// One error for every way a keyring call fails: what was being done, the
/// backend and why it was chosen, the cause, and what to do.
fn describe_failure(backend: Backend, reason: &str, doing: &str, failure: Failure<'_>) -> Error {
    let (problem, hint, raw) = match failure {
        Failure::Stall(Stall::TimedOut(after)) => (
            format!(
                "the {} did not answer within {}",
                backend.label(),
                seconds(after)
            ),
            format!(
                "is it waiting for an unlock prompt or hung? raise {KEYRING_TIMEOUT_ENV} (seconds) to wait longer; {CI_HINT}"
            ),
            None,
        ),
        Failure::Stall(Stall::Crashed) => (
            format!("the {} call failed unexpectedly", backend.label()),
            CI_HINT.to_string(),
            None,
        ),
        Failure::Backend(err) => match platform::explain(backend, err) {
            Some((problem, hint)) => (problem, hint, Some(err)),
            None => (
                format!("the {} failed", backend.label()),
                CI_HINT.to_string(),
                Some(err),
            ),
        },
    };
    let mut error = Error::secret(format!("cannot {doing}: {problem}")).with_cause(format!(
        "keyring backend: {} (chosen because {reason})",
        backend.label()
    ));
    if let Some(err) = raw {
        // Wrapping errors repeat their source's text: keep the fullest line only.
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
        let mut last = String::new();
        while let Some(e) = current {
            let text = e.to_string();
            if !last.contains(&text) {
                error = error.with_cause(&text);
                last = text;
            }
            current = e.source();
        }
    }
    error.with_hint(hint)
}

/// Runs one call on the keyring's store behind the timeout; a failure is
/// described with the backend, why it was chosen, and what was being done.
fn on_store<T: Send + 'static>(
    doing: &str,
    call: impl FnOnce(&CredentialStore, Backend) -> keyring_core::Result<T> + Send + 'static,
) -> Result<T> {
    let keyring = keyring()?;
    let store = keyring.store.clone();
    let backend = keyring.backend;
    let failure = |f| describe_failure(backend, &keyring.reason, doing, f);
    match timed(move || call(store.as_ref(), backend)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(failure(Failure::Backend(&err))),
        Err(stall) => Err(failure(Failure::Stall(stall))),
    }
}

/// Runs one call on the entry of `account`, behind the timeout.
fn with_entry<T: Send + 'static>(
    account: String,
    label: String,
    doing: &str,
    call: impl FnOnce(&Entry) -> keyring_core::Result<T> + Send + 'static,
) -> Result<T> {
    on_store(doing, move |store, backend| {
        let mut modifiers = std::collections::HashMap::new();
        if backend == Backend::SecretService {
            modifiers.insert("label", label.as_str());
        }
        let modifiers = (!modifiers.is_empty()).then_some(&modifiers);
        let entry = store.build(SERVICE, &account, modifiers)?;
        call(&entry)
    })
}

fn entry_label(at: &SecretRef) -> String {
    format!("connctl: {}", at.describe())
}

/// Stores `value` in the OS keyring under `at`.
pub fn keyring_set(at: &SecretRef, value: &Secret) -> Result<()> {
    let value = value.clone();
    with_entry(
        at.account(),
        entry_label(at),
        &format!("store {} in the keyring", at.describe()),
        move |entry| entry.set_password(value.expose()),
    )
}

/// Reads `at` from the OS keyring; `Ok(None)` when there is no entry.
pub fn keyring_get(at: &SecretRef) -> Result<Option<Secret>> {
    with_entry(
        at.account(),
        entry_label(at),
        &format!("read {} from the keyring", at.describe()),
        |entry| match entry.get_password() {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(e),
        },
    )
}

/// Removes `at` from the OS keyring; a missing entry is not an error.
pub fn keyring_delete(at: &SecretRef) -> Result<()> {
    with_entry(
        at.account(),
        entry_label(at),
        &format!("delete {} from the keyring", at.describe()),
        delete_entry,
    )
}

fn delete_entry(entry: &Entry) -> keyring_core::Result<()> {
    match entry.delete_credential() {
        Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
        // Two items with one account (written by another tool): remove both.
        Err(keyring_core::Error::Ambiguous(entries)) => {
            entries
                .iter()
                .try_for_each(|e| match e.delete_credential() {
                    Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
                    Err(e) => Err(e),
                })
        }
        Err(e) => Err(e),
    }
}

/// What `doctor` reports about the keyring.
#[derive(Debug, Clone)]
pub struct KeyringCheck {
    /// The backend in use, if one could be chosen.
    pub backend: Option<Backend>,
    pub reason: Option<String>,
    /// `None` when the round trip worked.
    pub error: Option<Error>,
}

/// Checks the keyring with a round trip on a throwaway entry
/// `<store_id>/doctor/probe/<random>`: set, read back, delete, read again.
pub fn keyring_check(store_id: &str) -> KeyringCheck {
    let keyring = match keyring() {
        Ok(k) => k,
        Err(e) => {
            return KeyringCheck {
                backend: None,
                reason: None,
                error: Some(e),
            };
        }
    };
    let account = format!("{store_id}/doctor/probe/{}", uuid::Uuid::new_v4().simple());
    let value = format!("probe-{}", uuid::Uuid::new_v4().simple());
    let label = "connctl: doctor probe (safe to delete)".to_string();
    let round_trip = || -> Result<()> {
        let written = value.clone();
        with_entry(
            account.clone(),
            label.clone(),
            "write a probe entry",
            move |e| e.set_password(&written),
        )?;
        let read = with_entry(
            account.clone(),
            label.clone(),
            "read a probe entry back",
            |e| e.get_password().map(Secret::new),
        );
        let deleted = with_entry(
            account.clone(),
            label.clone(),
            "delete a probe entry",
            delete_entry,
        );
        if read?.expose() != value {
            return Err(Error::secret(
                "the keyring returned a different value than was stored in it",
            ));
        }
        deleted?;
        let gone = with_entry(
            account.clone(),
            label.clone(),
            "check a probe entry is gone",
            |e| match e.get_password() {
                Ok(_) => Ok(false),
                Err(keyring_core::Error::NoEntry) => Ok(true),
                Err(err) => Err(err),
            },
        )?;
        if !gone {
            return Err(Error::secret("a deleted keyring entry can still be read"));
        }
        Ok(())
    };
    KeyringCheck {
        backend: Some(keyring.backend),
        reason: Some(keyring.reason.clone()),
        error: round_trip().err(),
    }
}

/// The accounts of every keyring entry whose account starts with
/// `<store_id>/`, sorted; `Ok(None)` when the backend cannot list entries
/// (kernel keyutils has no search by attributes). On the Secret Service
/// this is a search by the attribute `service = connctl`.
pub fn keyring_accounts(store_id: &str) -> Result<Option<Vec<String>>> {
    let prefix = format!("{store_id}/");
    on_store("list this store's keyring entries", move |store, _| {
        let spec = std::collections::HashMap::from([("service", SERVICE)]);
        let entries = match store.search(&spec) {
            Ok(entries) => entries,
            Err(keyring_core::Error::NotSupportedByStore(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut accounts: Vec<String> = entries
            .iter()
            .filter_map(|e| e.get_specifiers())
            .filter(|(service, account)| service == SERVICE && account.starts_with(&prefix))
            .map(|(_, account)| account)
            .collect();
        accounts.sort();
        accounts.dedup();
        Ok(Some(accounts))
    })
}

/// Removes the entry of an account (any account, also one that names no
/// record kind connctl knows); a missing entry is not an error.
pub fn keyring_delete_account(account: &str) -> Result<()> {
    with_entry(
        account.to_string(),
        format!("connctl: {account}"),
        &format!("delete the keyring entry {account}"),
        delete_entry,
    )
}
