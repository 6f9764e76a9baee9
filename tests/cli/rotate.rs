//! `rotate` through the binary: the new secret is tested against real TLS
//! endpoints (Basic auth, an OAuth token endpoint) before it replaces the old
//! one, in the real keyring; the old value is kept for `--restore`.

use std::sync::{Arc, OnceLock};

use base64::Engine;

use crate::outbound_servers::*;
use crate::support::{Run, TestEnv, keyring_entries, store_id};

/// The servers every rotation test shares, started once.
struct Servers {
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    ca: String,
    /// `/accept/WP` answers 200 to Basic `svc:PW` (PW = WP reversed, so the
    /// URL in the store and journal never spells the password), 401 otherwise.
    basic: Server,
    /// `/oauth/token` checks the client secret; every other path wants its token.
    oauth: Server,
    oauth_state: Arc<OauthState>,
}

fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = Pki::new(&dir.path().join("pki"));
        let rt = runtime();
        let tls = || TlsOptions {
            cert: &pki.server_cert,
            key: &pki.server_key,
            client_ca: None,
            h2: true,
        };
        let basic = tls_server(
            &rt,
            tls(),
            Arc::new(|req: &Seen| {
                let wanted: String = req
                    .path
                    .strip_prefix("/accept/")
                    .unwrap_or("\u{0}")
                    .chars()
                    .rev()
                    .collect();
                let given = req
                    .header("authorization")
                    .and_then(|a| a.strip_prefix("Basic "))
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .map(|b| String::from_utf8_lossy(&b).into_owned());
                if given.as_deref() == Some(&format!("svc:{wanted}")) {
                    Reply::new(200, "{\"ok\":true}")
                } else {
                    Reply::new(401, "{\"error\":\"bad credentials\"}")
                        .header("www-authenticate", "Basic realm=\"test\"")
                }
            }),
        );
        let oauth_state = OauthState::new(3600);
        let oauth = tls_server(&rt, tls(), oauth_handler(oauth_state.clone()));
        Servers {
            ca: pki.ca.display().to_string(),
            _rt: rt,
            _dir: dir,
            basic,
            oauth,
            oauth_state,
        }
    })
}

/// The endpoint that accepts only `password`.
fn accepting(password: &str) -> String {
    let reversed: String = password.chars().rev().collect();
    servers().basic.url(&format!("/accept/{reversed}"))
}

fn journal(env: &TestEnv) -> String {
    std::fs::read_to_string(env.store.with_file_name("store.toml.journal")).unwrap_or_default()
}

