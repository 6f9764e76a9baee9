//! `connection test`, `connection send` and `oauth-profile token` against real
//! TLS/mTLS servers, fault servers, tinyproxy and an OAuth token endpoint, all on loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::outbound_servers::*;
use crate::support::{Run, TestEnv};

/// A test environment with its servers' runtime and a private PKI.
pub struct Fixture {
    pub env: TestEnv,
    pub rt: tokio::runtime::Runtime,
    pub pki: Pki,
    /// Unique per test, so keyring entries of tests running at once never meet.
    pub store_id: String,
}

impl Fixture {
    pub fn new() -> Fixture {
        let env = TestEnv::new();
        let pki = Pki::new(&env.path("pki"));
        Fixture {
            env,
            rt: runtime(),
            pki,
            store_id: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Writes the store: the header, integration `inc`, and `records` (TOML).
    pub fn store(&self, records: &str) {
        let text = format!(
            "version = 1\nstore_id = \"{}\"\n\n[integration.inc]\n\n{records}",
            self.store_id
        );
        crate::support::write(&self.env.store, &text);
    }

    pub fn ca(&self) -> String {
        self.pki.ca.display().to_string()
    }

    /// A TLS server with the good certificate (h2 and http/1.1).
    pub fn server(&self, handler: Handler) -> Server {
        tls_server(
            &self.rt,
            TlsOptions {
                cert: &self.pki.server_cert,
                key: &self.pki.server_key,
                client_ca: None,
                h2: true,
            },
            handler,
        )
    }

    /// A server requiring a client certificate from the private CA (http/1.1 only).
    pub fn mtls_server(&self, handler: Handler) -> Server {
        tls_server(
            &self.rt,
            TlsOptions {
                cert: &self.pki.server_cert,
                key: &self.pki.server_key,
                client_ca: Some(&self.pki.ca),
                h2: false,
            },
            handler,
        )
    }

    pub fn run_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let mut cmd = self.env.cmd();
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd.args(args).output().expect("run connctl");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and insists on `code`.
    #[track_caller]
    pub fn expect(&self, args: &[&str], vars: &[(&str, &str)], code: i32) -> Run {
        let run = self.run_env(args, vars);
        assert_eq!(
            run.code, code,
            "connctl {args:?}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        run
    }

    /// `connection test ARGS -o json`, insisting on `code`.
    #[track_caller]
    pub fn test_json_args(&self, extra: &[&str], code: i32) -> (Value, Run) {
        let mut args = vec!["-o", "json", "connection", "test"];
        args.extend_from_slice(extra);
        let run = self.expect(&args, &[], code);
        (run.json(), run)
    }

    /// `connection test NAME -o json`, insisting on `code`; returns the JSON object.
    #[track_caller]
    pub fn test_json(
        &self,
        name: &str,
        extra: &[&str],
        vars: &[(&str, &str)],
        code: i32,
    ) -> (Value, Run) {
        let mut args = vec!["-o", "json", "connection", "test", name];
        args.extend_from_slice(extra);
        let run = self.expect(&args, vars, code);
        (run.json(), run)
    }
}

/// A connection table with auth none.
pub fn conn(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[connection.\"{name}\"]\nintegration = \"inc\"\nenvironment = \"test\"\nendpoint_url = \"{url}\"\n{extra}\n\n"
    )
}

pub fn stage<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {json:#}"))
}

pub fn stage_names(json: &Value) -> Vec<String> {
    json["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap().to_string())
        .collect()
}

pub fn detail(json: &Value, name: &str) -> String {
    stage(json, name)["detail"].as_str().unwrap().to_string()
}

#[test]
fn tls_test_reports_every_stage_with_certificate_details() {
    let f = Fixture::new();
    let server = f.server(ok_handler());
    f.store(&conn(
        "c",
        &server.url("/api/ping"),
        &format!("ca_bundle = \"{}\"", f.ca()),
    ));
    let (json, _) = f.test_json("c", &[], &[], 0);
    assert_eq!(json["ok"], true);
    assert_eq!(json["connection"], "c");
    assert_eq!(json["status"], 200);
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["failed_stage"], Value::Null);
    assert_eq!(stage_names(&json), ["secrets", "dns", "tcp", "tls", "http"]);
    let tls = detail(&json, "tls");
    assert!(tls.contains("CN=localhost"), "{tls}");
    assert!(tls.contains("issued by CN=connctl test CA"), "{tls}");
    assert!(
        tls.contains("expires in 89 days") || tls.contains("expires in 90 days"),
        "{tls}"
    );
    assert!(tls.contains("ALPN h2"), "{tls}");
    assert!(tls.contains("client certificate not requested"), "{tls}");
    assert!(detail(&json, "http").contains("200 OK"));
    assert_eq!(server.count("/api/ping"), 1);

    // The table form names the stages too.
    let out = f.env.ok(&["connection", "test", "c"]);
    for s in ["secrets", "dns", "tcp", "tls", "http"] {
        assert!(out.contains(s), "{out}");
    }
}

#[test]
fn untrusted_expired_and_wrong_host_certificates_are_named() {
    let f = Fixture::new();
    let good = f.server(ok_handler());
    let expired = tls_server(
        &f.rt,
        TlsOptions {
            cert: &f.pki.expired_cert,
            key: &f.pki.server_key,
            client_ca: None,
            h2: false,
        },
        ok_handler(),
    );
    let wrong = tls_server(
        &f.rt,
        TlsOptions {
            cert: &f.pki.wrong_host_cert,
            key: &f.pki.server_key,
            client_ca: None,
            h2: false,
        },
        ok_handler(),
    );
    let ca = format!("ca_bundle = \"{}\"", f.ca());
    f.store(&format!(
        "{}{}{}",
        conn("untrusted", &good.url("/"), ""),
        conn("expired", &expired.url("/"), &ca),
        conn("wrong", &wrong.url("/"), &ca),
    ));

    let (json, run) = f.test_json("untrusted", &[], &[], 7);
    assert_eq!(json["failed_stage"], "tls");
    assert!(
        run.stderr
            .contains("server certificate is not trusted: issued by CN=connctl test CA"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--ca-bundle"), "{}", run.stderr);
    assert_eq!(good.requests().len(), 0);

    let (json, run) = f.test_json("expired", &[], &[], 7);
    assert_eq!(json["failed_stage"], "tls");
    assert!(
        run.stderr.contains("server certificate expired 3 days ago"),
        "{}",
        run.stderr
    );

    let (json, run) = f.test_json("wrong", &[], &[], 7);
    assert_eq!(json["failed_stage"], "tls");
    assert!(
        run.stderr
            .contains("server certificate is for other.example, not for localhost"),
        "{}",
        run.stderr
    );

    // --insecure gets through, and says loudly what it skipped.
    let (json, run) = f.test_json("untrusted", &["--insecure"], &[], 0);
    assert!(detail(&json, "tls").contains("VERIFICATION SKIPPED"));
    assert!(run.stderr.contains("NOT verified"), "{}", run.stderr);
}

fn mtls_records(f: &Fixture, url: &str, cert: &std::path::Path, key: &std::path::Path) -> String {
    format!(
        "{}[protocol_profile.p]\nclient_cert = \"{}\"\nclient_key = \"{}\"\nca_bundle = \"{}\"\n\n",
        conn("m", url, "mutual_auth = true\nprotocol_profile = \"p\""),
        cert.display(),
        key.display(),
        f.ca()
    )
}

#[test]
fn mutual_tls_with_pkcs8_sec1_and_pkcs1_keys() {
    let f = Fixture::new();
    let server = f.mtls_server(ok_handler());
    let pki = &f.pki;
    for (cert, key, cn) in [
        (&pki.client_cert, &pki.client_key_pkcs8, "CN=connctl-client"),
        (&pki.client_cert, &pki.client_key_sec1, "CN=connctl-client"),
        (
            &pki.client_rsa_cert,
            &pki.client_rsa_key_pkcs1,
            "CN=connctl-client-rsa",
        ),
    ] {
        f.store(&mtls_records(&f, &server.url("/m"), cert, key));
        let (json, _) = f.test_json("m", &[], &[], 0);
        let tls = detail(&json, "tls");
        assert!(
            tls.contains(&format!("client certificate requested, sent {cn}")),
            "{key:?}: {tls}"
        );
    }
    assert_eq!(server.count("/m"), 3);
}

#[test]
fn mutual_tls_failures_say_which_side_is_wrong() {
    let f = Fixture::new();
    // HTTP/1.1 and HTTP/2 report a late TLS alert differently; both must explain it.
    let h1 = f.mtls_server(ok_handler());
    let h2 = tls_server(
        &f.rt,
        TlsOptions {
            cert: &f.pki.server_cert,
            key: &f.pki.server_key,
            client_ca: Some(&f.pki.ca),
            h2: true,
        },
        ok_handler(),
    );
    for server in [&h1, &h2] {
        // Mutual auth off against a server that requires a client certificate.
        f.store(&conn(
            "off",
            &server.url("/"),
            &format!("ca_bundle = \"{}\"", f.ca()),
        ));
        // TLS 1.3 tells the client only after its handshake: as an alert, or as a
        // reset or closed connection when the request is written first. Each run
        // may see either; every one must be the same TLS error.
        let missing =
            "the server requires a client certificate and the connection has mutual auth off";
        for _ in 0..3 {
            let (json, run) = f.test_json("off", &[], &[], 7);
            assert_eq!(json["failed_stage"], "tls");
            assert!(run.stderr.contains(missing), "{}", run.stderr);
            let run = f.expect(&["connection", "send", "off"], &[], 7);
            assert!(run.stderr.contains(missing), "{}", run.stderr);
        }

        // A client certificate from a CA the server does not trust.
        f.store(&mtls_records(
            &f,
            &server.url("/"),
            &f.pki.rogue_cert,
            &f.pki.rogue_key,
        ));
        // An alert names the refusal; a reset right after a TLS 1.3 handshake is most
        // likely the same refusal.
        for _ in 0..3 {
            let (json, run) = f.test_json("m", &[], &[], 7);
            assert_eq!(json["failed_stage"], "tls");
            assert!(
                run.stderr
                    .contains("the server rejected the client certificate")
                    || run
                        .stderr
                        .contains("it probably rejected the client certificate"),
                "{}",
                run.stderr
            );
        }
        assert_eq!(server.requests().len(), 0);
    }
    let server = &h1;

    // A key that does not belong to the certificate.
    f.store(&mtls_records(
        &f,
        &server.url("/"),
        &f.pki.client_cert,
        &f.pki.rogue_key,
    ));
    let (json, run) = f.test_json("m", &[], &[], 7);
    assert_eq!(json["failed_stage"], "tls");
    assert!(
        run.stderr
            .contains("does not belong to the client certificate"),
        "{}",
        run.stderr
    );
}

#[test]
fn network_faults_name_the_stage() {
    let f = Fixture::new();
    let refused = refused_port();
    let reset = fault_server(&f.rt, Fault::Reset);
    let silent = fault_server(&f.rt, Fault::Silent);
    let plain = fault_server(&f.rt, Fault::PlainHttp);
    let slow = f.server(Arc::new(|_| {
        let mut r = Reply::new(200, "late");
        r.delay = Some(Duration::from_secs(3600));
        r
    }));
    let ca = format!("ca_bundle = \"{}\"", f.ca());
    f.store(&format!(
        "{}{}{}{}{}{}",
        conn("refused", &format!("https://127.0.0.1:{refused}/"), &ca),
        conn("reset", &format!("https://127.0.0.1:{reset}/"), &ca),
        conn("silent", &format!("https://127.0.0.1:{silent}/"), &ca),
        conn("plain", &format!("https://localhost:{plain}/"), &ca),
        conn("slow", &slow.url("/"), &ca),
        conn("nxdomain", "https://no-such-host.invalid/", &ca),
    ));

    let (json, run) = f.test_json("refused", &[], &[], 6);
    assert_eq!(json["failed_stage"], "tcp");
    assert!(
        run.stderr.contains("connection refused by 127.0.0.1:"),
        "{}",
        run.stderr
    );

    // The reset may land while the connect completes or during the handshake.
    let (json, run) = f.test_json("reset", &[], &[], 6);
    assert!(
        json["failed_stage"] == "tcp" || json["failed_stage"] == "tls",
        "{json:#}"
    );
    assert!(
        run.stderr.contains("reset the connection"),
        "{}",
        run.stderr
    );

    let (json, run) = f.test_json("silent", &["--timeout", "1"], &[], 6);
    assert_eq!(json["failed_stage"], "tls");
    assert!(run.stderr.contains("timed out after 1 s"), "{}", run.stderr);

    let (json, run) = f.test_json("slow", &["--timeout", "1"], &[], 6);
    assert_eq!(json["failed_stage"], "http");
    assert!(
        run.stderr.contains("timed out after 1 s waiting for"),
        "{}",
        run.stderr
    );

    let (json, run) = f.test_json("plain", &[], &[], 7);
    assert_eq!(json["failed_stage"], "tls");
    assert!(
        run.stderr.contains("did not answer with TLS"),
        "{}",
        run.stderr
    );

    let (json, run) = f.test_json("nxdomain", &[], &[], 6);
    assert_eq!(json["failed_stage"], "dns");
    assert!(
        run.stderr
            .contains("cannot resolve host 'no-such-host.invalid'"),
        "{}",
        run.stderr
    );
}

#[test]
fn http_statuses_decide_the_verdict() {
    let f = Fixture::new();
    let ca = format!("ca_bundle = \"{}\"", f.ca());
    let mut records = String::new();
    let mut servers = Vec::new();
    for status in [401u16, 403, 500, 302, 405] {
        let s = f.server(status_handler(status));
        records.push_str(&conn(&format!("s{status}"), &s.url("/"), &ca));
        servers.push(s);
    }
    f.store(&records);
    for (status, code) in [(401, 8), (403, 8), (500, 1), (302, 0), (405, 1)] {
        let (json, run) = f.test_json(&format!("s{status}"), &[], &[], code);
        assert_eq!(json["status"], status);
        if code != 0 {
            assert_eq!(json["failed_stage"], "http", "{status}");
        }
        if code == 8 {
            assert!(
                run.stderr.contains("the endpoint refused the credentials"),
                "{}",
                run.stderr
            );
        }
    }
    // --expect accepts an answer a plain GET gets from a POST-only endpoint.
    f.test_json("s405", &["--expect", "405"], &[], 0);
    f.test_json("s500", &["--expect", "405"], &[], 1);
}

fn basic_conn(name: &str, url: &str, ca: &str, extra: &str) -> String {
    conn(
        name,
        url,
        &format!(
            "ca_bundle = \"{ca}\"\nauthentication = \"basic\"\nuser = \"svc.user\"\npassword = \"env:CONN_PW\"\n{extra}"
        ),
    )
}

#[test]
fn send_posts_basic_auth_and_prints_the_body_byte_for_byte() {
    let f = Fixture::new();
    let server = f.server(Arc::new(|req| {
        Reply::new(
            201,
            &format!(
                "{{\"echo\":{}}}\n\u{1}tail",
                String::from_utf8_lossy(&req.body)
            ),
        )
        .header("x-server", "test")
    }));
    f.store(&basic_conn("b", &server.url("/api"), &f.ca(), ""));
    let pw = [("CONN_PW", "pa:ss wörd")];
    let run = f.expect(
        &[
            "connection",
            "send",
            "b",
            "--path",
            "/items",
            "-d",
            "{\"a\":1}",
            "-H",
            "X-Trace: t1",
        ],
        &pw,
        0,
    );
    assert_eq!(run.stdout, "{\"echo\":{\"a\":1}}\n\u{1}tail");
    assert!(
        run.stderr.contains("POST https://localhost:"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("201 Created"), "{}", run.stderr);
    let seen = &server.requests()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/api/items");
    assert_eq!(seen.header("x-trace"), Some("t1"));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode("svc.user:pa:ss wörd");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Basic {expected}").as_str())
    );
    // The password never shows.
    assert!(!run.stderr.contains("pa:ss"), "{}", run.stderr);

    // -i puts the status line and headers first; -d @file and @- read the body.
    let file = f.env.path("event.json");
    std::fs::write(&file, b"from-file").unwrap();
    let run = f.expect(
        &[
            "connection",
            "send",
            "b",
            "-i",
            "-d",
            &format!("@{}", file.display()),
        ],
        &pw,
        0,
    );
    assert!(run.stdout.contains("201 Created\r\n"), "{}", run.stdout);
    assert!(run.stdout.contains("x-server: test\r\n"), "{}", run.stdout);
    assert!(
        run.stdout.ends_with("{\"echo\":from-file}\n\u{1}tail"),
        "{}",
        run.stdout
    );
    let out = f
        .env
        .cmd()
        .env("CONN_PW", "pa:ss wörd")
        .args([
            "connection",
            "send",
            "b",
            "-d",
            "@-",
            "--content-type",
            "text/plain",
        ])
        .write_stdin("from-stdin")
        .output()
        .unwrap();
    assert!(out.status.success());
    let last = server.requests().last().unwrap().clone();
    assert_eq!(last.body, b"from-stdin");
    assert_eq!(last.header("content-type"), Some("text/plain"));
}

#[test]
fn send_failures_and_secret_errors() {
    let f = Fixture::new();
    let denied = f.server(status_handler(401));
    let broken = f.server(status_handler(500));
    let ca = f.ca();
    f.store(&format!(
        "{}{}",
        basic_conn("denied", &denied.url("/"), &ca, ""),
        basic_conn("broken", &broken.url("/"), &ca, ""),
    ));
    let pw = [("CONN_PW", "pw")];
    let run = f.expect(&["connection", "send", "denied", "-d", "x"], &pw, 8);
    assert!(run.stderr.contains("401 Unauthorized"), "{}", run.stderr);
    assert_eq!(run.stdout, "refused");
    f.expect(&["connection", "send", "broken", "-d", "x"], &pw, 1);
    // The password variable is not set: a secret error, nothing sent.
    let before = denied.requests().len();
    let (json, run) = f.test_json("denied", &[], &[], 5);
    assert_eq!(json["failed_stage"], "secrets");
    assert!(run.stderr.contains("CONN_PW"), "{}", run.stderr);
    assert_eq!(denied.requests().len(), before);
}

#[test]
fn send_retries_503_honouring_retry_after() {
    let f = Fixture::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let server = f.server(Arc::new(move |_| {
        if c2.fetch_add(1, Ordering::SeqCst) < 2 {
            Reply::new(503, "busy").header("retry-after", "1")
        } else {
            Reply::new(200, "done")
        }
    }));
    f.store(&conn(
        "r",
        &server.url("/"),
        &format!("ca_bundle = \"{}\"", f.ca()),
    ));
    let run = f.expect(&["connection", "send", "r", "--retry", "3"], &[], 0);
    assert_eq!(run.stdout, "done");
    assert_eq!(server.requests().len(), 3);
    assert!(
        run.stderr
            .contains("503 Service Unavailable; retry 1/3 in 1 s"),
        "{}",
        run.stderr
    );

    // Without --retry, one request and exit 1.
    calls.store(0, Ordering::SeqCst);
    let run = f.expect(&["connection", "send", "r"], &[], 1);
    assert_eq!(run.stdout, "busy");
    assert_eq!(server.requests().len(), 4);

    // A refused connection is retried too, then reported as a network failure.
    let port = refused_port();
    f.store(&conn("gone", &format!("https://127.0.0.1:{port}/"), ""));
    let run = f.expect(&["connection", "send", "gone", "--retry", "1"], &[], 6);
    assert!(run.stderr.contains("retry 1/1"), "{}", run.stderr);
}

#[test]
fn production_needs_confirmation_and_inactive_connections_warn() {
    let f = Fixture::new();
    let server = f.server(ok_handler());
    let ca = format!("ca_bundle = \"{}\"", f.ca());
    f.store(&format!(
        "[connection.prod]\nintegration = \"inc\"\nenvironment = \"production\"\nactive = true\nendpoint_url = \"{}\"\n{ca}\n\n{}",
        server.url("/"),
        conn("spare", &server.url("/spare"), &ca)
    ));
    let run = f.expect(&["connection", "send", "prod", "-d", "x"], &[], 4);
    assert!(run.stderr.contains("production"), "{}", run.stderr);
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert_eq!(server.requests().len(), 0);
    f.expect(&["--yes", "connection", "send", "prod", "-d", "x"], &[], 0);
    f.expect(
        &[
            "-y",
            "connection",
            "send",
            "--integration",
            "inc",
            "-d",
            "x",
        ],
        &[],
        0,
    );
    assert_eq!(server.count("/"), 2);

    let run = f.expect(&["connection", "send", "spare"], &[], 0);
    assert!(
        run.stderr
            .contains("connection 'spare' is not active; integration 'inc' sends through 'prod'"),
        "{}",
        run.stderr
    );
}

pub fn mid_records(f: &Fixture, proxy: &Tinyproxy, url: &str, extra: &str) -> String {
    format!(
        "{}[mid_server.mid]\nurl = \"{}\"\nuser = \"{}\"\npassword = \"env:MID_PW\"\n\n",
        conn(
            "viamid",
            url,
            &format!("ca_bundle = \"{}\"\nmid_server = \"mid\"\n{extra}", f.ca())
        ),
        proxy.url(),
        proxy.user
    )
}

#[test]
fn mid_server_tunnels_mutual_tls_and_refuses_wrong_credentials() {
    let f = Fixture::new();
    let proxy = Tinyproxy::start(&f.env.path("tinyproxy"), "miduser", "midpass");
    let server = f.mtls_server(ok_handler());
    let records = format!(
        "{}[protocol_profile.p]\nclient_cert = \"{}\"\nclient_key = \"{}\"\n\n",
        mid_records(
            &f,
            &proxy,
            &server.url("/through"),
            "mutual_auth = true\nprotocol_profile = \"p\""
        ),
        f.pki.client_cert.display(),
        f.pki.client_key_pkcs8.display()
    );
    f.store(&records);

    let (json, _) = f.test_json("viamid", &[], &[("MID_PW", "midpass")], 0);
    assert_eq!(
        stage_names(&json),
        ["secrets", "dns", "tcp", "mid_connect", "tls", "http"]
    );
    assert!(detail(&json, "mid_connect").contains("200"), "{json:#}");
    assert!(detail(&json, "tls").contains("sent CN=connctl-client"));
    assert!(detail(&json, "dns").contains("MID server 'mid'"));
    assert_eq!(server.count("/through"), 1);
    let log = proxy.log_text();
    assert!(
        log.contains(&format!("CONNECT localhost:{}", server.port)),
        "tinyproxy log:\n{log}"
    );

    // tinyproxy answers 401 to a wrong password.
    let (json, run) = f.test_json("viamid", &[], &[("MID_PW", "wrong")], 8);
    assert_eq!(json["failed_stage"], "mid_connect");
    assert!(
        run.stderr
            .contains("the MID server refused the credentials (401)"),
        "{}",
        run.stderr
    );
    let run = f.expect(&["connection", "send", "viamid"], &[("MID_PW", "wrong")], 8);
    assert!(
        run.stderr.contains("refused the credentials"),
        "{}",
        run.stderr
    );
    assert_eq!(server.count("/through"), 1);

    // The MID server cannot reach the endpoint: a network failure at its stage.
    let gone = refused_port();
    f.store(&records.replace(
        &format!("localhost:{}", server.port),
        &format!("localhost:{gone}"),
    ));
    let (json, run) = f.test_json("viamid", &[], &[("MID_PW", "midpass")], 6);
    assert_eq!(json["failed_stage"], "mid_connect");
    assert!(
        run.stderr.contains(&format!(
            "the MID server 'mid' could not reach localhost:{gone}"
        )),
        "{}",
        run.stderr
    );

    // No credentials at all: tinyproxy answers 407.
    f.store(&records.replace("user = \"miduser\"\npassword = \"env:MID_PW\"\n", ""));
    let (json, run) = f.test_json("viamid", &[], &[], 8);
    assert_eq!(json["failed_stage"], "mid_connect");
    assert!(
        run.stderr
            .contains("the MID server refused the credentials (407)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("has no user"), "{}", run.stderr);
}

#[test]
fn mid_server_carries_plain_http_in_absolute_form() {
    let f = Fixture::new();
    let proxy = Tinyproxy::start(&f.env.path("tinyproxy"), "miduser", "midpass");
    let server = http_server(&f.rt, ok_handler());
    f.store(&mid_records(
        &f,
        &proxy,
        &format!("http://127.0.0.1:{}/plain", server.port),
        "",
    ));
    let run = f.expect(
        &["connection", "send", "viamid"],
        &[("MID_PW", "midpass")],
        0,
    );
    assert_eq!(run.stdout, "{\"result\":\"ok\"}");
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/plain");
    // The proxy credentials stay with the proxy.
    assert_eq!(seen[0].header("proxy-authorization"), None);
    // A wrong password: tinyproxy answers the absolute-form request itself (401).
    f.expect(&["connection", "send", "viamid"], &[("MID_PW", "bad")], 8);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn https_proxy_and_no_proxy_from_the_environment() {
    let f = Fixture::new();
    let proxy = Tinyproxy::start(&f.env.path("tinyproxy"), "envuser", "envpass");
    let server = f.server(ok_handler());
    f.store(&conn(
        "c",
        &server.url("/env"),
        &format!("ca_bundle = \"{}\"", f.ca()),
    ));
    let via = format!("http://envuser:envpass@127.0.0.1:{}", proxy.port);
    let (json, _) = f.test_json("c", &[], &[("HTTPS_PROXY", &via)], 0);
    assert!(
        detail(&json, "mid_connect").contains("proxy from HTTPS_PROXY"),
        "{json:#}"
    );
    let connects = |log: &str| {
        log.matches(&format!("CONNECT localhost:{}", server.port))
            .count()
    };
    assert_eq!(connects(&proxy.log_text()), 1);

    let (json, _) = f.test_json(
        "c",
        &[],
        &[("HTTPS_PROXY", &via), ("NO_PROXY", "localhost")],
        0,
    );
    assert_eq!(stage_names(&json), ["secrets", "dns", "tcp", "tls", "http"]);
    assert_eq!(connects(&proxy.log_text()), 1);

    let bad = format!("http://envuser:nope@127.0.0.1:{}", proxy.port);
    let (json, run) = f.test_json("c", &[], &[("https_proxy", &bad)], 8);
    assert_eq!(json["failed_stage"], "mid_connect");
    assert!(
        run.stderr
            .contains("the proxy refused the credentials (401)"),
        "{}",
        run.stderr
    );
}

#[test]
fn test_all_runs_concurrently_and_reports_each() {
    let f = Fixture::new();
    let ok = f.server(ok_handler());
    let denied = f.server(status_handler(403));
    let ca = format!("ca_bundle = \"{}\"", f.ca());
    let mut records = String::new();
    for i in 0..20 {
        records.push_str(&conn(&format!("ok{i:02}"), &ok.url("/"), &ca));
    }
    records.push_str(&conn("zz-denied", &denied.url("/"), &ca));
    records.push_str(&conn(
        "zz-refused",
        &format!("https://127.0.0.1:{}/", refused_port()),
        &ca,
    ));
    f.store(&records);
    let run = f.expect(
        &["-o", "json", "connection", "test", "--all", "--jobs", "8"],
        &[],
        1,
    );
    let all = run.json();
    let list = all.as_array().unwrap();
    assert_eq!(list.len(), 22);
    assert_eq!(list[0]["connection"], "ok00");
    assert!(list[..20].iter().all(|o| o["ok"] == true));
    assert_eq!(list[20]["exit_code"], 8);
    assert_eq!(list[21]["failed_stage"], "tcp");
    assert!(
        run.stderr.contains("2 of 22 connections failed"),
        "{}",
        run.stderr
    );
    assert_eq!(ok.requests().len(), 20);

    let run = f.expect(&["connection", "test", "--all"], &[], 1);
    assert!(run.stdout.contains("FAILED at tcp"), "{}", run.stdout);
    // No progress line when stderr is not a terminal.
    assert!(!run.stderr.contains("testing:"), "{}", run.stderr);

    // --active: none are active.
    f.expect(&["connection", "test", "--all", "--active"], &[], 0);
}

#[test]
fn integration_and_env_pick_the_connection() {
    let f = Fixture::new();
    let test_server = f.server(ok_handler());
    let dev_server = f.server(ok_handler());
    let ca = format!("ca_bundle = \"{}\"", f.ca());
    f.store(&format!(
        "{}[connection.dev]\nintegration = \"inc\"\nenvironment = \"development\"\nendpoint_url = \"{}\"\n{ca}\n\n",
        conn("tst", &test_server.url("/t"), &ca),
        dev_server.url("/d"),
    ));
    // No active connection: say so and list the candidates.
    let run = f.expect(&["connection", "send", "--integration", "inc"], &[], 3);
    assert!(
        run.stderr
            .contains("integration 'inc' has no active connection"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("dev (development)"), "{}", run.stderr);
    let (json, _) = f.test_json_args(&["--integration", "inc", "--env", "Development"], 0);
    assert_eq!(json["connection"], "dev");
    assert_eq!(dev_server.count("/d"), 1);
    let run = f.expect(
        &[
            "connection",
            "test",
            "--integration",
            "inc",
            "--env",
            "sandbox",
        ],
        &[],
        3,
    );
    assert!(
        run.stderr.contains("has no sandbox connection"),
        "{}",
        run.stderr
    );
    f.expect(&["connection", "test"], &[], 2);
    // --env picks among an integration's connections and --active filters --all;
    // where they would be ignored, they are refused.
    for args in [
        &["connection", "test", "dev", "--env", "sandbox"][..],
        &["connection", "send", "dev", "--env", "sandbox"],
        &["connection", "test", "--all", "--env", "sandbox"],
        &["connection", "test", "dev", "--active"],
    ] {
        let run = f.expect(args, &[], 2);
        assert!(run.stderr.contains(args[3]), "{}", run.stderr);
    }
    assert_eq!(dev_server.count("/d"), 1);
}

#[test]
fn a_post_that_may_have_arrived_is_not_retried() {
    let f = Fixture::new();
    let slow = f.server(Arc::new(|_| {
        let mut r = Reply::new(200, "late");
        r.delay = Some(Duration::from_secs(3600));
        r
    }));
    f.store(&conn(
        "slow",
        &slow.url("/"),
        &format!("ca_bundle = \"{}\"", f.ca()),
    ));
    let run = f.expect(
        &[
            "connection",
            "send",
            "slow",
            "-d",
            "x",
            "--retry",
            "2",
            "--timeout",
            "1",
        ],
        &[],
        6,
    );
    assert!(run.stderr.contains("timed out after 1 s"), "{}", run.stderr);
    assert!(!run.stderr.contains("retry 1/2"), "{}", run.stderr);
    assert_eq!(slow.requests().len(), 1);
    // A GET is safe to send again.
    f.expect(
        &[
            "connection",
            "send",
            "slow",
            "--retry",
            "1",
            "--timeout",
            "1",
        ],
        &[],
        6,
    );
    assert_eq!(slow.requests().len(), 3);
}

#[test]
fn plain_http_endpoints_and_a_scheme_mix_up() {
    let f = Fixture::new();
    let plain = http_server(&f.rt, ok_handler());
    let tls = f.server(ok_handler());
    f.store(&format!(
        "{}{}",
        conn("plain", &format!("http://127.0.0.1:{}/p", plain.port), ""),
        conn("mixed", &format!("http://localhost:{}/p", tls.port), ""),
    ));
    let (json, _) = f.test_json("plain", &[], &[], 0);
    assert_eq!(stage_names(&json), ["secrets", "dns", "tcp", "http"]);
    assert_eq!(plain.count("/p"), 1);
    let (json, run) = f.test_json("mixed", &[], &[], 1);
    assert_eq!(json["failed_stage"], "http");
    assert!(run.stderr.contains("is not HTTP"), "{}", run.stderr);
    assert!(run.stderr.contains("https://"), "{}", run.stderr);
}

/// Basic auth through a MID server with a password, every way of looking
/// (-vv, -o json, -i, --all, a refused endpoint, a refused MID password):
/// neither password is printed, though both were used.
#[test]
fn passwords_used_on_the_wire_are_never_printed() {
    use base64::Engine;
    const CANARY: &str = "LEAK-canary-w1re";
    let conn_pw = format!("{CANARY}-conn");
    let mid_pw = format!("{CANARY}-mid");
    let f = Fixture::new();
    let proxy = Tinyproxy::start(&f.env.path("tinyproxy"), "miduser", &mid_pw);
    let server = f.server(ok_handler());
    let deny = f.server(status_handler(401));
    let auth = "authentication = \"basic\"\nuser = \"svc\"\npassword = \"env:CONN_PW\"";
    f.store(&format!(
        "{}{}",
        mid_records(&f, &proxy, &server.url("/api"), auth),
        conn(
            "denied",
            &deny.url("/api"),
            &format!("ca_bundle = \"{}\"\n{auth}", f.ca())
        )
    ));
    let good = [("CONN_PW", conn_pw.as_str()), ("MID_PW", mid_pw.as_str())];
    let wrong_mid = [("CONN_PW", conn_pw.as_str()), ("MID_PW", "nope")];
    let mut printed = Vec::new();
    for (args, vars, code) in [
        (&["-vv", "connection", "test", "viamid"][..], &good, 0),
        (
            &["-vv", "-o", "json", "connection", "test", "viamid"],
            &good,
            0,
        ),
        (
            &["-vv", "connection", "send", "viamid", "-i", "-d", "x"],
            &good,
            0,
        ),
        (&["-vv", "connection", "test", "--all"], &good, 1),
        (
            &["-vv", "-o", "json", "connection", "test", "--all"],
            &good,
            1,
        ),
        (&["-vv", "connection", "send", "denied", "-i"], &good, 8),
        (
            &["-vv", "connection", "send", "viamid", "-i"],
            &wrong_mid,
            8,
        ),
        (&["-vv", "doctor"], &good, 0),
    ] {
        let run = f.expect(args, vars, code);
        printed.push((args.join(" "), format!("{}\n{}", run.stdout, run.stderr)));
    }
    // A header flag missing its colon is refused without repeating its value.
    let bad_header = format!("Authorization Bearer {CANARY}-header");
    let run = f.expect(
        &["connection", "send", "viamid", "-H", &bad_header],
        &good,
        2,
    );
    assert!(run.stderr.contains("'Authorization ...'"), "{}", run.stderr);
    printed.push(("send -H".into(), run.stderr));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("svc:{conn_pw}"));
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Basic {basic}")))
    );
    for (what, text) in &printed {
        assert!(
            !text.contains(CANARY) && !text.contains(&basic),
            "`connctl {what}` printed a secret:\n{text}"
        );
    }
}
