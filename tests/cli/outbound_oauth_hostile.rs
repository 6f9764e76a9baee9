//! Hostile token endpoints: tokens that cannot go in a header, and answers
//! too large or endless. Each must fail as an OAuth or network failure naming
//! the token endpoint, before any request reaches the endpoint.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::outbound::{Fixture, conn};
use crate::outbound_servers::*;

const SECRET: &str = "hostile-client-secret";

/// Connection `o` (API on `api`) using profile `idp` at `token_url`.
fn store(f: &Fixture, api: &Server, token_url: &str) {
    let extra = format!(
        "ca_bundle = \"{}\"\nauthentication = \"oauth\"\noauth_profile = \"idp\"\n",
        f.ca()
    );
    f.store(&format!(
        "{}[oauth_profile.idp]\ntoken_url = \"{token_url}\"\nclient_id = \"c\"\nclient_secret = \"env:CS\"\n\n",
        conn("o", &api.url("/api"), &extra),
    ));
}

fn token_answer(token_json: &str) -> Handler {
    let body =
        format!("{{\"access_token\":{token_json},\"token_type\":\"Bearer\",\"expires_in\":3600}}");
    Arc::new(move |_| Reply::new(200, &body).header("content-type", "application/json"))
}

#[test]
fn a_token_that_cannot_be_a_header_value_is_refused_and_nothing_is_sent() {
    let f = Fixture::new();
    let api = f.server(ok_handler());
    for (token, what) in [
        ("\"Zq9\\r\\nX-Injected: 1\"", "control character (U+000D)"),
        ("\"Zq9\\u0000en\"", "control character (U+0000)"),
        ("\"Zq9\\nen\"", "control character (U+000A)"),
        ("\"\"", "it is empty"),
        ("\"Zq9 words\"", "a space"),
    ] {
        let idp = f.server(token_answer(token));
        let token_url = idp.url("/oauth/token");
        store(&f, &api, &token_url);
        for args in [
            &["connection", "send", "o", "-d", "{}"][..],
            &["connection", "test", "o"],
            &["oauth-profile", "token", "idp"],
        ] {
            let run = f.expect(args, &[("CS", SECRET)], 8);
            let text = format!("{}{}", run.stdout, run.stderr);
            assert!(text.contains(&token_url), "{args:?} {token}: {text}");
            assert!(text.contains(what), "{args:?} {token}: {text}");
            assert!(
                !text.contains("X-Injected") && !text.contains("Zq9"),
                "{text}"
            );
        }
        assert_eq!(idp.count("/oauth/token"), 3);
    }
    assert_eq!(
        api.count("/api"),
        0,
        "a request went out without credentials"
    );
}

/// A plain-HTTP token endpoint that answers with `head` and then `body_chunk`
/// again and again: `times` times, or forever (`None`).
fn flooding_endpoint(
    f: &Fixture,
    head: &'static str,
    chunk: &'static [u8],
    times: Option<usize>,
) -> u16 {
    let listener = f.rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    f.rt.spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let _ = tcp.read(&mut buf).await;
                if tcp.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut n = 0;
                while times.is_none_or(|t| n < t) {
                    if tcp.write_all(chunk).await.is_err() {
                        return;
                    }
                    n += 1;
                }
            });
        }
    });
    port
}

/// Runs connctl with `args`, returning its exit code, its output and its own
/// peak RSS in MB. GNU time (a small parent) measures it: the test process
/// spawns with vfork, and a child's `ru_maxrss` then starts at the *parent's*
/// peak (hundreds of MB while other tests hold large bodies), not connctl's.
fn run_measured(f: &Fixture, args: &[&str], vars: &[(&str, &str)]) -> (i32, String, i64) {
    let out = f.env.path("measured.out");
    let rss = f.env.path("measured.rss");
    // The command std_cmd builds (it starts from a cleared environment).
    let probe = crate::outbound_oidc::std_cmd(&f.env);
    let mut cmd = std::process::Command::new("/usr/bin/time");
    cmd.env_clear()
        .args(["-f", "%M", "-o"])
        .arg(&rss)
        .arg(probe.get_program())
        .args(probe.get_args())
        .args(args)
        .envs(
            probe
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .envs(vars.iter().copied())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(f.env.path("measured.err")).unwrap());
    let status = cmd.status().expect("/usr/bin/time (Debian package time)");
    let text = format!(
        "{}{}",
        std::fs::read_to_string(&out).unwrap(),
        std::fs::read_to_string(f.env.path("measured.err")).unwrap()
    );
    let kb: i64 = std::fs::read_to_string(&rss)
        .unwrap()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("time -f %M");
    // time exits with the command's status (or 128+N if a signal ended it).
    (status.code().unwrap_or(-1), text, kb / 1024)
}

