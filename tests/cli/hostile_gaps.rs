//! The rest of issue 10, through the binary: headers connctl frames itself
//! (`-H Content-Length`), `import --replace` and the keyring, header bytes
//! that are not UTF-8 in the `inbound serve` spool, escapes in a server
//! certificate's subject, in response headers and in a token endpoint's
//! error, and `--timeout` over `file:`/`cmd:` sources. The servers are
//! started once for the whole test binary.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::outbound_servers::{
    Fault, Pki, Reply, Server, TlsOptions, fault_server, runtime, tls_server,
};
use crate::support::{Run, TestEnv, conn, env_with, keyring_entries, store_id, write};

/// Control characters, an escape sequence and a forged line, as a
/// certificate's common name.
const EVIL_CN: &str = "evil\x1b[31m.example\nerror: forged by the subject";
const EVIL_CA_CN: &str = "Evil CA\x1b]0;pwned\x07\nerror: forged by the issuer";

/// The servers every test here shares.
struct Gaps {
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    pki: Pki,
    /// TLS (h2 and http/1.1) with the good certificate; see [`answer`].
    api: Server,
    /// TLS with a certificate whose subject and issuer hold escapes.
    evil: u16,
    /// The CA that issued the evil certificate.
    evil_ca: PathBuf,
    /// Accepts connections and never says anything (a Vault that hangs).
    silent: u16,
    /// Plain HTTP, raw: answers every request with a header value in Latin-1.
    latin1: u16,
}

fn gaps() -> &'static Gaps {
    static SHARED: OnceLock<Gaps> = OnceLock::new();
    SHARED.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = Pki::new(&dir.path().join("pki"));
        let rt = runtime();
        let api = tls_server(
            &rt,
            TlsOptions {
                cert: &pki.server_cert,
                key: &pki.server_key,
                client_ca: None,
                h2: true,
            },
            Arc::new(answer),
        );
        let (evil_ca, evil_cert, evil_key) = evil_pki(&dir.path().join("evil"));
        let evil = tls_server(
            &rt,
            TlsOptions {
                cert: &evil_cert,
                key: &evil_key,
                client_ca: None,
                h2: false,
            },
            Arc::new(answer),
        )
        .port;
        let silent = fault_server(&rt, Fault::Silent);
        let latin1 = raw_answer(
            &rt,
            b"HTTP/1.1 200 OK\r\nX-Latin: caf\xe9 \xff\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
        );
        Gaps {
            _rt: rt,
            _dir: dir,
            pki,
            api,
            evil,
            evil_ca,
            silent,
            latin1,
        }
    })
}

/// A raw plain-HTTP server that reads a request head and answers `reply`.
fn raw_answer(rt: &tokio::runtime::Runtime, reply: &'static [u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    rt.spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tcp.write_all(reply).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    port
}

/// What the shared TLS servers answer, by path.
fn answer(seen: &crate::outbound_servers::Seen) -> Reply {
    match seen.path.as_str() {
        // Header values with a C1 control (CSI, U+009B) and a bidi override:
        // what HTTP lets a server send (bytes from 0x80 up).
        "/hostile-headers" => Reply::new(200, "ok")
            .header("x-csi", "a\u{9b}31mred")
            .header("x-bidi", "\u{202e}txt.exe"),
        // A token endpoint whose error text holds a newline and an escape.
        "/oauth/evil" => Reply::new(
            400,
            r#"{"error":"invalid_client","error_description":"bad client\nerror: forged by the token endpoint \u001b[2J"}"#,
        )
        .header("content-type", "application/json"),
        _ => Reply::new(200, "{\"result\":\"ok\"}").header("content-type", "application/json"),
    }
}

/// A CA and a server certificate for localhost, both with escapes in their names.
fn evil_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("evil dir");
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.distinguished_name.push(DnType::CommonName, EVIL_CA_CN);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_pem = ca.self_signed(&ca_key).expect("CA").pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).expect("leaf params");
    leaf.distinguished_name.push(DnType::CommonName, EVIL_CN);
    leaf.distinguished_name
        .push(DnType::OrganizationName, "Org\x1b[2J\r\u{202e}");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    leaf.not_before = now - time::Duration::days(1);
    leaf.not_after = now + time::Duration::days(90);
    let pem = leaf.signed_by(&key, &issuer).expect("sign").pem();
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca_pem).expect("write");
    std::fs::write(&paths.1, pem).expect("write");
    std::fs::write(&paths.2, key.serialize_pem()).expect("write");
    paths
}

