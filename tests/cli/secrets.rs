//! Secrets against the real OS keyring (the Secret Service of the private
//! D-Bus session that scripts/test.sh starts, and kernel keyutils in its
//! session keyring), the env/file/cmd sources, failures, and leaks.

use crate::private_bus;

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{TestEnv, store_id, write};
use private_bus::PrivateBus;

/// What one run printed, and how it ended.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs connctl with extra environment variables and optional stdin.
fn run(env: &TestEnv, vars: &[(&str, &str)], args: &[&str], stdin: Option<&str>) -> Out {
    let mut cmd = env.cmd();
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.args(args);
    if let Some(input) = stdin {
        cmd.write_stdin(input.to_string());
    }
    let output = cmd.output().expect("run connctl");
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[track_caller]
fn expect(out: &Out, code: i32, args: &[&str]) {
    assert_eq!(
        out.code, code,
        "connctl {args:?}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
}

/// The shared session of scripts/test.sh must be there: no silent skipping.
fn require_session() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "no D-Bus session: run the keyring tests through scripts/test.sh"
    );
}

/// The value the Secret Service holds for a connctl account, read from outside.
fn secret_tool_lookup(account: &str) -> Option<String> {
    let out = Command::new("secret-tool")
        .args(["lookup", "service", "connctl", "username", account])
        .output()
        .expect("secret-tool (package libsecret-tools) must be installed");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The value kernel keyutils holds for a connctl account, read with keyctl.
fn keyctl_lookup(account: &str) -> Option<String> {
    let description = format!("keyring:{account}@connctl");
    let found = Command::new("keyctl")
        .args(["search", "@s", "user", &description])
        .output()
        .expect("keyctl (package keyutils) must be installed");
    if !found.status.success() {
        return None;
    }
    let id = String::from_utf8_lossy(&found.stdout).trim().to_string();
    let value = Command::new("keyctl")
        .args(["pipe", &id])
        .output()
        .expect("keyctl pipe");
    value
        .status
        .success()
        .then(|| String::from_utf8_lossy(&value.stdout).into_owned())
}

const URL: &str = "https://partner.example.com/api";

fn add_integration(env: &TestEnv) {
    env.ok(&["integration", "add", "sync"]);
}

/// `connection add NAME` with basic auth and the given secret flags.
fn add_args<'a>(name: &'a str, secret: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "connection",
        "add",
        name,
        "--integration",
        "sync",
        "--env",
        "test",
        "--url",
        URL,
        "--auth",
        "basic",
        "--user",
        "svc",
    ];
    args.extend_from_slice(secret);
    args
}

// ----- the keyring ---------------------------------------------------------

#[test]
fn stdin_password_lives_in_the_secret_service_and_not_in_the_store() {
    require_session();
    let env = TestEnv::new();
    add_integration(&env);
    let args = add_args("sync.test", &["--password-stdin"]);
    let out = run(&env, &[], &args, Some("ss-value-8841\n"));
    expect(&out, 0, &args);

    let account = format!("{}/connection/sync.test/password", store_id(&env));
    assert_eq!(
        secret_tool_lookup(&account).as_deref(),
        Some("ss-value-8841")
    );
    let store = env.store_text();
    assert!(
        !store.contains("ss-value-8841"),
        "the value is in the store:\n{store}"
    );
    assert!(store.contains("password = \"keyring\""), "{store}");

    let table = env.ok(&["doctor"]);
    assert!(table.contains("Secret Service"), "{table}");
    assert!(table.contains("round trip      ok"), "{table}");
    assert!(
        table.contains("connection sync.test  password  keyring  ok"),
        "{table}"
    );
    let doctor = env.run(&["doctor", "-o", "json"]);
    assert_eq!(doctor.code, 0, "{}", doctor.stderr);
    let report = doctor.json();
    assert_eq!(report["keyring"]["backend"], "secret-service");
    assert_eq!(report["keyring"]["ok"], true);
    assert_eq!(report["secrets"][0]["ok"], true);

    // A new value replaces the old one.
    let edit = ["connection", "edit", "sync.test", "--password-stdin"];
    expect(&run(&env, &[], &edit, Some("ss-value-9952")), 0, &edit);
    assert_eq!(
        secret_tool_lookup(&account).as_deref(),
        Some("ss-value-9952")
    );

    env.ok(&["connection", "remove", "sync.test"]);
    assert_eq!(
        secret_tool_lookup(&account),
        None,
        "the entry outlived its record"
    );
}

