//! The store file through the binary: location, permissions, format, broken
//! or rule-breaking files (located, nothing written), export and import.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::records::{json, names, refused, two_connections};
use crate::support::{TestEnv, write};

#[test]
fn store_is_created_private_sorted_and_without_secrets() {
    let env = TestEnv::new();
    assert!(!env.store.exists());
    // Reading a store that does not exist yet writes nothing.
    assert_eq!(json(&env, &["connection", "list"]), json!([]));
    assert!(!env.store.exists(), "a read created the store");

    env.ok(&["integration", "add", "zeta"]);
    env.ok(&["integration", "add", "alpha"]);
    env.ok(&[
        "connection",
        "add",
        "zeta.b",
        "--integration",
        "zeta",
        "--env",
        "test",
        "--url",
        "https://b.example.com",
        "--user",
        "u",
        "--password-env",
        "SECRET_VAR",
    ]);
    env.ok(&[
        "connection",
        "add",
        "zeta.a",
        "--integration",
        "zeta",
        "--env",
        "test",
        "--url",
        "https://a.example.com",
    ]);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.store), 0o600, "store file mode");
    assert_eq!(
        mode(env.store.parent().unwrap()),
        0o700,
        "new store folder mode"
    );

    let text = env.store_text();
    assert!(text.starts_with("version = 1\nstore_id = \""), "{text}");
    let order: Vec<&str> = text.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(
        order,
        [
            "[integration.alpha]",
            "[integration.zeta]",
            "[connection.\"zeta.a\"]",
            "[connection.\"zeta.b\"]"
        ]
    );
    assert!(text.contains("password = \"env:SECRET_VAR\""), "{text}");
    // No temporary files are left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(env.store.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The store_id stays across writes.
    let id = |t: &str| t.lines().nth(1).unwrap().to_string();
    env.ok(&["integration", "edit", "alpha", "--application", "x"]);
    assert_eq!(id(&env.store_text()), id(&text));
}