fn ca_line(path: &Path) -> String {
    format!("ca_bundle = \"{}\"", path.display())
}

/// Neither a raw control character nor a forged line in what a user sees.
#[track_caller]
fn clean(what: &str, text: &str) {
    for c in ['\x1b', '\x07', '\r', '\u{9b}', '\u{202e}'] {
        assert!(!text.contains(c), "{what}: raw {c:?} in\n{text:?}");
    }
    assert!(
        !text
            .lines()
            .any(|l| l.trim_start().starts_with("error: forged")),
        "{what}: a forged line in\n{text}"
    );
}

// ---------------------------------------------------------------------------
// 1. Headers connctl sets itself
// ---------------------------------------------------------------------------

#[test]
fn send_refuses_headers_connctl_sets_itself_before_anything_is_sent() {
    let g = gaps();
    let env = env_with(&conn("c", &g.api.url("/framing"), &ca_line(&g.pki.ca)));
    for (header, words) in [
        ("Content-Length: 2", "sets Content-Length from the body"),
        ("content-length:100", "sets Content-Length from the body"),
        ("Transfer-Encoding: chunked", "sends the body whole"),
        ("Host: other.example", "from the connection's endpoint URL"),
        ("Connection: close", "about the connection"),
        ("Upgrade: h2c", "about the connection"),
        ("TE: gzip", "about the connection"),
    ] {
        let run = env.fails(
            &["connection", "send", "c", "-d", "0123456789", "-H", header],
            2,
        );
        assert!(
            run.stderr.contains("cannot be set"),
            "{header}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(words), "{header}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{header}: {}", run.stdout);
    }
    assert_eq!(
        g.api.count("/framing"),
        0,
        "a refused send reached the server"
    );

    // The same send without them goes out whole, framed by connctl.
    env.ok(&[
        "connection",
        "send",
        "c",
        "-d",
        "0123456789",
        "-H",
        "X-Ok: 1",
        "-H",
        "X-Twice: a",
        "-H",
        "X-Twice: b",
        "-H",
        "Accept: text/plain",
    ]);
    let seen = g.api.requests();
    let sent: Vec<_> = seen.iter().filter(|s| s.path == "/framing").collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body, b"0123456789");
    assert_eq!(sent[0].header("x-ok"), Some("1"));
    assert_eq!(
        sent[0].header("x-twice"),
        Some("a, b"),
        "a header given twice is sent twice"
    );
    assert_eq!(
        sent[0].header("accept"),
        Some("text/plain"),
        "the operator's header replaces the default"
    );
}

// ---------------------------------------------------------------------------
// 2. import --replace and the keyring
// ---------------------------------------------------------------------------

#[test]
fn import_replace_that_moves_a_keyring_secret_deletes_its_entry() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "no D-Bus session: run the keyring tests through scripts/test.sh"
    );
    let env = TestEnv::new();
    env.ok(&["integration", "add", "a"]);
    let run = env.run_stdin(
        &[
            "connection",
            "add",
            "c",
            "--integration",
            "a",
            "--env",
            "test",
            "--url",
            "https://x.example/api",
            "--user",
            "u",
            "--password-stdin",
        ],
        "KEYRING-PW",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let id = store_id(&env);
    let account = format!("{id}/connection/c/password");
    let entries = || keyring_entries(None, &id);
    assert_eq!(
        entries().get(&account).map(String::as_str),
        Some("KEYRING-PW")
    );

    let exported = env.ok(&["export"]);
    assert!(exported.contains("password = \"keyring\""), "{exported}");
    let moved = exported.replace("password = \"keyring\"", "password = \"env:C_PW\"");
    let file = env.path("moved.toml");
    write(&file, &moved);
    let file = file.to_str().unwrap();
    let before = env.store_bytes();

    // Refused: a conflict without --replace; a dry run; a rule broken.
    let run = env.fails(&["import", file], 4);
    assert!(run.stderr.contains("--replace"), "{}", run.stderr);
    env.ok(&["import", file, "--replace", "--dry-run"]);
    let broken = env.path("broken.toml");
    write(
        &broken,
        &moved.replace("integration = \"a\"", "integration = \"nowhere\""),
    );
    env.fails(&["import", broken.to_str().unwrap(), "--replace"], 4);
    assert_eq!(
        env.store_bytes(),
        before,
        "a refused import changed the store"
    );
    assert_eq!(
        entries().get(&account).map(String::as_str),
        Some("KEYRING-PW"),
        "a refused import touched the keyring"
    );

    // Done: the store names env:C_PW and the keyring entry is gone.
    let run = env.run(&["-v", "import", file, "--replace"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        env.store_text().contains("env:C_PW"),
        "{}",
        env.store_text()
    );
    assert!(
        !entries().contains_key(&account),
        "the keyring entry outlived the import: {:?}",
        entries()
    );
    assert!(
        run.stderr.contains(&format!("removed {account}")),
        "{}",
        run.stderr
    );
    // Nothing is left for doctor either.
    let doctor = env.run(&["doctor", "-o", "json"]);
    assert_eq!(
        doctor.json()["orphans"],
        serde_json::json!([]),
        "{}",
        doctor.stdout
    );
}

// ---------------------------------------------------------------------------
// 3. Header bytes that are not UTF-8 in the spool
// ---------------------------------------------------------------------------

const INBOUND_PW: &str = "inbound-pw";

/// `inbound serve` on plain HTTP with `--spool DIR`: the child and its address.
fn serve_plain(env: &TestEnv, spool: &Path) -> (Child, SocketAddr) {
    let mut child = env
        .std_cmd()
        .args(["inbound", "serve", "--listen", "127.0.0.1:0", "--spool"])
        .arg(spool)
        .env("REMOTE_PW", INBOUND_PW)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start inbound serve");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    stderr.read_line(&mut first).expect("first line");
    let Some(url) = first.trim().strip_prefix("listening on ") else {
        let _ = child.kill();
        panic!("inbound serve did not start: {first}");
    };
    let addr = url
        .split("://")
        .nth(1)
        .expect("scheme")
        .parse()
        .expect("address");
    // Keep reading stderr, so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = stderr.read_to_string(&mut sink);
    });
    (child, addr)
}

