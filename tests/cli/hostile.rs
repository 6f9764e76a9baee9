//! Servers that do not play fair, through the binary: bodies that never end,
//! stall or declare 2 GB, endless headers from an endpoint or a MID server,
//! a token endpoint that echoes the secrets it was sent, and real nginx
//! refusing client certificates with HTTP pages. The servers are started once
//! for the whole test binary.

use std::convert::Infallible;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::channel::Channel;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::outbound_servers::{Pki, TlsOptions, refused_port, runtime, server_config};
use crate::support::{Run, TestEnv, conn, env_with, spawn_for_test_binary};

const FIRST_CHUNK: &str = "first-chunk-of-the-body\n";
const CLIENT_ID: &str = "connctl-client";
/// Characters that every encoding writes differently.
const CLIENT_SECRET: &str = "p@ss w0rd!/client+&=%";
const OWNER_PASSWORD: &str = "0wn3r p@ss!?#";

/// The servers every test here shares.
struct Hostile {
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    pki: Pki,
    /// TLS offering h2 and http/1.1 (connctl picks h2).
    h2: u16,
    /// TLS offering http/1.1 only.
    h1: u16,
    /// Endless header lines after a status line, plain HTTP.
    header_flood: u16,
    /// A "proxy" answering CONNECT with endless header lines.
    proxy_flood: u16,
    /// nginx with `ssl_verify_client on`, trusting the test CA only.
    nginx: u16,
}

fn hostile() -> &'static Hostile {
    static SHARED: OnceLock<Hostile> = OnceLock::new();
    SHARED.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = Pki::new(&dir.path().join("pki"));
        let rt = runtime();
        let h2 = serve_tls(&rt, &pki, true);
        let h1 = serve_tls(&rt, &pki, false);
        let header_flood = flood(&rt, b"HTTP/1.1 200 OK\r\n");
        let proxy_flood = flood(&rt, b"HTTP/1.1 200 Connection established\r\n");
        let nginx = start_nginx(&dir.path().join("nginx"), &pki);
        Hostile {
            _rt: rt,
            _dir: dir,
            pki,
            h2,
            h1,
            header_flood,
            proxy_flood,
            nginx,
        }
    })
}

type Body = Channel<Bytes, Infallible>;

/// The answer of the streaming server to `path`; the body is fed by a task.
async fn answer(req: hyper::Request<hyper::body::Incoming>) -> hyper::Response<Body> {
    let path = req.uri().path().to_string();
    let (mut tx, body) = Channel::<Bytes, Infallible>::new(4);
    let mut response = hyper::Response::builder().status(200);
    match path.as_str() {
        // One chunk, then nothing, for ever.
        "/stall" => {
            tokio::spawn(async move {
                let _ = tx.send_data(Bytes::from(FIRST_CHUNK)).await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                drop(tx);
            });
        }
        // One chunk, then 1 KiB every 20 ms, for ever: never idle, never done.
        "/trickle" => {
            tokio::spawn(async move {
                let _ = tx.send_data(Bytes::from(FIRST_CHUNK)).await;
                loop {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if tx.send_data(Bytes::from(vec![b'x'; 1024])).await.is_err() {
                        break;
                    }
                }
            });
        }
        // As fast as the client reads, for ever.
        "/endless" => {
            tokio::spawn(async move {
                let chunk = Bytes::from(vec![b'y'; 64 * 1024]);
                while tx.send_data(chunk.clone()).await.is_ok() {}
            });
        }
        // Declares 2 GB, sends 256 KiB, then stalls.
        "/declared-2g" => {
            response = response.header("content-length", "2147483648");
            tokio::spawn(async move {
                for _ in 0..16 {
                    if tx
                        .send_data(Bytes::from(vec![b'z'; 16 * 1024]))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_secs(3600)).await;
                drop(tx);
            });
        }
        // A token endpoint that repeats the request in its error.
        "/echo-token" => {
            let auth = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let sent = req
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            let decoded = auth
                .strip_prefix("Basic ")
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let form: Vec<(String, String)> = url::form_urlencoded::parse(sent.as_bytes())
                .into_owned()
                .collect();
            let said = format!(
                "you sent body={sent} (as %20: {}) authorization={auth} decoded={decoded} fields={form:?}",
                sent.replace('+', "%20")
            );
            let json = serde_json::json!({"error": "invalid_client", "error_description": said});
            response = response
                .status(401)
                .header("content-type", "application/json");
            tokio::spawn(async move {
                let _ = tx.send_data(Bytes::from(json.to_string())).await;
            });
        }
        _ => {
            response = response.status(404);
        }
    }
    response.body(body).expect("response")
}

