//! One change, one transaction (issue 9): a refused command changes neither
//! the store nor the keyring; an accepted one replaces, moves and removes
//! keyring entries with its records. The keyring is read from outside.

use crate::private_bus;

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

/// A store with one record of each kind that takes a secret, every secret in
/// the keyring: a.t (active, inbound user u) and b.t (active) are basic
/// connections, p an OAuth profile, m a MID server, u an inbound user.
fn store_with_secrets() -> TestEnv {
    let env = TestEnv::new();
    env.ok(&["integration", "add", "a"]);
    env.ok(&["integration", "add", "b"]);
    let secret = |args: &[&str], value: &str| {
        let run = env.run_stdin(args, value);
        assert_eq!(run.code, 0, "connctl {args:?}: {}", run.stderr);
    };
    secret(&["inbound-user", "add", "u", "--password-stdin"], "U-OLD");
    secret(
        &[
            "oauth-profile",
            "add",
            "p",
            "--token-url",
            "https://idp.example.com/token",
            "--client-id",
            "cid",
            "--client-secret-stdin",
        ],
        "P-OLD",
    );
    secret(
        &[
            "mid-server",
            "add",
            "m",
            "--url",
            "http://mid.example.com:3128",
            "--user",
            "mu",
            "--password-stdin",
        ],
        "M-OLD",
    );
    secret(
        &[
            "connection",
            "add",
            "a.t",
            "--integration",
            "a",
            "--env",
            "test",
            "--url",
            "https://a.example.com",
            "--auth",
            "basic",
            "--user",
            "ua",
            "--inbound-user",
            "u",
            "--activate",
            "--password-stdin",
        ],
        "A-OLD",
    );
    secret(
        &[
            "connection",
            "add",
            "b.t",
            "--integration",
            "b",
            "--env",
            "test",
            "--url",
            "https://b.example.com",
            "--auth",
            "basic",
            "--user",
            "ub",
            "--activate",
            "--password-stdin",
        ],
        "B-OLD",
    );
    env
}

