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

/// Plants a keyring entry under `account`, from outside.
fn plant(account: &str, value: &str) {
    let mut child = std::process::Command::new("secret-tool")
        .args([
            "store",
            "--label",
            "planted by a test",
            "service",
            "connctl",
            "username",
            account,
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("secret-tool");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), value.as_bytes())
        .expect("value");
    drop(child.stdin.take());
    assert!(child.wait().expect("secret-tool").success());
}

/// `doctor` lists keyring entries of this store that no record names, and
/// `doctor --fix` removes exactly those: asking on a terminal, `--yes` in a
/// script, refusing (exit 4) with nobody to ask.
#[test]
fn doctor_lists_and_fixes_orphan_keyring_entries() {
    require_session();
    let env = TestEnv::new();
    env.ok(&["integration", "add", "a"]);
    let run = env.run_stdin(
        &["inbound-user", "add", "remote", "--password-stdin"],
        "IN-PW",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = store_id(&env);
    let named = format!("{id}/inbound_user/remote/password");
    let run = env.run(&["doctor", "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["orphans"], serde_json::json!([]));

    let ghost = format!("{id}/connection/ghost/password");
    let stale_token = format!("{id}/oauth_profile/gone/token");
    plant(&ghost, "G");
    plant(&stale_token, "T");
    // Another store's entry is never this store's orphan.
    let other = format!("{}/connection/x/password", uuid_like());
    plant(&other, "O");

    let run = env.run(&["doctor"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(&ghost) && run.stdout.contains(&stale_token),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains(&named) && !run.stdout.contains(&other),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("doctor --fix"), "{}", run.stderr);
    let json = env.run(&["doctor", "-o", "json"]).json();
    assert_eq!(json["orphans"], serde_json::json!([ghost, stale_token]));

    // Nobody to ask: refused, nothing removed.
    let run = env.fails(&["doctor", "--fix"], 4);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert_eq!(keyring_entries(None, &id).len(), 3);

    // On a terminal: "n" keeps them, "y" removes them.
    let (code, screen) = crate::support::run_on_terminal(&env, &["doctor", "--fix"], "[y/N]", "n");
    assert_eq!(code, 4, "{screen}");
    assert_eq!(keyring_entries(None, &id).len(), 3);
    let (code, screen) = crate::support::run_on_terminal(&env, &["doctor", "--fix"], "[y/N]", "y");
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains(&format!("removed orphan keyring entry {ghost}")),
        "{screen}"
    );
    let left = keyring_entries(None, &id);
    assert_eq!(
        left.into_iter().collect::<Vec<_>>(),
        [(named.clone(), "IN-PW".to_string())]
    );

    plant(&ghost, "G");
    let run = env.run(&["doctor", "--fix", "--yes", "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["removed"], serde_json::json!([ghost]));
    assert_eq!(keyring_entries(None, &id).len(), 1);
    let run = env.run(&["doctor", "--fix"]);
    assert_eq!(
        run.code, 0,
        "nothing to fix needs no question: {}",
        run.stderr
    );

    assert_eq!(keyring_entries(None, &other[..36]).len(), 1);
    std::process::Command::new("secret-tool")
        .args(["clear", "service", "connctl", "username", &other])
        .status()
        .expect("secret-tool clear");
}

/// A fresh id in the form of a store id.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        std::process::id(),
        nanos % (1u128 << 48)
    )
}
