//! Connection variables in `connection send` and `connection test`, checked on
//! the receiving server byte for byte.

use std::sync::OnceLock;

use crate::outbound_servers::*;
use crate::support::{Run, TestEnv, keyring_entries, store_id, write};

/// One TLS server (private CA) for the whole test binary; each test uses paths of its own.
pub struct Shared {
    pub rt: tokio::runtime::Runtime,
    pub pki: Pki,
    pub server: Server,
    _dir: tempfile::TempDir,
}

pub fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = Pki::new(&dir.path().join("pki"));
        let rt = runtime();
        let server = tls_server(
            &rt,
            TlsOptions {
                cert: &pki.server_cert,
                key: &pki.server_key,
                client_ca: None,
                h2: true,
            },
            ok_handler(),
        );
        Shared {
            rt,
            pki,
            server,
            _dir: dir,
        }
    })
}

/// Requests the shared server saw whose path starts with `prefix`.
fn seen(prefix: &str) -> Vec<Seen> {
    shared()
        .server
        .requests()
        .into_iter()
        .filter(|s| s.path.starts_with(prefix))
        .collect()
}

/// A store with integration `orders` and one test connection `orders.test`
/// to `/PREFIX` on the shared server, with `vars` as its variables.
fn store(env: &TestEnv, prefix: &str, vars: &str) {
    let s = shared();
    write(
        &env.store,
        &format!(
            "version = 1\nstore_id = \"{}\"\n\n[integration.orders]\n\n\
             [connection.\"orders.test\"]\nintegration = \"orders\"\nenvironment = \"test\"\n\
             endpoint_url = \"{}\"\nca_bundle = \"{}\"\n\
             [connection.\"orders.test\".variables]\n{vars}\n",
            uuid::Uuid::new_v4(),
            s.server.url(prefix),
            s.pki.ca.display()
        ),
    );
}