/// Every command that takes a secret, refused in each way it can be: the
/// documented exit code, the store byte-identical, the keyring (read from
/// outside) exactly as before, values and entry count.
#[test]
fn refused_commands_change_neither_the_store_nor_the_keyring() {
    require_session();
    let env = store_with_secrets();
    let id = store_id(&env);
    let keyring = keyring_entries(None, &id);
    assert_eq!(keyring.len(), 5, "{keyring:?}");
    let store = env.store_bytes();
    let basic = |name: &'static str, integration: &'static str, url: &'static str| {
        vec![
            "connection",
            "add",
            name,
            "--integration",
            integration,
            "--env",
            "test",
            "--url",
            url,
            "--user",
            "x",
            "--password-stdin",
        ]
    };
    let with = |mut args: Vec<&'static str>, more: &[&'static str]| {
        args.extend_from_slice(more);
        args
    };
    let cases: Vec<(&str, Vec<&str>, i32)> = vec![
        // connection add
        (
            "add: broken rule (oauth, no profile)",
            with(
                basic("a.n", "a", "https://n.example.com"),
                &["--auth", "oauth"],
            ),
            4,
        ),
        (
            "add: broken rule (production over http)",
            vec![
                "connection",
                "add",
                "a.n",
                "--integration",
                "a",
                "--env",
                "production",
                "--url",
                "http://n.example.com",
                "--user",
                "x",
                "--password-stdin",
            ],
            4,
        ),
        (
            "add: missing reference (integration)",
            basic("z.n", "zz", "https://n.example.com"),
            3,
        ),
        (
            "add: missing reference (MID server)",
            with(
                basic("a.n", "a", "https://n.example.com"),
                &["--mid-server", "nope"],
            ),
            3,
        ),
        (
            "add: duplicate name",
            basic("a.t", "a", "https://n.example.com"),
            4,
        ),
        ("add: bad URL", basic("a.n", "a", "n.example.com/x"), 4),
        (
            "add: invalid name",
            basic("a b", "a", "https://n.example.com"),
            4,
        ),
        // connection edit
        (
            "edit: broken rule (oauth, no profile)",
            vec![
                "connection",
                "edit",
                "a.t",
                "--auth",
                "oauth",
                "--password-stdin",
            ],
            4,
        ),
        (
            "edit: broken rule 5 (inbound user on two active connections)",
            vec![
                "connection",
                "edit",
                "b.t",
                "--inbound-user",
                "u",
                "--password-stdin",
            ],
            4,
        ),
        (
            "edit: missing reference (OAuth profile)",
            vec![
                "connection",
                "edit",
                "a.t",
                "--oauth-profile",
                "nope",
                "--password-stdin",
            ],
            3,
        ),
        (
            "edit: bad URL",
            vec![
                "connection",
                "edit",
                "a.t",
                "--url",
                "ftp://a.example.com",
                "--password-stdin",
            ],
            4,
        ),
        (
            "edit: unknown record",
            vec!["connection", "edit", "nope", "--password-stdin"],
            3,
        ),
        (
            "edit: unknown variable",
            vec![
                "connection",
                "edit",
                "a.t",
                "--unset-var",
                "nope",
                "--password-stdin",
            ],
            3,
        ),
        // oauth-profile add / edit
        (
            "oauth add: duplicate name",
            vec![
                "oauth-profile",
                "add",
                "p",
                "--token-url",
                "https://idp.example.com/t",
                "--client-id",
                "c",
                "--client-secret-stdin",
            ],
            4,
        ),
        (
            "oauth add: bad URL",
            vec![
                "oauth-profile",
                "add",
                "q",
                "--token-url",
                "idp.example.com",
                "--client-id",
                "c",
                "--client-secret-stdin",
            ],
            4,
        ),
        (
            "oauth add: broken rule (empty client id)",
            vec![
                "oauth-profile",
                "add",
                "q",
                "--token-url",
                "https://idp.example.com/t",
                "--client-id",
                " ",
                "--client-secret-stdin",
            ],
            4,
        ),
        (
            "oauth edit: bad URL",
            vec![
                "oauth-profile",
                "edit",
                "p",
                "--token-url",
                "ftp://idp.example.com",
                "--client-secret-stdin",
            ],
            4,
        ),
        (
            "oauth edit: broken rule (empty client id)",
            vec![
                "oauth-profile",
                "edit",
                "p",
                "--client-id",
                "",
                "--client-secret-stdin",
            ],
            4,
        ),
        (
            "oauth edit: unknown record",
            vec!["oauth-profile", "edit", "nope", "--client-secret-stdin"],
            3,
        ),
        // mid-server add / edit
        (
            "mid add: duplicate name",
            vec![
                "mid-server",
                "add",
                "m",
                "--url",
                "http://mid2.example.com:3128",
                "--user",
                "x",
                "--password-stdin",
            ],
            4,
        ),
        (
            "mid add: bad URL (https proxy)",
            vec![
                "mid-server",
                "add",
                "n",
                "--url",
                "https://mid2.example.com",
                "--user",
                "x",
                "--password-stdin",
            ],
            4,
        ),
        (
            "mid add: broken rule (password, no user)",
            vec![
                "mid-server",
                "add",
                "n",
                "--url",
                "http://mid2.example.com:3128",
                "--password-stdin",
            ],
            4,
        ),
        (
            "mid edit: bad URL",
            vec![
                "mid-server",
                "edit",
                "m",
                "--url",
                "mid.example.com:3128",
                "--password-stdin",
            ],
            4,
        ),
        (
            "mid edit: broken rule (password, no user)",
            vec!["mid-server", "edit", "m", "--no-user", "--password-stdin"],
            4,
        ),
        (
            "mid edit: unknown record",
            vec!["mid-server", "edit", "nope", "--password-stdin"],
            3,
        ),
        // inbound-user add / set-password
        (
            "inbound add: duplicate name",
            vec!["inbound-user", "add", "u", "--password-stdin"],
            4,
        ),
        (
            "inbound add: invalid name",
            vec!["inbound-user", "add", "u/x", "--password-stdin"],
            4,
        ),
        (
            "inbound set-password: unknown record",
            vec!["inbound-user", "set-password", "nope", "--password-stdin"],
            3,
        ),
    ];
    for (what, args, code) in &cases {
        let run = env.run_stdin(args, "NEW-VALUE");
        assert_eq!(run.code, *code, "{what}: connctl {args:?}\n{}", run.stderr);
        assert_eq!(env.store_bytes(), store, "{what}: the store changed");
        assert_eq!(
            keyring_entries(None, &id),
            keyring,
            "{what}: the keyring changed"
        );
        // The same refusal with the secret moved to env: must not delete the entry.
        let moved: Vec<&str> = args
            .iter()
            .flat_map(|a| match *a {
                "--password-stdin" => vec!["--password-env", "SOME_VAR"],
                "--client-secret-stdin" => vec!["--client-secret-env", "SOME_VAR"],
                other => vec![other],
            })
            .collect();
        let run = env.run(&moved);
        assert_eq!(run.code, *code, "{what}: connctl {moved:?}\n{}", run.stderr);
        assert_eq!(env.store_bytes(), store, "{what} (env:): the store changed");
        assert_eq!(
            keyring_entries(None, &id),
            keyring,
            "{what} (env:): the keyring changed"
        );
    }
    eprintln!("{} refusals checked", cases.len() * 2);
}

