//! `connection diff` and `integration diff`: exact rows and exit codes for
//! matching and mismatching pairs, and `--live` against two real TLS servers
//! that differ in TLS version, ALPN and issuer.

use std::sync::{Arc, Mutex, OnceLock};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

use crate::outbound_servers::*;
use crate::support::{TestEnv, write};
use crate::variables::shared;

/// A TLS 1.2-only, http/1.1-only server whose certificate comes from another CA
/// (`CN=other test CA`), answering 202 text/plain; started once per test binary.
struct Other {
    server: Server,
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn other() -> &'static Other {
    static OTHER: OnceLock<Other> = OnceLock::new();
    OTHER.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = KeyPair::generate().expect("key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.distinguished_name
            .push(DnType::CommonName, "other test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca_pem = ca.self_signed(&ca_key).expect("CA").pem();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("key");
        let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).expect("leaf params");
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = time::OffsetDateTime::now_utc();
        leaf.not_before = now - time::Duration::days(1);
        leaf.not_after = now + time::Duration::days(60);
        let cert_pem = leaf.signed_by(&key, &issuer).expect("sign").pem();
        let ca_path = dir.path().join("other-ca.pem");
        std::fs::write(&ca_path, &ca_pem).expect("write");

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .expect("TLS 1.2")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("cert")],
                PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).expect("key"),
            )
            .expect("config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let rt = &shared().rt;
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let handler: Handler = Arc::new(|_| {
            Reply::new(202, "accepted").header("content-type", "text/plain; charset=utf-8")
        });
        rt.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, handler, seen) = (acceptor.clone(), handler.clone(), seen2.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve_one(tls, handler, seen).await;
                    }
                });
            }
        });
        Other {
            server: Server { port, seen },
            ca: ca_path,
            _dir: dir,
        }
    })
}

/// One connection of integration `orders` (or `integration`), as TOML.
struct Conn<'a> {
    name: &'a str,
    integration: &'a str,
    env: &'a str,
    url: String,
    lines: Vec<String>,
}

impl<'a> Conn<'a> {
    fn new(name: &'a str, env: &'a str, url: &str) -> Self {
        Conn {
            name,
            integration: "orders",
            env,
            url: url.to_string(),
            lines: Vec::new(),
        }
    }
    fn line(mut self, line: &str) -> Self {
        self.lines.push(line.to_string());
        self
    }
    fn toml(&self) -> String {
        format!(
            "[connection.\"{}\"]\nintegration = \"{}\"\nenvironment = \"{}\"\nendpoint_url = \"{}\"\n{}\n\n",
            self.name,
            self.integration,
            self.env,
            self.url,
            self.lines.join("\n")
        )
    }
}

/// The records every store here shares: profiles, MID servers, inbound users.
fn records(env: &TestEnv) -> String {
    let pki = &shared().pki;
    let missing = env.path("gone.pem");
    format!(
        "[integration.orders]\n\n[integration.billing]\n\n\
         [protocol_profile.p-test]\nclient_cert = \"{cert}\"\nclient_key = \"{key}\"\n\n\
         [protocol_profile.p-prod]\nclient_cert = \"{cert}\"\nclient_key = \"{key}\"\n\n\
         [protocol_profile.p-rogue]\nclient_cert = \"{rogue}\"\nclient_key = \"{rogue_key}\"\n\n\
         [protocol_profile.p-gone]\nclient_cert = \"{missing}\"\nclient_key = \"{key}\"\n\n\
         [oauth_profile.idp]\ntoken_url = \"https://idp.example.com/oauth/token\"\nclient_id = \"c\"\nclient_secret = \"env:CS\"\nscopes = [\"orders.write\"]\n\n\
         [mid_server.mid-test]\nurl = \"http://mid-test.internal:3128\"\n\n\
         [mid_server.mid-prod]\nurl = \"http://mid.internal:3128\"\n\n\
         [inbound_user.in-test]\npassword = \"env:IN_T\"\n\n\
         [inbound_user.in-prod]\npassword = \"env:IN_P\"\n\n",
        cert = pki.client_cert.display(),
        key = pki.client_key_pkcs8.display(),
        rogue = pki.rogue_cert.display(),
        rogue_key = pki.rogue_key.display(),
        missing = missing.display(),
    )
}