#[test]
fn store_location_flag_env_and_default() {
    let env = TestEnv::new();
    // --store wins over CONNCTL_STORE.
    let other = env.path("elsewhere/other.toml");
    env.ok(&[
        "--store",
        other.to_str().unwrap(),
        "integration",
        "add",
        "a",
    ]);
    assert!(other.exists());
    assert!(!env.store.exists());
    env.ok(&["integration", "add", "b"]);
    assert!(env.store.exists());
    assert_eq!(
        names(&json(
            &env,
            &["integration", "list", "--store", other.to_str().unwrap()]
        )),
        ["a"]
    );
    assert_eq!(names(&json(&env, &["integration", "list"])), ["b"]);

    // Neither: the config folder (XDG_CONFIG_HOME on Linux).
    let out = env
        .cmd()
        .env_remove("CONNCTL_STORE")
        .args(["integration", "add", "c"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let default = env.home.join(".config/connctl/store.toml");
    assert!(default.exists(), "no store at {}", default.display());
    assert!(
        std::fs::read_to_string(&default)
            .unwrap()
            .contains("[integration.c]")
    );

    let out = env
        .cmd()
        .env("CONNCTL_STORE", "")
        .args(["integration", "list"])
        .output()
        .expect("run");
    // An empty CONNCTL_STORE is either ignored (default store) or a usage error; never a crash.
    assert!(matches!(out.status.code(), Some(0 | 2)), "{out:?}");
}

/// A valid store with one integration and two inactive connections, as a
/// user would write it by hand.
const HAND_WRITTEN: &str = r#"version = 1
store_id = "6f1c0c7e-0000-4000-8000-000000000001"

[integration.incident-sync]
application = "IT Service Management"

[connection."incident-sync.prod"]
integration = "incident-sync"
environment = "production"
active = false
endpoint_url = "https://api.example.com/api/incident"

[connection."incident-sync.test"]
integration = "incident-sync"
environment = "test"
active = false
endpoint_url = "https://test.example.com/api/incident"
"#;

/// Writes `text` as the store, then checks that reads and writes both fail
/// with exit 4, the located message and the rule, and write nothing.
#[track_caller]
fn broken_store(text: &str, needles: &[&str]) {
    let env = TestEnv::new();
    write(&env.store, text);
    let path = env.store.display().to_string();
    for args in [
        &["connection", "list"][..],
        &["integration", "show", "incident-sync"],
        &["integration", "add", "new"],
        &["connection", "activate", "incident-sync.test"],
        &["export"],
    ] {
        let run = refused(&env, args, 4, &path);
        for needle in needles {
            assert!(
                run.stderr.contains(needle),
                "connctl {args:?}: stderr lacks {needle:?}:\n{}",
                run.stderr
            );
        }
    }
    assert_eq!(env.store_text(), text);
}

#[test]
fn hand_written_store_loads() {
    let env = TestEnv::new();
    write(&env.store, HAND_WRITTEN);
    assert_eq!(
        names(&json(&env, &["connection", "list"])),
        ["incident-sync.prod", "incident-sync.test"]
    );
}

#[test]
fn two_active_connections_are_located_with_the_rule() {
    let text = HAND_WRITTEN.replace("active = false", "active = true");
    // The second `active = true` is line 16, column 1.
    assert_eq!(text.lines().nth(15), Some("active = true"));
    broken_store(
        &text,
        &[
            "store.toml:16:1",
            "rule 1",
            "both active",
            "incident-sync.test",
        ],
    );
    // Indented, the column follows.
    let text = text.replace(
        "environment = \"test\"\nactive = true",
        "environment = \"test\"\n   active = true",
    );
    broken_store(&text, &["store.toml:16:4", "rule 1"]);
}

#[test]
fn truncated_store_is_located() {
    let cut = HAND_WRITTEN.find("api.example.com").unwrap();
    let text = &HAND_WRITTEN[..cut];
    broken_store(text, &["store.toml:11:", "not valid"]);
    // Cut in a table header.
    let cut = HAND_WRITTEN.find("\"incident-sync.test\"]").unwrap() + 5;
    broken_store(&HAND_WRITTEN[..cut], &["store.toml:13:", "not valid"]);
}

#[test]
fn unknown_field_is_located_and_named() {
    let text = HAND_WRITTEN.replace(
        "application = \"IT Service Management\"",
        "application = \"IT Service Management\"\ncolour = \"blue\"",
    );
    broken_store(&text, &["store.toml:6:1", "unknown field `colour`"]);
    let text = HAND_WRITTEN.replace("store_id", "owner = \"x\"\nstore_id");
    broken_store(&text, &["store.toml:2:1", "unknown field `owner`"]);
}

#[test]
fn future_version_is_refused() {
    let text = HAND_WRITTEN.replace("version = 1", "version = 2");
    broken_store(&text, &["version 2", "upgrade connctl"]);
    // Even when the newer format has fields this build does not know.
    let text = format!(
        "{}\n[gizmo.x]\nsize = 3\n",
        HAND_WRITTEN.replace("version = 1", "version = 7")
    );
    broken_store(&text, &["version 7", "upgrade connctl"]);
    broken_store(
        &HAND_WRITTEN.replace("version = 1", "version = 0"),
        &["version 0"],
    );
    broken_store(
        &HAND_WRITTEN.replace("version = 1\n", ""),
        &["missing field `version`"],
    );
}

#[test]
fn other_rule_breaking_stores_are_located() {
    // Rule 5: one inbound user on two active connections (of two integrations).
    let two_integrations = format!(
        "{HAND_WRITTEN}inbound_user = \"remote\"\n\n[connection.other]\nintegration = \"other\"\n\
         environment = \"test\"\nactive = true\nendpoint_url = \"https://o.example.com\"\n\
         inbound_user = \"remote\"\n\n[integration.other]\n\n[inbound_user.remote]\npassword = \"env:R\"\n"
    )
    .replace(
        "environment = \"test\"\nactive = false",
        "environment = \"test\"\nactive = true",
    );
    broken_store(
        &two_integrations,
        &["store.toml:25:1", "rule 5", "inbound-user 'remote'"],
    );
    // Rule 3: mutual auth without a protocol profile.
    broken_store(
        &format!("{HAND_WRITTEN}mutual_auth = true\n"),
        &[
            "store.toml:18:1",
            "rule 3",
            "mutual auth on but names no protocol profile",
        ],
    );
    broken_store(
        &HAND_WRITTEN.replace(
            "integration = \"incident-sync\"\nenvironment = \"test\"",
            "integration = \"gone\"\nenvironment = \"test\"",
        ),
        &["store.toml:14:1", "rule 4", "'gone'"],
    );
    broken_store(
        &HAND_WRITTEN.replace("https://test.example.com", "test.example.com"),
        &["store.toml:17:1", "rule 6"],
    );
    broken_store(
        &HAND_WRITTEN.replace("https://api.example.com", "http://api.example.com"),
        &["store.toml:11:1", "plain http"],
    );
    broken_store(
        &HAND_WRITTEN.replace("environment = \"test\"", "environment = \"staging\""),
        &["store.toml:15:", "staging"],
    );
    broken_store(
        &format!("{HAND_WRITTEN}mid_server = \"nope\"\n"),
        &["rule 4", "mid-server 'nope'"],
    );
    broken_store(
        &format!("{HAND_WRITTEN}authentication = \"oauth\"\n"),
        &["rule 3", "oauth"],
    );
    broken_store(
        &format!("{HAND_WRITTEN}password = \"hunter2\"\n"),
        &["secret field must hold a source"],
    );
    broken_store(
        &HAND_WRITTEN.replace(
            "[integration.incident-sync]",
            "[integration.\"bad name\"]\n\n[integration.incident-sync]",
        ),
        &["not a valid integration name"],
    );
    broken_store(
        &format!("{HAND_WRITTEN}\n[connection.\"incident-sync.test\"]\nintegration = \"x\"\n"),
        &["not valid"],
    );
}

#[test]
fn secret_values_never_echo_from_a_broken_store() {
    let env = TestEnv::new();
    write(
        &env.store,
        &format!("{HAND_WRITTEN}password = \"hunter2\"\n"),
    );
    let run = env.fails(&["connection", "list"], 4);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

// ----- export / import -----------------------------------------------------

fn populated() -> TestEnv {
    let env = two_connections();
    env.ok(&["mid-server", "add", "mid", "--url", "http://127.0.0.1:3128"]);
    env.ok(&[
        "inbound-user",
        "add",
        "remote",
        "--password-env",
        "REMOTE_PW",
    ]);
    env.ok(&[
        "oauth-profile",
        "add",
        "idp",
        "--token-url",
        "https://idp.example.com/t",
        "--client-id",
        "c",
        "--client-secret-file",
        "/etc/connctl/idp.secret",
    ]);
    env.ok(&[
        "connection",
        "edit",
        "inc.prod",
        "--oauth-profile",
        "idp",
        "--mid-server",
        "mid",
        "--inbound-user",
        "remote",
        "--var",
        "table=incident",
    ]);
    env.ok(&["connection", "activate", "inc.prod"]);
    env
}

/// The store text without its `store_id` line.
fn without_id(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("store_id"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn export_import_round_trip() {
    let a = populated();
    let exported = a.ok(&["export"]);
    assert_eq!(exported, a.store_text(), "the export is the store");
    let json_export = json(&a, &["export"]);
    assert_eq!(json_export["version"], json!(1));
    assert_eq!(
        json_export["connection"]["inc.prod"]["mid_server"],
        json!("mid")
    );

    let file = a.path("export.toml");
    write(&file, &exported);
    let b = TestEnv::new();
    b.ok(&["integration", "add", "mine"]);
    let run = b.run(&["import", file.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("added 6"), "{}", run.stderr);
    let mut theirs = json(&a, &["export"]);
    let mut ours = json(&b, &["export"]);
    assert!(
        ours["integration"]
            .as_object_mut()
            .unwrap()
            .remove("mine")
            .is_some()
    );
    theirs.as_object_mut().unwrap().remove("store_id");
    ours.as_object_mut().unwrap().remove("store_id");
    assert_eq!(ours, theirs);
    assert_ne!(
        a.store_text().lines().nth(1),
        b.store_text().lines().nth(1),
        "the importing store keeps its own id"
    );

    // Importing the same again changes nothing and writes nothing.
    let before = b.store_bytes();
    let out = b.ok(&["import", file.to_str().unwrap(), "-o", "json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["added"], json!([]));
    assert_eq!(report["unchanged"], json!(6));
    assert!(b.store_bytes() == before);

    // From stdin.
    let c = TestEnv::new();
    let run = c.run_stdin(&["import", "-"], &exported);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(without_id(&c.store_text()), without_id(&a.store_text()));
}

#[test]
fn import_conflicts_replace_and_dry_run() {
    let a = populated();
    let file = a.path("export.toml");
    write(&file, &a.ok(&["export"]));
    let f = file.to_str().unwrap();

    let b = TestEnv::new();
    b.ok(&["integration", "add", "inc", "--application", "Other app"]);
    b.ok(&["mid-server", "add", "mid", "--url", "http://10.0.0.1:3128"]);
    let run = refused(&b, &["import", f], 4, "2 records");
    assert!(run.stderr.contains("integration inc"), "{}", run.stderr);
    assert!(run.stderr.contains("mid-server mid"), "{}", run.stderr);
    assert!(run.stderr.contains("--replace"), "{}", run.stderr);

    // --dry-run reports and writes nothing, even with --replace.
    let before = b.store_bytes();
    let out = b.ok(&["import", f, "--dry-run", "--replace", "-o", "json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["dry_run"], json!(true));
    assert_eq!(
        report["replaced"],
        json!(["integration inc", "mid-server mid"])
    );
    assert_eq!(report["added"].as_array().unwrap().len(), 4);
    assert!(b.store_bytes() == before, "--dry-run wrote the store");
    let run = b.run(&["import", f, "--dry-run", "--replace"]);
    assert!(run.stderr.contains("would add 4"), "{}", run.stderr);
    assert!(b.store_bytes() == before);
    refused(&b, &["import", f, "--dry-run"], 4, "2 records");

    b.ok(&["import", f, "--replace"]);
    assert_eq!(without_id(&b.store_text()), without_id(&a.store_text()));
}

#[test]
fn import_bad_files_write_nothing() {
    let env = populated();
    let bad = env.path("bad.toml");
    write(
        &bad,
        "version = 1\nstore_id = \"x\"\n[integration.a]\nfoo = 1\n",
    );
    refused(&env, &["import", bad.to_str().unwrap()], 4, "bad.toml:4:1");
    write(&bad, "version = 3\nstore_id = \"x\"\n");
    refused(&env, &["import", bad.to_str().unwrap()], 4, "version 3");
    refused(
        &env,
        &["import", "/nonexistent.toml"],
        4,
        "/nonexistent.toml",
    );
    refused(&env, &["import"], 2, "FILE");
    // A valid file whose records would break a rule together with the store:
    // a second active connection for integration inc.
    write(
        &bad,
        r#"version = 1
store_id = "00000000-0000-4000-8000-000000000001"

[integration.inc]
application = "ITSM"

[connection."inc.other"]
integration = "inc"
environment = "sandbox"
active = true
endpoint_url = "https://s.example.com"
"#,
    );
    refused(&env, &["import", bad.to_str().unwrap()], 4, "rule 1");
    // A file referring to records neither it nor the store has.
    write(
        &bad,
        r#"version = 1
store_id = "00000000-0000-4000-8000-000000000001"

[connection."inc.other"]
integration = "inc"
environment = "sandbox"
endpoint_url = "https://s.example.com"
"#,
    );
    refused(&env, &["import", bad.to_str().unwrap()], 4, "rule 4");
}

#[test]
fn import_names_the_records_whose_keyring_secrets_stay_behind() {
    let env = TestEnv::new();
    let file = env.path("incoming.toml");
    write(
        &file,
        r#"version = 1
store_id = "00000000-0000-4000-8000-000000000002"

[integration.sync]

[connection.c]
integration = "sync"
environment = "test"
endpoint_url = "https://example.test/"
authentication = "basic"
user = "svc"
password = "keyring"

[connection.d]
integration = "sync"
environment = "test"
endpoint_url = "https://example.test/"
authentication = "basic"
user = "svc"
password = "env:D_PASSWORD"

[oauth_profile.idp]
token_url = "https://idp.example.test/token"
client_id = "id"
client_secret = "keyring"

[mid_server.mid]
url = "http://mid.example.test:3128"
user = "u"
password = "keyring"

[inbound_user.remote]
password = "keyring"
"#,
    );
    let run = env.run(&["import", file.to_str().unwrap(), "--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "set them again for: connection c, oauth-profile idp, mid-server mid, inbound-user remote\n"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_value_typed_into_a_secret_field_is_never_repeated() {
    let env = TestEnv::new();
    for value in ["987654", "[\"hunter22\"]", "\"hunter22\""] {
        write(
            &env.store,
            &format!(
                "version = 1\nstore_id = \"00000000-0000-4000-8000-000000000001\"\n\n[inbound_user.u]\npassword = {value}\n"
            ),
        );
        let run = refused(&env, &["inbound-user", "list"], 4, ":5:12:");
        assert!(run.stderr.contains("must hold a source"), "{}", run.stderr);
        assert!(
            !run.stderr.contains("987654") && !run.stderr.contains("hunter22"),
            "{}",
            run.stderr
        );
    }
}
