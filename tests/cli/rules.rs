//! The rules of DESIGN.md §1 as their one owner (the model) states them,
//! through the binary: the exit code, the message and the hint a user reads,
//! and a store (and keyring) exactly as before every refusal. Also the one
//! policy that chooses an integration's connection, the same for
//! `integration activate` and `connection test|send --integration`.

use serde_json::Value;

use crate::outbound::{Fixture, conn};
use crate::outbound_servers::{Pki, ok_handler};
use crate::records::{json, refused, two_connections};
use crate::support::{Run, TestEnv, keyring_entries, store_id, write};

/// `refused` (exit `code`, `message` on stderr, store byte-identical), and
/// the hint line says `hint`.
#[track_caller]
fn refused_with_hint(env: &TestEnv, args: &[&str], code: i32, message: &str, hint: &str) -> Run {
    let run = refused(env, args, code, message);
    let hints: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("hint:"))
        .collect();
    assert!(
        hints.iter().any(|h| h.contains(hint)),
        "connctl {args:?}: no hint says {hint:?}:\n{}",
        run.stderr
    );
    run
}

/// `connection add x` to integration `inc` (test), with `extra` flags.
fn add<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    add_to("https://x.example.com", extra)
}

/// `connection add x` to integration `inc` (test) at `url`, with `extra` flags.
fn add_to<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "connection",
        "add",
        "x",
        "--integration",
        "inc",
        "--env",
        "test",
        "--url",
        url,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn connection_rules_are_refused_with_their_hints() {
    let env = two_connections();
    env.ok(&[
        "oauth-profile",
        "add",
        "idp",
        "--token-url",
        "https://idp.example.com/token",
        "--client-id",
        "c",
        "--client-secret-env",
        "CS",
    ]);
    env.ok(&[
        "oauth-profile",
        "add",
        "ropc",
        "--token-url",
        "https://idp.example.com/token",
        "--client-id",
        "c",
        "--client-secret-env",
        "CS",
        "--grant",
        "password",
    ]);
    let pki = Pki::new(&env.path("pki"));
    // Rule 3, on add and on edit.
    for args in [
        add(&["--auth", "oauth"]),
        vec!["connection", "edit", "inc.test", "--auth", "oauth"],
    ] {
        refused_with_hint(
            &env,
            &args,
            4,
            "uses oauth but names no OAuth profile",
            "add --oauth-profile NAME",
        );
    }
    refused_with_hint(
        &env,
        &add(&["--auth", "basic"]),
        4,
        "uses basic authentication but has no user",
        "add --user USER",
    );
    refused_with_hint(
        &env,
        &add(&["--auth", "basic", "--user", "u"]),
        4,
        "uses basic authentication but has no password",
        "--password-stdin (value kept in the keyring), --password-env VAR",
    );
    refused_with_hint(
        &env,
        &[
            "connection",
            "edit",
            "inc.test",
            "--auth",
            "none",
            "--oauth-profile",
            "idp",
        ],
        4,
        "names an OAuth profile but its authentication is none",
        "add --auth oauth, or leave out --oauth-profile",
    );
    refused_with_hint(
        &env,
        &add(&["--oauth-profile", "ropc"]),
        4,
        "with the password grant but lacks a user or a password source",
        "resource owner",
    );
    refused_with_hint(
        &env,
        &add(&["--mutual-auth"]),
        4,
        "has mutual auth on but names no protocol profile",
        "add --protocol-profile NAME",
    );
    env.ok(&[
        "protocol-profile",
        "add",
        "mtls",
        "--client-cert",
        pki.client_cert.to_str().unwrap(),
        "--client-key",
        pki.client_key_pkcs8.to_str().unwrap(),
    ]);
    refused_with_hint(
        &env,
        &[
            "connection",
            "edit",
            "inc.test",
            "--protocol-profile",
            "mtls",
        ],
        4,
        "names a protocol profile but mutual auth is off",
        "add --mutual-auth",
    );

    // Rule 6: plain http to production, on add, edit and copy.
    let http = "http://api.example.com/api";
    for args in [
        vec![
            "connection",
            "add",
            "x",
            "--integration",
            "inc",
            "--env",
            "production",
            "--url",
            http,
        ],
        vec!["connection", "edit", "inc.prod", "--url", http],
        vec![
            "connection",
            "copy",
            "inc.test",
            "x",
            "--env",
            "production",
            "--url",
            http,
        ],
    ] {
        refused_with_hint(
            &env,
            &args,
            4,
            "is production but 'http://api.example.com/api' is plain http",
            "pass --allow-http if the endpoint really is plain http",
        );
    }

    // Variables: one key is a plain or a secret variable, not both.
    refused_with_hint(
        &env,
        &[
            "connection",
            "edit",
            "inc.test",
            "--var",
            "k=v",
            "--secret-var",
            "k=env:K",
        ],
        4,
        "'k' would be both a variable and a secret variable",
        "--unset-var k",
    );

    // Rule 4: a reference to a record that does not exist is "not found".
    refused_with_hint(
        &env,
        &add(&["--auth", "oauth", "--oauth-profile", "ipd"]),
        3,
        "oauth-profile 'ipd' does not exist",
        "did you mean 'idp'?",
    );
    refused_with_hint(
        &env,
        &["connection", "edit", "inc.test", "--integration", "icn"],
        3,
        "integration 'icn' does not exist",
        "did you mean 'inc'?",
    );
    // ... and removing a record others use is refused, naming them.
    env.ok(&["connection", "edit", "inc.test", "--oauth-profile", "idp"]);
    refused_with_hint(
        &env,
        &["oauth-profile", "remove", "idp"],
        4,
        "oauth-profile 'idp' is used by 1 connection: inc.test",
        "point them elsewhere first, e.g. `connctl connection edit inc.test ...`",
    );
    refused_with_hint(
        &env,
        &["integration", "remove", "inc"],
        4,
        "integration 'inc' still has 2 connections: inc.prod, inc.test",
        "remove its connections first",
    );

    // Rule 5: one inbound user on two active connections.
    env.ok(&["inbound-user", "add", "remote", "--password-env", "R"]);
    env.ok(&["integration", "add", "other"]);
    for (name, integration) in [("inc.test", "inc"), ("other.test", "other")] {
        let url = format!("https://{integration}.example.com");
        if name == "other.test" {
            env.ok(&[
                "connection",
                "add",
                name,
                "--integration",
                integration,
                "--env",
                "test",
                "--url",
                &url,
            ]);
        }
        env.ok(&["connection", "edit", name, "--inbound-user", "remote"]);
    }
    env.ok(&["connection", "activate", "inc.test"]);
    refused_with_hint(
        &env,
        &["connection", "activate", "other.test"],
        4,
        "inbound-user 'remote' is on two active connections",
        "--no-inbound-user",
    );
}

