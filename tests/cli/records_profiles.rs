//! OAuth profiles, protocol profiles, MID servers and inbound users through
//! the binary: add/list/show/edit/remove, their rules, and bad input.

use std::path::PathBuf;

use serde_json::json;

use crate::records::{json, keys, names, refused, two_connections};
use crate::support::{TestEnv, write};

/// A self-signed certificate and its key as PEM files `<stem>.pem` and `<stem>.key`.
pub fn cert_pair(env: &TestEnv, stem: &str) -> (PathBuf, PathBuf) {
    let certified =
        rcgen::generate_simple_self_signed(vec![format!("{stem}.example.com")]).expect("rcgen");
    let cert = env.path(&format!("{stem}.pem"));
    let key = env.path(&format!("{stem}.key"));
    write(&cert, &certified.cert.pem());
    write(&key, &certified.signing_key.serialize_pem());
    (cert, key)
}

fn s(path: &std::path::Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn oauth_profile_commands() {
    let env = two_connections();
    let run = env.run(&[
        "oauth-profile",
        "add",
        "corp-idp",
        "--token-url",
        "https://idp.example.com/oauth/token",
        "--client-id",
        "connctl",
        "--scope",
        "incident.write",
        "--scope",
        "incident.read",
        "--client-secret-env",
        "IDP_SECRET",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    let show = json(&env, &["oauth-profile", "show", "corp-idp"]);
    assert_eq!(
        show,
        json!({
            "name": "corp-idp",
            "token_url": "https://idp.example.com/oauth/token",
            "client_id": "connctl",
            "client_secret": "env:IDP_SECRET",
            "grant": "client_credentials",
            "client_auth": "basic",
            "scopes": ["incident.write", "incident.read"],
        })
    );
    assert_eq!(names(&json(&env, &["oauth-profile", "list"])), ["corp-idp"]);
    let table = env.ok(&["oauth-profile", "list"]);
    assert!(
        table.contains("corp-idp") && table.contains("env:IDP_SECRET"),
        "{table}"
    );

    env.ok(&[
        "oauth-profile",
        "edit",
        "corp-idp",
        "--client-auth",
        "body",
        "--client-secret-cmd",
        "pass show idp",
        "--scope",
        "all",
    ]);
    let show = json(&env, &["oauth-profile", "show", "corp-idp"]);
    assert_eq!(show["client_auth"], json!("body"));
    assert_eq!(show["client_secret"], json!("cmd:pass show idp"));
    assert_eq!(show["scopes"], json!(["all"]));
    env.ok(&["oauth-profile", "edit", "corp-idp", "--no-scopes"]);
    assert_eq!(
        json(&env, &["oauth-profile", "show", "corp-idp"]).get("scopes"),
        None
    );

    // A connection uses it: removal is refused and names the connection.
    env.ok(&[
        "connection",
        "edit",
        "inc.test",
        "--oauth-profile",
        "corp-idp",
    ]);
    let text = env.ok(&["oauth-profile", "show", "corp-idp"]);
    assert!(text.contains("inc.test"), "show names its users:\n{text}");
    let run = refused(
        &env,
        &["oauth-profile", "remove", "corp-idp"],
        4,
        "used by 1 connection",
    );
    assert!(run.stderr.contains("inc.test"), "{}", run.stderr);
    // The password grant needs the connection's user and password (rule 3).
    refused(
        &env,
        &["oauth-profile", "edit", "corp-idp", "--grant", "password"],
        4,
        "password grant",
    );
    env.ok(&["connection", "edit", "inc.test", "--auth", "none"]);
    env.ok(&["oauth-profile", "edit", "corp-idp", "--grant", "password"]);
    assert_eq!(
        json(&env, &["oauth-profile", "show", "corp-idp"])["grant"],
        json!("password")
    );
    env.ok(&["oauth-profile", "remove", "corp-idp"]);
    assert_eq!(json(&env, &["oauth-profile", "list"]), json!([]));
}

#[test]
fn oauth_profile_bad_input() {
    let env = TestEnv::new();
    let add = |name: &'static str, url: &'static str| {
        vec![
            "oauth-profile",
            "add",
            name,
            "--token-url",
            url,
            "--client-id",
            "c",
        ]
    };
    env.ok(&add("idp", "https://idp.example.com/token"));
    refused(
        &env,
        &add("idp", "https://idp.example.com/token"),
        4,
        "'idp' already exists",
    );
    refused(
        &env,
        &add("bad name", "https://a.example"),
        4,
        "not a valid oauth-profile name",
    );
    refused(
        &env,
        &add("x", "idp.example.com/token"),
        4,
        "not an absolute URL",
    );
    refused(
        &env,
        &add("x", "ldap://idp.example.com"),
        4,
        "scheme 'ldap'",
    );
    refused(
        &env,
        &[
            "oauth-profile",
            "add",
            "x",
            "--token-url",
            "https://a.example",
            "--client-id",
            " ",
        ],
        4,
        "has an empty client_id",
    );
    refused(
        &env,
        &[
            "oauth-profile",
            "add",
            "x",
            "--token-url",
            "https://a.example",
        ],
        2,
        "--client-id",
    );
    refused(
        &env,
        &[
            "oauth-profile",
            "add",
            "x",
            "--token-url",
            "https://a.example",
            "--client-id",
            "c",
            "--grant",
            "implicit",
        ],
        2,
        "implicit",
    );
    refused(
        &env,
        &[
            "oauth-profile",
            "add",
            "x",
            "--token-url",
            "https://a.example",
            "--client-id",
            "c",
            "--client-secret",
            "s",
        ],
        2,
        "--client-secret",
    );
    refused(
        &env,
        &["oauth-profile", "show", "nope"],
        3,
        "oauth-profile 'nope' does not exist",
    );
    refused(
        &env,
        &["oauth-profile", "edit", "nope", "--client-id", "x"],
        3,
        "oauth-profile 'nope' does not exist",
    );
    refused(
        &env,
        &["oauth-profile", "edit", "idp", "--token-url", "nope"],
        4,
        "not an absolute URL",
    );
    refused(
        &env,
        &["oauth-profile", "remove", "nope"],
        3,
        "oauth-profile 'nope' does not exist",
    );
}

#[test]
fn protocol_profile_commands_check_the_pem_files() {
    let env = two_connections();
    let (cert, key) = cert_pair(&env, "client");
    let (ca, _) = cert_pair(&env, "ca");
    let (_, other_key) = cert_pair(&env, "other");
    let garbage = env.path("garbage.pem");
    write(&garbage, "this is not PEM\n");

    env.ok(&[
        "protocol-profile",
        "add",
        "mtls",
        "--client-cert",
        s(&cert),
        "--client-key",
        s(&key),
        "--ca-bundle",
        s(&ca),
    ]);
    let show = json(&env, &["protocol-profile", "show", "mtls"]);
    assert_eq!(
        &keys(&show)[..4],
        ["name", "client_cert", "client_key", "ca_bundle"]
    );
    assert_eq!(show["client_cert"], json!(s(&cert)));
    assert_eq!(show["client_key"], json!(s(&key)));
    assert_eq!(show["ca_bundle"], json!(s(&ca)));
    assert!(
        show["client_cert_subject"].as_str().is_some(),
        "show reads the certificate: {show}"
    );
    assert!(show["client_cert_days_left"].as_i64().unwrap() > 300);
    let text = env.ok(&["protocol-profile", "show", "mtls"]);
    assert!(text.contains("expires in"), "{text}");
    assert_eq!(names(&json(&env, &["protocol-profile", "list"])), ["mtls"]);

    // The key must belong to the certificate; garbage is named.
    let run = refused(
        &env,
        &[
            "protocol-profile",
            "add",
            "bad",
            "--client-cert",
            s(&cert),
            "--client-key",
            s(&other_key),
        ],
        4,
        "does not belong to the certificate",
    );
    assert!(run.stderr.contains(s(&other_key)), "{}", run.stderr);
    refused(
        &env,
        &[
            "protocol-profile",
            "add",
            "bad",
            "--client-cert",
            s(&garbage),
            "--client-key",
            s(&key),
        ],
        4,
        "garbage.pem",
    );
    refused(
        &env,
        &[
            "protocol-profile",
            "add",
            "bad",
            "--client-cert",
            s(&cert),
            "--client-key",
            s(&garbage),
        ],
        4,
        "holds no PEM private key",
    );
    // A key file must not pass as the certificate, nor a certificate as the key.
    refused(
        &env,
        &[
            "protocol-profile",
            "add",
            "bad",
            "--client-cert",
            s(&key),
            "--client-key",
            s(&key),
        ],
        4,
        "holds no certificate",
    );
    refused(
        &env,
        &[
            "protocol-profile",
            "add",
            "bad",
            "--client-cert",
            s(&cert),
            "--client-key",
            s(&cert),
        ],
        4,
        "holds no PEM private key",
    );
    refused(
        &env,
        &[
            "protocol-profile",
            "add",
            "bad",
            "--client-cert",
            s(&cert),
            "--client-key",
            s(&key),
            "--ca-bundle",
            s(&garbage),
        ],
        4,
        "CA bundle",
    );
    refused(
        &env,
        &[
            "protocol-profile",
            "add",
            "bad",
            "--client-cert",
            "/nonexistent.pem",
            "--client-key",
            s(&key),
        ],
        4,
        "not a readable file",
    );
    refused(
        &env,
        &[
            "protocol-profile",
            "add",
            "mtls",
            "--client-cert",
            s(&cert),
            "--client-key",
            s(&key),
        ],
        4,
        "'mtls' already exists",
    );
    refused(
        &env,
        &["protocol-profile", "add", "x", "--client-cert", s(&cert)],
        2,
        "--client-key",
    );

    // Edit: a mismatched key is refused; a new matching pair is taken.
    refused(
        &env,
        &[
            "protocol-profile",
            "edit",
            "mtls",
            "--client-key",
            s(&other_key),
        ],
        4,
        "does not belong to the certificate",
    );
    let (cert2, key2) = cert_pair(&env, "client2");
    env.ok(&[
        "protocol-profile",
        "edit",
        "mtls",
        "--client-cert",
        s(&cert2),
        "--client-key",
        s(&key2),
        "--no-ca-bundle",
    ]);
    let show = json(&env, &["protocol-profile", "show", "mtls"]);
    assert_eq!(show["client_cert"], json!(s(&cert2)));
    assert_eq!(show.get("ca_bundle"), None);
    refused(
        &env,
        &["protocol-profile", "edit", "nope", "--no-ca-bundle"],
        3,
        "protocol-profile 'nope' does not exist",
    );

    // In use: removal refused, naming the connection.
    env.ok(&[
        "connection",
        "edit",
        "inc.prod",
        "--mutual-auth",
        "--protocol-profile",
        "mtls",
    ]);
    let run = refused(
        &env,
        &["protocol-profile", "remove", "mtls"],
        4,
        "used by 1 connection",
    );
    assert!(run.stderr.contains("inc.prod"), "{}", run.stderr);
    env.ok(&["connection", "edit", "inc.prod", "--no-mutual-auth"]);
    env.ok(&["protocol-profile", "remove", "mtls"]);
    refused(
        &env,
        &["protocol-profile", "remove", "mtls"],
        3,
        "does not exist",
    );
}

#[test]
fn mid_server_commands() {
    let env = two_connections();
    write(&env.path("mid.pw"), "p\n");
    let pw = env.path("mid.pw");
    env.ok(&[
        "mid-server",
        "add",
        "dmz-mid",
        "--url",
        "http://mid.internal:3128",
        "--user",
        "mid",
        "--password-file",
        s(&pw),
    ]);
    let show = json(&env, &["mid-server", "show", "dmz-mid"]);
    assert_eq!(
        show,
        json!({
            "name": "dmz-mid",
            "url": "http://mid.internal:3128",
            "user": "mid",
            "password": format!("file:{}", pw.display()),
        })
    );
    env.ok(&[
        "mid-server",
        "add",
        "open",
        "--url",
        "http://proxy.example.com:8080",
    ]);
    assert_eq!(
        names(&json(&env, &["mid-server", "list"])),
        ["dmz-mid", "open"]
    );
    assert!(env.ok(&["mid-server", "list"]).contains("mid.internal"));

    refused(
        &env,
        &[
            "mid-server",
            "add",
            "x",
            "--url",
            "http://m:3128",
            "--user",
            "u",
        ],
        4,
        "has a user but no password",
    );
    refused(
        &env,
        &[
            "mid-server",
            "add",
            "x",
            "--url",
            "http://m:3128",
            "--password-env",
            "P",
        ],
        4,
        "has a password source but no user",
    );
    refused(
        &env,
        &["mid-server", "add", "x", "--url", "mid.internal:3128"],
        4,
        "e.g. http://mid.internal:3128",
    );
    // A password written into a URL without a scheme is not repeated either.
    let run = refused(
        &env,
        &[
            "mid-server",
            "add",
            "x",
            "--url",
            "u:s3cret@mid.internal:3128",
        ],
        4,
        "not an absolute URL",
    );
    assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
    // Accepting https:// here would only fail later, at every test and send.
    refused(
        &env,
        &[
            "mid-server",
            "add",
            "x",
            "--url",
            "https://mid.internal:3129",
        ],
        4,
        "must be http://",
    );
    refused(
        &env,
        &[
            "mid-server",
            "edit",
            "open",
            "--url",
            "https://mid.internal:3129",
        ],
        4,
        "must be http://",
    );
    refused(
        &env,
        &["mid-server", "add", "x", "--url", "socks5://m:1080"],
        4,
        "scheme 'socks5'",
    );
    refused(
        &env,
        &["mid-server", "add", "open", "--url", "http://m:1"],
        4,
        "'open' already exists",
    );
    refused(
        &env,
        &["mid-server", "add", "a b", "--url", "http://m:1"],
        4,
        "not a valid mid-server name",
    );

    env.ok(&[
        "mid-server",
        "edit",
        "dmz-mid",
        "--url",
        "http://mid2.internal:3128",
    ]);
    env.ok(&["mid-server", "edit", "dmz-mid", "--password-env", "MID_PW"]);
    let show = json(&env, &["mid-server", "show", "dmz-mid"]);
    assert_eq!(show["url"], json!("http://mid2.internal:3128"));
    assert_eq!(show["password"], json!("env:MID_PW"));
    env.ok(&["mid-server", "edit", "dmz-mid", "--no-user"]);
    let show = json(&env, &["mid-server", "show", "dmz-mid"]);
    assert_eq!((show.get("user"), show.get("password")), (None, None));
    refused(
        &env,
        &["mid-server", "edit", "dmz-mid", "--user", "u"],
        4,
        "has a user but no password",
    );
    refused(
        &env,
        &["mid-server", "edit", "dmz-mid", "--password-env", "X"],
        4,
        "has a password source but no user",
    );
    refused(
        &env,
        &["mid-server", "edit", "nope", "--no-user"],
        3,
        "mid-server 'nope' does not exist",
    );

    env.ok(&["connection", "edit", "inc.test", "--mid-server", "dmz-mid"]);
    env.ok(&["connection", "edit", "inc.prod", "--mid-server", "dmz-mid"]);
    let run = refused(
        &env,
        &["mid-server", "remove", "dmz-mid"],
        4,
        "used by 2 connections",
    );
    assert!(run.stderr.contains("inc.prod, inc.test"), "{}", run.stderr);
    assert!(
        run.stderr.contains("connection edit"),
        "the hint says what to do: {}",
        run.stderr
    );
    env.ok(&["mid-server", "remove", "open"]);
    refused(
        &env,
        &["mid-server", "show", "open"],
        3,
        "mid-server 'open' does not exist",
    );
}

#[test]
fn inbound_user_commands() {
    let env = two_connections();
    env.ok(&[
        "inbound-user",
        "add",
        "remote.incident",
        "--password-env",
        "REMOTE_PW",
    ]);
    let show = json(&env, &["inbound-user", "show", "remote.incident"]);
    assert_eq!(
        show,
        json!({"name": "remote.incident", "password": "env:REMOTE_PW"})
    );
    assert_eq!(
        names(&json(&env, &["inbound-user", "list"])),
        ["remote.incident"]
    );

    refused(
        &env,
        &["inbound-user", "add", "nopw"],
        2,
        "needs a password",
    );
    refused(
        &env,
        &[
            "inbound-user",
            "add",
            "remote.incident",
            "--password-env",
            "X",
        ],
        4,
        "'remote.incident' already exists",
    );
    refused(
        &env,
        &["inbound-user", "add", "a:b", "--password-env", "X"],
        4,
        "not a valid inbound-user name",
    );

    env.ok(&[
        "inbound-user",
        "set-password",
        "remote.incident",
        "--password-cmd",
        "pass show remote",
    ]);
    assert_eq!(
        json(&env, &["inbound-user", "show", "remote.incident"])["password"],
        json!("cmd:pass show remote")
    );
    refused(
        &env,
        &["inbound-user", "set-password", "remote.incident"],
        2,
        "no password given",
    );
    refused(
        &env,
        &[
            "inbound-user",
            "set-password",
            "nope",
            "--password-env",
            "X",
        ],
        3,
        "inbound-user 'nope' does not exist",
    );
    refused(
        &env,
        &["inbound-user", "show", "nope"],
        3,
        "inbound-user 'nope' does not exist",
    );

    env.ok(&[
        "connection",
        "edit",
        "inc.prod",
        "--inbound-user",
        "remote.incident",
    ]);
    env.ok(&["connection", "activate", "inc.prod"]);
    let table = env.ok(&["inbound-user", "list"]);
    assert!(
        table.contains("inc.prod"),
        "the list shows who admits the user:\n{table}"
    );
    let run = refused(
        &env,
        &["inbound-user", "remove", "remote.incident"],
        4,
        "used by 1 connection",
    );
    assert!(run.stderr.contains("inc.prod"), "{}", run.stderr);
    env.ok(&["connection", "edit", "inc.prod", "--no-inbound-user"]);
    env.ok(&["inbound-user", "remove", "remote.incident"]);
    assert_eq!(json(&env, &["inbound-user", "list"]), json!([]));
    refused(
        &env,
        &["inbound-user", "remove", "remote.incident"],
        3,
        "does not exist",
    );
}

#[test]
fn empty_secret_env_or_cmd_is_a_usage_error() {
    let env = TestEnv::new();
    for flag in ["--password-env", "--password-cmd"] {
        refused(
            &env,
            &[
                "mid-server",
                "add",
                "m",
                "--url",
                "http://m:3128",
                "--user",
                "u",
                flag,
                " ",
            ],
            2,
            "the secret source is empty",
        );
    }
}