/// Accepted changes: a new value replaces the old one; a secret moved to
/// env:/file:/cmd: loses its keyring entry; a removed record takes its
/// entries (and the token cached for a connection) along; a copy copies none.
#[test]
fn accepted_changes_replace_move_and_remove_keyring_entries() {
    require_session();
    let env = store_with_secrets();
    let id = store_id(&env);
    let value = |field: &str| {
        keyring_entries(None, &id)
            .get(&format!("{id}/{field}"))
            .cloned()
    };

    for (args, field, new) in [
        (
            &["connection", "edit", "a.t", "--password-stdin"][..],
            "connection/a.t/password",
            "A-NEW",
        ),
        (
            &["oauth-profile", "edit", "p", "--client-secret-stdin"],
            "oauth_profile/p/client_secret",
            "P-NEW",
        ),
        (
            &["mid-server", "edit", "m", "--password-stdin"],
            "mid_server/m/password",
            "M-NEW",
        ),
        (
            &["inbound-user", "set-password", "u", "--password-stdin"],
            "inbound_user/u/password",
            "U-NEW",
        ),
    ] {
        let run = env.run_stdin(args, new);
        assert_eq!(run.code, 0, "connctl {args:?}: {}", run.stderr);
        assert_eq!(value(field).as_deref(), Some(new), "{args:?}");
    }
    assert_eq!(keyring_entries(None, &id).len(), 5);

    // copy: the copy's keyring entry is not made
    let run = env.run(&["connection", "copy", "a.t", "a.c", "--env", "sandbox"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("secrets are not copied"),
        "{}",
        run.stderr
    );
    assert_eq!(keyring_entries(None, &id).len(), 5);
    assert_eq!(value("connection/a.c/password"), None);

    let file = env.path("secret.txt");
    std::fs::write(&file, "from-a-file").expect("write");
    let file = file.display().to_string();
    for (args, field) in [
        (
            vec!["connection", "edit", "a.t", "--password-env", "A_PW"],
            "connection/a.t/password",
        ),
        (
            vec![
                "oauth-profile",
                "edit",
                "p",
                "--client-secret-file",
                file.as_str(),
            ],
            "oauth_profile/p/client_secret",
        ),
        (
            vec!["mid-server", "edit", "m", "--password-cmd", "echo mid"],
            "mid_server/m/password",
        ),
        (
            vec![
                "inbound-user",
                "set-password",
                "u",
                "--password-env",
                "U_PW",
            ],
            "inbound_user/u/password",
        ),
    ] {
        let before = keyring_entries(None, &id).len();
        env.ok(&args);
        assert_eq!(value(field), None, "{args:?} left the keyring entry");
        assert_eq!(keyring_entries(None, &id).len(), before - 1, "{args:?}");
    }

    // removal: the password and the token cached for the connection go
    let run = env.run_stdin(&["connection", "edit", "b.t", "--password-stdin"], "B-NEW");
    assert_eq!(run.code, 0, "{}", run.stderr);
    plant(&format!("{id}/oauth_profile/p/token:b.t"), "cached");
    env.ok(&[
        "connection",
        "edit",
        "b.t",
        "--auth",
        "oauth",
        "--oauth-profile",
        "p",
    ]);
    let remaining = keyring_entries(None, &id);
    assert!(
        remaining.contains_key(&format!("{id}/connection/b.t/password")),
        "{remaining:?}"
    );
    assert!(
        remaining.contains_key(&format!("{id}/oauth_profile/p/token:b.t")),
        "{remaining:?}"
    );
    env.ok(&["connection", "remove", "b.t"]);
    assert_eq!(keyring_entries(None, &id), Default::default());
}

/// Faults between plan and commit: the keyring daemon killed (exit 5, the
/// store unchanged), and the store folder turned read-only (the command
/// fails, the keyring values put back). `CONNCTL_TEST_HOLD` stops the commit
/// after it is planned, so the fault lands between plan and commit.
#[test]
fn faults_between_plan_and_commit_leave_store_and_keyring_as_they_were() {
    let mut bus = private_bus::PrivateBus::with_gnome_keyring();
    let env = TestEnv::new();
    let address = bus.address.clone();
    let on_bus = |args: &[&str], stdin: &str| {
        env.cmd()
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("CONNCTL_KEYRING", "secret-service")
            .args(args)
            .write_stdin(stdin.to_string())
            .output()
            .expect("run connctl")
    };
    assert!(on_bus(&["integration", "add", "a"], "").status.success());
    let out = on_bus(&["inbound-user", "add", "u", "--password-stdin"], "U-OLD");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = on_bus(
        &[
            "connection",
            "add",
            "a.t",
            "--integration",
            "a",
            "--env",
            "test",
            "--url",
            "https://a.example.com",
            "--user",
            "ua",
            "--password-stdin",
        ],
        "A-OLD",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = store_id(&env);
    assert_eq!(keyring_entries(Some(&address), &id).len(), 2);

    // Read-only folder: the new value was set, the rename fails, the old value is back.
    let store = env.store_bytes();
    let hold = env.path("hold");
    let child = held(
        &env,
        &address,
        &hold,
        &[
            "connection",
            "edit",
            "a.t",
            "--url",
            "https://b.example.com",
            "--password-stdin",
        ],
        "A-NEW",
    );
    let folder = env.store.parent().expect("folder").to_path_buf();
    let _writable = ReadOnly::make(&folder);
    std::fs::remove_file(&hold).expect("release");
    let out = child.wait_with_output().expect("wait");
    drop(_writable);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.store_bytes(), store);
    let entries = keyring_entries(Some(&address), &id);
    assert_eq!(
        entries.values().collect::<Vec<_>>(),
        ["A-OLD", "U-OLD"],
        "the old value was not put back"
    );

    // A new record's new entry is deleted again when the rename fails.
    let child = held(
        &env,
        &address,
        &hold,
        &["inbound-user", "add", "v", "--password-stdin"],
        "V-NEW",
    );
    let _writable = ReadOnly::make(&folder);
    std::fs::remove_file(&hold).expect("release");
    let out = child.wait_with_output().expect("wait");
    drop(_writable);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.store_bytes(), store);
    assert_eq!(keyring_entries(Some(&address), &id), entries);

    // The keyring daemon killed between plan and commit: exit 5, store unchanged.
    let child = held(
        &env,
        &address,
        &hold,
        &["inbound-user", "set-password", "u", "--password-stdin"],
        "U-NEWER",
    );
    bus.kill_keyring();
    std::fs::remove_file(&hold).expect("release");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.store_bytes(), store);
    // ... and with the daemon gone from the start.
    let out = on_bus(&["inbound-user", "add", "w", "--password-stdin"], "W");
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.store_bytes(), store);
}