#[test]
fn a_refused_rule_leaves_the_keyring_as_it_was() {
    let env = two_connections();
    env.ok(&[
        "connection",
        "edit",
        "inc.test",
        "--auth",
        "basic",
        "--user",
        "svc",
        "--password-env",
        "PW",
    ]);
    let run = env.run_stdin(
        &[
            "connection",
            "edit",
            "inc.prod",
            "--auth",
            "basic",
            "--user",
            "svc",
            "--password-stdin",
        ],
        "OLD",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = store_id(&env);
    let keyring = keyring_entries(None, &id);
    assert_eq!(keyring.len(), 1, "{keyring:?}");
    let before = env.store_bytes();
    // A new value with a change that breaks a rule: nothing stored.
    for args in [
        &[
            "connection",
            "edit",
            "inc.prod",
            "--password-stdin",
            "--auth",
            "oauth",
        ][..],
        &[
            "connection",
            "edit",
            "inc.prod",
            "--password-stdin",
            "--user",
            "a:b",
        ][..],
        &[
            "connection",
            "edit",
            "inc.prod",
            "--password-stdin",
            "--oauth-profile",
            "nope",
        ][..],
    ] {
        let run = env.run_stdin(args, "NEW");
        assert!(matches!(run.code, 3 | 4), "{args:?}: {}", run.stderr);
        assert_eq!(env.store_bytes(), before, "{args:?}");
        assert_eq!(keyring_entries(None, &id), keyring, "{args:?}");
    }
}

#[test]
fn basic_user_names_follow_rfc_7617() {
    let env = two_connections();
    refused_with_hint(
        &env,
        &add(&["--auth", "basic", "--user", "svc:x", "--password-env", "P"]),
        4,
        "the user 'svc:x' contains ':'",
        "without ':' (RFC 7617)",
    );
    // Only where Basic applies: the password grant's resource owner goes in a form.
    env.ok(&add(&["--auth", "none", "--user", "a:b"]));
    refused_with_hint(
        &env,
        &[
            "connection",
            "edit",
            "x",
            "--auth",
            "basic",
            "--password-env",
            "P",
        ],
        4,
        "the user 'a:b' contains ':'",
        "RFC 7617",
    );
    // A MID server's proxy authentication is Basic too.
    refused_with_hint(
        &env,
        &[
            "mid-server",
            "add",
            "m",
            "--url",
            "http://mid.example.com:3128",
            "--user",
            "a:b",
            "--password-env",
            "P",
        ],
        4,
        "the proxy user 'a:b' contains ':'",
        "RFC 7617",
    );
    // An inbound user's name is its Basic user-id: the name rule has no ':'.
    refused(
        &env,
        &["inbound-user", "add", "a:b", "--password-env", "P"],
        4,
        "not a valid inbound-user name",
    );
}

#[test]
fn mid_server_authentication_needs_user_and_password() {
    let env = TestEnv::new();
    env.ok(&[
        "mid-server",
        "add",
        "open",
        "--url",
        "http://mid.example.com:3128",
    ]);
    // The case issue 10 names: a password for a MID server without a user.
    refused_with_hint(
        &env,
        &["mid-server", "edit", "open", "--password-env", "X"],
        4,
        "mid-server 'open' has a password source but no user",
        "add --user USER",
    );
    refused_with_hint(
        &env,
        &["mid-server", "edit", "open", "--user", "u"],
        4,
        "mid-server 'open' has a user but no password",
        "--password-stdin",
    );
    refused_with_hint(
        &env,
        &[
            "mid-server",
            "add",
            "m",
            "--url",
            "http://m.example.com:3128",
            "--password-env",
            "X",
        ],
        4,
        "has a password source but no user",
        "add --user USER",
    );
    refused_with_hint(
        &env,
        &[
            "mid-server",
            "add",
            "m",
            "--url",
            "https://m.example.com:3129",
        ],
        4,
        "must be http://",
        "TLS end to end",
    );
    env.ok(&[
        "mid-server",
        "edit",
        "open",
        "--user",
        "u",
        "--password-env",
        "X",
    ]);
    let show = json(&env, &["mid-server", "show", "open"]);
    assert_eq!(show["password"], "env:X");
}

#[test]
fn port_zero_is_refused_in_every_url() {
    let env = two_connections();
    for args in [
        add_to("https://x.example.com:0/api", &[]),
        vec![
            "connection",
            "edit",
            "inc.test",
            "--url",
            "https://h.example.com:0",
        ],
        vec!["mid-server", "add", "m", "--url", "http://m.example.com:0"],
        vec![
            "oauth-profile",
            "add",
            "p",
            "--token-url",
            "https://idp.example.com:0/token",
            "--client-id",
            "c",
        ],
    ] {
        refused(&env, &args, 4, "has port 0");
    }
    // Port 0 in a hand-written store is refused when it loads, naming the line.
    let text = env.store_text().replace(
        "https://test.example.com/api",
        "https://test.example.com:0/api",
    );
    write(&env.store, &text);
    let run = env.fails(&["connection", "list"], 4);
    assert!(run.stderr.contains("store.toml:"), "{}", run.stderr);
    assert!(run.stderr.contains("has port 0"), "{}", run.stderr);
}

#[test]
fn oauth_profile_client_id_is_the_models_rule() {
    let env = TestEnv::new();
    refused_with_hint(
        &env,
        &[
            "oauth-profile",
            "add",
            "p",
            "--token-url",
            "https://i.example.com/t",
            "--client-id",
            " ",
        ],
        4,
        "has an empty client_id",
        "give --client-id ID",
    );
    env.ok(&[
        "oauth-profile",
        "add",
        "p",
        "--token-url",
        "https://i.example.com/t",
        "--client-id",
        "c",
    ]);
    refused_with_hint(
        &env,
        &["oauth-profile", "edit", "p", "--client-id", ""],
        4,
        "has an empty client_id",
        "give --client-id ID",
    );
    refused_with_hint(
        &env,
        &[
            "oauth-profile",
            "edit",
            "p",
            "--grant",
            "authorization_code",
        ],
        4,
        "uses the authorization_code grant but has no authorization_url",
        "give --authorization-url URL",
    );
}

#[test]
fn store_id_is_checked_when_the_store_loads() {
    let env = two_connections();
    let good = env.store_text();
    let id = store_id(&env);
    for bad in ["../../x", "", "x", &id.to_uppercase(), &id.replace('-', "")] {
        let text = good.replace(&id, bad);
        write(&env.store, &text);
        for args in [
            &["connection", "list"][..],
            &["integration", "add", "more"][..],
        ] {
            let run = env.fails(args, 4);
            assert!(
                run.stderr.contains("store.toml:2:") && run.stderr.contains("is not a store id"),
                "store_id {bad:?}: {}",
                run.stderr
            );
            assert_eq!(
                env.store_text(),
                text,
                "store_id {bad:?}: the store changed"
            );
        }
    }
    // An import file is a store too: its store_id is checked, naming the file.
    write(&env.store, &good);
    let file = env.path("incoming.toml");
    write(&file, &good.replace(&id, "../../x"));
    let run = refused(
        &env,
        &["import", file.to_str().unwrap()],
        4,
        "is not a store id",
    );
    assert!(run.stderr.contains("incoming.toml:2:"), "{}", run.stderr);
}

#[test]
fn import_that_breaks_rule_1_is_refused_with_the_hint() {
    let env = two_connections();
    env.ok(&["connection", "activate", "inc.test"]);
    let file = env.path("incoming.toml");
    write(
        &file,
        "version = 1\nstore_id = \"00000000-0000-4000-8000-000000000009\"\n\n\
         [integration.inc]\napplication = \"ITSM\"\n\n\
         [connection.\"inc.other\"]\nintegration = \"inc\"\nenvironment = \"sandbox\"\nactive = true\n\
         endpoint_url = \"https://s.example.com\"\n",
    );
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = vec!["import", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        refused_with_hint(
            &env,
            &args,
            4,
            "of integration 'inc' are both active",
            "connctl connection activate",
        );
    }
}

// ---------------------------------------------------------------------------
// One policy for the connection of an integration
// ---------------------------------------------------------------------------

/// A connection of `inc` in `env`, to the shared server's path `/<name>`.
fn choice_conn(
    f: &Fixture,
    server: &crate::outbound_servers::Server,
    name: &str,
    env: &str,
    extra: &str,
) -> String {
    conn(
        name,
        &server.url(&format!("/{name}")),
        &format!("ca_bundle = \"{}\"\n{extra}", f.ca()),
    )
    .replace(
        "environment = \"test\"",
        &format!("environment = \"{env}\""),
    )
}

/// What each command chooses for `inc` (with `--env` when given): the
/// connection `send` reached, the one `test` reports, the one `activate`
/// turned on; or the exit code and stderr each failed with.
fn choices(
    f: &Fixture,
    server: &crate::outbound_servers::Server,
    env: Option<&str>,
) -> [Result<String, (i32, String)>; 3] {
    let mut target = vec!["--integration", "inc"];
    if let Some(e) = env {
        target.extend(["--env", e]);
    }
    let before = server.requests().len();
    let mut send = vec!["connection", "send"];
    send.extend(&target);
    let run = f.run_env(&send, &[]);
    let sent = if run.code == 0 {
        let seen = server.requests();
        assert_eq!(seen.len(), before + 1, "{}", run.stderr);
        Ok(seen[before].path.trim_start_matches('/').to_string())
    } else {
        Err((run.code, run.stderr))
    };
    let mut test = vec!["-o", "json", "connection", "test"];
    test.extend(&target);
    let run = f.run_env(&test, &[]);
    let tested = if run.code == 0 {
        let json: Value = run.json();
        Ok(json["connection"].as_str().expect("connection").to_string())
    } else {
        Err((run.code, run.stderr))
    };
    let store_before = f.env.store_bytes();
    let mut activate = vec!["integration", "activate", "inc"];
    if let Some(e) = env {
        activate.extend(["--env", e]);
    }
    let run = f.run_env(&activate, &[]);
    let activated = if run.code == 0 {
        let show = f.run_env(&["-o", "json", "integration", "show", "inc"], &[]);
        Ok(show.json()["active_connection"]
            .as_str()
            .expect("active")
            .to_string())
    } else {
        assert_eq!(
            f.env.store_bytes(),
            store_before,
            "a refused activate changed the store"
        );
        Err((run.code, run.stderr))
    };
    [sent, tested, activated]
}

#[track_caller]
fn all_choose(results: &[Result<String, (i32, String)>; 3], expected: &str) {
    for (command, result) in ["send", "test", "activate"].iter().zip(results) {
        match result {
            Ok(name) => assert_eq!(name, expected, "{command} chose another connection"),
            Err((code, stderr)) => panic!(
                "{command} failed (exit {code}) where it should choose {expected}:\n{stderr}"
            ),
        }
    }
}

#[track_caller]
fn all_refuse(results: &[Result<String, (i32, String)>; 3], code: i32, needles: &[&str]) {
    for (command, result) in ["send", "test", "activate"].iter().zip(results) {
        match result {
            Ok(name) => panic!("{command} chose {name} where it should refuse with exit {code}"),
            Err((got, stderr)) => {
                assert_eq!(*got, code, "{command}: {stderr}");
                for needle in needles {
                    assert!(
                        stderr.contains(needle),
                        "{command}: no {needle:?} in\n{stderr}"
                    );
                }
            }
        }
    }
}

/// `send` and `test` of an integration with no active connection: exit 3,
/// naming the connection `integration activate` would choose.
#[track_caller]
fn inactive_refused(results: &[Result<String, (i32, String)>], would: &str, env: &str) {
    for (command, result) in ["send", "test"].iter().zip(results) {
        match result {
            Ok(name) => panic!("{command} used {name} of an inactive integration"),
            Err((code, stderr)) => {
                assert_eq!(*code, 3, "{command}: {stderr}");
                for needle in [
                    "integration 'inc' has no active connection".to_string(),
                    format!("`connctl integration activate inc` would choose '{would}'"),
                    format!("--env {env}"),
                ] {
                    assert!(
                        stderr.contains(&needle),
                        "{command}: no {needle:?} in\n{stderr}"
                    );
                }
            }
        }
    }
}

#[test]
fn send_test_and_activate_choose_the_same_connection() {
    let f = Fixture::new();
    let server = f.server(ok_handler());
    let stamp = |t: &str| format!("last_activated = \"{t}\"\n");
    // As text "…50.4Z" sorts after "…50.43Z"; as instants it is before.
    let (older, newer) = (
        stamp("2026-01-01T10:00:50.4Z"),
        stamp("2026-01-01T10:00:50.43Z"),
    );

    // The active one, though another was active more recently.
    f.store(
        &[
            choice_conn(&f, &server, "a", "test", &format!("active = true\n{older}")),
            choice_conn(&f, &server, "b", "development", &newer),
        ]
        .concat(),
    );
    all_choose(&choices(&f, &server, None), "a");

    // None active: `activate` takes the only one; `send` and `test` without
    // --env go through the active connection only, so they refuse (exit 3),
    // nothing is sent, and the hint names what `activate` would choose.
    f.store(&choice_conn(&f, &server, "only", "test", ""));
    let [sent, tested, activated] = choices(&f, &server, None);
    assert_eq!(activated, Ok("only".to_string()));
    inactive_refused(&[sent, tested], "only", "test");
    assert_eq!(
        server.count("/only"),
        0,
        "a send to an inactive integration"
    );
    // With --env the environment's connection is meant, active or not.
    f.store(&choice_conn(&f, &server, "only", "test", ""));
    all_choose(&choices(&f, &server, Some("test")), "only");

    // None active, several: the most recently active (instants, not text).
    f.store(
        &[
            choice_conn(&f, &server, "a", "test", &newer),
            choice_conn(&f, &server, "b", "development", &older),
            choice_conn(&f, &server, "c", "sandbox", ""),
        ]
        .concat(),
    );
    let [sent, tested, activated] = choices(&f, &server, None);
    assert_eq!(activated, Ok("a".to_string()));
    inactive_refused(&[sent, tested], "a", "test");

    // With --env: the same steps among that environment's connections.
    f.store(
        &[
            choice_conn(&f, &server, "a", "test", &format!("active = true\n{newer}")),
            choice_conn(&f, &server, "b", "development", ""),
            choice_conn(&f, &server, "c", "development", &older),
        ]
        .concat(),
    );
    all_choose(&choices(&f, &server, Some("development")), "c");
    f.store(
        &[
            choice_conn(&f, &server, "a", "test", "active = true\n"),
            choice_conn(&f, &server, "b", "development", ""),
        ]
        .concat(),
    );
    all_choose(&choices(&f, &server, Some("Development")), "b");

    // Several none of which was ever active: `activate` refuses (exit 2,
    // the candidates listed); `send` and `test` say there is no active
    // connection (exit 3), listing the same candidates.
    f.store(
        &[
            choice_conn(&f, &server, "a", "test", ""),
            choice_conn(&f, &server, "b", "development", ""),
        ]
        .concat(),
    );
    let [sent, tested, activated] = choices(&f, &server, None);
    all_refuse(
        &[activated.clone(), activated.clone(), activated],
        2,
        &[
            "has 2 connections and none was active before",
            "a (test), b (development)",
        ],
    );
    for (command, result) in [("send", sent), ("test", tested)] {
        let (code, stderr) = result.expect_err(command);
        assert_eq!(code, 3, "{command}: {stderr}");
        for needle in [
            "integration 'inc' has no active connection",
            "--connection NAME",
            "a (test), b (development)",
        ] {
            assert!(
                stderr.contains(needle),
                "{command}: no {needle:?} in\n{stderr}"
            );
        }
    }

    // Nothing to choose from: exit 3.
    all_refuse(
        &choices(&f, &server, Some("sandbox")),
        3,
        &[
            "integration 'inc' has no sandbox connection",
            "its connections: a (test), b (development)",
        ],
    );
    f.store("");
    all_refuse(
        &choices(&f, &server, None),
        3,
        &["integration 'inc' has no connections", "connection add"],
    );
}

#[test]
fn send_warns_when_the_integration_is_inactive() {
    let f = Fixture::new();
    let server = f.server(ok_handler());
    f.store(&choice_conn(&f, &server, "only", "test", ""));
    let run = f.expect(
        &[
            "connection",
            "send",
            "--integration",
            "inc",
            "--env",
            "test",
        ],
        &[],
        0,
    );
    assert!(
        run.stderr.contains(
            "warning: connection 'only' is not active, and integration 'inc' has no active connection"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(server.count("/only"), 1);
}

#[test]
fn a_name_that_breaks_the_rule_is_shown_escaped() {
    let env = TestEnv::new();
    let run = refused(
        &env,
        &["integration", "add", "a\nerror: forged"],
        4,
        "'a\\nerror: forged' is not a valid integration name",
    );
    assert!(
        !run.stderr.lines().any(|l| l.starts_with("error: forged")),
        "{}",
        run.stderr
    );
}
