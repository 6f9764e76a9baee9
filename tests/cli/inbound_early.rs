//! Early answers of `inbound serve` (issue 10 item 7): a refusal sent before
//! the body is read (413 over `--max-body`, 401 for a wrong password) is what
//! real curl shows over HTTP/1.1 and HTTP/2 and what `connctl connection send`
//! reports, while the server reads only a bounded amount of the refused body
//! (docs/design.md, "Early answers": 4 MiB, 2 s; its log says how much).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use connctl::inbound::pki::PkiFiles;
use connctl::model::{Authentication, Environment, Integration};

use crate::inbound::server::{
    PASSWORD, fixture_store, make_pki, spool_lines, std_cmd, write_store,
};
use crate::support::TestEnv;

/// The documented bound on what is read after an early answer.
const DRAIN_LIMIT: u64 = 4 * 1024 * 1024;
/// One read of the drain may cross the bound by less than its buffer.
const DRAIN_BUFFER: u64 = 16 * 1024;
/// Over the default `--max-body` (10 MiB = 10485760 bytes).
const BIG: usize = 11_000_000;

/// A running `inbound serve` shared by this module's tests.
struct Served {
    port: u16,
    log: Arc<Mutex<String>>,
    spool: PathBuf,
    _child: Child,
}

struct Early {
    env: TestEnv,
    pki: PkiFiles,
    /// HTTPS: HTTP/2 or HTTP/1.1 by ALPN.
    tls: Served,
    /// Plain HTTP/1.1.
    plain: Served,
    /// 11 MB of `x`.
    big: PathBuf,
}

/// Starts `inbound serve` with `REMOTE_PW` set; it ends with the test binary.
fn serve(env: &TestEnv, spool: PathBuf, tls: Option<&PkiFiles>) -> Served {
    let mut cmd = std_cmd(env);
    cmd.args(["inbound", "serve", "--listen", "127.0.0.1:0", "--spool"])
        .arg(&spool)
        .env("REMOTE_PW", PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(pki) = tls {
        cmd.arg("--tls-cert")
            .arg(&pki.server_cert)
            .arg("--tls-key")
            .arg(&pki.server_key);
    }
    let mut child =
        crate::support::spawn_for_test_binary(cmd, libc::SIGTERM).expect("start inbound serve");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    stderr.read_line(&mut first).expect("first line");
    let port = first
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("inbound serve did not start: {first}"));
    let log = Arc::new(Mutex::new(first));
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        while stderr.read_line(&mut line).is_ok_and(|n| n > 0) {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    Served {
        port,
        log,
        spool,
        _child: child,
    }
}

/// Both servers, on one store that also holds connections to them:
/// `upload.test` (HTTPS, so HTTP/2) and `upload.development` (plain HTTP/1.1)
/// send as inbound user `remote` with its password; `refused.*` the same with
/// a wrong one.
fn early() -> &'static Early {
    static EARLY: OnceLock<Early> = OnceLock::new();
    EARLY.get_or_init(|| {
        let env = TestEnv::new();
        let mut store = fixture_store();
        write_store(&env, &store);
        let pki = make_pki(&env);
        let tls = serve(&env, env.path("spool-tls"), Some(&pki));
        let plain = serve(&env, env.path("spool-plain"), None);

        let template = store.connection["orders.test"].clone();
        for (integration, password) in [("upload", "env:REMOTE_PW"), ("refused", "env:WRONG_PW")] {
            store
                .integration
                .insert(integration.into(), Integration::default());
            for (environment, url, active) in [
                (
                    Environment::Test,
                    format!("https://127.0.0.1:{}/inbound/early", tls.port),
                    true,
                ),
                (
                    Environment::Development,
                    format!("http://127.0.0.1:{}/inbound/early", plain.port),
                    false,
                ),
            ] {
                let mut c = template.clone();
                c.integration = integration.into();
                c.environment = environment;
                c.active = active;
                c.endpoint_url = url;
                c.ca_bundle = Some(pki.ca_cert.clone());
                c.authentication = Authentication::Basic;
                c.user = Some("remote".into());
                c.password = Some(password.parse().expect("source"));
                c.inbound_user = None;
                c.last_activated = None;
                store
                    .connection
                    .insert(format!("{integration}.{}", environment.as_str()), c);
            }
        }
        // The servers re-read the store on their next request.
        write_store(&env, &store);

        let big = env.path("big.txt");
        std::fs::write(&big, vec![b'x'; BIG]).expect("big body");
        Early {
            env,
            pki,
            tls,
            plain,
            big,
        }
    })
}