#[test]
fn keyutils_backend_when_asked_for() {
    require_session();
    let env = TestEnv::new();
    let keyutils = [("CONNCTL_KEYRING", "keyutils")];
    add_integration(&env);
    let args = add_args("sync.test", &["--password-stdin"]);
    expect(
        &run(&env, &keyutils, &args, Some("ku-value-3318")),
        0,
        &args,
    );

    let account = format!("{}/connection/sync.test/password", store_id(&env));
    assert_eq!(keyctl_lookup(&account).as_deref(), Some("ku-value-3318"));
    assert_eq!(
        secret_tool_lookup(&account),
        None,
        "went to the Secret Service"
    );
    assert!(!env.store_text().contains("ku-value-3318"));

    let doctor = run(&env, &keyutils, &["doctor", "-o", "json"], None);
    expect(&doctor, 0, &["doctor"]);
    let report: serde_json::Value = serde_json::from_str(&doctor.stdout).expect("json");
    assert_eq!(report["keyring"]["backend"], "keyutils");
    assert_eq!(report["keyring"]["persistent"], false);

    let remove = ["connection", "remove", "sync.test"];
    expect(&run(&env, &keyutils, &remove, None), 0, &remove);
    assert_eq!(keyctl_lookup(&account), None, "the key outlived its record");
}

#[test]
fn no_session_bus_at_all_means_keyutils() {
    require_session();
    let env = TestEnv::new();
    let mut cmd = env.cmd();
    cmd.env_remove("DBUS_SESSION_BUS_ADDRESS")
        .args(["doctor", "-o", "json"]);
    let out = cmd.output().expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["keyring"]["backend"], "keyutils");
    assert_eq!(report["keyring"]["ok"], true);
}

#[test]
fn a_bus_without_secret_service_falls_back_to_keyutils_unless_forced() {
    require_session();
    let bus = PrivateBus::without_secret_service();
    let env = TestEnv::new();
    let on_bus = [("DBUS_SESSION_BUS_ADDRESS", bus.address.as_str())];
    let doctor = run(&env, &on_bus, &["doctor", "-o", "json"], None);
    expect(&doctor, 0, &["doctor"]);
    let report: serde_json::Value = serde_json::from_str(&doctor.stdout).expect("json");
    assert_eq!(report["keyring"]["backend"], "keyutils");
    assert!(
        report["keyring"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("has no Secret Service")),
        "{report}"
    );

    add_integration(&env);
    let before = env.store_bytes();
    let forced = [
        ("DBUS_SESSION_BUS_ADDRESS", bus.address.as_str()),
        ("CONNCTL_KEYRING", "secret-service"),
    ];
    let args = add_args("sync.test", &["--password-stdin"]);
    let out = run(&env, &forced, &args, Some("forced-value"));
    expect(&out, 5, &args);
    assert!(
        out.stderr.contains("no Secret Service available")
            && out.stderr.contains("org.freedesktop.secrets"),
        "{}",
        out.stderr
    );
    assert_eq!(env.store_bytes(), before, "the store changed");
}

#[test]
fn unknown_backend_name_is_refused() {
    let env = TestEnv::new();
    let out = run(&env, &[("CONNCTL_KEYRING", "plaintext")], &["doctor"], None);
    assert!(
        out.all()
            .contains("CONNCTL_KEYRING=plaintext is not a keyring backend"),
        "{}",
        out.all()
    );
}

// ----- keyring failures ----------------------------------------------------

