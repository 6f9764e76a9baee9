//! The one printer (issue 9 item 3): a closed stdout or stderr never panics
//! and ends as documented, `-q` drops what it should, and the progress of
//! `connection test --all` is drawn on a terminal only.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::concurrency::big_store;
use crate::support::{Run, TestEnv, write};

/// A store of 2,000 connections: `list` prints far more than a pipe holds.
fn many_records() -> TestEnv {
    let env = TestEnv::new();
    write(&env.store, &big_store(400, 5));
    env
}

/// Runs connctl with stdout a pipe whose reader is gone before anything is
/// written (`connctl ... | head -c0`); returns the exit code and stderr.
fn with_stdout_closed(env: &TestEnv, args: &[&str]) -> (i32, String) {
    let mut child = env
        .std_cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn connctl");
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let status = child.wait().expect("wait");
    (status.code().unwrap_or(-1), stderr)
}

/// Runs connctl with stderr a pipe whose reader is gone (every write to it
/// fails with EPIPE); stdout is kept.
fn with_stderr_broken(env: &TestEnv, args: &[&str]) -> Run {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let output = env
        .std_cmd()
        .args(args)
        .stdin(Stdio::null())
        .stderr(writer)
        .output()
        .expect("run connctl");
    Run::from_output(output)
}

/// Runs connctl through `sh` with `2>&-`: stderr is not open at all.
fn with_stderr_closed(env: &TestEnv, args: &[&str]) -> Run {
    let connctl = assert_cmd::cargo::cargo_bin!("connctl");
    let mut sh = Command::new("sh");
    sh.env_clear();
    for (key, value) in env.std_cmd().get_envs() {
        if let Some(value) = value {
            sh.env(key, value);
        }
    }
    let output = sh
        .arg("-c")
        .arg("exec \"$0\" \"$@\" 2>&-")
        .arg(connctl)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    Run::from_output(output)
}