struct Curl {
    exit: i32,
    status: u16,
    version: String,
    local_port: u16,
    stderr: String,
}

/// How curl sends the body.
#[derive(Debug, Clone, Copy)]
enum Upload {
    /// `--data-binary @FILE`: the size is declared (`Content-Length`).
    Declared,
    /// `-T -` from a pipe: no size (HTTP/1.1 chunked, HTTP/2 without
    /// `Content-Length`), so the server only refuses past `--max-body`.
    Streamed,
}

/// Real curl sending the file `body`; `-w` reports status, version and the
/// local port (which finds the server's log lines for this request).
fn curl(
    e: &Early,
    served: &Served,
    https: bool,
    args: &[&str],
    body: &Path,
    upload: Upload,
) -> Curl {
    let scheme = if https { "https" } else { "http" };
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "/dev/null", "--max-time", "60"])
        .args(["-w", "%{http_code} %{http_version} %{local_port}"])
        .arg("--cacert")
        .arg(&e.pki.ca_cert)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match upload {
        Upload::Declared => {
            cmd.arg("--data-binary")
                .arg(format!("@{}", body.display()))
                .stdin(Stdio::null());
        }
        Upload::Streamed => {
            cmd.args(["-X", "POST", "-T", "-"]).stdin(Stdio::piped());
        }
    }
    cmd.arg(format!(
        "{scheme}://127.0.0.1:{}/inbound/early",
        served.port
    ));
    let mut child = cmd.spawn().expect("curl (scripts/test.sh installs it)");
    if let Some(mut stdin) = child.stdin.take() {
        let data = std::fs::read(body).expect("body");
        // curl stops reading once refused: a failed write here is expected.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    let output = child.wait_with_output().expect("curl");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut fields = stdout.split_whitespace();
    Curl {
        exit: output.status.code().unwrap_or(-1),
        status: fields.next().and_then(|s| s.parse().ok()).unwrap_or(0),
        version: fields.next().unwrap_or("").to_string(),
        local_port: fields.next().and_then(|s| s.parse().ok()).unwrap_or(0),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The server's log line starting with `prefix`, waited for (the drain ends
/// a moment after the client is done).
fn log_line(served: &Served, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = served.log.lock().unwrap().clone();
        if let Some(line) = log.lines().find(|l| l.starts_with(prefix)) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no log line starting with {prefix:?} in:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks the request's log lines: answered before the body was read, and
/// how much was discarded after the answer (returned), within the bound.
fn drained(served: &Served, local_port: u16, status: u16, what: &str) -> (u64, String) {
    let peer = format!("127.0.0.1:{local_port}");
    let request = log_line(served, &format!("{peer} {status} POST /inbound/early"));
    assert!(
        request.ends_with("(answered before the whole body was read)"),
        "{request}"
    );
    let line = log_line(served, &format!("{peer}: after the early answer ({what})"));
    let discarded: u64 = line
        .split(") ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in: {line}"));
    assert!(
        discarded < DRAIN_LIMIT + DRAIN_BUFFER,
        "more than the drain limit was read: {line}"
    );
    (discarded, line)
}

/// Basic credentials and the refusal they get for an 11 MB body: over
/// `--max-body`, wrong password, and a user whose connections are inactive.
fn users() -> [(String, u16); 3] {
    [
        (format!("remote:{PASSWORD}"), 413),
        ("remote:wrong-password".to_string(), 401),
        (format!("idle:{PASSWORD}"), 403),
    ]
}

#[test]
fn curl_over_http1_reads_the_early_refusals_of_an_11_mb_body() {
    let e = early();
    for (served, https) in [(&e.plain, false), (&e.tls, true)] {
        // curl's own `Expect: 100-continue` (it sends no body before an
        // answer), and without it (the body comes at once: the lingering
        // close is what lets curl read the answer).
        // A body of unknown size (chunked) is refused past --max-body.
        for (expect, upload) in [
            (None, Upload::Declared),
            (Some("Expect:"), Upload::Declared),
            (None, Upload::Streamed),
        ] {
            for (user, status) in users() {
                let mut args = vec!["--http1.1", "-u", &user];
                if let Some(header) = expect {
                    args.extend(["-H", header]);
                }
                let run = curl(e, served, https, &args, &e.big, upload);
                let case = format!("https={https} {expect:?} {upload:?} {status}");
                assert_eq!(run.exit, 0, "{case}: {}", run.stderr);
                assert_eq!(run.status, status, "{case}: {}", run.stderr);
                assert_eq!(run.version, "1.1", "{case}");
                assert!(
                    !run.stderr.contains("Broken pipe"),
                    "{case}: {}",
                    run.stderr
                );
                drained(served, run.local_port, status, "HTTP/1.1");
            }
        }
    }
    // The spool is shared with the accepted sends of other tests here: no
    // refused (11 MB) body may be in it.
    for served in [&e.plain, &e.tls] {
        assert!(
            spool_lines(&served.spool)
                .iter()
                .all(|line| line["body"].as_str().unwrap().len() < BIG),
            "a refused body was recorded"
        );
    }
}

#[test]
fn curl_over_http2_reads_the_early_refusals_and_keeps_the_connection() {
    let e = early();
    for upload in [Upload::Declared, Upload::Streamed] {
        for (user, status) in users() {
            let run = curl(e, &e.tls, true, &["--http2", "-u", &user], &e.big, upload);
            assert_eq!(run.exit, 0, "{upload:?} {status}: {}", run.stderr);
            assert_eq!(run.status, status, "{upload:?}: {}", run.stderr);
            assert_eq!(run.version, "2");
            drained(&e.tls, run.local_port, status, "HTTP/2 stream");
        }
    }

    // Only the stream ends: a second request on the same connection is taken.
    let small = e.env.path("small.txt");
    std::fs::write(&small, "after the refusal").unwrap();
    let user = format!("remote:{PASSWORD}");
    let ca = e.pki.ca_cert.display().to_string();
    let url = format!("https://127.0.0.1:{}/inbound/early", e.tls.port);
    let output = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "--http2",
            "--cacert",
            &ca,
            "-u",
            &user,
        ])
        .args(["-w", "%{http_code} %{num_connects}\n", "--data-binary"])
        .arg(format!("@{}", e.big.display()))
        .arg(&url)
        .args([
            "--next",
            "-sS",
            "-o",
            "/dev/null",
            "--http2",
            "--cacert",
            &ca,
        ])
        .args([
            "-u",
            &user,
            "-w",
            "%{http_code} %{num_connects}\n",
            "--data-binary",
        ])
        .arg(format!("@{}", small.display()))
        .arg(&url)
        .output()
        .expect("curl");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    let answers: Vec<&str> = stdout.lines().collect();
    // 413 on a new connection, then 202 with no new connection.
    assert_eq!(answers, ["413 1", "202 0"], "{stderr}");
    let recorded = spool_lines(&e.tls.spool);
    assert!(
        recorded
            .iter()
            .all(|line| line["body"].as_str().unwrap().len() < BIG),
        "a refused body was recorded"
    );
    assert!(
        recorded
            .iter()
            .any(|line| line["body"] == "after the refusal"),
        "{recorded:?}"
    );
}