#[test]
fn dead_session_bus_is_a_clear_error_and_leaves_the_store_alone() {
    let env = TestEnv::new();
    add_integration(&env);
    let before = env.store_bytes();
    let dead = PrivateBus::dead_address(env.dir.path());
    let on_dead = [("DBUS_SESSION_BUS_ADDRESS", dead.as_str())];
    let args = add_args("sync.test", &["--password-stdin"]);
    let out = run(&env, &on_dead, &args, Some("dead-bus-value"));
    expect(&out, 5, &args);
    for needle in [
        "no Secret Service available",
        "Secret Service",
        "Connection refused",
        "--password-env",
    ] {
        assert!(
            out.stderr.contains(needle),
            "no {needle:?} in:\n{}",
            out.stderr
        );
    }
    assert_eq!(env.store_bytes(), before, "the store changed");
    assert!(!out.all().contains("dead-bus-value"));
}

#[test]
fn locked_collection_is_a_clear_error() {
    let bus = PrivateBus::with_gnome_keyring();
    let env = TestEnv::new();
    let on_bus = [("DBUS_SESSION_BUS_ADDRESS", bus.address.as_str())];
    add_integration(&env);
    let args = add_args("sync.test", &["--password-stdin"]);
    expect(&run(&env, &on_bus, &args, Some("before-lock")), 0, &args);
    expect(&run(&env, &on_bus, &["doctor"], None), 0, &["doctor"]);

    bus.lock_login_collection();
    let before = env.store_bytes();
    let args = add_args("sync.other", &["--password-stdin"]);
    let out = run(&env, &on_bus, &args, Some("after-lock"));
    expect(&out, 5, &args);
    assert!(out.stderr.contains("locked"), "{}", out.stderr);
    assert!(out.stderr.contains("Secret Service"), "{}", out.stderr);
    assert!(out.stderr.contains("--password-env"), "{}", out.stderr);
    assert_eq!(env.store_bytes(), before, "the store changed");

    let doctor = run(&env, &on_bus, &["doctor"], None);
    expect(&doctor, 5, &["doctor"]);
    assert!(doctor.all().contains("locked"), "{}", doctor.all());
}

