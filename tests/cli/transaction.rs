//! One change, one transaction (issue 9): a refused command changes neither
//! the store nor the keyring; an accepted one replaces, moves and removes
//! keyring entries with its records. The keyring is read from outside.

use crate::support::{TestEnv, keyring_entries, store_id};

fn require_session() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "no D-Bus session: run the keyring tests through scripts/test.sh"
    );
}

/// The issue's own report: a refused edit with a new password must keep the
/// old one, and a refused move to env: must not delete it.
#[test]
fn a_refused_edit_keeps_the_keyring_as_it_was() {
    require_session();
    let env = TestEnv::new();
    env.ok(&["integration", "add", "a"]);
    let run = env.run_stdin(
        &[
            "connection",
            "add",
            "a.t",
            "--integration",
            "a",
            "--env",
            "test",
            "--url",
            "https://x.example.com",
            "--auth",
            "basic",
            "--user",
            "u",
            "--password-stdin",
        ],
        "OLD",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = store_id(&env);
    let keyring = keyring_entries(None, &id);
    assert_eq!(keyring.values().collect::<Vec<_>>(), ["OLD"]);
    let store = env.store_bytes();

    let run = env.run_stdin(
        &[
            "connection",
            "edit",
            "a.t",
            "--password-stdin",
            "--auth",
            "oauth",
        ],
        "NEW",
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(keyring_entries(None, &id), keyring);
    assert_eq!(env.store_bytes(), store);

    env.fails(
        &[
            "connection",
            "edit",
            "a.t",
            "--password-env",
            "XV",
            "--auth",
            "oauth",
        ],
        4,
    );
    assert_eq!(keyring_entries(None, &id), keyring);
    assert_eq!(env.store_bytes(), store);
}