#[test]
fn send_fills_path_headers_and_body_from_variables() {
    let env = TestEnv::new();
    store(
        &env,
        "/vars1",
        "table = \"incident\"\nsys_id = \"a b/ü\"\ntoken = \"t-1\"",
    );
    let body = env.path("event.json");
    write(
        &body,
        "{\"table\": \"{{table}}\", \"env\": \"{{ environment }}\", \"who\": \"{{connection}}@{{integration}}\", \"lit\": \"{{{{not}}\"}",
    );
    let file_arg = format!("@{}", body.display());
    env.ok(&[
        "connection",
        "send",
        "orders.test",
        "--path",
        "/{{table}}/{{environment}}",
        "-H",
        "X-Trace: {{token}}-{{table}}",
        "-H",
        "X-Literal: {{{{x}}",
        "-d",
        &file_arg,
    ]);
    let got = seen("/vars1");
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/vars1/incident/test");
    assert_eq!(r.header("x-trace"), Some("t-1-incident"));
    assert_eq!(r.header("x-literal"), Some("{{x}}"));
    assert_eq!(
        r.body,
        b"{\"table\": \"incident\", \"env\": \"test\", \"who\": \"orders.test@orders\", \"lit\": \"{{not}}\"}"
    );

    // --var overrides for one send; the body from stdin is filled in too.
    let run = env.run_stdin(
        &[
            "connection",
            "send",
            "--integration",
            "orders",
            "--env",
            "test",
            "--path",
            "/second/{{table}}",
            "--var",
            "table=problem",
            "--var",
            "extra=x=y",
            "-d",
            "@-",
        ],
        "[{{table}},{{extra}}]",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got = seen("/vars1/second");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/vars1/second/problem");
    assert_eq!(got[0].body, b"[problem,x=y]");
    // The store is unchanged by --var.
    assert!(env.store_text().contains("table = \"incident\""));
    assert!(!env.store_text().contains("problem"));

    // A value with spaces and non-ASCII goes into the path percent-encoded.
    env.ok(&[
        "connection",
        "send",
        "orders.test",
        "--path",
        "/p/{{sys_id}}",
    ]);
    let got = seen("/vars1/p/");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/vars1/p/a%20b/%C3%BC");
}

#[test]
fn raw_body_is_sent_untouched() {
    let env = TestEnv::new();
    store(&env, "/vars2", "table = \"incident\"");
    let raw = "{\"tpl\": \"{{table}} {{unknown}} {{\"}";
    env.ok(&[
        "connection",
        "send",
        "orders.test",
        "--path",
        "/{{table}}",
        "--raw-body",
        "-d",
        raw,
    ]);
    let got = seen("/vars2");
    assert_eq!(got.len(), 1);
    // The path is still filled; the body is not.
    assert_eq!(got[0].path, "/vars2/incident");
    assert_eq!(got[0].body, raw.as_bytes());
}

#[test]
fn unknown_variable_or_unclosed_braces_send_nothing() {
    let env = TestEnv::new();
    store(&env, "/vars3", "table = \"incident\"");
    let before = env.store_bytes();

    let run = env.fails(
        &[
            "connection",
            "send",
            "orders.test",
            "-d",
            "{\"x\": \"{{sys_id}}\"}",
        ],
        4,
    );
    assert!(
        run.stderr.contains(
            "the body uses variable 'sys_id' (at byte 7), which connection 'orders.test' does not have"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--var sys_id=VALUE") && run.stderr.contains("its variables: table"),
        "{}",
        run.stderr
    );

    let run = env.fails(
        &["connection", "send", "orders.test", "--path", "/{{nope}}"],
        4,
    );
    assert!(
        run.stderr.contains("--path uses variable 'nope'"),
        "{}",
        run.stderr
    );
    let run = env.fails(
        &["connection", "send", "orders.test", "-H", "X-A: {{hdr}}"],
        4,
    );
    assert!(
        run.stderr.contains("header 'X-A' uses variable 'hdr'"),
        "{}",
        run.stderr
    );

    let run = env.fails(
        &[
            "connection",
            "send",
            "orders.test",
            "-d",
            "abc {{table}} {{x",
        ],
        4,
    );
    assert!(
        run.stderr
            .contains("the body: '{{' at byte 14 is not closed by '}}'"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--raw-body"), "{}", run.stderr);

    // `connection test` checks its --path the same way.
    let run = env.fails(
        &["connection", "test", "orders.test", "--path", "/{{x}}"],
        4,
    );
    assert!(
        run.stderr.contains("--path uses variable 'x'"),
        "{}",
        run.stderr
    );

    // Nothing reached the server, and nothing changed.
    assert_eq!(seen("/vars3").len(), 0);
    assert_eq!(env.store_bytes(), before);
}

#[test]
fn test_fills_its_path_for_one_and_for_all() {
    let env = TestEnv::new();
    store(&env, "/vars4", "table = \"incident\"");
    env.ok(&[
        "connection",
        "test",
        "orders.test",
        "--path",
        "/ping/{{table}}",
    ]);
    env.ok(&[
        "connection",
        "test",
        "orders.test",
        "--path",
        "/ping/{{table}}",
        "--var",
        "table=override",
    ]);
    env.ok(&[
        "connection",
        "test",
        "--all",
        "--path",
        "/all/{{connection}}",
    ]);
    let paths: Vec<String> = seen("/vars4").into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        [
            "/vars4/ping/incident",
            "/vars4/ping/override",
            "/vars4/all/orders.test"
        ]
    );
}

// ----- secret variables (issue 12 item 2) ------------------------------------

const KEYRING_VALUE: &str = "kr-SECRET-value-4711";
const ENV_VALUE: &str = "env-SECRET-value-0815";

/// A connctl run with extra environment variables and stdin.
fn run_with(env: &TestEnv, args: &[&str], vars: &[(&str, &str)], stdin: &str) -> Run {
    let mut cmd = env.cmd();
    for (k, v) in vars {
        cmd.env(k, v);
    }
    Run::from_output(
        cmd.args(args)
            .write_stdin(stdin.to_string())
            .output()
            .expect("run connctl"),
    )
}

#[track_caller]
fn assert_no_secret(what: &str, text: &str) {
    for value in [KEYRING_VALUE, ENV_VALUE] {
        assert!(
            !text.contains(value),
            "{what} holds a secret value:\n{text}"
        );
    }
}

#[test]
fn secret_variables_fill_headers_and_are_never_shown() {
    let env = TestEnv::new();
    store(&env, "/secret1", "plain = \"p-1\"");
    let id = store_id(&env);
    let before = keyring_entries(None, &id);

    // One from the keyring (stdin), one from an env: reference.
    let run = run_with(
        &env,
        &[
            "connection",
            "edit",
            "orders.test",
            "--secret-var-stdin",
            "api_key",
            "--secret-var",
            "tenant=env:TENANT_TOKEN",
        ],
        &[],
        &format!("{KEYRING_VALUE}\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_no_secret("edit output", &(run.stdout + &run.stderr));
    let after = keyring_entries(None, &id);
    let account = format!("{id}/connection/orders.test/var.api_key");
    assert_eq!(after.get(&account).map(String::as_str), Some(KEYRING_VALUE));
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    let text = env.store_text();
    assert_no_secret("the store", &text);
    assert!(
        text.contains("[connection.\"orders.test\".secret_variables]"),
        "{text}"
    );
    assert!(text.contains("api_key = \"keyring\""), "{text}");
    assert!(text.contains("tenant = \"env:TENANT_TOKEN\""), "{text}");

    // Sent in headers, checked on the server; nothing printed holds a value, also with -v.
    let run = run_with(
        &env,
        &[
            "-v",
            "connection",
            "send",
            "orders.test",
            "--path",
            "/a",
            "-H",
            "x-api-key: {{api_key}}",
            "-H",
            "x-tenant: t={{tenant}};{{plain}};{{{{",
        ],
        &[("TENANT_TOKEN", ENV_VALUE)],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("secret variable 'api_key' (keyring)"),
        "{}",
        run.stderr
    );
    assert_no_secret("send output", &format!("{}{}", run.stdout, run.stderr));
    let got = seen("/secret1/a");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].header("x-api-key"), Some(KEYRING_VALUE));
    assert_eq!(
        got[0].header("x-tenant"),
        Some(format!("t={ENV_VALUE};p-1;{{{{").as_str())
    );

    // `show` gives the sources only.
    let json = env.ok(&["-o", "json", "connection", "show", "orders.test"]);
    assert_no_secret("show -o json", &json);
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(json["secret_variables"]["api_key"], "keyring", "{json:#}");
    assert_eq!(json["secret_variables"]["tenant"], "env:TENANT_TOKEN");
    let table = env.ok(&["connection", "show", "orders.test"]);
    assert!(
        table.contains("api_key (keyring), tenant (env:TENANT_TOKEN)"),
        "{table}"
    );

    // A name check happens before any secret is read: an unknown name, and a
    // secret variable outside a header, are exit 4 with nothing sent.
    for args in [
        vec!["-H", "x-api-key: {{api_key}}{{nope}}"],
        vec!["-d", "{\"k\": \"{{api_key}}\"}"],
        vec!["--path", "/{{api_key}}"],
    ] {
        let mut all = vec!["connection", "send", "orders.test"];
        all.extend(args);
        let run = run_with(&env, &all, &[], "");
        assert_eq!(run.code, 4, "{all:?}: {}", run.stderr);
        assert_no_secret("refused send", &format!("{}{}", run.stdout, run.stderr));
    }
    assert_eq!(seen("/secret1").len(), 1);
    // An env: source that is not set fails in the secrets stage, before sending.
    let run = run_with(
        &env,
        &["connection", "send", "orders.test", "-H", "x-t: {{tenant}}"],
        &[],
        "",
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("secret variable 'tenant'"),
        "{}",
        run.stderr
    );
    assert_eq!(seen("/secret1").len(), 1);

    // A key may not be both; the store stays as it was.
    let text = env.store_text();
    let run = env.run(&["connection", "edit", "orders.test", "--var", "api_key=x"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(env.store_text(), text);

    // Through a MID server (HTTPS through CONNECT): the proxy never sees a value.
    let proxy = Tinyproxy::start(&env.path("tinyproxy"), "miduser", "midpass");
    let mut text = env.store_text();
    text.push_str(&format!(
        "\n[mid_server.mid]\nurl = \"{}\"\nuser = \"miduser\"\npassword = \"env:MID_PW\"\n",
        proxy.url()
    ));
    write(&env.store, &text);
    env.ok(&["connection", "edit", "orders.test", "--mid-server", "mid"]);
    let run = run_with(
        &env,
        &[
            "-v",
            "connection",
            "send",
            "orders.test",
            "--path",
            "/mid",
            "-H",
            "x-api-key: {{api_key}}",
            "-H",
            "x-tenant: {{tenant}}",
        ],
        &[("TENANT_TOKEN", ENV_VALUE), ("MID_PW", "midpass")],
        "",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_no_secret("send via MID", &format!("{}{}", run.stdout, run.stderr));
    let got = seen("/secret1/mid");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("x-api-key"), Some(KEYRING_VALUE));
    let log = proxy.log_text();
    assert!(log.contains("CONNECT"), "tinyproxy log:\n{log}");
    assert_no_secret("tinyproxy log", &log);

    // Removing the connection removes its keyring entry.
    env.ok(&["connection", "remove", "orders.test"]);
    let gone = keyring_entries(None, &id);
    assert!(!gone.contains_key(&account), "{gone:?}");
}

#[test]
fn refused_secret_variable_changes_nothing() {
    let env = TestEnv::new();
    store(&env, "/secret2", "plain = \"p\"");
    let id = store_id(&env);
    let text = env.store_text();
    let before = keyring_entries(None, &id);
    let run = run_with(
        &env,
        &[
            "connection",
            "add",
            "other.test",
            "--integration",
            "nosuch",
            "--env",
            "test",
            "--url",
            "https://localhost/x",
            "--secret-var-stdin",
            "api_key",
        ],
        &[],
        KEYRING_VALUE,
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_no_secret("refused add", &format!("{}{}", run.stdout, run.stderr));
    assert_eq!(keyring_entries(None, &id), before);
    assert_eq!(env.store_text(), text);

    // A source that is not env/file/cmd/vault is a usage error; stdin is not read.
    let run = run_with(
        &env,
        &[
            "connection",
            "edit",
            "orders.test",
            "--secret-var",
            "k=plain-text",
        ],
        &[],
        "",
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--secret-var-stdin k"),
        "{}",
        run.stderr
    );
    // --unset-secret-var of a key it does not have: not found, nothing changed.
    let run = env.run(&[
        "connection",
        "edit",
        "orders.test",
        "--unset-secret-var",
        "k",
    ]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(env.store_text(), text);
    assert_eq!(keyring_entries(None, &id), before);
}