#[test]
fn hung_keyring_times_out() {
    let bus = PrivateBus::silent();
    let env = TestEnv::new();
    add_integration(&env);
    let before = env.store_bytes();
    let vars = [
        ("DBUS_SESSION_BUS_ADDRESS", bus.address.as_str()),
        ("CONNCTL_KEYRING_TIMEOUT", "1"),
    ];
    let args = add_args("sync.test", &["--password-stdin"]);
    let out = run(&env, &vars, &args, Some("hung-value"));
    expect(&out, 5, &args);
    assert!(
        out.stderr
            .contains("Secret Service did not answer within 1s"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("CONNCTL_KEYRING_TIMEOUT"),
        "{}",
        out.stderr
    );
    assert_eq!(env.store_bytes(), before, "the store changed");
}

#[test]
fn missing_keyring_entry_names_the_fix() {
    require_session();
    let env = TestEnv::new();
    add_integration(&env);
    let args = add_args("sync.test", &["--password-stdin"]);
    expect(&run(&env, &[], &args, Some("copy-source")), 0, &args);
    // Secrets are never copied: the copy's keyring entry does not exist.
    env.ok(&[
        "connection",
        "copy",
        "sync.test",
        "sync.dev",
        "--env",
        "development",
    ]);
    let account = format!("{}/connection/sync.dev/password", store_id(&env));
    assert_eq!(secret_tool_lookup(&account), None);

    let out = env.fails(&["doctor"], 5);
    assert!(
        out.stdout
            .contains("no keyring entry for connection 'sync.dev' password"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("connctl connection edit sync.dev --password-stdin"),
        "{}",
        out.stderr
    );
    env.ok(&["connection", "remove", "sync.test"]);
}

// ----- env, file and cmd sources ---------------------------------------------

#[test]
fn env_source_is_read_when_used() {
    let env = TestEnv::new();
    add_integration(&env);
    env.ok(&add_args("sync.test", &["--password-env", "SYNC_PW"]));
    assert!(env.store_text().contains("password = \"env:SYNC_PW\""));

    let out = run(&env, &[], &["doctor"], None);
    expect(&out, 5, &["doctor"]);
    assert!(
        out.all()
            .contains("environment variable SYNC_PW is not set"),
        "{}",
        out.all()
    );
    let out = run(&env, &[("SYNC_PW", "")], &["doctor"], None);
    expect(&out, 5, &["doctor"]);
    assert!(
        out.all().contains("environment variable SYNC_PW is empty"),
        "{}",
        out.all()
    );
    expect(
        &run(&env, &[("SYNC_PW", "x")], &["doctor"], None),
        0,
        &["doctor"],
    );
}

#[test]
fn file_source_errors_name_the_path() {
    let env = TestEnv::new();
    add_integration(&env);
    let missing = env.path("nowhere/pw.txt");
    let missing = missing.to_str().unwrap();
    env.ok(&add_args("sync.missing", &["--password-file", missing]));
    let folder = env.path("a-folder");
    std::fs::create_dir_all(&folder).unwrap();
    env.ok(&add_args(
        "sync.folder",
        &["--password-file", folder.to_str().unwrap()],
    ));
    let empty = env.path("empty.txt");
    write(&empty, "\n");
    env.ok(&add_args(
        "sync.empty",
        &["--password-file", empty.to_str().unwrap()],
    ));
    let good = env.path("good.txt");
    write(&good, "file-value\n");
    env.ok(&add_args(
        "sync.good",
        &["--password-file", good.to_str().unwrap()],
    ));

    let out = env.fails(&["doctor", "-o", "json"], 5);
    let report = out.json();
    let status = |name: &str| {
        report["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {report}"))
            .clone()
    };
    let error = |name: &str| status(name)["error"].as_str().unwrap_or("").to_string();
    assert!(
        error("sync.missing").contains(missing),
        "{}",
        error("sync.missing")
    );
    assert!(
        error("sync.missing").contains("No such file"),
        "{}",
        error("sync.missing")
    );
    assert!(
        error("sync.folder").contains("a-folder"),
        "{}",
        error("sync.folder")
    );
    assert!(
        error("sync.empty").contains("is empty"),
        "{}",
        error("sync.empty")
    );
    assert_eq!(status("sync.good")["ok"], true);
    assert!(
        out.stderr.contains("3 of 4 secrets cannot be resolved"),
        "{}",
        out.stderr
    );
}

#[test]
fn relative_file_source_is_made_absolute() {
    let env = TestEnv::new();
    add_integration(&env);
    write(&env.path("rel/pw.txt"), "v");
    let mut cmd = env.cmd();
    cmd.current_dir(env.dir.path())
        .args(add_args("sync.test", &["--password-file", "rel/pw.txt"]));
    assert!(cmd.output().unwrap().status.success());
    let expected = format!("file:{}", env.path("rel/pw.txt").display());
    assert!(env.store_text().contains(&expected), "{}", env.store_text());
    env.ok(&["doctor"]);
}

#[test]
fn cmd_source_runs_without_a_shell_and_reports_failures() {
    let env = TestEnv::new();
    add_integration(&env);
    let secret_file = env.path("vault.txt");
    write(&secret_file, "cmd-value\n");
    let good = format!("cat '{}'", secret_file.display());
    env.ok(&add_args("sync.good", &["--password-cmd", &good]));
    // Without a shell, `;` and `$X` are plain arguments to printf.
    env.ok(&add_args(
        "sync.noshell",
        &["--password-cmd", "printf %s a;b $HOME"],
    ));
    let partial = env.path("partial.txt");
    write(&partial, "printed-to-stdout");
    let failing = format!(
        "sh -c 'cat {}; echo vault says no >&2; exit 3'",
        partial.display()
    );
    env.ok(&add_args("sync.fails", &["--password-cmd", &failing]));
    env.ok(&add_args("sync.silent", &["--password-cmd", "true"]));
    let misdirected = format!("sh -c 'cat {} >&2'", secret_file.display());
    env.ok(&add_args("sync.stderr", &["--password-cmd", &misdirected]));
    env.ok(&add_args(
        "sync.absent",
        &["--password-cmd", "no-such-program-xyz --get"],
    ));
    env.ok(&add_args("sync.slow", &["--password-cmd", "sleep 30"]));

    let out = run(
        &env,
        &[("CONNCTL_CMD_TIMEOUT", "1")],
        &["doctor", "-o", "json"],
        None,
    );
    expect(&out, 5, &["doctor"]);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let error = |name: &str| {
        report["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["error"].as_str())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(error("sync.good"), "");
    assert_eq!(error("sync.noshell"), "");
    let fails = error("sync.fails");
    assert!(
        fails.contains("exit status 3") && fails.contains("vault says no"),
        "{fails}"
    );
    assert!(
        error("sync.silent").contains("printed nothing"),
        "{}",
        error("sync.silent")
    );
    assert!(
        error("sync.absent").contains("cannot run"),
        "{}",
        error("sync.absent")
    );
    assert!(error("sync.absent").contains("no-such-program-xyz"));
    assert!(
        error("sync.slow").contains("did not finish within 1s"),
        "{}",
        error("sync.slow")
    );
    let stderr_only = error("sync.stderr");
    assert!(stderr_only.contains("wrote to stderr"), "{stderr_only}");
    // A failing command's stdout may be a partial secret, and a command that
    // succeeds with stderr alone wrote the secret there: never shown.
    assert!(!out.all().contains("printed-to-stdout"), "{}", out.all());
    assert!(!out.all().contains("cmd-value"), "{}", out.all());
    let send = run(
        &env,
        &[],
        &["-vv", "connection", "test", "sync.stderr"],
        None,
    );
    expect(&send, 5, &["connection", "test"]);
    assert!(!send.all().contains("cmd-value"), "{}", send.all());
}

#[test]
fn bad_secret_input_is_a_usage_error() {
    let env = TestEnv::new();
    add_integration(&env);
    let before = env.store_bytes();
    let args = add_args("sync.test", &["--password-stdin"]);
    let out = run(&env, &[], &args, Some("\n"));
    expect(&out, 2, &args);
    assert!(out.stderr.contains("empty"), "{}", out.stderr);
    let args = add_args("sync.test", &["--password-cmd", "echo 'unterminated"]);
    let out = run(&env, &[], &args, None);
    expect(&out, 2, &args);
    assert!(out.stderr.contains("unterminated"), "{}", out.stderr);
    assert_eq!(env.store_bytes(), before);
}

// ----- removal -------------------------------------------------------------

#[test]
fn removing_records_removes_their_keyring_entries() {
    require_session();
    let env = TestEnv::new();
    add_integration(&env);
    let oauth = [
        "oauth-profile",
        "add",
        "idp",
        "--token-url",
        "https://idp.example.com/token",
        "--client-id",
        "cid",
        "--client-secret-stdin",
    ];
    expect(&run(&env, &[], &oauth, Some("oauth-value")), 0, &oauth);
    let mid = [
        "mid-server",
        "add",
        "mid",
        "--url",
        "http://127.0.0.1:3128",
        "--user",
        "m",
        "--password-stdin",
    ];
    expect(&run(&env, &[], &mid, Some("mid-value")), 0, &mid);
    let inbound = ["inbound-user", "add", "remote", "--password-stdin"];
    expect(
        &run(&env, &[], &inbound, Some("inbound-value")),
        0,
        &inbound,
    );
    let id = store_id(&env);
    let accounts = [
        format!("{id}/oauth_profile/idp/client_secret"),
        format!("{id}/mid_server/mid/password"),
        format!("{id}/inbound_user/remote/password"),
    ];
    for (account, value) in accounts
        .iter()
        .zip(["oauth-value", "mid-value", "inbound-value"])
    {
        assert_eq!(
            secret_tool_lookup(account).as_deref(),
            Some(value),
            "{account}"
        );
    }
    env.ok(&["doctor"]);

    env.ok(&["oauth-profile", "remove", "idp"]);
    env.ok(&["mid-server", "remove", "mid"]);
    env.ok(&["inbound-user", "remove", "remote"]);
    for account in &accounts {
        assert_eq!(
            secret_tool_lookup(account),
            None,
            "{account} outlived its record"
        );
    }
}

#[test]
fn moving_a_password_out_of_the_keyring_deletes_the_entry() {
    require_session();
    let env = TestEnv::new();
    add_integration(&env);
    let args = add_args("sync.test", &["--password-stdin"]);
    expect(&run(&env, &[], &args, Some("moving-value")), 0, &args);
    let account = format!("{}/connection/sync.test/password", store_id(&env));
    assert!(secret_tool_lookup(&account).is_some());
    env.ok(&[
        "connection",
        "edit",
        "sync.test",
        "--password-env",
        "SYNC_PW",
    ]);
    assert_eq!(secret_tool_lookup(&account), None);
}

// ----- leaks -----------------------------------------------------------------

const CANARY: &str = "LEAK-canary-5e8d1c";

#[test]
fn secret_values_never_leak() {
    require_session();
    let env = TestEnv::new();
    let value = |source: &str| format!("{CANARY}-{source}");
    let file = env.path("pw.txt");
    write(&file, &value("file"));
    let vault = env.path("vault.txt");
    write(&vault, &value("cmd"));
    let env_value = value("env");
    let vars = [("SYNC_PW", env_value.as_str())];
    let file_arg = file.to_str().unwrap().to_string();
    let cmd_arg = format!("cat {}", vault.display());

    let mut outputs: Vec<(String, Out)> = Vec::new();
    let mut step = |args: Vec<&str>, stdin: Option<String>, code: i32| {
        let out = run(&env, &vars, &args, stdin.as_deref());
        expect(&out, code, &args);
        outputs.push((args.join(" "), out));
    };

    step(vec!["-vv", "integration", "add", "sync"], None, 0);
    step(
        add_args("sync.stdin", &["-vv", "--password-stdin"]),
        Some(value("stdin")),
        0,
    );
    step(
        add_args("sync.env", &["-vv", "--password-env", "SYNC_PW"]),
        None,
        0,
    );
    step(
        add_args("sync.file", &["-vv", "--password-file", &file_arg]),
        None,
        0,
    );
    step(
        add_args("sync.cmd", &["-vv", "--password-cmd", &cmd_arg]),
        None,
        0,
    );
    step(
        vec![
            "-vv",
            "oauth-profile",
            "add",
            "idp",
            "--token-url",
            "https://idp.example.com/t",
            "--client-id",
            "c",
            "--client-secret-stdin",
        ],
        Some(value("oauth")),
        0,
    );
    step(
        vec![
            "-vv",
            "mid-server",
            "add",
            "mid",
            "--url",
            "http://127.0.0.1:3128",
            "--user",
            "m",
            "--password-stdin",
        ],
        Some(value("mid")),
        0,
    );
    step(
        vec!["-vv", "inbound-user", "add", "remote", "--password-stdin"],
        Some(value("inbound")),
        0,
    );
    step(
        vec![
            "-vv",
            "inbound-user",
            "set-password",
            "remote",
            "--password-stdin",
        ],
        Some(value("inbound2")),
        0,
    );
    step(
        vec![
            "-vv",
            "connection",
            "edit",
            "sync.stdin",
            "--password-stdin",
        ],
        Some(value("edit")),
        0,
    );
    for format in ["table", "json"] {
        for kind in ["connection", "oauth-profile", "mid-server", "inbound-user"] {
            step(vec!["-vv", "-o", format, kind, "list"], None, 0);
        }
        for (kind, name) in [
            ("connection", "sync.stdin"),
            ("connection", "sync.env"),
            ("connection", "sync.file"),
            ("connection", "sync.cmd"),
            ("oauth-profile", "idp"),
            ("mid-server", "mid"),
            ("inbound-user", "remote"),
        ] {
            step(vec!["-vv", "-o", format, kind, "show", name], None, 0);
        }
        // doctor resolves every secret: the values are really used here.
        step(vec!["-vv", "-o", format, "doctor"], None, 0);
        step(vec!["-vv", "-o", format, "export"], None, 0);
    }

    for (what, out) in &outputs {
        assert!(
            !out.all().contains(CANARY),
            "`connctl {what}` printed a secret:\n{}",
            out.all()
        );
    }
    let store = env.store_text();
    assert!(
        !store.contains(CANARY),
        "the store holds a secret:\n{store}"
    );
    // The stdin/oauth/mid/inbound values did reach the keyring.
    let id = store_id(&env);
    assert_eq!(
        secret_tool_lookup(&format!("{id}/connection/sync.stdin/password")),
        Some(value("edit"))
    );
    for (kind, name) in [
        ("connection", "sync.stdin"),
        ("oauth-profile", "idp"),
        ("mid-server", "mid"),
        ("inbound-user", "remote"),
    ] {
        env.ok(&[kind, "remove", name]);
    }
}

#[test]
fn secret_values_are_not_in_the_process_command_line() {
    require_session();
    let env = TestEnv::new();
    add_integration(&env);
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("connctl"));
    child
        .env_clear()
        .env("HOME", &env.home)
        .env("CONNCTL_STORE", &env.store)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default(),
        );
    let mut child = child
        .args(add_args("sync.proc", &["-vv", "--password-stdin"]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn connctl");
    // connctl is now waiting for stdin: look at it from outside.
    // Until the exec, /proc shows the forked test process: wait for connctl.
    let read_cmdline = || {
        let bytes = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap_or_default();
        String::from_utf8_lossy(&bytes).replace('\0', " ")
    };
    let mut cmdline = read_cmdline();
    for _ in 0..1000 {
        if cmdline.contains("--password-stdin") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        cmdline = read_cmdline();
    }
    assert!(cmdline.contains("--password-stdin"), "{cmdline}");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{CANARY}-proc").as_bytes())
        .unwrap();
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!cmdline.contains(CANARY), "{cmdline}");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!printed.contains(CANARY), "{printed}");
    env.ok(&["connection", "remove", "sync.proc"]);
}

#[test]
fn terminal_prompt_reads_without_echo_into_the_keyring() {
    require_session();
    let env = TestEnv::new();
    add_integration(&env);
    let connctl = assert_cmd::cargo::cargo_bin!("connctl");
    let add = add_args("sync.tty", &[]).join(" ");
    // `script` runs connctl on a pseudo-terminal of its own.
    let mut child = Command::new("script")
        .args(["-qec", &format!("{} {add}", connctl.display()), "/dev/null"])
        .env_clear()
        .env("HOME", &env.home)
        .env("CONNCTL_STORE", &env.store)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (package bsdutils) must be installed");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    // Type only once the prompt is up (echo is off by then).
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("password for svc") {
        seen.extend(rx.recv().expect("connctl ended before prompting"));
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{CANARY}-tty\n").as_bytes())
        .unwrap();
    let status = child.wait().expect("wait");
    drop(stdin);
    while let Ok(chunk) = rx.recv() {
        seen.extend(chunk);
    }
    let screen = String::from_utf8_lossy(&seen);
    assert!(status.success(), "{screen}");
    assert!(screen.contains("added connection 'sync.tty'"), "{screen}");
    assert!(
        !screen.contains(CANARY),
        "the typed secret was echoed:\n{screen}"
    );
    let account = format!("{}/connection/sync.tty/password", store_id(&env));
    assert_eq!(secret_tool_lookup(&account), Some(format!("{CANARY}-tty")));
    env.ok(&["connection", "remove", "sync.tty"]);
}

/// A user or password written into a URL would land in the store: refused, and
/// no message repeats it (endpoint, token and MID server URLs, add, edit,
/// import, a hand-edited store, a proxy from the environment).
#[test]
fn credentials_in_urls_are_refused_and_never_repeated() {
    let env = TestEnv::new();
    add_integration(&env);
    let secret = format!("{CANARY}-url");
    let with = |url: &str| url.replacen("://", &format!("://svc:{secret}@"), 1);
    let mut outputs: Vec<(String, Out)> = Vec::new();
    let mut step = |args: &[&str], vars: &[(&str, &str)], code: i32| {
        let out = run(&env, vars, args, None);
        expect(&out, code, args);
        outputs.push((args.join(" "), out));
    };

    let endpoint = with(URL);
    let token_url = with("https://idp.example.com/t");
    let mid_url = with("http://127.0.0.1:3128");
    let no_host = format!("https://svc:{secret}@");
    for url in [endpoint.as_str(), no_host.as_str()] {
        step(
            &[
                "-vv",
                "connection",
                "add",
                "c",
                "--integration",
                "sync",
                "--env",
                "test",
                "--url",
                url,
                "--auth",
                "none",
            ],
            &[],
            4,
        );
    }
    step(
        &[
            "-vv",
            "oauth-profile",
            "add",
            "idp",
            "--token-url",
            &token_url,
            "--client-id",
            "c",
            "--client-secret-env",
            "X",
        ],
        &[],
        4,
    );
    step(
        &["-vv", "mid-server", "add", "mid", "--url", &mid_url],
        &[],
        4,
    );
    let before = env.store_text();
    assert!(!before.contains(CANARY), "{before}");

    // Edits: the record keeps its clean URL.
    step(
        &[
            "connection",
            "add",
            "c",
            "--integration",
            "sync",
            "--env",
            "test",
            "--url",
            URL,
            "--auth",
            "none",
        ],
        &[],
        0,
    );
    step(
        &["-vv", "connection", "edit", "c", "--url", &endpoint],
        &[],
        4,
    );
    step(
        &["mid-server", "add", "mid", "--url", "http://127.0.0.1:3128"],
        &[],
        0,
    );
    step(
        &["-vv", "mid-server", "edit", "mid", "--url", &mid_url],
        &[],
        4,
    );
    let clean = env.store_text();
    assert!(!clean.contains(CANARY), "{clean}");

    // An import file and a hand-edited store are refused the same way.
    let exported = env.ok(&["export"]);
    let dirty = exported.replace("http://127.0.0.1:3128", &mid_url);
    assert_ne!(dirty, exported);
    let import = env.path("import.toml");
    write(&import, &dirty);
    step(
        &["-vv", "import", import.to_str().unwrap(), "--replace"],
        &[],
        4,
    );
    assert_eq!(env.store_text(), clean);
    let hand_edited = clean.replace("http://127.0.0.1:3128", &mid_url);
    write(&env.store, &hand_edited);
    step(&["-vv", "mid-server", "list"], &[], 4);
    step(&["-vv", "-o", "json", "connection", "show", "c"], &[], 4);
    write(&env.store, &clean);

    // A proxy from the environment may carry credentials (curl's convention);
    // they are used, never printed.
    let proxy = format!(
        "http://svc:{secret}@127.0.0.1:{}",
        crate::outbound_servers::refused_port()
    );
    for output in ["table", "json"] {
        step(
            &["-vv", "-o", output, "connection", "test", "c"],
            &[("https_proxy", proxy.as_str())],
            6,
        );
        step(
            &["-vv", "connection", "send", "c", "-i", "--yes"],
            &[("HTTPS_PROXY", proxy.as_str())],
            6,
        );
    }

    for (what, out) in &outputs {
        assert!(
            !out.all().contains(CANARY),
            "`connctl {what}` printed a secret:\n{}",
            out.all()
        );
    }
    assert!(
        outputs
            .iter()
            .any(|(_, o)| o.stderr.contains("carries credentials")),
        "no message says why the URL was refused"
    );
}
