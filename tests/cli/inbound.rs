//! `inbound check` and `inbound serve` through the binary, with curl and a
//! Rust client as the remote system, over loopback TLS with client certificates.

mod client;
pub(crate) mod server;

use std::collections::HashMap;
use std::process::Command;

use client::{Target, run_load, tls_config};
use server::{PASSWORD, Server, fixture_store, make_pki, spool_lines, write_store};

use crate::support::TestEnv;

fn env_with_store() -> TestEnv {
    let env = TestEnv::new();
    write_store(&env, &fixture_store());
    env
}

/// `inbound check` runs with `REMOTE_PW` set, as the server does.
fn check(env: &TestEnv, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut cmd = env.cmd();
    cmd.args(["inbound", "check"])
        .args(args)
        .env("REMOTE_PW", PASSWORD);
    if let Some(input) = stdin {
        cmd.write_stdin(input.to_string());
    }
    let output = cmd.output().expect("run connctl");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[test]
fn check_admits_through_the_active_connection() {
    let env = env_with_store();
    let (code, stdout, stderr) = check(&env, &["remote"], None);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("orders.test"), "{stdout}");
    assert!(stdout.contains("orders"), "{stdout}");

    let (code, stdout, _) = check(&env, &["remote", "-o", "json"], None);
    assert_eq!(code, 0);
    let value = json(&stdout);
    assert_eq!(value["user"], "remote");
    assert_eq!(value["admitted"], true);
    assert_eq!(value["integration"], "orders");
    assert_eq!(value["connection"], "orders.test");
    assert_eq!(value["environment"], "test");
    assert!(value["reason"].as_str().unwrap().contains("orders.test"));
}

#[test]
fn check_with_the_right_password_admits_and_a_wrong_one_denies() {
    let env = env_with_store();
    let (code, _, stderr) = check(&env, &["remote", "--password-stdin"], Some(PASSWORD));
    assert_eq!(code, 0, "{stderr}");
    // A trailing newline from `echo` is not part of the password.
    let (code, _, stderr) = check(
        &env,
        &["remote", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(code, 0, "{stderr}");

    let (code, stdout, stderr) = check(
        &env,
        &["remote", "--password-stdin", "-o", "json"],
        Some("guess"),
    );
    assert_eq!(code, 1, "{stderr}");
    let value = json(&stdout);
    assert_eq!(value["admitted"], false);
    assert_eq!(value["code"], "wrong_password");
    assert!(stderr.contains("password"), "{stderr}");
    assert!(!stderr.contains("guess") && !stdout.contains("guess"));
    assert!(!stderr.contains(PASSWORD) && !stdout.contains(PASSWORD));

    let (code, _, stderr) = check(&env, &["nopw", "--password-stdin"], Some("x"));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no password"), "{stderr}");
}

#[test]
fn check_unknown_user_is_denied() {
    let env = env_with_store();
    let (code, stdout, stderr) = check(&env, &["ghost", "-o", "json"], None);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(json(&stdout)["code"], "no_such_user");
    assert!(
        stderr.contains("inbound-user 'ghost' does not exist"),
        "{stderr}"
    );
    assert!(stderr.contains("connctl inbound-user list"), "{stderr}");
}

#[test]
fn check_user_on_no_connection_is_denied() {
    let env = env_with_store();
    let (code, stdout, stderr) = check(&env, &["lonely", "-o", "json"], None);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(json(&stdout)["code"], "no_connection");
    assert!(
        stderr.contains("no connection names inbound-user 'lonely'"),
        "{stderr}"
    );
}

#[test]
fn check_user_only_on_inactive_connections_names_them_and_the_fix() {
    let env = env_with_store();
    let (code, stdout, stderr) = check(&env, &["idle"], None);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("billing.test"), "{stderr}");
    assert!(
        stderr.contains("connctl connection activate billing.test"),
        "{stderr}"
    );

    // Two inactive connections of an integration whose other connection is active.
    let mut store = fixture_store();
    store
        .connection
        .get_mut("orders.test")
        .unwrap()
        .inbound_user = None;
    store.connection.insert("orders.dev".into(), {
        let mut c = store.connection["orders.prod"].clone();
        c.environment = connctl::model::Environment::Development;
        c
    });
    write_store(&env, &store);
    let (code, stdout, stderr) = check(&env, &["remote", "-o", "json"], None);
    assert_eq!(code, 1, "{stderr}");
    let value = json(&stdout);
    assert_eq!(value["code"], "only_inactive");
    let names: Vec<&str> = value["inactive_connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["connection"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders.dev", "orders.prod"]);
    assert_eq!(
        value["inactive_connections"][0]["activate_command"],
        "connctl connection activate orders.dev"
    );
    assert!(stderr.contains("deactivates 'orders.test'"), "{stderr}");
}