/// Starts connctl with `CONNCTL_TEST_HOLD`, and returns once it has planned.
fn held(
    env: &TestEnv,
    bus: &str,
    hold: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> std::process::Child {
    let mut child = env
        .std_cmd()
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        // Forced: on its own, connctl takes a bus without a Secret Service for
        // a host without one and falls back to kernel keyutils.
        .env("CONNCTL_KEYRING", "secret-service")
        .env("CONNCTL_TEST_HOLD", hold)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn connctl");
    let mut input = child.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut input, stdin.as_bytes()).expect("stdin");
    drop(input);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !hold.exists() {
        assert!(
            std::time::Instant::now() < until,
            "connctl never reached the hold"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child
}

/// A folder nothing can be created in, for root too (`chattr +i`), until dropped.
struct ReadOnly(std::path::PathBuf);

impl ReadOnly {
    fn make(folder: &std::path::Path) -> Self {
        let root = unsafe { libc::geteuid() } == 0;
        let ok = if root {
            std::process::Command::new("chattr")
                .arg("+i")
                .arg(folder)
                .status()
                .expect("chattr (package e2fsprogs)")
                .success()
        } else {
            std::fs::set_permissions(folder, std::os::unix::fs::PermissionsExt::from_mode(0o500))
                .is_ok()
        };
        assert!(ok, "cannot make {} read-only", folder.display());
        ReadOnly(folder.to_path_buf())
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
        let _ =
            std::fs::set_permissions(&self.0, std::os::unix::fs::PermissionsExt::from_mode(0o700));
    }
}