#[test]
fn connection_send_reports_the_early_413_and_401() {
    let e = early();
    let body = format!("@{}", e.big.display());
    for connection in ["upload.test", "upload.development"] {
        let run = e
            .env
            .cmd()
            .args(["connection", "send", connection, "-d", &body])
            .env("REMOTE_PW", PASSWORD)
            .output()
            .expect("connctl");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(1), "{connection}: {stderr}");
        assert!(
            stderr.contains("the endpoint answered 413 Payload Too Large"),
            "{connection}: {stderr}"
        );
    }
    for connection in ["refused.test", "refused.development"] {
        let run = e
            .env
            .cmd()
            .args(["connection", "send", connection, "-d", &body])
            .env("WRONG_PW", "wrong-password")
            .output()
            .expect("connctl");
        let stderr = String::from_utf8_lossy(&run.stderr);
        // 401 from the endpoint: the authentication exit code.
        assert_eq!(run.status.code(), Some(8), "{connection}: {stderr}");
        assert!(stderr.contains("401"), "{connection}: {stderr}");
        assert!(!stderr.contains("reset"), "{connection}: {stderr}");
    }

    // A large body that is accepted still goes through (HTTP/1.1: after
    // the server's `100 Continue`).
    let two_mb = e.env.path("two-mb.txt");
    std::fs::write(&two_mb, vec![b'y'; 2_000_000]).unwrap();
    let run = e
        .env
        .cmd()
        .args(["connection", "send", "upload.development", "-o", "json"])
        .args(["--content-type", "text/plain", "-d"])
        .arg(format!("@{}", two_mb.display()))
        .env("REMOTE_PW", PASSWORD)
        .output()
        .expect("connctl");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let answer: serde_json::Value = serde_json::from_slice(&run.stdout).expect("JSON answer");
    let recorded = spool_lines(&e.plain.spool);
    let line = recorded
        .iter()
        .find(|line| line["id"] == answer["id"])
        .unwrap_or_else(|| panic!("{answer} not in the spool"));
    assert_eq!(line["body"].as_str().unwrap().len(), 2_000_000);
    assert_eq!(line["headers"]["expect"], "100-continue");
}