#[test]
fn a_huge_or_endless_token_answer_fails_fast_with_flat_memory() {
    static AS: [u8; 64 * 1024] = [b'A'; 64 * 1024];
    static CHUNK: &[u8] = b"10000\r\n";
    let f = Fixture::new();
    let api = f.server(ok_handler());
    // 200 MB of access token, announced with its length.
    let huge = flooding_endpoint(
        &f,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 209715220\r\n\r\n{\"access_token\":\"",
        &AS,
        Some(3200),
    );
    // An endless chunked answer.
    let endless = {
        let listener = f.rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        f.rt.spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    let _ = tcp.read(&mut buf).await;
                    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                    if tcp.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    loop {
                        // 64 KiB chunks of a JSON string that never closes.
                        if tcp.write_all(CHUNK).await.is_err()
                            || tcp.write_all(&AS).await.is_err()
                            || tcp.write_all(b"\r\n").await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        port
    };
    for port in [huge, endless] {
        let token_url = format!("http://127.0.0.1:{port}/oauth/token");
        store(&f, &api, &token_url);
        let (code, text, peak) = run_measured(
            &f,
            &["connection", "send", "o", "-d", "{}", "--timeout", "120"],
            &[("CS", SECRET)],
        );
        assert_eq!(code, 6, "{text}");
        assert!(text.contains(&token_url), "{text}");
        assert!(text.contains("larger than 1048576 bytes"), "{text}");
        assert!(!text.contains("AAAA"), "{text}");
        // Neither 200 MB nor an endless answer is held in memory.
        assert!(peak < 100, "connctl reached {peak} MB");
    }
    assert_eq!(api.count("/api"), 0);
}

/// `CONNCTL_TOKEN_CACHE=DIR`: access tokens reused across runs without a
/// keyring, in an owner-only folder that never holds a refresh token; a folder
/// others can read is refused; `doctor` says which cache is used.
#[test]
fn token_cache_folder_holds_access_tokens_only() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let state = OauthState::new(3600);
    let server = f.server(oauth_handler(state.clone()));
    store(&f, &server, &server.url("/oauth/token"));
    let text = f
        .env
        .store_text()
        .replace("client_id = \"c\"", "client_id = \"connctl-client\"");
    crate::support::write(&f.env.store, &text.replace("/api\"", "/api/incident\""));
    let dir = f.env.path("tokens");
    let dir_text = dir.display().to_string();
    let vars = [
        ("CS", state.client_secret.as_str()),
        ("CONNCTL_TOKEN_CACHE", dir_text.as_str()),
    ];
    // No D-Bus session: there is no keyring to fall back on.
    for _ in 0..3 {
        let mut cmd = crate::outbound_oidc::std_cmd(&f.env);
        cmd.env_remove("DBUS_SESSION_BUS_ADDRESS").envs(vars);
        let out = cmd.args(["connection", "send", "o"]).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(state.requests(), 1, "the cached token was not reused");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let cached = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        cached.contains("access-0") && !cached.contains("refresh-0"),
        "{cached}"
    );
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o077,
        0
    );

    let doctor = f.expect(&["-o", "json", "doctor"], &vars, 0).json();
    assert_eq!(doctor["token_cache"]["kind"], "folder");
    assert_eq!(doctor["token_cache"]["ok"], true);

    // A folder others can read is not used: the token is fetched and not kept.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = f.expect(&["-o", "json", "connection", "test", "o"], &vars, 0);
    let stage = crate::outbound::detail(&run.json(), "oauth_token");
    assert!(stage.contains("owner-only"), "{stage}");
    assert_eq!(state.requests(), 2);
}