/// A Basic-auth connection `c` (user svc) whose endpoint accepts only `accepts`.
fn basic_connection(env: &TestEnv, password: &str, accepts: &str) {
    let s = servers();
    env.ok(&["integration", "add", "inc"]);
    let run = env.run_stdin(
        &[
            "connection",
            "add",
            "c",
            "--integration",
            "inc",
            "--env",
            "test",
            "--url",
            &accepting(accepts),
            "--ca-bundle",
            &s.ca,
            "--auth",
            "basic",
            "--user",
            "svc",
            "--password-stdin",
            "--activate",
        ],
        password,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[track_caller]
fn expect(run: Run, code: i32) -> Run {
    assert_eq!(
        run.code, code,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    run
}

#[test]
fn a_password_the_endpoint_accepts_is_tested_then_committed() {
    let env = TestEnv::new();
    basic_connection(&env, "old-pw-1", "n3w-Secret-42");
    env.fails(&["connection", "test", "c"], 8);
    let id = store_id(&env);
    let path = "/accept/24-terceS-w3n";
    let seen_before = servers().basic.count(path);

    let run = expect(
        env.run_stdin(
            &["connection", "rotate", "c", "--password-stdin"],
            "n3w-Secret-42",
        ),
        0,
    );
    assert!(
        run.stderr
            .contains("test of connection 'c' with the new password: ok (HTTP 200"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("rotated the password of connection 'c'"),
        "{}",
        run.stderr
    );
    assert!(
        servers().basic.count(path) > seen_before,
        "the test reached the endpoint"
    );

    // Committed: the stored value is the new one, the old one is kept.
    env.ok(&["connection", "test", "c"]);
    let entries = keyring_entries(None, &id);
    assert_eq!(
        entries
            .get(&format!("{id}/connection/c/password"))
            .map(String::as_str),
        Some("n3w-Secret-42")
    );
    assert_eq!(
        entries
            .get(&format!("{id}/connection/c/password.previous"))
            .map(String::as_str),
        Some("old-pw-1")
    );

    // The kept value is no orphan: `doctor --fix` leaves it.
    let doctor = env.run(&["-o", "json", "doctor"]);
    assert_eq!(
        doctor.json()["orphans"],
        serde_json::json!([]),
        "{}",
        doctor.stdout
    );

    // Journaled, never the value.
    let top = &env.run(&["-o", "json", "history", "--limit", "1"]).json()[0];
    assert_eq!(top["action"], "rotated");
    assert_eq!(top["kind"], "connection");
    assert_eq!(top["name"], "c");
    assert_eq!(top["fields"], serde_json::json!(["password"]));
    assert_eq!(
        top["command"],
        serde_json::json!(["connctl", "connection", "rotate", "c", "--password-stdin"])
    );
    let text = journal(&env);
    assert!(
        !text.contains("n3w-Secret-42") && !text.contains("old-pw-1"),
        "{text}"
    );
    assert!(!run.stderr.contains("n3w-Secret-42") && !run.stdout.contains("n3w-Secret-42"));
}

#[test]
fn a_password_the_endpoint_rejects_changes_nothing() {
    let env = TestEnv::new();
    basic_connection(&env, "old-pw-2", "old-pw-2");
    env.ok(&["connection", "test", "c"]);
    let id = store_id(&env);
    let store = env.store_bytes();
    let journal_before = journal(&env);
    let keyring_before = keyring_entries(None, &id);

    let run = expect(
        env.run_stdin(
            &["connection", "rotate", "c", "--password-stdin"],
            "wrong-pw-2",
        ),
        8,
    );
    assert!(
        run.stderr
            .contains("the new password failed the test through connection 'c'"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    assert!(!run.stderr.contains("wrong-pw-2"), "{}", run.stderr);
    // A new reference that cannot be read: exit 5. No secret at all: exit 2.
    expect(
        env.run(&[
            "connection",
            "rotate",
            "c",
            "--password-env",
            "ROTATE_TEST_UNSET",
        ]),
        5,
    );
    expect(
        env.run(&[
            "connection",
            "rotate",
            "c",
            "--password-file",
            "/nonexistent/pw",
        ]),
        5,
    );
    expect(env.run(&["connection", "rotate", "c"]), 2);
    // Nothing to restore yet; no such connection.
    let none = expect(env.run(&["connection", "rotate", "c", "--restore"]), 4);
    assert!(
        none.stderr.contains("no previous password is kept"),
        "{}",
        none.stderr
    );
    expect(
        env.run_stdin(&["connection", "rotate", "nope", "--password-stdin"], "x"),
        3,
    );

    assert_eq!(env.store_bytes(), store, "store byte-identical");
    assert_eq!(journal(&env), journal_before, "journal unchanged");
    assert_eq!(
        keyring_entries(None, &id),
        keyring_before,
        "keyring as it was"
    );
    env.ok(&["connection", "test", "c"]);

    // A connection whose authentication uses no password.
    env.ok(&[
        "connection",
        "add",
        "plain",
        "--integration",
        "inc",
        "--env",
        "sandbox",
        "--url",
        "https://plain.example.com",
    ]);
    let store = env.store_bytes();
    let run = expect(
        env.run_stdin(&["connection", "rotate", "plain", "--password-stdin"], "x"),
        4,
    );
    assert!(
        run.stderr
            .contains("uses authentication none and no password"),
        "{}",
        run.stderr
    );
    assert_eq!(env.store_bytes(), store);
}

#[test]
fn restore_is_tested_like_a_rotation_and_no_test_skips_with_a_warning() {
    let env = TestEnv::new();
    basic_connection(&env, "first-pw", "second-pw");
    let id = store_id(&env);
    let account = format!("{id}/connection/c/password");
    expect(
        env.run_stdin(
            &["connection", "rotate", "c", "--password-stdin"],
            "second-pw",
        ),
        0,
    );

    // The endpoint takes only the new value: restoring the old one fails its test.
    let store = env.store_bytes();
    let run = expect(env.run(&["connection", "rotate", "c", "--restore"]), 8);
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    assert_eq!(env.store_bytes(), store);
    assert_eq!(keyring_entries(None, &id)[&account], "second-pw");

    // Once the endpoint takes the old value again, restore brings it back and keeps the other.
    env.ok(&["connection", "edit", "c", "--url", &accepting("first-pw")]);
    expect(env.run(&["connection", "rotate", "c", "--restore"]), 0);
    let entries = keyring_entries(None, &id);
    assert_eq!(entries[&account], "first-pw");
    assert_eq!(entries[&format!("{account}.previous")], "second-pw");
    env.ok(&["connection", "test", "c"]);
    let top = &env.run(&["-o", "json", "history", "--limit", "1"]).json()[0];
    assert_eq!(top["action"], "restored");

    // --no-test commits a value nobody checked, and says so.
    let run = expect(
        env.run_stdin(
            &["connection", "rotate", "c", "--password-stdin", "--no-test"],
            "untested-pw",
        ),
        0,
    );
    assert!(
        run.stderr
            .contains("--no-test: the new password is committed without testing it"),
        "{}",
        run.stderr
    );
    assert_eq!(keyring_entries(None, &id)[&account], "untested-pw");
    env.fails(&["connection", "test", "c"], 8);
    expect(env.run(&["connection", "rotate", "c", "--restore"]), 0);
    env.ok(&["connection", "test", "c"]);

    // A new reference (env:) is read, tested, and named by the record; the
    // keyring value it replaces lives on as the previous one.
    env.ok(&["connection", "edit", "c", "--url", &accepting("from-env")]);
    let mut cmd = env.cmd();
    cmd.env("ROTATED_PW", "from-env").args([
        "connection",
        "rotate",
        "c",
        "--password-env",
        "ROTATED_PW",
    ]);
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        env.store_text().contains("password = \"env:ROTATED_PW\""),
        "{}",
        env.store_text()
    );
    let entries = keyring_entries(None, &id);
    assert!(
        !entries.contains_key(&account),
        "the replaced keyring entry is gone"
    );
    assert_eq!(entries[&format!("{account}.previous")], "first-pw");

    // Removing the connection removes the value kept for it.
    expect(
        env.run_stdin(&["connection", "edit", "c", "--password-stdin"], "kept-pw"),
        0,
    );
    env.ok(&["connection", "remove", "c"]);
    assert_eq!(keyring_entries(None, &id), Default::default());
}

#[test]
fn a_client_secret_rotation_fetches_a_fresh_token_with_it() {
    let env = TestEnv::new();
    let s = servers();
    let good = s.oauth_state.client_secret.clone();
    env.ok(&["integration", "add", "inc"]);
    let run = env.run_stdin(
        &[
            "oauth-profile",
            "add",
            "idp",
            "--token-url",
            &s.oauth.url("/oauth/token"),
            "--client-id",
            &s.oauth_state.client_id,
            "--client-secret-stdin",
        ],
        "stale-secret",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let api = s.oauth.url("/api");
    for (name, active) in [("o1", true), ("o2", false)] {
        let mut args = vec![
            "connection",
            "add",
            name,
            "--integration",
            "inc",
            "--env",
            "test",
            "--url",
            &api,
            "--ca-bundle",
            &s.ca,
            "--oauth-profile",
            "idp",
        ];
        if active {
            args.push("--activate");
        }
        env.ok(&args);
    }
    env.fails(&["connection", "test", "o1"], 8);
    let id = store_id(&env);

    // The right secret: a token is fetched with it (not taken from a cache), the test passes.
    let before = s.oauth_state.requests();
    let run = expect(
        env.run_stdin(
            &["oauth-profile", "rotate", "idp", "--client-secret-stdin"],
            &good,
        ),
        0,
    );
    assert!(
        run.stderr
            .contains("test of connection 'o1' with the new client secret: ok"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("connection 'o2'"),
        "only active connections are tested: {}",
        run.stderr
    );
    assert!(
        s.oauth_state.requests() > before,
        "a token request with the new secret"
    );
    let entries = keyring_entries(None, &id);
    assert_eq!(
        entries[&format!("{id}/oauth_profile/idp/client_secret")],
        good
    );
    assert_eq!(
        entries[&format!("{id}/oauth_profile/idp/client_secret.previous")],
        "stale-secret"
    );
    assert!(
        !entries.contains_key(&format!("{id}/oauth_profile/idp/token")),
        "the trial's token is not cached"
    );
    env.ok(&["connection", "test", "o1"]);

    // A cached token must not let a wrong secret pass: the test fetches anew and fails.
    assert!(keyring_entries(None, &id).contains_key(&format!("{id}/oauth_profile/idp/token")));
    let store = env.store_bytes();
    let keyring_before = keyring_entries(None, &id);
    let run = expect(
        env.run_stdin(
            &["oauth-profile", "rotate", "idp", "--client-secret-stdin"],
            "wrong-secret",
        ),
        8,
    );
    assert!(
        run.stderr.contains("rejected the client secret"),
        "{}",
        run.stderr
    );
    assert_eq!(env.store_bytes(), store);
    assert_eq!(keyring_entries(None, &id), keyring_before);
    env.ok(&["connection", "test", "o1"]);

    // --connection: a connection that does not use the profile is refused.
    env.ok(&[
        "connection",
        "add",
        "other",
        "--integration",
        "inc",
        "--env",
        "sandbox",
        "--url",
        "https://x.example.com",
    ]);
    let run = expect(
        env.run_stdin(
            &[
                "oauth-profile",
                "rotate",
                "idp",
                "--client-secret-stdin",
                "--connection",
                "other",
            ],
            &good,
        ),
        4,
    );
    assert!(
        run.stderr.contains("does not use oauth-profile 'idp'"),
        "{}",
        run.stderr
    );
    expect(
        env.run_stdin(
            &[
                "oauth-profile",
                "rotate",
                "idp",
                "--client-secret-stdin",
                "--connection",
                "o2",
            ],
            &good,
        ),
        0,
    );
}

#[test]
fn a_mid_server_no_connection_uses_is_refused() {
    let env = TestEnv::new();
    let run = env.run_stdin(
        &[
            "mid-server",
            "add",
            "m",
            "--url",
            "http://127.0.0.1:3128",
            "--user",
            "mid",
            "--password-stdin",
        ],
        "mid-old",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = store_id(&env);
    let store = env.store_bytes();
    let keyring_before = keyring_entries(None, &id);
    let run = expect(
        env.run_stdin(
            &["mid-server", "rotate", "m", "--password-stdin"],
            "mid-new",
        ),
        4,
    );
    assert!(
        run.stderr.contains("no connection uses mid-server 'm'"),
        "{}",
        run.stderr
    );
    let run = expect(
        env.run_stdin(
            &["mid-server", "rotate", "m", "--password-stdin", "--restore"],
            "x",
        ),
        2,
    );
    assert!(run.stderr.contains("--restore"), "{}", run.stderr);
    assert_eq!(env.store_bytes(), store);
    assert_eq!(keyring_entries(None, &id), keyring_before);
}

#[test]
fn a_mid_server_password_is_tested_through_the_real_proxy_before_the_swap() {
    // tinyproxy accepts only the new MID password; the endpoint behind it
    // accepts the connection's own Basic password.
    let dir = tempfile::tempdir().expect("dir");
    let proxy = Tinyproxy::start(&dir.path().join("proxy"), "mid", "m1d-New-77");
    let env = TestEnv::new();
    let run = env.run_stdin(
        &[
            "mid-server",
            "add",
            "m",
            "--url",
            &proxy.url(),
            "--user",
            "mid",
            "--password-stdin",
        ],
        "mid-old-1",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    basic_connection(&env, "svc-pw-9", "svc-pw-9");
    env.ok(&["connection", "edit", "c", "--mid-server", "m"]);
    let id = store_id(&env);
    let account = format!("{id}/mid_server/m/password");
    // The proxy refuses the old password: an authentication failure.
    env.fails(&["connection", "test", "c"], 8);

    // A candidate the proxy refuses: tested, refused, nothing changes.
    let store = env.store_bytes();
    let keyring = keyring_entries(None, &id);
    let connects = proxy.log_text().matches("CONNECT").count();
    let run = env.run_stdin(
        &["mid-server", "rotate", "m", "--password-stdin"],
        "wrong-9",
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    for words in [
        "the MID server refused the credentials",
        "nothing was changed: mid-server 'm' keeps its current proxy password",
    ] {
        assert!(run.stderr.contains(words), "{}", run.stderr);
    }
    assert_eq!(env.store_bytes(), store, "the store changed");
    assert_eq!(keyring_entries(None, &id), keyring, "the keyring changed");
    assert!(!run.stderr.contains("wrong-9"), "{}", run.stderr);

    // The password the proxy accepts: the test goes through the proxy to
    // the endpoint, then the value is swapped and the old one kept.
    let run = expect(
        env.run_stdin(
            &["mid-server", "rotate", "m", "--password-stdin"],
            "m1d-New-77",
        ),
        0,
    );
    assert!(
        proxy.log_text().matches("CONNECT").count() > connects,
        "the test did not go through the proxy:\n{}",
        proxy.log_text()
    );
    assert!(
        run.stderr
            .contains("rotated the proxy password of mid-server 'm' (tested through 'c'"),
        "{}",
        run.stderr
    );
    let entries = keyring_entries(None, &id);
    assert_eq!(
        entries.get(&account).map(String::as_str),
        Some("m1d-New-77")
    );
    assert_eq!(
        entries
            .get(&format!("{account}.previous"))
            .map(String::as_str),
        Some("mid-old-1")
    );
    env.ok(&["connection", "test", "c"]);
    assert!(!run.stderr.contains("m1d-New-77") && !run.stdout.contains("m1d-New-77"));
}