#[test]
fn check_password_source_unavailable_is_a_secret_error() {
    let env = env_with_store();
    let output = env
        .cmd()
        .args(["inbound", "check", "remote", "--password-stdin"])
        .write_stdin(PASSWORD)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("REMOTE_PW"), "{stderr}");
}

// ---- inbound serve ----

/// What curl saw: status (0 when no HTTP answer), headers and body, curl's exit code.
struct CurlResult {
    status: u16,
    head_and_body: String,
    exit: i32,
    stderr: String,
}

fn curl(
    server: &Server,
    pki: &connctl::inbound::pki::PkiFiles,
    client_cert: bool,
    args: &[&str],
) -> CurlResult {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-i", "--max-time", "60", "--cacert"])
        .arg(&pki.ca_cert);
    if client_cert {
        cmd.arg("--cert")
            .arg(&pki.client_cert)
            .arg("--key")
            .arg(&pki.client_key);
    }
    cmd.args(["-w", "\n%{http_code}"]).args(args);
    let url = format!("https://localhost:{}/inbound/orders", server.port());
    let output = cmd
        .arg(url)
        .output()
        .expect("curl (install it: scripts/test.sh does)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (rest, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    CurlResult {
        status: status.trim().parse().unwrap_or(0),
        head_and_body: rest.to_string(),
        exit: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn tls_server(env: &TestEnv, pki: &connctl::inbound::pki::PkiFiles, extra: &[&str]) -> Server {
    let spool = env.path("spool");
    let mut args = vec![
        "--tls-cert".to_string(),
        pki.server_cert.display().to_string(),
        "--tls-key".to_string(),
        pki.server_key.display().to_string(),
        "--client-ca".to_string(),
        pki.ca_cert.display().to_string(),
        "--spool".to_string(),
        spool.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(env, &args)
}

#[test]
fn serve_answers_each_status_to_curl() {
    let env = env_with_store();
    let pki = make_pki(&env);
    let server = tls_server(&env, &pki, &["--max-body", "1KiB"]);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let user = format!("remote:{PASSWORD}");
    let json_header = "content-type: application/json";

    // 202: accepted, attributed, recorded with the credentials redacted.
    let ok = curl(
        &server,
        &pki,
        true,
        &[
            "-u",
            &user,
            "-H",
            json_header,
            "-H",
            "cookie: c=1",
            "-d",
            r#"{"n":1}"#,
        ],
    );
    assert_eq!(ok.status, 202, "{}{}", ok.head_and_body, ok.stderr);
    let body = ok.head_and_body.rsplit("\r\n\r\n").next().unwrap();
    let answer = json(body);
    assert_eq!(answer["integration"], "orders");
    assert_eq!(answer["connection"], "orders.test");
    let lines = spool_lines(&env.path("spool"));
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line["id"], answer["id"]);
    assert_eq!(line["user"], "remote");
    assert_eq!(line["environment"], "test");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["path"], "/inbound/orders");
    assert_eq!(line["body"], r#"{"n":1}"#);
    assert_eq!(line["body_base64"], false);
    assert_eq!(line["headers"]["authorization"], "(redacted)");
    assert_eq!(line["headers"]["cookie"], "(redacted)");
    assert!(
        line["client_cert"]
            .as_str()
            .unwrap()
            .contains("remote-system")
    );
    assert!(line["time"].as_str().unwrap().ends_with('Z'));

    // HTTP/2 by ALPN.
    let h2 = curl(
        &server,
        &pki,
        true,
        &["--http2", "-u", &user, "-d", "hello"],
    );
    assert_eq!(h2.status, 202, "{}{}", h2.head_and_body, h2.stderr);
    assert!(
        h2.head_and_body.starts_with("HTTP/2 202"),
        "{}",
        h2.head_and_body
    );
    assert_eq!(spool_lines(&env.path("spool"))[1]["version"], "HTTP/2.0");

    // GET carries no message: 200 with the admitting connection, nothing recorded.
    let get = curl(&server, &pki, true, &["-u", &user]);
    assert_eq!(get.status, 200, "{}{}", get.head_and_body, get.stderr);
    assert!(
        get.head_and_body.contains("orders.test"),
        "{}",
        get.head_and_body
    );
    assert_eq!(spool_lines(&env.path("spool")).len(), 2);

    // A binary body is kept as base64.
    let binary = env.path("binary.bin");
    std::fs::write(&binary, [0xff, 0x00, 0xfe]).unwrap();
    let bin = curl(
        &server,
        &pki,
        true,
        &[
            "-u",
            &user,
            "--data-binary",
            &format!("@{}", binary.display()),
        ],
    );
    assert_eq!(bin.status, 202);
    let line = &spool_lines(&env.path("spool"))[2];
    assert_eq!(line["body_base64"], true);
    assert_eq!(line["body"], "/wD+");

    // 401 without credentials, and with a wrong password or unknown user.
    for args in [
        vec!["-d", "x"],
        vec!["-u", "remote:wrong", "-d", "x"],
        vec!["-u", "ghost:x", "-d", "x"],
    ] {
        let denied = curl(&server, &pki, true, &args);
        assert_eq!(
            denied.status, 401,
            "{args:?}: {}{}",
            denied.head_and_body, denied.stderr
        );
        assert!(
            denied
                .head_and_body
                .to_ascii_lowercase()
                .contains("www-authenticate: basic realm=\"connctl\""),
            "{}",
            denied.head_and_body
        );
    }

    // 403: a valid user whose connections are all inactive.
    let idle = curl(
        &server,
        &pki,
        true,
        &["-u", &format!("idle:{PASSWORD}"), "-d", "x"],
    );
    assert_eq!(idle.status, 403, "{}", idle.head_and_body);
    assert!(
        idle.head_and_body.contains("no active connection"),
        "{}",
        idle.head_and_body
    );

    // 413 over --max-body, whether declared or streamed.
    let big = "x".repeat(2048);
    let too_big = curl(&server, &pki, true, &["-u", &user, "-d", &big]);
    assert_eq!(too_big.status, 413, "{}", too_big.head_and_body);
    let chunked = curl(
        &server,
        &pki,
        true,
        &["-u", &user, "-H", "transfer-encoding: chunked", "-d", &big],
    );
    assert_eq!(chunked.status, 413, "{}", chunked.head_and_body);

    // 400: JSON that is not, and broken Basic credentials.
    let bad = curl(
        &server,
        &pki,
        true,
        &["-u", &user, "-H", json_header, "-d", "{not json"],
    );
    assert_eq!(bad.status, 400, "{}", bad.head_and_body);
    let bad = curl(
        &server,
        &pki,
        true,
        &["-H", "authorization: Basic !!!", "-d", "x"],
    );
    assert_eq!(bad.status, 400, "{}", bad.head_and_body);

    // No client certificate: the TLS handshake is refused, no HTTP answer.
    let anonymous = curl(&server, &pki, false, &["-u", &user, "-d", "x"]);
    assert_eq!(anonymous.status, 0, "{}", anonymous.head_and_body);
    assert_ne!(anonymous.exit, 0);

    // Only the three accepted messages were recorded.
    assert_eq!(spool_lines(&env.path("spool")).len(), 3);
    let (status, stderr) = server.stop();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[test]
fn serve_without_client_ca_accepts_clients_without_certificates() {
    let env = env_with_store();
    let pki = make_pki(&env);
    let server = Server::start(
        &env,
        &[
            "--tls-cert",
            pki.server_cert.to_str().unwrap(),
            "--tls-key",
            pki.server_key.to_str().unwrap(),
            "--spool",
            env.path("spool").to_str().unwrap(),
        ],
    );
    let ok = curl(
        &server,
        &pki,
        false,
        &["-u", &format!("remote:{PASSWORD}"), "-d", "x"],
    );
    assert_eq!(ok.status, 202, "{}{}", ok.head_and_body, ok.stderr);
    assert_eq!(
        spool_lines(&env.path("spool"))[0]["client_cert"],
        serde_json::Value::Null
    );
}

#[test]
fn serve_plain_http_answers_garbage_with_400_and_spools_to_stdout() {
    use std::io::{BufRead, Read, Write};
    let env = env_with_store();
    let mut server = Server::start(&env, &[]);
    assert!(server.url.starts_with("http://"), "{}", server.url);

    let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
    tcp.write_all(b"THIS IS NOT HTTP\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    let output = Command::new("curl")
        .args([
            "-sS",
            "-u",
            &format!("remote:{PASSWORD}"),
            "-d",
            "on stdout",
        ])
        .arg(format!("http://127.0.0.1:{}/x", server.port()))
        .output()
        .unwrap();
    let answer = json(&String::from_utf8_lossy(&output.stdout));
    // Only an accepted message reaches stdout: do not wait for one otherwise.
    assert!(answer["id"].is_string(), "not accepted: {answer}");
    let mut stdout = std::io::BufReader::new(server.take_stdout());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let record = json(&line);
    assert_eq!(record["id"], answer["id"]);
    assert_eq!(record["body"], "on stdout");
}

#[test]
fn serve_refuses_bad_flags() {
    let env = env_with_store();
    let pki = make_pki(&env);
    let run = env.fails(
        &[
            "inbound",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--client-ca",
            pki.ca_cert.to_str().unwrap(),
        ],
        2,
    );
    assert!(run.stderr.contains("--tls-cert"), "{}", run.stderr);
    let run = env.fails(
        &[
            "inbound",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--max-body",
            "lots",
        ],
        2,
    );
    assert!(run.stderr.contains("lots"), "{}", run.stderr);
    let run = env.fails(
        &[
            "inbound",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent.pem",
            "--tls-key",
            "/nonexistent.pem",
        ],
        4,
    );
    assert!(run.stderr.contains("/nonexistent.pem"), "{}", run.stderr);
    crate::support::write(
        &env.store,
        "version = 1\nstore_id = \"00000000-0000-4000-8000-000000000001\"\n[connection.a]\nintegration = \"nope\"\n",
    );
    let run = env.fails(&["inbound", "serve", "--listen", "127.0.0.1:0"], 4);
    assert!(!run.stderr.contains("listening on"), "{}", run.stderr);
    assert!(run.stderr.contains("store.toml:3"), "{}", run.stderr);
}

#[test]
fn serve_follows_activation_changes_without_restart() {
    let env = env_with_store();
    let pki = make_pki(&env);
    let server = tls_server(&env, &pki, &[]);
    let idle = format!("idle:{PASSWORD}");
    assert_eq!(
        curl(&server, &pki, true, &["-u", &idle, "-d", "x"]).status,
        403
    );

    env.ok(&["connection", "activate", "billing.test"]);
    let ok = curl(&server, &pki, true, &["-u", &idle, "-d", "x"]);
    assert_eq!(ok.status, 202, "{}", ok.head_and_body);
    assert!(ok.head_and_body.contains("billing.test"));

    // Switching `orders` to production moves `remote` with it.
    let remote = format!("remote:{PASSWORD}");
    env.ok(&["connection", "activate", "orders.prod", "--yes"]);
    let ok = curl(&server, &pki, true, &["-u", &remote, "-d", "x"]);
    assert_eq!(ok.status, 202);
    assert!(
        ok.head_and_body.contains("orders.prod"),
        "{}",
        ok.head_and_body
    );
    assert_eq!(
        spool_lines(&env.path("spool")).last().unwrap()["environment"],
        "production"
    );

    env.ok(&["connection", "deactivate", "billing.test"]);
    assert_eq!(
        curl(&server, &pki, true, &["-u", &idle, "-d", "x"]).status,
        403
    );
    let (_, stderr) = server.stop();
    assert!(stderr.contains("store changed"), "{stderr}");
}

fn load_target(server: &Server, pki: &connctl::inbound::pki::PkiFiles, http2: bool) -> Target {
    Target {
        addr: server.addr,
        tls: Some(tls_config(
            &pki.ca_cert,
            Some((&pki.client_cert, &pki.client_key)),
            http2,
        )),
        user: "remote".into(),
        password: PASSWORD.into(),
        http2,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Every id exactly once, and every line one of the accepted ids.
fn assert_spooled_exactly_once(dir: &std::path::Path, accepted: &[String]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for line in spool_lines(dir) {
        *seen
            .entry(line["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    for id in accepted {
        assert_eq!(
            seen.get(id),
            Some(&1),
            "accepted id {id} is not in the spool exactly once"
        );
    }
    assert_eq!(
        seen.len(),
        accepted.len(),
        "the spool holds messages that were not accepted"
    );
}

#[test]
fn serve_takes_50_senders_by_20_messages() {
    let env = env_with_store();
    let pki = make_pki(&env);
    let server = tls_server(&env, &pki, &["--quiet"]);
    let rt = runtime();
    // Half over HTTP/1.1, half over HTTP/2.
    let (http1, http2) = (
        load_target(&server, &pki, false),
        load_target(&server, &pki, true),
    );
    let (h1, h2) =
        rt.block_on(async { tokio::join!(run_load(&http1, 25, 20), run_load(&http2, 25, 20)) });
    for report in [&h1, &h2] {
        assert_eq!(report.errors, 0, "{report:?}");
        assert_eq!(
            report.statuses.get(&202),
            Some(&500),
            "{:?}",
            report.statuses
        );
    }
    let accepted: Vec<String> = h1.accepted_ids.into_iter().chain(h2.accepted_ids).collect();
    assert_spooled_exactly_once(&env.path("spool"), &accepted);
    let (status, stderr) = server.stop();
    assert!(status.success(), "{stderr}");
}

#[test]
fn serve_loses_no_accepted_message_on_sigterm_mid_load() {
    let env = env_with_store();
    let pki = make_pki(&env);
    let server = tls_server(&env, &pki, &["--quiet"]);
    let spool = env.path("spool");
    let rt = runtime();
    let target = load_target(&server, &pki, false);
    let load = rt.spawn(async move { run_load(&target, 50, 40).await });
    // Stop once the load is well under way.
    while spool_lines(&spool).len() < 200 && !load.is_finished() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!load.is_finished(), "the load ended before SIGTERM");
    let (status, stderr) = server.stop();
    assert!(status.success(), "{stderr}");
    let report = rt.block_on(load).unwrap();
    assert!(report.accepted_ids.len() >= 200, "{:?}", report.statuses);
    assert!(
        report.accepted_ids.len() < 2000,
        "the load ended before SIGTERM"
    );
    assert_spooled_exactly_once(&spool, &report.accepted_ids);
}

#[test]
fn serve_drops_a_client_that_never_finishes_its_headers() {
    use std::io::{Read, Write};
    let env = env_with_store();
    let server = Server::start(&env, &["--request-timeout", "1"]);
    let mut tcp = std::net::TcpStream::connect(server.addr).unwrap();
    tcp.write_all(b"POST /slow HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    // A safety net only: the server is expected to hang up long before.
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut answer = Vec::new();
    let read = tcp.read_to_end(&mut answer);
    assert!(read.is_ok(), "the server kept the slow client: {read:?}");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A client that connects and sends nothing at all is dropped too.
    let mut silent = std::net::TcpStream::connect(server.addr).unwrap();
    silent
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut nothing = Vec::new();
    let read = silent.read_to_end(&mut nothing);
    assert!(read.is_ok(), "the server kept the silent client: {read:?}");
}

/// `connctl connection send` as the remote system's client: Basic auth and
/// mutual TLS from the store, against `inbound serve` reading the same store.
#[test]
fn serve_takes_messages_from_connctl_connection_send() {
    use connctl::model::{Authentication, ProtocolProfile};
    let env = env_with_store();
    let pki = make_pki(&env);
    let server = tls_server(&env, &pki, &[]);
    let url = format!("https://localhost:{}/api/orders", server.port());

    let mut store = fixture_store();
    store.protocol_profile.insert(
        "partner-mtls".into(),
        ProtocolProfile {
            client_cert: pki.client_cert.clone(),
            client_key: pki.client_key.clone(),
            ca_bundle: Some(pki.ca_cert.clone()),
        },
    );
    for (name, c) in store.connection.iter_mut() {
        c.endpoint_url = url.clone();
        c.authentication = Authentication::Basic;
        c.user = Some("remote".into());
        c.password = Some("env:REMOTE_PW".parse().unwrap());
        if name == "orders.test" {
            c.mutual_auth = true;
            c.protocol_profile = Some("partner-mtls".into());
        } else {
            // No client certificate: only the CA to trust the server.
            c.ca_bundle = Some(pki.ca_cert.clone());
        }
    }
    write_store(&env, &store);

    let send = |connection: &str, password: &str| {
        env.cmd()
            .args([
                "connection",
                "send",
                connection,
                "-X",
                "POST",
                "-d",
                r#"{"n":7}"#,
                "--yes",
            ])
            .env("REMOTE_PW", password)
            .output()
            .unwrap()
    };
    let ok = send("orders.test", PASSWORD);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let answer = json(&stdout);
    let lines = spool_lines(&env.path("spool"));
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["id"], answer["id"]);
    assert_eq!(lines[0]["connection"], "orders.test");
    assert_eq!(lines[0]["body"], r#"{"n":7}"#);
    assert!(
        lines[0]["client_cert"]
            .as_str()
            .unwrap()
            .contains("remote-system")
    );

    // Without a client certificate the server refuses the handshake. In TLS 1.3
    // the client learns it only when it reads (the alert) or writes (a reset);
    // either way it is the TLS error that names the missing client certificate.
    let no_cert = send("orders.prod", PASSWORD);
    let stderr = String::from_utf8_lossy(&no_cert.stderr);
    assert_eq!(no_cert.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains(
            "the server requires a client certificate and the connection has mutual auth off"
        ),
        "{stderr}"
    );
    let test = env
        .cmd()
        .args(["-o", "json", "connection", "test", "orders.prod"])
        .env("REMOTE_PW", PASSWORD)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&test.stderr);
    assert_eq!(test.status.code(), Some(7), "{stderr}");
    assert_eq!(
        json(&String::from_utf8_lossy(&test.stdout))["failed_stage"],
        "tls"
    );
    assert!(stderr.contains("mutual auth off"), "{stderr}");

    // A wrong password is the endpoint's 401: an authentication error.
    let wrong = send("orders.test", "not-it");
    assert_eq!(
        wrong.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    assert_eq!(spool_lines(&env.path("spool")).len(), 1);
}

/// Credentials a sender puts in the query string stay out of the request log
/// and the spool; the spool is owner-only; the password is on no argv.
#[test]
fn serve_keeps_query_credentials_out_of_the_log_and_the_spool() {
    use std::os::unix::fs::PermissionsExt;
    const CANARY: &str = "LEAK-canary-q9";
    let env = env_with_store();
    let pki = make_pki(&env);
    let server = tls_server(&env, &pki, &[]);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", server.pid())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(PASSWORD));
    let user = format!("remote:{PASSWORD}");
    let query = format!(
        "order=7&password={CANARY}1&access_token={CANARY}2&Api-Key={CANARY}3&sig={CANARY}4&client%5fsecret={CANARY}5&note=keep"
    );
    for (u, code) in [(user.as_str(), 202), ("remote:wrong", 401)] {
        let out = curl(
            &server,
            &pki,
            true,
            &["-u", u, "-d", "hello", "--url-query", &format!("+{query}")],
        );
        // `+`: curl appends the query as written, unencoded.
        assert_eq!(out.status, code, "{}{}", out.head_and_body, out.stderr);
    }
    let (_, log) = server.stop();
    let spool_dir = env.path("spool");
    let spool = std::fs::read_to_string(spool_dir.join("messages.jsonl")).unwrap();
    for text in [&log, &spool] {
        assert!(!text.contains(CANARY), "{text}");
        assert!(!text.contains(PASSWORD), "{text}");
    }
    let line = &spool_lines(&spool_dir)[0];
    assert_eq!(
        line["path"],
        "/inbound/orders?order=7&password=(redacted)&access_token=(redacted)&Api-Key=(redacted)&sig=(redacted)&client%5fsecret=(redacted)&note=keep"
    );
    assert!(log.contains("order=7&password=(redacted)"), "{log}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&spool_dir), 0o700);
    assert_eq!(mode(&spool_dir.join("messages.jsonl")), 0o600);
}

#[test]
fn serve_log_escapes_a_user_name_that_would_forge_a_line() {
    use base64::Engine;
    let env = env_with_store();
    let pki = make_pki(&env);
    let server = tls_server(&env, &pki, &[]);
    // No ':' in it: Basic ends the user name at the first one.
    let forged = "10.0.0.1 202 POST /inbound/orders user=remote connection=forged";
    let user = format!("evil\x1b[2K\n{forged}");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:pw"));
    let out = curl(
        &server,
        &pki,
        true,
        &["-H", &format!("Authorization: Basic {basic}"), "-d", "x"],
    );
    assert_eq!(out.status, 401, "{}{}", out.head_and_body, out.stderr);
    let (_, log) = server.stop();
    assert!(!log.contains('\x1b'), "{log:?}");
    assert!(
        !log.lines().any(|l| l.starts_with("10.0.0.1 ")),
        "a forged line reached the log:\n{log}"
    );
    assert!(log.contains("user=evil\\x1b[2K\\n10.0.0.1 202"), "{log}");
}