#[test]
fn a_closed_stdout_ends_quietly_with_exit_0() {
    let env = many_records();
    for args in [
        &["connection", "list"][..],
        &["-o", "json", "connection", "list"],
        &["connection", "show", "int-0000.c0"],
        &["-o", "json", "integration", "list"],
    ] {
        let (code, stderr) = with_stdout_closed(&env, args);
        assert_eq!(code, 0, "connctl {args:?} | head -c0: {stderr}");
        // Nothing at all: no panic, no "broken pipe", no error line.
        assert_eq!(stderr, "", "connctl {args:?} | head -c0");
    }
    // The output really was more than a pipe holds, so the write did fail.
    let run = env.run(&["-o", "json", "connection", "list"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.len() > 256 * 1024, "{}", run.stdout.len());
}

#[test]
fn a_closed_stdout_does_not_hide_an_earlier_error() {
    let env = many_records();
    // The error comes before anything is written to stdout: it is reported.
    let (code, stderr) = with_stdout_closed(&env, &["connection", "show", "nope"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.starts_with("error: connection 'nope' does not exist"),
        "{stderr}"
    );
}

#[test]
fn a_broken_or_closed_stderr_never_panics_nor_changes_the_exit_code() {
    let env = many_records();
    let cases: [(&[&str], i32); 4] = [
        // Data on stdout; nothing on stderr.
        (&["connection", "list"], 0),
        // The final error on stderr.
        (&["connection", "show", "nope"], 3),
        // A usage error (clap's own text on stderr).
        (&["connection", "frobnicate"], 2),
        // A failed check: test prints its table, the error goes to stderr.
        (&["connection", "test", "int-0000.c0"], 5),
    ];
    for (args, code) in cases {
        let open = env.run(args);
        assert_eq!(open.code, code, "connctl {args:?}: {}", open.stderr);
        // The stage timings differ from run to run.
        let untimed = |stdout: &str| {
            stdout
                .lines()
                .map(|l| {
                    l.split_whitespace()
                        .filter(|w| w.parse::<f64>().is_err())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
        };
        let broken = with_stderr_broken(&env, args);
        assert_eq!(broken.code, code, "connctl {args:?} with a broken stderr");
        assert_eq!(
            untimed(&broken.stdout),
            untimed(&open.stdout),
            "connctl {args:?}: stdout must not depend on stderr"
        );
        let closed = with_stderr_closed(&env, args);
        assert_eq!(
            closed.code, code,
            "connctl {args:?} 2>&-: {}{}",
            closed.stdout, closed.stderr
        );
        assert_eq!(
            untimed(&closed.stdout),
            untimed(&open.stdout),
            "connctl {args:?} 2>&-"
        );
    }
    // A status line and a hint on a broken or closed stderr: lost, and the
    // work is done all the same.
    let open = env.run(&["integration", "add", "added-open"]);
    assert_eq!(open.code, 0, "{}", open.stderr);
    let broken = with_stderr_broken(&env, &["integration", "add", "added-broken"]);
    assert_eq!(broken.code, 0);
    let closed = with_stderr_closed(&env, &["integration", "add", "added-closed"]);
    assert_eq!(closed.code, 0);
    let store = env.store_text();
    for name in ["added-open", "added-broken", "added-closed"] {
        assert!(store.contains(&format!("[integration.{name}]")), "{name}");
    }
}

#[test]
fn quiet_drops_status_and_hints_but_not_warnings_or_errors() {
    let env = TestEnv::new();
    // Status line and hint without -q ...
    let run = env.run(&["integration", "add", "loud"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stderr.contains("added integration 'loud'"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    // ... none with it.
    let run = env.run(&["-q", "integration", "add", "hushed"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    // A warning is shown with -q too (docs/design.md "Output: one printer").
    let run = Run::from_output(
        env.cmd()
            .env("CONNCTL_KEYRING_TIMEOUT", "forever")
            .args(["-q", "integration", "add", "warned"])
            .output()
            .expect("run"),
    );
    assert_eq!(run.code, 0);
    assert!(
        run.stderr.starts_with("warning: CONNCTL_KEYRING_TIMEOUT: ")
            && run.stderr.lines().count() == 1,
        "{}",
        run.stderr
    );
    // Errors, with their hint, are always shown.
    let run = env.run(&["-q", "connection", "show", "nope"]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr
            .starts_with("error: connection 'nope' does not exist")
            && run.stderr.contains("\n  hint: "),
        "{}",
        run.stderr
    );
    // -q and -v: the debug lines -v asks for still show, status lines do not.
    let run = env.run(&["-q", "-v", "integration", "add", "both"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("added integration"), "{}", run.stderr);
}

/// A store of `n` connections whose test fails at its first stage (the
/// password variable is unset): fast, and no network.
fn failing_connections(n: usize) -> TestEnv {
    let env = TestEnv::new();
    write(&env.store, &big_store(n, 1));
    env
}

/// Runs connctl on a pseudo-terminal of its own (`script`, so stdin,
/// stdout and stderr are all the terminal); returns the exit code and the
/// screen as written, escape codes and all.
fn on_terminal(env: &TestEnv, args: &[&str]) -> (i32, String) {
    let connctl = assert_cmd::cargo::cargo_bin!("connctl");
    let line = std::iter::once(connctl.display().to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_clear()
        .env("HOME", &env.home)
        .env("CONNCTL_STORE", &env.store)
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()
        .expect("script (package bsdutils) must be installed");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn test_all_draws_progress_on_a_terminal_and_ends_with_a_clean_line() {
    let env = failing_connections(40);
    let (code, screen) = on_terminal(&env, &["connection", "test", "--all", "--jobs", "2"]);
    assert_eq!(code, 1, "{screen}");
    // The bar was drawn, with its count ...
    assert!(screen.contains("testing: ["), "{screen:?}");
    assert!(screen.contains("/40 done, "), "{screen:?}");
    // ... and erased before the results: after its last drawing comes a
    // line clear, then the table, and no bar again.
    let last_bar = screen.rfind("testing: [").expect("a bar");
    let rest = &screen[last_bar..];
    let clear = rest.find("\x1b[2K").expect("the bar is cleared");
    let table = rest.find("CONNECTION").expect("the result table");
    assert!(clear < table, "{rest:?}");
    let after = &rest[table..];
    assert!(!after.contains('\x1b'), "{after:?}");
    assert!(after.contains("int-0039.c0"), "{after:?}");
    assert!(
        after.contains("error: 40 of 40 connections failed"),
        "{after:?}"
    );
}

#[test]
fn lines_printed_while_the_bar_is_on_screen_are_not_garbled() {
    let env = failing_connections(40);
    let (code, screen) = on_terminal(&env, &["-v", "connection", "test", "--all", "--jobs", "2"]);
    assert_eq!(code, 1, "{screen}");
    assert!(screen.contains("testing: ["), "{screen:?}");
    // Each connection's -v line is a line of its own: the bar is erased
    // before it and drawn again after it, never mixed into it.
    let mut seen = Vec::new();
    for line in screen.split("\r\n") {
        let Some(at) = line.find("debug: tested ") else {
            continue;
        };
        let text = &line[at..];
        let before = &line[..at];
        assert!(
            before.is_empty() || before.ends_with("\x1b[2K"),
            "the line does not start on a cleared line: {line:?}"
        );
        let name = text
            .strip_prefix("debug: tested ")
            .and_then(|t| t.strip_suffix(": failed at secrets"))
            .unwrap_or_else(|| panic!("garbled: {text:?}"));
        seen.push(name.to_string());
    }
    seen.sort();
    let expected: Vec<String> = (0..40).map(|i| format!("int-{i:04}.c0")).collect();
    assert_eq!(seen, expected, "{screen:?}");
}

#[test]
fn test_all_draws_no_progress_off_a_terminal_with_q_or_in_json() {
    let env = failing_connections(40);
    // Not a terminal: not one escape code or carriage return anywhere.
    let run = env.run(&["connection", "test", "--all", "--jobs", "2"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains('\x1b') && !text.contains('\r'), "{text:?}");
    }
    assert!(!run.stderr.contains("testing"), "{}", run.stderr);
    assert!(run.stdout.contains("int-0039.c0"), "{}", run.stdout);
    // On a terminal, but -q or -o json: no bar either.
    for args in [
        &["-q", "connection", "test", "--all"][..],
        &["-o", "json", "connection", "test", "--all"],
    ] {
        let (code, screen) = on_terminal(&env, args);
        assert_eq!(code, 1, "{args:?}: {screen}");
        assert!(!screen.contains("testing"), "{args:?}: {screen:?}");
        assert!(!screen.contains('\x1b'), "{args:?}: {screen:?}");
    }
}

/// Runs `inbound serve` (no store yet), sends it one request without
/// credentials, stops it; returns its whole stderr.
fn serve_one_request(env: &TestEnv, global: &[&str]) -> String {
    use std::io::{BufRead, BufReader, Write};
    let mut child = env
        .std_cmd()
        .args(global)
        .args(["inbound", "serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start inbound serve");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut first = String::new();
    stderr.read_line(&mut first).expect("first line");
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("no address: {first:?}"))
        .to_string();
    let mut tcp = std::net::TcpStream::connect(&addr).expect("connect");
    tcp.write_all(b"GET /probe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).expect("rest of stderr");
    first + &rest
}

#[test]
fn inbound_serve_with_q_says_where_it_listens_and_warns_but_logs_no_request() {
    let env = TestEnv::new();
    let loud = serve_one_request(&env, &[]);
    let lines: Vec<&str> = loud.lines().collect();
    assert!(
        lines[0].starts_with("listening on http://127.0.0.1:"),
        "{loud}"
    );
    assert!(loud.contains("\nspool: stdout"), "{loud}");
    assert!(
        loud.contains("\nwarning: the store '") && loud.contains("does not exist yet"),
        "{loud}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" 401 GET /probe ") && l.ends_with("no credentials")),
        "{loud}"
    );
    assert!(loud.ends_with("\nstopped\n"), "{loud}");

    let quiet = serve_one_request(&env, &["-q"]);
    let lines: Vec<&str> = quiet.lines().collect();
    assert_eq!(lines.len(), 2, "{quiet}");
    assert!(
        lines[0].starts_with("listening on http://127.0.0.1:"),
        "{quiet}"
    );
    assert!(lines[1].starts_with("warning: the store '"), "{quiet}");
}

#[test]
fn inbound_serve_goes_on_answering_when_its_log_reader_is_gone() {
    use std::io::Write;
    let env = TestEnv::new();
    // stderr is a broken pipe, so the port cannot be read from it: take a free one.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut child = env
        .std_cmd()
        .args(["inbound", "serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(writer)
        .spawn()
        .expect("start inbound serve");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut tcp = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(tcp) => break tcp,
            Err(e) if std::time::Instant::now() > deadline => panic!("never listened: {e}"),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    for _ in 0..3 {
        tcp.write_all(b"GET /probe HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send");
        let mut head = [0u8; 12];
        tcp.read_exact(&mut head).expect("an answer");
        assert_eq!(&head, b"HTTP/1.1 401");
        // The rest of the answer (small) before the next request.
        let mut rest = [0u8; 4096];
        let _ = tcp.set_read_timeout(Some(std::time::Duration::from_millis(200)));
        let _ = tcp.read(&mut rest);
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0), "{status:?}");
}
