//! Integrations and connections through the binary: every command, the
//! rules of DESIGN.md §1, activation (rule 2), and bad input that must leave
//! the store byte-identical.

use serde_json::{Value, json};

use crate::support::{Run, TestEnv, write};

/// Runs a command that must fail with `code`, name the problem (`needle` in
/// stderr) and leave the store byte-identical.
#[track_caller]
pub fn refused(env: &TestEnv, args: &[&str], code: i32, needle: &str) -> Run {
    let before = env.store_bytes();
    let run = env.fails(args, code);
    assert!(
        run.stderr.contains(needle),
        "connctl {args:?}: stderr does not mention {needle:?}:\n{}",
        run.stderr
    );
    assert!(
        run.stdout.is_empty(),
        "connctl {args:?}: a refusal printed data on stdout:\n{}",
        run.stdout
    );
    assert!(
        env.store_bytes() == before,
        "connctl {args:?}: the store changed although the command failed"
    );
    run
}

/// `-o json` output of a command that must succeed.
#[track_caller]
pub fn json(env: &TestEnv, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = env.ok(&all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{out}"))
}

/// The keys of a JSON object, in order.
pub fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// The names in a JSON array of records.
pub fn names(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect()
}

/// An integration `inc` with connections `inc.test` (test) and `inc.prod`
/// (production), both inactive and without authentication.
pub fn two_connections() -> TestEnv {
    let env = TestEnv::new();
    env.ok(&["integration", "add", "inc", "--application", "ITSM"]);
    env.ok(&[
        "connection",
        "add",
        "inc.test",
        "--integration",
        "inc",
        "--env",
        "test",
        "--url",
        "https://test.example.com/api",
    ]);
    env.ok(&[
        "connection",
        "add",
        "inc.prod",
        "--integration",
        "inc",
        "--env",
        "production",
        "--url",
        "https://api.example.com/api",
    ]);
    env
}

fn active_connection(env: &TestEnv, integration: &str) -> Value {
    json(env, &["integration", "show", integration])["active_connection"].clone()
}

fn active_flags(env: &TestEnv) -> Vec<(String, bool)> {
    json(env, &["connection", "list"])
        .as_array()
        .expect("array")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_string(),
                c["active"].as_bool().expect("active"),
            )
        })
        .collect()
}

// ----- integration ---------------------------------------------------------

