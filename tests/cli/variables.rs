//! Connection variables in `connection send` and `connection test`, checked on
//! the receiving server byte for byte.

use std::sync::OnceLock;

use crate::outbound_servers::*;
use crate::support::{TestEnv, write};

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