#[test]
fn inbound_header_values_that_are_not_utf8_are_recorded_losslessly() {
    let env = env_with(&format!(
        "[inbound_user.remote]\npassword = \"env:REMOTE_PW\"\n\n{}",
        conn(
            "inc.test",
            "https://127.0.0.1:9/api",
            "active = true\ninbound_user = \"remote\""
        )
    ));
    let spool = env.path("spool");
    let (mut child, addr) = serve_plain(&env, &spool);
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("remote:{INBOUND_PW}"));
    let mut request = format!(
        "POST /in HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\nX-Text: caf\u{e9}\r\n"
    )
    .into_bytes();
    request.extend_from_slice(b"X-Raw: \xff\xfe latin-1 \xe9t\xe9\r\nX-Raw: second\r\n\r\nhi");
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(&request).expect("send");
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    let _ = child.kill();
    let _ = child.wait();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");

    let text = std::fs::read_to_string(spool.join("messages.jsonl")).expect("spool");
    let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
    let headers = &line["headers"];
    assert_eq!(headers["x-text"], "caf\u{e9}", "{line}");
    assert_eq!(headers["authorization"], "(redacted)", "{line}");
    assert!(headers.get("x-raw").is_none(), "{line}");
    let raw = line["headers_base64"]["x-raw"]
        .as_str()
        .unwrap_or_else(|| panic!("no headers_base64.x-raw: {line}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .expect("base64");
    assert_eq!(bytes, b"\xff\xfe latin-1 \xe9t\xe9, second");
    assert!(!text.contains('\u{fffd}'), "{text}");
}

// ---------------------------------------------------------------------------
// 4. Escapes from a certificate, response headers and a token endpoint
// ---------------------------------------------------------------------------

#[test]
fn a_certificate_subject_with_escapes_is_shown_escaped_and_kept_exact_in_json() {
    let g = gaps();
    let url = format!("https://localhost:{}/api", g.evil);
    let env = env_with(&format!(
        "{}{}",
        conn("trusted", &url, &ca_line(&g.evil_ca)),
        conn("untrusted", &url, &ca_line(&g.pki.ca)),
    ));

    let table = env.run(&["connection", "test", "trusted"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    clean("test (table)", &format!("{}{}", table.stdout, table.stderr));
    assert!(
        table
            .stdout
            .contains(r"evil\x1b[31m.example\nerror: forged"),
        "{}",
        table.stdout
    );

    let verbose = env.run(&["-v", "connection", "test", "trusted"]);
    assert_eq!(verbose.code, 0, "{}", verbose.stderr);
    clean("test -v", &format!("{}{}", verbose.stdout, verbose.stderr));

    let send = env.run(&["-v", "connection", "send", "trusted"]);
    assert_eq!(send.code, 0, "{}", send.stderr);
    clean("send -v", &send.stderr);
    assert!(send.stderr.contains(r"\x1b"), "{}", send.stderr);

    // JSON keeps the exact text.
    let json = env.run(&["-o", "json", "connection", "test", "trusted"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let value = json.json();
    let stages = value["stages"]
        .as_array()
        .or(value[0]["stages"].as_array())
        .unwrap_or_else(|| panic!("no stages: {value}"));
    let tls = stages
        .iter()
        .find(|s| s["stage"] == "tls")
        .expect("tls stage");
    let detail = tls["detail"].as_str().expect("detail");
    assert!(detail.contains(EVIL_CN), "{detail:?}");
    assert!(detail.contains(EVIL_CA_CN), "{detail:?}");

    // An untrusted certificate: the error names its issuer, escaped.
    let run = env.fails(&["connection", "test", "untrusted"], 7);
    clean(
        "test, untrusted issuer",
        &format!("{}{}", run.stdout, run.stderr),
    );
    assert!(
        run.stderr
            .contains(r"Evil CA\x1b]0;pwned\x07\nerror: forged"),
        "{}",
        run.stderr
    );
    let run = env.fails(&["-v", "connection", "send", "untrusted"], 7);
    clean("send, untrusted issuer", &run.stderr);

    // `connection diff --live` compares the certificates of two connections.
    let diff = env.run(&["connection", "diff", "trusted", "untrusted", "--live"]);
    clean("diff --live", &format!("{}{}", diff.stdout, diff.stderr));
}

#[test]
fn response_header_values_are_escaped_by_send_include() {
    let g = gaps();
    let env = env_with(&conn(
        "c",
        &g.api.url("/hostile-headers"),
        &ca_line(&g.pki.ca),
    ));
    let run = env.run(&["connection", "send", "c", "-i"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The head's own CRLFs aside, nothing raw.
    clean("send -i", &run.stdout.replace("\r\n", "\n"));
    assert!(
        run.stdout.contains(r"x-csi: a\u{9b}31mred"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(r"x-bidi: \u{202e}txt.exe"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.ends_with("ok"), "{}", run.stdout);

    // Bytes that are not UTF-8 are shown as \xNN, not as U+FFFD.
    let env = env_with(&conn(
        "plain",
        &format!("http://127.0.0.1:{}/latin1", g.latin1),
        "allow_http = true",
    ));
    let run = env.run(&["connection", "send", "plain", "-i"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(r"x-latin: caf\xe9 \xff"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains('\u{fffd}'), "{}", run.stdout);
}

#[test]
fn a_token_endpoints_error_text_cannot_forge_lines() {
    let g = gaps();
    let token_url = g.api.url("/oauth/evil");
    let env = env_with(&format!(
        "{}[oauth_profile.idp]\ntoken_url = \"{token_url}\"\nclient_id = \"c\"\nclient_secret = \"env:CS\"\n\n",
        conn(
            "o",
            &g.api.url("/api"),
            &format!(
                "{}\nauthentication = \"oauth\"\noauth_profile = \"idp\"",
                ca_line(&g.pki.ca)
            ),
        ),
    ));
    for args in [
        &["connection", "send", "o"][..],
        &["-v", "connection", "test", "o"],
        &["oauth-profile", "token", "idp"],
    ] {
        let out = env.cmd().env("CS", "s3cret").args(args).output().unwrap();
        let run = Run::from_output(out);
        assert_eq!(run.code, 8, "{args:?}: {}", run.stderr);
        clean(
            &format!("{args:?}"),
            &format!("{}{}", run.stdout, run.stderr),
        );
        assert!(
            run.stderr.contains("forged by the token endpoint"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn store_text_in_secret_errors_cannot_forge_lines() {
    for source in [
        "file:/nonexistent/pw\\nerror: forged by the store \\u001b[2J",
        "cmd:/nonexistent/pw\\nerror: forged by the store \\u001b[2J",
    ] {
        let env = env_with(&conn(
            "c",
            "https://127.0.0.1:9/api",
            &format!("authentication = \"basic\"\nuser = \"u\"\npassword = \"{source}\""),
        ));
        let run = env.run(&["connection", "test", "c"]);
        assert_eq!(run.code, 5, "{source}: {}", run.stderr);
        clean(source, &format!("{}{}", run.stdout, run.stderr));
    }
    // A store value a rule refuses is quoted in the error, escaped.
    let env = env_with(&conn(
        "c",
        "https://x\\nerror: forged by the store:99999/",
        "",
    ));
    let run = env.run(&["connection", "list"]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    clean("an invalid URL in the store", &run.stderr);
    assert!(
        run.stderr.contains(r"https://x\nerror: forged"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------
// 5. --timeout over file: and cmd: sources
// ---------------------------------------------------------------------------

fn basic_env(source: &str) -> TestEnv {
    env_with(&conn(
        "c",
        "https://127.0.0.1:9/api",
        &format!("authentication = \"basic\"\nuser = \"u\"\npassword = \"{source}\""),
    ))
}

#[test]
fn timeout_covers_a_fifo_or_a_slow_command_source() {
    let dir = tempfile::tempdir().expect("dir");
    let fifo = dir.path().join("pw.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    let file_env = basic_env(&format!("file:{}", fifo.display()));
    let cmd_env = basic_env("cmd:sleep 60");
    for (env, words) in [(&file_env, "no writer"), (&cmd_env, "did not finish")] {
        for command in ["test", "send"] {
            let started = Instant::now();
            let run = env.run(&["connection", command, "c", "--timeout", "1"]);
            let took = started.elapsed();
            assert_eq!(run.code, 5, "{command}: {}", run.stderr);
            assert!(took < Duration::from_secs(10), "{command} took {took:?}");
            assert!(run.stderr.contains(words), "{}", run.stderr);
            assert!(
                run.stderr.contains("the command's --timeout (1s) ran out"),
                "{command}: {}",
                run.stderr
            );
            assert!(run.stderr.contains("raise --timeout"), "{}", run.stderr);
        }
    }
    // A Vault that never answers: given up at the --timeout, not at
    // CONNCTL_VAULT_TIMEOUT (30 s).
    let vault_env = basic_env("vault:secret/data/app#pw");
    let addr = format!("http://127.0.0.1:{}", gaps().silent);
    let started = Instant::now();
    let out = vault_env
        .cmd()
        .env("VAULT_ADDR", &addr)
        .env("VAULT_TOKEN", "t")
        .args(["connection", "send", "c", "--timeout", "1"])
        .output()
        .unwrap();
    let took = started.elapsed();
    let run = Run::from_output(out);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        run.stderr.contains("within the command's --timeout (1 s)"),
        "{}",
        run.stderr
    );

    // The source's own limit, when it is the smaller, is the one named.
    let out = file_env
        .cmd()
        .env("CONNCTL_CMD_TIMEOUT", "1")
        .args(["connection", "test", "c", "--timeout", "20"])
        .output()
        .unwrap();
    let run = Run::from_output(out);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr.contains("CONNCTL_CMD_TIMEOUT ran out"),
        "{}",
        run.stderr
    );
}

#[test]
fn one_timeout_spans_the_secret_source_and_the_network() {
    // The source takes 3 s of a 4 s --timeout; a server that never answers
    // gets what is left, not another 4 s.
    let env = env_with(&conn(
        "c",
        &format!("https://127.0.0.1:{}/api", gaps().silent),
        "authentication = \"basic\"\nuser = \"u\"\npassword = \"cmd:sh -c 'sleep 3; printf pw'\"",
    ));
    let started = Instant::now();
    let run = env.run(&["connection", "test", "c", "--timeout", "4"]);
    let took = started.elapsed();
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(run.stderr.contains("timed out after 4 s"), "{}", run.stderr);
    assert!(
        took < Duration::from_secs(6),
        "the network got a fresh --timeout after the secret: {took:?}"
    );
}

#[test]
fn a_failing_secret_command_or_a_pasted_value_is_never_repeated() {
    // The command prints the secret, then fails with a message repeating it
    // (the value is assembled, so the command line does not spell it).
    let env = basic_env(
        "cmd:sh -c 'printf %s%s Xq7 -s3cr3t; printf denied-for-%s%s Xq7 -s3cr3t >&2; exit 3'",
    );
    let run = env.fails(&["connection", "test", "c"], 5);
    assert!(run.stderr.contains("exit status 3"), "{}", run.stderr);
    assert!(
        run.stderr.contains("(stderr: denied-for-(redacted))"),
        "{}",
        run.stderr
    );
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!all.contains("Xq7-s3cr3t"), "{all}");

    // A secret pasted where --secret-var wants KEY=SOURCE.
    let run = env.fails(
        &["connection", "edit", "c", "--secret-var", "Pz9-pasted"],
        2,
    );
    assert!(run.stderr.contains("not KEY=SOURCE"), "{}", run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!all.contains("Pz9-pasted"), "{all}");
}