/// A basic, mutual-TLS connection through a MID server with an inbound user
/// and a `table` variable: `[user, protocol profile, MID server, inbound user, table]`.
fn matched<'a>(name: &'a str, env: &'a str, url: &str, fields: [&str; 5]) -> Conn<'a> {
    let [user, profile, mid, inbound, table] = fields;
    Conn::new(name, env, url)
        .line("authentication = \"basic\"")
        .line(&format!("user = \"{user}\""))
        .line("password = \"env:PW\"")
        .line("mutual_auth = true")
        .line(&format!("protocol_profile = \"{profile}\""))
        .line(&format!("mid_server = \"{mid}\""))
        .line(&format!("inbound_user = \"{inbound}\""))
        .line(&format!(
            "[connection.\"{name}\".variables]\ntable = \"{table}\""
        ))
}

fn test_conn(name: &str) -> Conn<'_> {
    matched(
        name,
        "test",
        "https://test.example.com/api/orders",
        ["svc.test", "p-test", "mid-test", "in-test", "t_test"],
    )
}

fn prod_conn() -> Conn<'static> {
    matched(
        "orders.prod",
        "production",
        "https://api.example.com/api/orders",
        ["svc.prod", "p-prod", "mid-prod", "in-prod", "incident"],
    )
}

fn store(env: &TestEnv, conns: &[Conn<'_>]) {
    let text: String = conns.iter().map(Conn::toml).collect();
    write(
        &env.store,
        &format!(
            "version = 1\nstore_id = \"{}\"\n\n{}{text}",
            uuid::Uuid::new_v4(),
            records(env)
        ),
    );
}

/// `(field, a, b, verdict)` of each row of one comparison object.
fn rows(json: &Value) -> Vec<(String, String, String, String)> {
    json["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["field"].as_str().unwrap().to_string(),
                r["a"].as_str().unwrap().to_string(),
                r["b"].as_str().unwrap().to_string(),
                r["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn unexpected(json: &Value) -> Vec<(String, String, String)> {
    rows(json)
        .into_iter()
        .filter(|(_, _, _, v)| v == "differs")
        .map(|(f, a, b, _)| (f, a, b))
        .collect()
}

fn owned(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    list.iter()
        .map(|(f, a, b)| (f.to_string(), a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn matching_test_and_production_differ_only_where_expected() {
    let env = TestEnv::new();
    store(&env, &[test_conn("orders.test"), prod_conn()]);
    let run = env.run(&[
        "-o",
        "json",
        "connection",
        "diff",
        "orders.test",
        "orders.prod",
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let json = run.json();
    assert_eq!(json["a"], "orders.test");
    assert_eq!(json["b"], "orders.prod");
    assert_eq!(json["unexpected"], 0);
    let expected_rows = [
        ("integration", "orders", "orders", "same"),
        ("environment", "test", "production", "differs (expected)"),
        ("authentication", "basic", "basic", "same"),
        ("user", "svc.test", "svc.prod", "differs (expected)"),
        ("password", "env", "env", "same"),
        ("oauth_profile", "-", "-", "same"),
        ("mutual_auth", "on", "on", "same"),
        ("protocol_profile", "p-test", "p-prod", "differs (expected)"),
        (
            "certificate.subject",
            "CN=connctl-client",
            "CN=connctl-client",
            "same",
        ),
        (
            "certificate.issuer",
            "CN=connctl test CA",
            "CN=connctl test CA",
            "same",
        ),
        ("certificate.key_type", "EC P-256", "EC P-256", "same"),
        ("protocol_profile.ca_bundle", "-", "-", "same"),
        ("ca_bundle", "-", "-", "same"),
        ("mid_server", "mid-test", "mid-prod", "differs (expected)"),
        (
            "mid_server.host",
            "mid-test.internal",
            "mid.internal",
            "differs (expected)",
        ),
        ("mid_server.password", "-", "-", "same"),
        ("inbound_user", "in-test", "in-prod", "differs (expected)"),
        ("endpoint.scheme", "https", "https", "same"),
        (
            "endpoint.host",
            "test.example.com",
            "api.example.com",
            "differs (expected)",
        ),
        ("endpoint.port", "443", "443", "same"),
        ("endpoint.path", "/api/orders", "/api/orders", "same"),
        (
            "variables.table",
            "t_test",
            "incident",
            "differs (expected)",
        ),
    ];
    // Days to expiry are a day either way of 90 depending on the clock: checked apart.
    let mut got = rows(&json);
    let days = got
        .iter()
        .position(|r| r.0 == "certificate.days_to_expiry")
        .expect("days row");
    let days = got.remove(days);
    assert!(days.1 == "89" || days.1 == "90", "{days:?}");
    assert_eq!(
        (days.1.as_str(), days.3.as_str()),
        (days.2.as_str(), "same")
    );
    assert_eq!(
        got,
        expected_rows
            .iter()
            .map(|(f, a, b, v)| (f.to_string(), a.to_string(), b.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    );
    assert!(
        run.stderr.contains("nothing differs unexpectedly"),
        "{}",
        run.stderr
    );

    // The table says the same.
    let out = env.ok(&["connection", "diff", "orders.test", "orders.prod"]);
    assert!(out.starts_with("a: orders.test  b: orders.prod\n"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("endpoint.host"))
        .expect("host line");
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        [
            "endpoint.host",
            "test.example.com",
            "api.example.com",
            "differs",
            "(expected)"
        ]
    );
}

#[test]
fn mismatching_pairs_name_each_unexpected_field() {
    let env = TestEnv::new();
    let oauth = Conn::new(
        "orders.oauth",
        "test",
        "https://test.example.com/api/orders",
    )
    .line("authentication = \"oauth\"")
    .line("oauth_profile = \"idp\"")
    .line("mutual_auth = true")
    .line("protocol_profile = \"p-test\"")
    .line("mid_server = \"mid-test\"")
    .line("inbound_user = \"in-test\"")
    .line("[connection.\"orders.oauth\".variables]\ntable = \"t\"");
    let no_mtls = Conn::new(
        "orders.nomtls",
        "test",
        "https://test.example.com/api/orders",
    )
    .line("authentication = \"basic\"")
    .line("user = \"svc.test\"")
    .line("password = \"env:PW\"")
    .line("mid_server = \"mid-test\"")
    .line("inbound_user = \"in-test\"")
    .line("[connection.\"orders.nomtls\".variables]\ntable = \"t\"");
    let no_mid = Conn::new(
        "orders.nomid",
        "test",
        "https://test.example.com/api/orders",
    )
    .line("authentication = \"basic\"")
    .line("user = \"svc.test\"")
    .line("password = \"env:PW\"")
    .line("mutual_auth = true")
    .line("protocol_profile = \"p-test\"")
    .line("inbound_user = \"in-test\"")
    .line("[connection.\"orders.nomid\".variables]\ntable = \"t\"\nextra = \"x\"");
    let rogue = matched(
        "orders.rogue",
        "test",
        "https://test.example.com:8443/api/v2/orders",
        ["svc.test", "p-rogue", "mid-test", "in-test", "t"],
    );
    store(&env, &[oauth, no_mtls, no_mid, rogue, prod_conn()]);
    let diff = |a: &str| {
        let run = env.run(&["-o", "json", "connection", "diff", a, "orders.prod"]);
        assert_eq!(run.code, 1, "{a}: {}\n{}", run.stdout, run.stderr);
        (run.json(), run.stderr)
    };

    let (json, stderr) = diff("orders.oauth");
    assert_eq!(
        unexpected(&json),
        owned(&[
            ("authentication", "oauth", "basic"),
            ("user", "-", "svc.prod"),
            ("password", "-", "env"),
            ("oauth_profile", "idp", "-"),
            ("oauth.token_host", "idp.example.com", "-"),
            ("oauth.grant", "client_credentials", "-"),
            ("oauth.client_auth", "basic", "-"),
            ("oauth.scopes", "orders.write", "-"),
            ("oauth.client_secret", "env", "-"),
        ])
    );
    assert_eq!(json["unexpected"], 9);
    assert!(
        stderr.contains("error: 'orders.oauth' and 'orders.prod' differ in authentication, user, password, oauth_profile"),
        "{stderr}"
    );

    let (json, _) = diff("orders.nomtls");
    assert_eq!(
        unexpected(&json),
        owned(&[
            ("mutual_auth", "off", "on"),
            ("protocol_profile", "-", "p-prod"),
            ("certificate.subject", "-", "CN=connctl-client"),
            ("certificate.issuer", "-", "CN=connctl test CA"),
            ("certificate.key_type", "-", "EC P-256"),
        ])
        .into_iter()
        .chain(
            unexpected(&json)
                .into_iter()
                .filter(|r| r.0 == "certificate.days_to_expiry")
        )
        .collect::<Vec<_>>()
    );
    assert_eq!(json["unexpected"], 6);

    let (json, _) = diff("orders.nomid");
    assert_eq!(
        unexpected(&json),
        owned(&[
            ("mid_server", "-", "mid-prod"),
            ("mid_server.host", "-", "mid.internal"),
            ("variables.extra", "x", "-"),
        ])
    );

    let (json, stderr) = diff("orders.rogue");
    assert_eq!(
        unexpected(&json),
        owned(&[
            ("certificate.issuer", "CN=rogue CA", "CN=connctl test CA"),
            ("endpoint.port", "8443", "443"),
            ("endpoint.path", "/api/v2/orders", "/api/orders"),
        ])
    );
    assert!(stderr.contains("--ignore FIELD"), "{stderr}");

    // --ignore accepts the known differences: a field and a group.
    let run = env.run(&[
        "-o",
        "json",
        "connection",
        "diff",
        "orders.rogue",
        "orders.prod",
        "--ignore",
        "certificate.issuer",
        "--ignore",
        "endpoint",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["unexpected"], 0);
    let issuer = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["field"] == "certificate.issuer")
        .unwrap();
    assert_eq!(issuer["verdict"], "differs (expected)");
    assert_eq!(issuer["ignored"], true);
    let out = env.run(&[
        "connection",
        "diff",
        "orders.rogue",
        "orders.prod",
        "--ignore",
        "certificate",
        "--ignore",
        "endpoint",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("differs (ignored)"), "{}", out.stdout);

    // An unknown --ignore field is a usage error that lists the fields.
    let run = env.fails(
        &[
            "connection",
            "diff",
            "orders.rogue",
            "orders.prod",
            "--ignore",
            "endpont",
        ],
        2,
    );
    assert!(
        run.stderr.contains("--ignore 'endpont': no such field"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("endpoint.path"), "{}", run.stderr);
}

#[test]
fn vanished_certificate_different_integrations_and_unknown_names() {
    let env = TestEnv::new();
    let gone = matched(
        "orders.gone",
        "test",
        "https://test.example.com/api/orders",
        ["svc.test", "p-gone", "mid-test", "in-test", "t"],
    );
    let mut billing = prod_conn();
    billing.name = "billing.prod";
    billing.integration = "billing";
    billing.lines.pop();
    billing
        .lines
        .push("[connection.\"billing.prod\".variables]\ntable = \"incident\"".into());
    store(&env, &[gone, prod_conn(), billing]);
    // The store checks that the file exists when written; here it vanished afterwards.
    let run = env.run(&[
        "-o",
        "json",
        "connection",
        "diff",
        "orders.gone",
        "orders.prod",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let json = run.json();
    let gone_path = env.path("gone.pem");
    assert_eq!(
        unexpected(&json),
        owned(&[(
            "certificate",
            &format!(
                "unreadable: cannot read the client certificate {}: No such file or directory (os error 2)",
                gone_path.display()
            ),
            "CN=connctl-client",
        )])
    );

    // Connections of two integrations are compared, with a note.
    let run = env.run(&["connection", "diff", "orders.prod", "billing.prod"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "note: the connections belong to different integrations ('orders' and 'billing')"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("note: both connections reach the production environment"),
        "{}",
        run.stderr
    );

    let before = env.store_bytes();
    let run = env.fails(&["connection", "diff", "orders.prod", "orders.nope"], 3);
    assert!(
        run.stderr
            .contains("connection 'orders.nope' does not exist"),
        "{}",
        run.stderr
    );
    env.fails(&["connection", "diff", "nope", "orders.prod"], 3);
    env.fails(&["integration", "diff", "nope"], 3);
    let run = env.fails(&["integration", "diff", "orders", "--env", "sandbox"], 3);
    assert!(
        run.stderr
            .contains("integration 'orders' has no sandbox connection"),
        "{}",
        run.stderr
    );
    env.fails(&["integration", "diff", "billing"], 4);
    env.fails(&["connection", "diff", "orders.prod", "orders.prod"], 2);
    assert_eq!(env.store_bytes(), before);
}

#[test]
fn integration_diff_compares_each_environment_with_the_active_one() {
    let env = TestEnv::new();
    let mut dev = test_conn("orders.dev");
    dev.env = "development";
    dev.lines
        .retain(|l| !l.starts_with("mutual_auth") && !l.starts_with("protocol_profile"));
    store(&env, &[dev, test_conn("orders.test"), prod_conn()]);

    // No connection is active: production is the reference.
    let run = env.run(&["-o", "json", "integration", "diff", "orders"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let json = run.json();
    let pairs: Vec<(String, String, u64)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["a"].as_str().unwrap().into(),
                c["b"].as_str().unwrap().into(),
                c["unexpected"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("orders.dev".to_string(), "orders.prod".to_string(), 6),
            ("orders.test".to_string(), "orders.prod".to_string(), 0),
        ]
    );
    assert!(
        run.stderr
            .contains("'orders.test' and 'orders.prod': nothing differs unexpectedly"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("'orders.dev' and 'orders.prod' differ in mutual_auth"),
        "{}",
        run.stderr
    );

    // Two environments.
    let run = env.run(&[
        "-o",
        "json",
        "integration",
        "diff",
        "orders",
        "--env",
        "Test",
        "--env",
        "production",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()[0]["a"], "orders.test");

    // The active connection becomes the reference.
    env.ok(&["connection", "activate", "orders.test"]);
    let run = env.run(&[
        "-o",
        "json",
        "integration",
        "diff",
        "orders",
        "--env",
        "development",
    ]);
    assert_eq!(run.code, 1);
    let json = run.json();
    assert_eq!(
        (json[0]["a"].as_str(), json[0]["b"].as_str()),
        (Some("orders.dev"), Some("orders.test"))
    );

    // Tables for several pairs, one after the other.
    let run = env.run(&[
        "integration",
        "diff",
        "orders",
        "--ignore",
        "mutual_auth",
        "--ignore",
        "protocol_profile",
        "--ignore",
        "certificate",
    ]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("a: orders.dev  b: orders.test\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("\na: orders.prod  b: orders.test\n"),
        "{}",
        run.stdout
    );
}

#[test]
fn live_compares_what_two_tls_servers_showed() {
    let s = shared();
    let o = other();
    let env = TestEnv::new();
    let a = Conn::new("orders.test", "test", &s.server.url("/live"))
        .line(&format!("ca_bundle = \"{}\"", s.pki.ca.display()));
    let b = Conn::new("orders.prod", "production", &o.server.url("/live"))
        .line(&format!("ca_bundle = \"{}\"", o.ca.display()));
    let down = Conn::new(
        "orders.dev",
        "development",
        &format!("https://localhost:{}/live/c", refused_port()),
    )
    .line(&format!("ca_bundle = \"{}\"", s.pki.ca.display()));
    store(&env, &[a, b, down]);

    let run = env.run(&[
        "-o",
        "json",
        "connection",
        "diff",
        "orders.test",
        "orders.prod",
        "--live",
        "--ignore",
        "endpoint.port",
    ]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let json = run.json();
    let live: Vec<(String, String, String, String)> = rows(&json)
        .into_iter()
        .filter(|r| r.0.starts_with("live."))
        .collect();
    let days = live
        .iter()
        .find(|r| r.0 == "live.server_days_to_expiry")
        .unwrap()
        .clone();
    assert!(days.1 == "89" || days.1 == "90", "{days:?}");
    assert!(days.2 == "59" || days.2 == "60", "{days:?}");
    assert_eq!(days.3, "differs (expected)");
    assert_eq!(
        live.into_iter()
            .filter(|r| r.0 != "live.server_days_to_expiry")
            .collect::<Vec<_>>(),
        [
            ("live.result", "ok", "ok", "same"),
            ("live.tls_version", "TLS 1.3", "TLS 1.2", "differs"),
            ("live.alpn", "h2", "http/1.1", "differs"),
            (
                "live.server_issuer",
                "CN=connctl test CA",
                "CN=other test CA",
                "differs"
            ),
            ("live.client_cert_requested", "no", "no", "same"),
            ("live.status", "200", "202", "differs (expected)"),
            ("live.status_class", "2xx", "2xx", "same"),
            (
                "live.content_type",
                "application/json",
                "text/plain; charset=utf-8",
                "differs"
            ),
        ]
        .iter()
        .map(|(f, a, b, v)| (f.to_string(), a.to_string(), b.to_string(), v.to_string()))
        .collect::<Vec<_>>()
    );
    assert_eq!(json["unexpected"], 4);
    let stages: Vec<&str> = json["timings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["secrets", "dns", "tcp", "tls", "http"]);
    assert!(json["timings"][3]["a_ms"].as_f64().unwrap() > 0.0);
    assert!(json["timings"][3]["b_ms"].as_f64().unwrap() > 0.0);
    // Each server was asked once.
    assert_eq!(s.server.count("/live"), 1);
    assert_eq!(o.server.count("/live"), 1);

    // A side that fails its test is a differs row naming the stage.
    let run = env.run(&[
        "-o",
        "json",
        "connection",
        "diff",
        "orders.dev",
        "orders.test",
        "--live",
    ]);
    assert_eq!(run.code, 1);
    let result = rows(&run.json())
        .into_iter()
        .find(|r| r.0 == "live.result")
        .unwrap();
    assert!(
        result.1.starts_with("FAILED at tcp: connection refused"),
        "{result:?}"
    );
    assert_eq!((result.2.as_str(), result.3.as_str()), ("ok", "differs"));

    // The table shows the timings side by side.
    let run = env.run(&["connection", "diff", "orders.test", "orders.prod", "--live"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("STAGE") && l.contains("A MS") && l.contains("B MS")),
        "{}",
        run.stdout
    );
}