/// A raw HTTP/1.1 client: the head of a POST declaring 100 MB, with a wrong
/// password; returns the stream after reading the 401 answer's head.
fn refused_upload(served: &Served) -> TcpStream {
    let mut tcp = TcpStream::connect(("127.0.0.1", served.port)).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("remote:wrong-password");
    write!(
        tcp,
        "POST /inbound/early HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\nContent-Length: 100000000\r\n\r\n"
    )
    .unwrap();
    let mut head = String::new();
    let mut reader = BufReader::new(tcp.try_clone().unwrap());
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    // The answer came before any of the body was sent.
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    tcp
}

#[test]
fn the_drain_after_an_early_answer_is_bounded_in_bytes_and_time() {
    let e = early();
    // A client that keeps sending without looking: the server reads at most
    // the drain limit, then closes; the client's writes fail long before 64 MiB.
    let mut tcp = refused_upload(&e.plain);
    let port = tcp.local_addr().unwrap().port();
    let chunk = vec![0u8; 64 * 1024];
    let mut written: u64 = 0;
    while written < 64 * 1024 * 1024 {
        match tcp.write(&chunk) {
            Ok(n) => written += n as u64,
            Err(_) => break,
        }
    }
    assert!(written < 64 * 1024 * 1024, "the server never closed");
    let (discarded, line) = drained(&e.plain, port, 401, "HTTP/1.1");
    assert!(discarded >= DRAIN_LIMIT, "{line}");
    assert!(
        line.ends_with("the drain limit of 4194304 bytes was reached"),
        "{line}"
    );

    // A client that trickles: the server stops lingering after 2 s.
    let mut tcp = refused_upload(&e.plain);
    let port = tcp.local_addr().unwrap().port();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if tcp.write_all(b"x").is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, line) = drained(&e.plain, port, 401, "HTTP/1.1");
    assert!(line.ends_with("the linger time of 2 s was over"), "{line}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(15),
        "{elapsed:?}: {line}"
    );
}