fn serve_tls(rt: &tokio::runtime::Runtime, pki: &Pki, h2: bool) -> u16 {
    let config = server_config(&TlsOptions {
        cert: &pki.server_cert,
        key: &pki.server_key,
        client_ca: None,
        h2,
    });
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(
                            TokioIo::new(tls),
                            service_fn(|req| async { Ok::<_, Infallible>(answer(req).await) }),
                        )
                        .await;
                }
            });
        }
    });
    port
}

/// A raw server that answers anything with `first_line` and then header lines for ever.
fn flood(rt: &tokio::runtime::Runtime, first_line: &'static [u8]) -> u16 {
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    rt.spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                if tcp.write_all(first_line).await.is_err() {
                    return;
                }
                let line = format!("X-Padding: {}\r\n", "a".repeat(1000));
                for _ in 0..100_000 {
                    if tcp.write_all(line.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// nginx in the foreground, owned by a thread that lives as long as the test
/// binary: the kernel ends nginx when that thread's process goes
/// (PR_SET_PDEATHSIG), so no nginx outlives the tests.
fn start_nginx(dir: &Path, pki: &Pki) -> u16 {
    std::fs::create_dir_all(dir).expect("nginx dir");
    let port = refused_port();
    let d = |name: &str| dir.join(name).display().to_string();
    let user = if running_as_root() {
        "user root;\n"
    } else {
        ""
    };
    let config = format!(
        "{user}daemon off;\nmaster_process off;\npid {pid};\nerror_log {log} warn;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {t}/body;\n  proxy_temp_path {t}/proxy;\n  \
         fastcgi_temp_path {t}/fastcgi;\n  uwsgi_temp_path {t}/uwsgi;\n  scgi_temp_path {t}/scgi;\n  \
         server {{\n    listen 127.0.0.1:{port} ssl http2;\n    ssl_certificate {cert};\n    \
         ssl_certificate_key {key};\n    ssl_client_certificate {ca};\n    ssl_verify_client on;\n    \
         location / {{ return 200 \"hello through mutual TLS\\n\"; }}\n  }}\n}}\n",
        pid = d("nginx.pid"),
        log = d("error.log"),
        t = dir.display(),
        cert = pki.server_cert.display(),
        key = pki.server_key.display(),
        ca = pki.ca.display(),
    );
    let config_path = dir.join("nginx.conf");
    std::fs::write(&config_path, config).expect("nginx.conf");
    let prefix = dir.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
    std::thread::Builder::new()
        .name("nginx-owner".into())
        .spawn(move || {
            let child = spawn_nginx(&prefix, &config_path);
            let mut child = match child {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(Ok(()));
            // Stay alive (and own nginx) until the test binary exits.
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    eprintln!("nginx exited: {status}");
                    return;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
        .expect("nginx thread");
    rx.recv()
        .expect("nginx thread")
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "nginx did not start on {port}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    port
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn spawn_nginx(prefix: &Path, config: &Path) -> Result<Child, String> {
    let mut cmd = Command::new("nginx");
    cmd.arg("-p")
        .arg(prefix)
        .arg("-e")
        .arg(prefix.join("error.log"))
        .arg("-c")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    spawn_for_test_binary(cmd, libc::SIGKILL).map_err(|e| {
        format!("nginx must be installed (scripts/test.sh installs the Debian package): {e}")
    })
}

/// Connection `c` to `path` on the shared TLS server on `port`.
fn streaming_env(port: u16, path: &str) -> TestEnv {
    let h = hostile();
    env_with(&conn(
        "c",
        &format!("https://localhost:{port}{path}"),
        &format!("ca_bundle = \"{}\"", h.pki.ca.display()),
    ))
}

fn std_cmd(env: &TestEnv) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("connctl"));
    cmd.env_clear()
        .env("HOME", &env.home)
        .env("CONNCTL_STORE", &env.store)
        .env("NO_COLOR", "1");
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    text
}

#[test]
fn send_writes_the_body_to_stdout_as_it_arrives() {
    let h = hostile();
    let checks: Vec<_> = [("HTTP/2", h.h2), ("HTTP/1.1", h.h1)]
        .into_iter()
        .map(|(version, port)| {
            std::thread::spawn(move || {
                let env = streaming_env(port, "/stall");
                let mut child = std_cmd(&env)
                    .args(["-v", "connection", "send", "c", "--timeout", "20"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn connctl");
                let mut stdout = child.stdout.take().expect("stdout");
                let mut got = Vec::new();
                let mut buf = [0u8; 256];
                while got.len() < FIRST_CHUNK.len() {
                    let n = stdout.read(&mut buf).expect("read stdout");
                    assert!(n > 0, "{version}: stdout closed before the first chunk");
                    got.extend_from_slice(&buf[..n]);
                }
                assert_eq!(String::from_utf8_lossy(&got), FIRST_CHUNK, "{version}");
                // The server has not finished (it never will): connctl is still reading.
                assert!(
                    child.try_wait().expect("try_wait").is_none(),
                    "{version}: connctl ended before the body did"
                );
                let status = child.wait().expect("wait");
                let stderr = stderr_of(&mut child);
                assert_eq!(status.code(), Some(6), "{version}: {stderr}");
                assert!(
                    stderr.contains("timed out after 20 s reading the body from localhost:")
                        && stderr.contains(&format!("after {} bytes", FIRST_CHUNK.len())),
                    "{version}: {stderr}"
                );
                assert!(stderr.contains("body streamed"), "{version}: {stderr}");
                assert!(stderr.contains(version), "{version}: {stderr}");
            })
        })
        .collect();
    for check in checks {
        check.join().expect("check");
    }
}

#[test]
fn send_timeout_covers_a_body_that_never_ends() {
    let h = hostile();
    for (version, port) in [("HTTP/2", h.h2), ("HTTP/1.1", h.h1)] {
        let env = streaming_env(port, "/trickle");
        let started = Instant::now();
        let run = env.run(&["connection", "send", "c", "--timeout", "3"]);
        let took = started.elapsed();
        assert_eq!(run.code, 6, "{version}: {}", run.stderr);
        assert!(
            run.stderr.contains("timed out after 3 s reading the body"),
            "{version}: {}",
            run.stderr
        );
        assert!(run.stdout.starts_with(FIRST_CHUNK), "{version}");
        assert!(
            run.stdout.len() > FIRST_CHUNK.len(),
            "{version}: no trickle"
        );
        // Generous: only proves the deadline ended it, not the server.
        assert!(took < Duration::from_secs(30), "{version}: took {took:?}");
    }
}

#[test]
fn test_reads_only_the_head_of_a_large_or_endless_body() {
    let h = hostile();
    for (version, port) in [("HTTP/2", h.h2), ("HTTP/1.1", h.h1)] {
        for path in ["/endless", "/declared-2g"] {
            let env = streaming_env(port, path);
            let run = env.run(&["-o", "json", "connection", "test", "c", "--timeout", "60"]);
            assert_eq!(run.code, 0, "{version} {path}: {}", run.stderr);
            let json = run.json();
            let http = json["stages"]
                .as_array()
                .expect("stages")
                .iter()
                .find(|s| s["stage"] == "http")
                .expect("http stage");
            assert!(
                http["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("first 65536 bytes of the body read"),
                "{version} {path}: {json:#}"
            );
        }
    }
}

#[test]
fn endless_headers_from_an_endpoint_or_a_mid_server_are_cut_off() {
    let h = hostile();
    let env = env_with(&conn(
        "c",
        &format!("http://127.0.0.1:{}/x", h.header_flood),
        "",
    ));
    let run = env.fails(&["connection", "test", "c"], 6);
    assert!(
        run.stderr.contains("response head limit (64 KiB)"),
        "{}",
        run.stderr
    );

    let env = env_with(&format!(
        "{}[mid_server.mid]\nurl = \"http://127.0.0.1:{}\"\n\n",
        conn(
            "c",
            &format!("https://localhost:{}/x", h.h1),
            &format!(
                "ca_bundle = \"{}\"\nmid_server = \"mid\"",
                h.pki.ca.display()
            )
        ),
        h.proxy_flood
    ));
    for args in [
        &["connection", "test", "c"][..],
        &["connection", "send", "c"][..],
    ] {
        let run = env.fails(args, 6);
        assert!(
            run.stderr.contains("proxy answer limit (16 KiB)"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

/// Every form the client secret and the owner's password take on the wire.
fn wire_forms() -> Vec<String> {
    let form = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let mut forms = Vec::new();
    for secret in [CLIENT_SECRET, OWNER_PASSWORD] {
        forms.push(secret.to_string());
        forms.push(form(secret));
        forms.push(form(secret).replace('+', "%20"));
    }
    let basic = format!("{}:{}", form(CLIENT_ID), form(CLIENT_SECRET));
    forms.push(b64(basic.clone()));
    forms.push(basic);
    forms.push(b64(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    forms
}

#[test]
fn secrets_echoed_by_a_token_endpoint_are_scrubbed_in_every_encoding() {
    let h = hostile();
    let forms = wire_forms();
    for (grant, client_auth) in [
        ("password", "basic"),
        ("password", "body"),
        ("client_credentials", "basic"),
        ("client_credentials", "body"),
    ] {
        let env = env_with(&format!(
            "{}[oauth_profile.idp]\ntoken_url = \"https://localhost:{}/echo-token\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"env:CLIENT_SECRET\"\ngrant = \"{grant}\"\nclient_auth = \"{client_auth}\"\n\n",
            conn(
                "o",
                &format!("https://localhost:{}/api", h.h1),
                &format!(
                    "ca_bundle = \"{}\"\nauthentication = \"oauth\"\noauth_profile = \"idp\"\nuser = \"svc.owner\"\npassword = \"env:OWNER_PW\"",
                    h.pki.ca.display()
                )
            ),
            h.h1
        ));
        for args in [
            &["connection", "test", "o"][..],
            &["-v", "connection", "test", "o"],
            &["-vv", "-o", "json", "connection", "test", "o"],
            &["-vv", "connection", "send", "o"],
            &["-v", "oauth-profile", "token", "idp", "--connection", "o"],
        ] {
            let mut cmd = env.cmd();
            cmd.env("CLIENT_SECRET", CLIENT_SECRET)
                .env("OWNER_PW", OWNER_PASSWORD)
                .args(args);
            let out = cmd.output().expect("run connctl");
            let run = Run {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            };
            let printed = format!("{}\n{}", run.stdout, run.stderr);
            assert_eq!(run.code, 8, "{grant}/{client_auth} {args:?}:\n{printed}");
            // The endpoint's words are shown, with what it echoed taken out.
            assert!(
                printed.contains("you sent body=") && printed.contains("(redacted)"),
                "{grant}/{client_auth} {args:?}:\n{printed}"
            );
            for form in &forms {
                assert!(
                    !printed.contains(form.as_str()),
                    "{grant}/{client_auth} {args:?} printed {form:?}:\n{printed}"
                );
            }
        }
    }
}

/// Connection `m` to nginx, with a protocol profile when a client certificate is given.
fn nginx_env(client: Option<(&PathBuf, &PathBuf)>) -> TestEnv {
    let h = hostile();
    let url = format!("https://localhost:{}/api", h.nginx);
    let ca = h.pki.ca.display();
    match client {
        None => env_with(&conn("m", &url, &format!("ca_bundle = \"{ca}\""))),
        Some((cert, key)) => env_with(&format!(
            "{}[protocol_profile.p]\nclient_cert = \"{}\"\nclient_key = \"{}\"\nca_bundle = \"{ca}\"\n\n",
            conn("m", &url, "mutual_auth = true\nprotocol_profile = \"p\""),
            cert.display(),
            key.display(),
        )),
    }
}

fn nginx_checks(env: &TestEnv, code: i32, words: &str) {
    let run = env.fails(&["-o", "json", "connection", "test", "m"], code);
    let json: Value = run.json();
    if code == 0 {
        assert_eq!(json["ok"], true, "{json:#}");
    } else {
        assert_eq!(json["failed_stage"], "tls", "{json:#}");
        assert!(run.stderr.contains(words), "{}", run.stderr);
    }
    let run = env.fails(&["connection", "send", "m"], code);
    if code == 0 {
        assert_eq!(run.stdout, "hello through mutual TLS\n");
    } else {
        assert!(run.stderr.contains(words), "{}", run.stderr);
        assert!(run.stderr.contains("(stage tls)"), "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
}

#[test]
fn nginx_client_certificate_pages_are_client_certificate_failures() {
    let h = hostile();
    // No client certificate: nginx answers 400 "No required SSL certificate was sent".
    let env = nginx_env(None);
    nginx_checks(
        &env,
        7,
        "the server requires a client certificate and the connection has mutual auth off",
    );
    let run = env.fails(&["connection", "test", "m"], 7);
    assert!(
        run.stderr.contains("--mutual-auth --protocol-profile"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("No required SSL certificate was sent"),
        "{}",
        run.stderr
    );

    // A certificate from a CA nginx does not trust: 400 "The SSL certificate error".
    let env = nginx_env(Some((&h.pki.rogue_cert, &h.pki.rogue_key)));
    nginx_checks(&env, 7, "the server rejected the client certificate");
    let run = env.fails(&["connection", "test", "m"], 7);
    assert!(
        run.stderr.contains("must trust the issuer"),
        "{}",
        run.stderr
    );

    // The right certificate.
    let env = nginx_env(Some((&h.pki.client_cert, &h.pki.client_key_pkcs8)));
    nginx_checks(&env, 0, "");
}