#[test]
fn integration_add_list_show_edit_remove() {
    let env = TestEnv::new();
    let run = env.run(&[
        "integration",
        "add",
        "incident-sync",
        "--application",
        "IT Service Management",
        "--description",
        "Incidents to the partner",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "add printed data: {}", run.stdout);
    assert!(run.stderr.contains("added integration 'incident-sync'"));

    let list = json(&env, &["integration", "list"]);
    assert_eq!(
        list,
        json!([{
            "name": "incident-sync",
            "application": "IT Service Management",
            "description": "Incidents to the partner",
            "active": false,
            "active_connection": null,
        }])
    );
    assert_eq!(
        keys(&list[0]),
        [
            "name",
            "application",
            "description",
            "active",
            "active_connection"
        ]
    );
    let table = env.ok(&["integration", "list"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("incident-sync"), "{table}");

    let show = json(&env, &["integration", "show", "incident-sync"]);
    assert_eq!(show["active"], json!(false));
    assert_eq!(show["connections"], json!([]));
    let text = env.ok(&["integration", "show", "incident-sync"]);
    assert!(text.contains("IT Service Management"), "{text}");

    env.ok(&[
        "integration",
        "edit",
        "incident-sync",
        "--application",
        "ITSM",
    ]);
    let show = json(&env, &["integration", "show", "incident-sync"]);
    assert_eq!(show["application"], json!("ITSM"));
    assert_eq!(show["description"], json!("Incidents to the partner"));
    // "" clears a field.
    env.ok(&["integration", "edit", "incident-sync", "--description", ""]);
    let show = json(&env, &["integration", "show", "incident-sync"]);
    assert_eq!(show.get("description"), None, "{show}");

    env.ok(&["integration", "remove", "incident-sync"]);
    assert_eq!(json(&env, &["integration", "list"]), json!([]));
}

#[test]
fn integration_bad_input_leaves_the_store_alone() {
    let env = two_connections();
    refused(
        &env,
        &["integration", "add", "inc"],
        4,
        "'inc' already exists",
    );
    for bad in ["bad name", "-dash", ".dot", "ü", &"a".repeat(65)] {
        let args = ["integration", "add", "--", bad];
        let run = env.fails(&args, 4);
        assert!(
            run.stderr.contains("not a valid integration name"),
            "{}",
            run.stderr
        );
    }
    // The longest valid name is fine.
    env.ok(&["integration", "add", &"a".repeat(64)]);
    env.ok(&["integration", "remove", &"a".repeat(64)]);

    for args in [
        &["integration", "show", "nope"][..],
        &["integration", "edit", "nope", "--application", "x"],
        &["integration", "remove", "nope"],
        &["integration", "activate", "nope"],
        &["integration", "deactivate", "nope"],
    ] {
        refused(&env, args, 3, "integration 'nope' does not exist");
    }
    // A near miss gets a suggestion.
    let run = refused(
        &env,
        &["integration", "show", "inx"],
        3,
        "'inx' does not exist",
    );
    assert!(run.stderr.contains("did you mean 'inc'"), "{}", run.stderr);
    // Removing a referenced integration names its connections.
    let run = refused(&env, &["integration", "remove", "inc"], 4, "2 connections");
    assert!(run.stderr.contains("inc.prod, inc.test"), "{}", run.stderr);
    // Usage errors.
    refused(&env, &["integration", "add"], 2, "NAME");
    refused(&env, &["integration", "frobnicate"], 2, "frobnicate");
    refused(
        &env,
        &["integration", "add", "x", "--colour", "red"],
        2,
        "--colour",
    );
}

// ----- connection ----------------------------------------------------------

#[test]
fn connection_add_show_and_json_fields() {
    let env = TestEnv::new();
    env.ok(&["integration", "add", "inc"]);
    write(&env.path("pw.txt"), "s3cret\n");
    let pw_file = env.path("pw.txt");
    let run = env.run(&[
        "connection",
        "add",
        "inc.test",
        "--integration",
        "inc",
        "--env",
        "Pre-Production",
        "--url",
        "https://test.example.com/api/incident",
        "--auth",
        "basic",
        "--user",
        "svc.incident",
        "--password-file",
        pw_file.to_str().unwrap(),
        "--var",
        "table=incident",
        "--var",
        "x=a=b",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains("added connection 'inc.test'"),
        "{}",
        run.stderr
    );

    let show = json(&env, &["connection", "show", "inc.test"]);
    assert_eq!(
        show,
        json!({
            "name": "inc.test",
            "integration": "inc",
            "environment": "pre-production",
            "active": false,
            "endpoint_url": "https://test.example.com/api/incident",
            "authentication": "basic",
            "user": "svc.incident",
            "password": format!("file:{}", pw_file.display()),
            "variables": {"table": "incident", "x": "a=b"},
        })
    );
    // The secret value never shows: not in show, list, export or the store.
    for args in [
        &["connection", "show", "inc.test"][..],
        &["connection", "list"],
        &["export"],
    ] {
        assert!(!env.ok(args).contains("s3cret"));
        let mut with_json = args.to_vec();
        with_json.extend(["-o", "json"]);
        assert!(!env.ok(&with_json).contains("s3cret"));
    }
    assert!(!env.store_text().contains("s3cret"));

    // The table form of show carries the same facts.
    let text = env.ok(&["connection", "show", "inc.test"]);
    for needle in ["pre-production", "svc.incident", "file:", "table=incident"] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }

    // Other password sources are recorded as given; a relative file is made absolute.
    env.ok(&[
        "connection",
        "add",
        "inc.dev",
        "--integration",
        "inc",
        "--env",
        "development",
        "--url",
        "http://localhost:8080/x",
        "--user",
        "dev",
        "--password-env",
        "DEV_PW",
    ]);
    let dev = json(&env, &["connection", "show", "inc.dev"]);
    assert_eq!(dev["password"], json!("env:DEV_PW"));
    assert_eq!(
        dev["authentication"],
        json!("basic"),
        "--user implies basic"
    );
    env.ok(&[
        "connection",
        "add",
        "inc.sbx",
        "--integration",
        "inc",
        "--env",
        "sandbox",
        "--url",
        "https://sbx.example.com",
        "--auth",
        "basic",
        "--user",
        "sbx",
        "--password-cmd",
        "pass show sbx",
    ]);
    assert_eq!(
        json(&env, &["connection", "show", "inc.sbx"])["password"],
        json!("cmd:pass show sbx")
    );
    let mut cmd = env.cmd();
    cmd.current_dir(env.dir.path()).args([
        "connection",
        "edit",
        "inc.sbx",
        "--password-file",
        "pw.txt",
    ]);
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json(&env, &["connection", "show", "inc.sbx"])["password"],
        json!(format!("file:{}", pw_file.display()))
    );
}

#[test]
fn connection_list_filters() {
    let env = two_connections();
    env.ok(&["integration", "add", "other"]);
    env.ok(&[
        "connection",
        "add",
        "other.test",
        "--integration",
        "other",
        "--env",
        "TEST",
        "--url",
        "https://o.example.com",
        "--activate",
    ]);
    let all = json(&env, &["connection", "list"]);
    assert_eq!(
        names(&all),
        ["inc.prod", "inc.test", "other.test"],
        "sorted by name"
    );
    for c in all.as_array().unwrap() {
        let k = keys(c);
        assert_eq!(
            &k[..5],
            [
                "name",
                "integration",
                "environment",
                "active",
                "endpoint_url"
            ]
        );
        assert!(k.contains(&"authentication"));
    }
    assert_eq!(
        names(&json(&env, &["connection", "list", "--integration", "inc"])),
        ["inc.prod", "inc.test"]
    );
    assert_eq!(
        names(&json(&env, &["connection", "list", "--env", "test"])),
        ["inc.test", "other.test"]
    );
    assert_eq!(
        names(&json(&env, &["connection", "list", "--active"])),
        ["other.test"]
    );
    assert_eq!(
        names(&json(
            &env,
            &[
                "connection",
                "list",
                "--integration",
                "inc",
                "--env",
                "test"
            ]
        )),
        ["inc.test"]
    );
    assert_eq!(
        json(
            &env,
            &["connection", "list", "--integration", "inc", "--active"]
        ),
        json!([])
    );
    let table = env.ok(&["connection", "list", "--env", "production"]);
    assert!(
        table.contains("inc.prod") && !table.contains("inc.test"),
        "{table}"
    );
    refused(
        &env,
        &["connection", "list", "--integration", "nope"],
        3,
        "integration 'nope' does not exist",
    );
    refused(&env, &["connection", "list", "--env", "prod"], 2, "prod");
}

#[test]
fn connection_edit_changes_only_what_is_given() {
    let env = two_connections();
    env.ok(&["integration", "add", "other"]);
    env.ok(&["mid-server", "add", "mid", "--url", "http://127.0.0.1:3128"]);
    env.ok(&["connection", "activate", "inc.test"]);
    env.ok(&[
        "connection",
        "edit",
        "inc.test",
        "--url",
        "https://new.example.com/x",
        "--var",
        "a=1",
        "--var",
        "b=2",
        "--mid-server",
        "mid",
    ]);
    let c = json(&env, &["connection", "show", "inc.test"]);
    assert_eq!(c["endpoint_url"], json!("https://new.example.com/x"));
    assert_eq!(c["variables"], json!({"a": "1", "b": "2"}));
    assert_eq!(c["mid_server"], json!("mid"));
    assert_eq!(c["environment"], json!("test"));
    assert_eq!(
        c["active"],
        json!(true),
        "an edit keeps the connection active"
    );

    env.ok(&[
        "connection",
        "edit",
        "inc.test",
        "--unset-var",
        "a",
        "--no-mid-server",
    ]);
    let c = json(&env, &["connection", "show", "inc.test"]);
    assert_eq!(c["variables"], json!({"b": "2"}));
    assert_eq!(c.get("mid_server"), None);
    refused(
        &env,
        &["connection", "edit", "inc.test", "--unset-var", "zzz"],
        3,
        "no variable 'zzz'",
    );

    // Moving an active connection to another integration deactivates it.
    let run = env.run(&["connection", "edit", "inc.test", "--integration", "other"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("now inactive"), "{}", run.stderr);
    let c = json(&env, &["connection", "show", "inc.test"]);
    assert_eq!(c["integration"], json!("other"));
    assert_eq!(c["active"], json!(false));
    assert_eq!(active_connection(&env, "inc"), Value::Null);

    // Changing the environment to production keeps rule 6.
    refused(
        &env,
        &[
            "connection",
            "edit",
            "inc.test",
            "--env",
            "production",
            "--url",
            "http://plain.example.com",
        ],
        4,
        "plain http",
    );
    env.ok(&[
        "connection",
        "edit",
        "inc.test",
        "--env",
        "production",
        "--url",
        "http://plain.example.com",
        "--allow-http",
    ]);
    refused(
        &env,
        &["connection", "edit", "inc.test", "--no-allow-http"],
        4,
        "plain http",
    );
    refused(
        &env,
        &["connection", "edit", "nope", "--url", "https://x.example"],
        3,
        "connection 'nope' does not exist",
    );
    refused(
        &env,
        &["connection", "edit", "inc.test", "--integration", "nope"],
        3,
        "integration 'nope' does not exist",
    );
}

#[test]
fn connection_edit_auth_switches_drop_what_no_longer_applies() {
    let env = two_connections();
    let (cert, key) = crate::records_profiles::cert_pair(&env, "client");
    env.ok(&[
        "oauth-profile",
        "add",
        "idp",
        "--token-url",
        "https://idp.example.com/token",
        "--client-id",
        "c",
        "--client-secret-env",
        "IDP_SECRET",
    ]);
    env.ok(&[
        "protocol-profile",
        "add",
        "mtls",
        "--client-cert",
        cert.to_str().unwrap(),
        "--client-key",
        key.to_str().unwrap(),
    ]);
    env.ok(&[
        "connection",
        "edit",
        "inc.test",
        "--oauth-profile",
        "idp",
        "--mutual-auth",
        "--protocol-profile",
        "mtls",
    ]);
    let c = json(&env, &["connection", "show", "inc.test"]);
    assert_eq!(
        c["authentication"],
        json!("oauth"),
        "--oauth-profile implies oauth"
    );
    assert_eq!(c["oauth_profile"], json!("idp"));
    assert_eq!(c["mutual_auth"], json!(true));
    assert_eq!(c["protocol_profile"], json!("mtls"));

    let run = env.run(&[
        "connection",
        "edit",
        "inc.test",
        "--auth",
        "none",
        "--no-mutual-auth",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("dropped the OAuth profile"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("dropped the protocol profile"),
        "{}",
        run.stderr
    );
    let c = json(&env, &["connection", "show", "inc.test"]);
    assert_eq!(c["authentication"], json!("none"));
    assert_eq!(c.get("oauth_profile"), None);
    assert_eq!(c.get("mutual_auth"), None);
    assert_eq!(c.get("protocol_profile"), None);

    // Rule 3 on edit.
    refused(
        &env,
        &["connection", "edit", "inc.test", "--auth", "oauth"],
        4,
        "names no OAuth profile",
    );
    refused(
        &env,
        &["connection", "edit", "inc.test", "--auth", "basic"],
        4,
        "has no user",
    );
    refused(
        &env,
        &[
            "connection",
            "edit",
            "inc.test",
            "--auth",
            "basic",
            "--user",
            "u",
        ],
        4,
        "has no password",
    );
    refused(
        &env,
        &["connection", "edit", "inc.test", "--mutual-auth"],
        4,
        "names no protocol profile",
    );
    refused(
        &env,
        &[
            "connection",
            "edit",
            "inc.test",
            "--protocol-profile",
            "mtls",
        ],
        4,
        "mutual auth is off",
    );
    refused(
        &env,
        &["connection", "edit", "inc.test", "--oauth-profile", "nope"],
        3,
        "oauth-profile 'nope' does not exist",
    );
    env.ok(&[
        "connection",
        "edit",
        "inc.test",
        "--auth",
        "basic",
        "--user",
        "u",
        "--password-env",
        "PW",
    ]);
    // Dropping the user of a basic connection breaks rule 3.
    refused(
        &env,
        &["connection", "edit", "inc.test", "--user", ""],
        4,
        "has no user",
    );
}

#[test]
fn connection_add_bad_input_leaves_the_store_alone() {
    let env = two_connections();
    let add = |name: &'static str, extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = vec![
            "connection",
            "add",
            name,
            "--integration",
            "inc",
            "--env",
            "test",
        ];
        if !extra.contains(&"--url") {
            args.extend(["--url", "https://x.example.com"]);
        }
        args.extend(extra);
        args
    };
    refused(
        &env,
        &add("inc.test", &[]),
        4,
        "connection 'inc.test' already exists",
    );
    refused(
        &env,
        &add("bad name", &[]),
        4,
        "not a valid connection name",
    );
    refused(&env, &add("_x", &[]), 4, "not a valid connection name");
    // Environment.
    refused(
        &env,
        &[
            "connection",
            "add",
            "x",
            "--integration",
            "inc",
            "--env",
            "prod",
            "--url",
            "https://a.example",
        ],
        2,
        "'prod'",
    );
    refused(
        &env,
        &[
            "connection",
            "add",
            "x",
            "--integration",
            "inc",
            "--url",
            "https://a.example",
        ],
        2,
        "--env",
    );
    // URLs (rule 6).
    refused(
        &env,
        &add("x", &["--url", "api.example.com/x"]),
        4,
        "not an absolute URL",
    );
    refused(
        &env,
        &add("x", &["--url", "/api/x"]),
        4,
        "not an absolute URL",
    );
    refused(
        &env,
        &add("x", &["--url", "localhost:8080/x"]),
        4,
        "not an absolute URL",
    );
    refused(
        &env,
        &add("x", &["--url", "ftp://a.example.com"]),
        4,
        "scheme 'ftp'",
    );
    refused(&env, &add("x", &["--url", "https://"]), 4, "https://");
    refused(
        &env,
        &add("x", &["--url", "http://exa mple.com"]),
        4,
        "not a valid URL",
    );
    refused(
        &env,
        &[
            "connection",
            "add",
            "x",
            "--integration",
            "inc",
            "--env",
            "production",
            "--url",
            "http://a.example.com",
        ],
        4,
        "plain http",
    );
    // Dangling references (rule 4).
    refused(
        &env,
        &[
            "connection",
            "add",
            "x",
            "--integration",
            "nope",
            "--env",
            "test",
            "--url",
            "https://a.example",
        ],
        3,
        "integration 'nope' does not exist",
    );
    refused(
        &env,
        &add("x", &["--oauth-profile", "nope"]),
        3,
        "oauth-profile 'nope' does not exist",
    );
    refused(
        &env,
        &add("x", &["--mutual-auth", "--protocol-profile", "nope"]),
        3,
        "protocol-profile 'nope' does not exist",
    );
    refused(
        &env,
        &add("x", &["--mid-server", "nope"]),
        3,
        "mid-server 'nope' does not exist",
    );
    refused(
        &env,
        &add("x", &["--inbound-user", "nope"]),
        3,
        "inbound-user 'nope' does not exist",
    );
    // Authentication (rule 3).
    refused(
        &env,
        &add("x", &["--auth", "oauth"]),
        4,
        "names no OAuth profile",
    );
    refused(&env, &add("x", &["--auth", "basic"]), 4, "has no user");
    refused(
        &env,
        &add("x", &["--auth", "basic", "--user", "u"]),
        4,
        "has no password",
    );
    refused(
        &env,
        &add("x", &["--mutual-auth"]),
        4,
        "names no protocol profile",
    );
    refused(&env, &add("x", &["--auth", "bearer"]), 2, "bearer");
    // Secret sources: one at a time, never a value.
    refused(
        &env,
        &add(
            "x",
            &["--user", "u", "--password-env", "A", "--password-cmd", "b"],
        ),
        2,
        "cannot be used with",
    );
    refused(&env, &add("x", &["--password", "hunter2"]), 2, "--password");
    refused(
        &env,
        &add("x", &["--user", "u", "--password-env", ""]),
        2,
        "empty",
    );
    // Variables.
    refused(&env, &add("x", &["--var", "novalue"]), 2, "not KEY=VALUE");
    refused(&env, &add("x", &["--var", "=v"]), 2, "not KEY=VALUE");
    // CA bundle must exist.
    refused(
        &env,
        &add("x", &["--ca-bundle", "/nonexistent/ca.pem"]),
        4,
        "not a readable file",
    );
}

#[test]
fn http_to_production_needs_allow_http() {
    let env = TestEnv::new();
    env.ok(&["integration", "add", "inc"]);
    let args = [
        "connection",
        "add",
        "inc.prod",
        "--integration",
        "inc",
        "--env",
        "production",
        "--url",
        "http://api.example.com",
    ];
    let run = refused(&env, &args, 4, "production");
    assert!(
        run.stderr.contains("--allow-http"),
        "the hint names the flag: {}",
        run.stderr
    );
    let mut allowed = args.to_vec();
    allowed.push("--allow-http");
    env.ok(&allowed);
    let c = json(&env, &["connection", "show", "inc.prod"]);
    assert_eq!(c["allow_http"], json!(true));
    // http is fine elsewhere.
    env.ok(&[
        "connection",
        "add",
        "inc.test",
        "--integration",
        "inc",
        "--env",
        "test",
        "--url",
        "http://api.example.com",
    ]);
    // A copy to production needs the flag again.
    refused(
        &env,
        &[
            "connection",
            "copy",
            "inc.test",
            "inc.prod2",
            "--env",
            "production",
        ],
        4,
        "plain http",
    );
    env.ok(&[
        "connection",
        "copy",
        "inc.test",
        "inc.prod2",
        "--env",
        "production",
        "--allow-http",
    ]);
}

#[test]
fn connection_copy() {
    let env = two_connections();
    env.ok(&[
        "connection",
        "edit",
        "inc.test",
        "--user",
        "u",
        "--auth",
        "basic",
        "--password-env",
        "PW",
        "--var",
        "k=v",
    ]);
    env.ok(&["connection", "activate", "inc.test"]);
    let run = env.run(&[
        "connection",
        "copy",
        "inc.test",
        "inc.dev",
        "--env",
        "Development",
        "--url",
        "https://dev.example.com/api",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("inactive"), "{}", run.stderr);
    let copy = json(&env, &["connection", "show", "inc.dev"]);
    assert_eq!(copy["environment"], json!("development"));
    assert_eq!(copy["endpoint_url"], json!("https://dev.example.com/api"));
    assert_eq!(copy["active"], json!(false));
    assert_eq!(copy.get("last_activated"), None);
    assert_eq!(copy["user"], json!("u"));
    assert_eq!(copy["variables"], json!({"k": "v"}));
    // The source is untouched and still active.
    assert_eq!(active_connection(&env, "inc"), json!("inc.test"));
    // Without --url the source's URL is kept.
    env.ok(&[
        "connection",
        "copy",
        "inc.test",
        "inc.sbx",
        "--env",
        "sandbox",
    ]);
    assert_eq!(
        json(&env, &["connection", "show", "inc.sbx"])["endpoint_url"],
        json!("https://test.example.com/api")
    );
    refused(
        &env,
        &["connection", "copy", "nope", "x", "--env", "test"],
        3,
        "connection 'nope' does not exist",
    );
    refused(
        &env,
        &[
            "connection",
            "copy",
            "inc.test",
            "inc.prod",
            "--env",
            "test",
        ],
        4,
        "'inc.prod' already exists",
    );
    refused(
        &env,
        &[
            "connection",
            "copy",
            "inc.test",
            "bad/name",
            "--env",
            "test",
        ],
        4,
        "not a valid connection name",
    );
    refused(
        &env,
        &[
            "connection",
            "copy",
            "inc.test",
            "x",
            "--env",
            "test",
            "--url",
            "nope",
        ],
        4,
        "not an absolute URL",
    );
    refused(&env, &["connection", "copy", "inc.test", "x"], 2, "--env");
}

#[test]
fn connection_remove() {
    let env = two_connections();
    env.ok(&["connection", "activate", "inc.prod"]);
    let run = env.run(&["connection", "remove", "inc.prod"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("removed connection 'inc.prod'"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("integration 'inc' is now inactive"),
        "{}",
        run.stderr
    );
    assert_eq!(names(&json(&env, &["connection", "list"])), ["inc.test"]);
    assert_eq!(active_connection(&env, "inc"), Value::Null);
    refused(
        &env,
        &["connection", "remove", "inc.prod"],
        3,
        "connection 'inc.prod' does not exist",
    );
    env.ok(&["connection", "remove", "inc.test"]);
    env.ok(&["integration", "remove", "inc"]);
}

// ----- activation: rules 1 and 2 --------------------------------------------

#[test]
fn activating_a_connection_turns_its_siblings_off() {
    let env = two_connections();
    env.ok(&["integration", "add", "other"]);
    env.ok(&[
        "connection",
        "add",
        "other.test",
        "--integration",
        "other",
        "--env",
        "test",
        "--url",
        "https://o.example.com",
        "--activate",
    ]);
    let run = env.run(&["connection", "activate", "inc.test"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("integration 'inc' is active"),
        "{}",
        run.stderr
    );
    assert_eq!(active_connection(&env, "inc"), json!("inc.test"));

    let run = env.run(&["connection", "activate", "inc.prod"]);
    assert!(
        run.stderr.contains("deactivated connection 'inc.test'"),
        "{}",
        run.stderr
    );
    assert_eq!(
        active_flags(&env),
        [
            ("inc.prod".to_string(), true),
            ("inc.test".to_string(), false),
            ("other.test".to_string(), true),
        ],
        "one active per integration; other integrations untouched"
    );
    let int = json(&env, &["integration", "show", "inc"]);
    assert_eq!(int["active"], json!(true));
    assert_eq!(int["active_connection"], json!("inc.prod"));
    assert!(
        json(&env, &["connection", "show", "inc.prod"])["last_activated"].is_string(),
        "activation is stamped"
    );

    // Activating the active one again changes nothing else.
    env.ok(&["connection", "activate", "inc.prod"]);
    assert_eq!(active_connection(&env, "inc"), json!("inc.prod"));

    // Deactivating the active connection makes the integration inactive.
    let run = env.run(&["connection", "deactivate", "inc.prod"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("'inc' is inactive"), "{}", run.stderr);
    let int = json(&env, &["integration", "show", "inc"]);
    assert_eq!(int["active"], json!(false));
    assert_eq!(int["active_connection"], Value::Null);
    let before = env.store_bytes();
    let run = env.run(&["connection", "deactivate", "inc.prod"]);
    assert_eq!(run.code, 0);
    assert!(run.stderr.contains("already inactive"), "{}", run.stderr);
    assert!(
        env.store_bytes() == before,
        "a no-op does not rewrite the store"
    );

    refused(
        &env,
        &["connection", "activate", "nope"],
        3,
        "connection 'nope' does not exist",
    );
    refused(
        &env,
        &["connection", "deactivate", "nope"],
        3,
        "connection 'nope' does not exist",
    );

    // --activate on add does the same.
    env.ok(&["connection", "activate", "inc.test"]);
    env.ok(&[
        "connection",
        "add",
        "inc.dev",
        "--integration",
        "inc",
        "--env",
        "development",
        "--url",
        "https://d.example.com",
        "--activate",
    ]);
    assert_eq!(active_connection(&env, "inc"), json!("inc.dev"));
    assert_eq!(
        names(&json(
            &env,
            &["connection", "list", "--integration", "inc", "--active"]
        )),
        ["inc.dev"]
    );
}

#[test]
fn integration_activate_with_connection_or_env() {
    let env = two_connections();
    let run = env.run(&["integration", "activate", "inc", "--connection", "inc.test"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("through connection 'inc.test'"),
        "{}",
        run.stderr
    );
    assert_eq!(active_connection(&env, "inc"), json!("inc.test"));

    env.ok(&["integration", "activate", "inc", "--env", "PRODUCTION"]);
    assert_eq!(active_connection(&env, "inc"), json!("inc.prod"));
    assert_eq!(
        json(&env, &["connection", "show", "inc.test"])["active"],
        json!(false)
    );

    refused(
        &env,
        &["integration", "activate", "inc", "--env", "sandbox"],
        3,
        "has no sandbox connection",
    );
    refused(
        &env,
        &["integration", "activate", "inc", "--connection", "nope"],
        3,
        "connection 'nope' does not exist",
    );
    env.ok(&["integration", "add", "other"]);
    env.ok(&[
        "connection",
        "add",
        "other.test",
        "--integration",
        "other",
        "--env",
        "test",
        "--url",
        "https://o.example.com",
    ]);
    refused(
        &env,
        &[
            "integration",
            "activate",
            "inc",
            "--connection",
            "other.test",
        ],
        4,
        "belongs to integration 'other'",
    );
    refused(
        &env,
        &[
            "integration",
            "activate",
            "inc",
            "--connection",
            "inc.test",
            "--env",
            "test",
        ],
        2,
        "cannot be used with",
    );
    // Two connections for one environment: --env is ambiguous, the error names both.
    env.ok(&[
        "connection",
        "add",
        "inc.test2",
        "--integration",
        "inc",
        "--env",
        "test",
        "--url",
        "https://t2.example.com",
    ]);
    // Two connections for one environment: the one active before wins.
    env.ok(&["integration", "activate", "inc", "--env", "test"]);
    assert_eq!(active_connection(&env, "inc"), json!("inc.test"));
    // Two for one environment, neither ever active: ambiguous, the error names both.
    for (name, url) in [
        ("inc.sb1", "https://s1.example.com"),
        ("inc.sb2", "https://s2.example.com"),
    ] {
        env.ok(&[
            "connection",
            "add",
            name,
            "--integration",
            "inc",
            "--env",
            "sandbox",
            "--url",
            url,
        ]);
    }
    let run = refused(
        &env,
        &["integration", "activate", "inc", "--env", "sandbox"],
        2,
        "has 2 sandbox connections",
    );
    assert!(
        run.stderr.contains("inc.sb1 (sandbox), inc.sb2 (sandbox)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--connection"), "{}", run.stderr);
}

#[test]
fn integration_activate_picks_the_only_connection() {
    let env = TestEnv::new();
    env.ok(&["integration", "add", "inc"]);
    let run = refused(
        &env,
        &["integration", "activate", "inc"],
        3,
        "has no connections",
    );
    assert!(run.stderr.contains("connection add"), "{}", run.stderr);
    env.ok(&[
        "connection",
        "add",
        "inc.only",
        "--integration",
        "inc",
        "--env",
        "test",
        "--url",
        "https://a.example.com",
    ]);
    env.ok(&["integration", "activate", "inc"]);
    assert_eq!(active_connection(&env, "inc"), json!("inc.only"));
}

#[test]
fn integration_activate_picks_the_most_recently_active() {
    let env = two_connections();
    // Neither was ever active: the error lists the candidates.
    let run = refused(
        &env,
        &["integration", "activate", "inc"],
        2,
        "none was active before",
    );
    assert!(
        run.stderr.contains("inc.prod (production)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("inc.test (test)"), "{}", run.stderr);
    assert!(run.stderr.contains("--connection"), "{}", run.stderr);

    env.ok(&["connection", "activate", "inc.test"]);
    env.ok(&["connection", "activate", "inc.prod"]);
    env.ok(&["integration", "deactivate", "inc"]);
    env.ok(&["integration", "activate", "inc"]);
    assert_eq!(active_connection(&env, "inc"), json!("inc.prod"));

    env.ok(&["connection", "activate", "inc.test"]);
    env.ok(&["connection", "deactivate", "inc.test"]);
    env.ok(&["integration", "activate", "inc"]);
    assert_eq!(active_connection(&env, "inc"), json!("inc.test"));
}

#[test]
fn most_recently_active_compares_instants_not_text() {
    // RFC 3339 drops trailing zeros of the fraction: as text ".4Z" sorts
    // after ".43Z" although it is earlier.
    let env = TestEnv::new();
    write(
        &env.store,
        r#"version = 1
store_id = "7e0b3b9c-2f6a-4b63-9d59-5a3f1f2b4e11"

[integration.inc]

[connection.a]
integration = "inc"
environment = "test"
endpoint_url = "https://a.example.com"
last_activated = "2026-01-01T10:00:00.4Z"

[connection.b]
integration = "inc"
environment = "test"
endpoint_url = "https://b.example.com"
last_activated = "2026-01-01T10:00:00.43Z"

[connection.c]
integration = "inc"
environment = "test"
endpoint_url = "https://c.example.com"
last_activated = "2026-01-01T10:00:00Z"
"#,
    );
    env.ok(&["integration", "activate", "inc"]);
    assert_eq!(active_connection(&env, "inc"), json!("b"));
}

#[test]
fn integration_deactivate_turns_its_active_connection_off() {
    let env = two_connections();
    env.ok(&["connection", "activate", "inc.test"]);
    let run = env.run(&["integration", "deactivate", "inc"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("deactivated connection 'inc.test'"),
        "{}",
        run.stderr
    );
    assert!(active_flags(&env).iter().all(|(_, a)| !a));
    let run = env.run(&["integration", "deactivate", "inc"]);
    assert_eq!(run.code, 0);
    assert!(run.stderr.contains("already inactive"), "{}", run.stderr);
    let list = json(&env, &["integration", "list"]);
    assert_eq!(list[0]["active"], json!(false));
}

#[test]
fn an_inbound_user_is_on_at_most_one_active_connection() {
    let env = two_connections();
    env.ok(&["integration", "add", "other"]);
    env.ok(&[
        "inbound-user",
        "add",
        "remote",
        "--password-env",
        "REMOTE_PW",
    ]);
    env.ok(&["connection", "edit", "inc.test", "--inbound-user", "remote"]);
    env.ok(&[
        "connection",
        "add",
        "other.test",
        "--integration",
        "other",
        "--env",
        "test",
        "--url",
        "https://o.example.com",
        "--inbound-user",
        "remote",
    ]);
    env.ok(&["connection", "activate", "inc.test"]);
    let run = refused(
        &env,
        &["connection", "activate", "other.test"],
        4,
        "inbound-user 'remote'",
    );
    assert!(run.stderr.contains("inc.test"), "{}", run.stderr);
    refused(
        &env,
        &["integration", "activate", "other"],
        4,
        "inbound-user 'remote'",
    );
    // The same integration may switch: activation turns the sibling off first.
    env.ok(&["connection", "edit", "inc.prod", "--inbound-user", "remote"]);
    env.ok(&["connection", "activate", "inc.prod"]);
    // Giving an active connection a user that another active one has is refused too.
    env.ok(&["connection", "edit", "inc.prod", "--no-inbound-user"]);
    env.ok(&["connection", "activate", "other.test"]);
    refused(
        &env,
        &["connection", "edit", "inc.prod", "--inbound-user", "remote"],
        4,
        "inbound-user 'remote'",
    );
}

// ----- output --------------------------------------------------------------

#[test]
fn data_on_stdout_messages_on_stderr_and_quiet() {
    let env = TestEnv::new();
    let run = env.run(&["integration", "add", "inc"]);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("added integration"), "{}", run.stderr);
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);

    let run = env.run(&["-q", "integration", "add", "quiet"]);
    assert_eq!(run.code, 0);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    let run = env.run(&["integration", "list", "--quiet", "-o", "json"]);
    assert_eq!(run.stderr, "");
    assert_eq!(names(&run.json()), ["inc", "quiet"]);
    // Errors still show with -q, on stderr.
    let run = env.run(&["-q", "integration", "show", "nope"]);
    assert_eq!(run.code, 3);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr
            .starts_with("error: integration 'nope' does not exist"),
        "{}",
        run.stderr
    );
    // -v logs go to stderr; stdout stays pure data.
    let run = env.run(&["-vv", "integration", "list", "-o", "json"]);
    assert_eq!(names(&run.json()), ["inc", "quiet"]);
    assert!(run.stderr.contains("debug: store"), "{}", run.stderr);
    // CONNCTL_OUTPUT picks JSON.
    let out = env
        .cmd()
        .env("CONNCTL_OUTPUT", "json")
        .args(["integration", "list"])
        .output()
        .expect("run");
    let value: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(names(&value), ["inc", "quiet"]);
    // Lists of nothing are an empty array.
    assert_eq!(json(&env, &["connection", "list"]), json!([]));
    assert_eq!(json(&env, &["mid-server", "list"]), json!([]));
}

/// `--no-color` uncolors clap's own output too (usage errors, help), which is
/// colored only on a terminal: run on a pseudo-terminal (util-linux `script`).
#[test]
fn no_color_flag_also_uncolors_usage_errors_and_help() {
    let env = TestEnv::new();
    let bin = assert_cmd::cargo::cargo_bin!("connctl")
        .display()
        .to_string();
    let on_terminal = |args: &str| {
        let out = std::process::Command::new("script")
            .args(["-qec", &format!("{bin} {args}"), "/dev/null"])
            .env_clear()
            .env("HOME", &env.home)
            .env("CONNCTL_STORE", &env.store)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TERM", "xterm")
            .output()
            .expect("run script (util-linux)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Without the flag, the terminal gets colors: the check below can see them.
    assert!(on_terminal("integraton list").contains('\x1b'));
    for args in [
        "--no-color integraton list",
        "connection --no-color --help",
        "--no-color connection show nope",
    ] {
        let out = on_terminal(args);
        assert!(out.contains("onnection") || out.contains("error"), "{out}");
        assert!(!out.contains('\x1b'), "connctl {args}: {out:?}");
    }
}

#[test]
fn edit_that_changes_nothing_says_so() {
    let env = TestEnv::new();
    env.ok(&["integration", "add", "inc"]);
    env.ok(&[
        "connection",
        "add",
        "inc.test",
        "--integration",
        "inc",
        "--env",
        "test",
        "--url",
        "https://test.example.com/api",
    ]);
    env.ok(&[
        "mid-server",
        "add",
        "mid",
        "--url",
        "http://mid.internal:3128",
    ]);
    let before = env.store_bytes();
    for args in [
        &["connection", "edit", "inc.test"][..],
        &["connection", "edit", "inc.test", "--env", "test"],
        &["integration", "edit", "inc"],
        &[
            "mid-server",
            "edit",
            "mid",
            "--url",
            "http://mid.internal:3128",
        ],
    ] {
        let run = env.run(args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!("'{}' unchanged", args[2])),
            "connctl {args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("edit --help"), "{}", run.stderr);
    }
    assert_eq!(env.store_bytes(), before);
    let run = env.run(&["connection", "edit", "inc.test", "--env", "sandbox"]);
    assert!(
        run.stderr.contains("updated connection 'inc.test'"),
        "{}",
        run.stderr
    );
}
