//! Hostile input (issue 10, input half): a symlinked store, a held lock,
//! durations out of range, endless and stuck secret sources, escape
//! sequences from stores, certificates and inbound requests.

use std::os::unix::fs::symlink;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{TestEnv, write};

/// Holds `path` locked with flock(2), as another connctl would, until dropped.
struct HeldLock(#[allow(dead_code)] std::fs::File);

impl HeldLock {
    fn new(path: &std::path::Path) -> Self {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .expect("open the lock file");
        file.lock().expect("flock");
        HeldLock(file)
    }
}

fn lock_of(store: &std::path::Path) -> std::path::PathBuf {
    let mut name = store.file_name().expect("name").to_os_string();
    name.push(".lock");
    store.with_file_name(name)
}

#[test]
fn a_symlinked_store_stays_a_link_and_shares_the_targets_lock() {
    let env = TestEnv::new();
    let target = env.path("elsewhere/real.toml");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::create_dir_all(env.store.parent().unwrap()).unwrap();
    symlink(&target, &env.store).unwrap();

    // The first write creates the target through a dangling link.
    env.ok(&["integration", "add", "via-link"]);
    assert!(
        std::fs::symlink_metadata(&env.store)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the store path is no longer a link"
    );
    let text = std::fs::read_to_string(&target).unwrap();
    assert!(text.contains("via-link"), "{text}");
    env.ok(&["integration", "edit", "via-link", "--application", "App"]);
    assert!(
        std::fs::symlink_metadata(&env.store)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::read_to_string(&target).unwrap().contains("App"));
    // The journal is the target's, and `history` through the link reads it.
    assert!(env.path("elsewhere/real.toml.journal").exists());
    let history = env.run(&["-o", "json", "history"]);
    assert_eq!(history.code, 0, "{}", history.stderr);
    assert_eq!(
        history.json().as_array().unwrap().len(),
        2,
        "{}",
        history.stdout
    );

    // The lock is the target's: held on the target's lock file, a write
    // through the link waits for it and gives up naming it.
    let held = HeldLock::new(&lock_of(&target));
    let run = env.fails(&["integration", "add", "blocked", "--lock-timeout", "1"], 4);
    assert!(
        run.stderr.contains(&lock_of(&target).display().to_string()),
        "{}",
        run.stderr
    );
    drop(held);

    // Writers through the link and through the target, at once, lose nothing.
    std::thread::scope(|scope| {
        for (via, path) in [("link", env.store.clone()), ("target", target.clone())] {
            let env = &env;
            scope.spawn(move || {
                for i in 0..8 {
                    let out = env
                        .cmd()
                        .env("CONNCTL_STORE", &path)
                        .args(["integration", "add", &format!("{via}-{i}")])
                        .output()
                        .unwrap();
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            });
        }
    });
    let list = env.ok(&["integration", "list", "-o", "json"]);
    for via in ["link", "target"] {
        for i in 0..8 {
            assert!(
                list.contains(&format!("\"{via}-{i}\"")),
                "{via}-{i}: {list}"
            );
        }
    }
    assert!(
        std::fs::symlink_metadata(&env.store)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_held_lock_is_announced_then_given_up_with_exit_4() {
    let env = TestEnv::new();
    env.ok(&["integration", "add", "first"]);
    let before = env.store_bytes();
    let _held = HeldLock::new(&lock_of(&env.store));
    let started = Instant::now();
    let run = env.fails(
        &["integration", "add", "second", "--lock-timeout", "1.5"],
        4,
    );
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1400), "{waited:?}");
    let lock = lock_of(&env.store).display().to_string();
    assert!(
        run.stderr.contains("waiting for the store lock"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&lock), "{}", run.stderr);
    assert!(run.stderr.contains("--lock-timeout"), "{}", run.stderr);
    assert_eq!(env.store_bytes(), before);

    // The variable works like the flag; reads take no lock.
    let run = env
        .cmd()
        .env("CONNCTL_LOCK_TIMEOUT", "0")
        .args(["integration", "add", "third"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(4));
    env.ok(&["integration", "list"]);
}

#[test]
fn durations_out_of_range_are_usage_errors_or_warnings() {
    let env = TestEnv::new();
    for (args, needle) in [
        (
            vec!["connection", "test", "x", "--timeout", "1e10"],
            "at most 86400",
        ),
        (vec!["connection", "test", "x", "--timeout", "0"], "above 0"),
        (
            vec!["connection", "send", "x", "--timeout", "abc"],
            "not a number of seconds",
        ),
        (
            vec!["inbound", "serve", "--request-timeout", "1e30"],
            "at most 3600",
        ),
        (vec!["integration", "list", "--lock-timeout=-1"], "from 0"),
    ] {
        let run = env.fails(&args, 2);
        assert!(run.stderr.contains(needle), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }

    // Variables: a warning naming the variable, then the default applies.
    env.ok(&["integration", "add", "i"]);
    for (var, value) in [
        ("CONNCTL_KEYRING_TIMEOUT", "1e30"),
        ("CONNCTL_KEYRING_TIMEOUT", "abc"),
        ("CONNCTL_KEYRING_TIMEOUT", "0"),
        ("CONNCTL_KEYRING_TIMEOUT", "-1"),
        ("CONNCTL_CMD_TIMEOUT", "1e30"),
    ] {
        let out = env
            .cmd()
            .env(var, value)
            .args(["integration", "list"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{var}={value}: {stderr}");
        assert!(
            stderr.contains(&format!("warning: {var}:")) && stderr.contains("using the default"),
            "{var}={value}: {stderr}"
        );
    }

    // A cmd: source under CONNCTL_CMD_TIMEOUT=1e30 runs (no panic) with the default.
    write(&env.path("pw"), "pw\n");
    env.ok(&[
        "connection",
        "add",
        "i.c",
        "--integration",
        "i",
        "--env",
        "test",
        "--url",
        "https://127.0.0.1:9/x",
        "--user",
        "u",
        "--password-cmd",
        "echo pw",
    ]);
    let out = env
        .cmd()
        .env("CONNCTL_CMD_TIMEOUT", "1e30")
        .args(["connection", "test", "i.c", "--timeout", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{stderr}");
    assert_ne!(out.status.code(), Some(5), "{stderr}");
}

/// A Basic connection whose password comes from `password_flag VALUE`.
fn basic_connection(env: &TestEnv, password_flag: &str, value: &str) {
    env.ok(&["integration", "add", "i"]);
    env.ok(&[
        "connection",
        "add",
        "i.c",
        "--integration",
        "i",
        "--env",
        "test",
        "--url",
        "https://127.0.0.1:9/x",
        "--user",
        "u",
        password_flag,
        value,
    ]);
}

#[test]
fn endless_secret_sources_stop_at_the_limit() {
    for (flag, value) in [("--password-cmd", "yes"), ("--password-file", "/dev/zero")] {
        let env = TestEnv::new();
        basic_connection(&env, flag, value);
        let started = Instant::now();
        let run = env.fails(&["connection", "test", "i.c"], 5);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{flag} {value} took {:?}",
            started.elapsed()
        );
        assert!(
            run.stderr.contains("64 KiB (65536 bytes)"),
            "{flag} {value}: {}",
            run.stderr
        );
    }

    // stdin too: the secret given on stdin stops at the limit.
    let env = TestEnv::new();
    env.ok(&["inbound-user", "add", "partner", "--password-env", "PW"]);
    let big = "x".repeat(70 * 1024);
    let out = env
        .cmd()
        .env("PW", "right")
        .args(["inbound", "check", "partner", "--password-stdin"])
        .write_stdin(big)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("64 KiB"), "{stderr}");
}

#[test]
fn a_fifo_with_no_writer_gives_up_after_the_timeout() {
    let env = TestEnv::new();
    let fifo = env.path("pw.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    basic_connection(&env, "--password-file", fifo.to_str().unwrap());
    let started = Instant::now();
    let out = env
        .cmd()
        .env("CONNCTL_CMD_TIMEOUT", "1")
        .args(["connection", "test", "i.c"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(stderr.contains("no writer"), "{stderr}");
    assert!(stderr.contains("CONNCTL_CMD_TIMEOUT"), "{stderr}");
}

/// Whether a process is still running (a zombie waiting for its reaper is not).
fn running(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn a_timed_out_command_source_takes_its_background_children_along() {
    let env = TestEnv::new();
    let pid_file = env.path("child.pid");
    let command = format!("sh -c 'sleep 300 & echo $! > {}; wait'", pid_file.display());
    basic_connection(&env, "--password-cmd", &command);
    let out = env
        .cmd()
        .env("CONNCTL_CMD_TIMEOUT", "1")
        .args(["connection", "test", "i.c"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("process group"), "{stderr}");
    let pid = std::fs::read_to_string(&pid_file).expect("the command wrote its child's pid");
    let pid = pid.trim();
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !running(pid),
        "the background child {pid} of the timed-out command still runs"
    );
}

#[test]
fn escapes_from_the_store_and_the_command_line_never_reach_the_terminal_raw() {
    let env = TestEnv::new();
    let hostile = "\x1b[31mred\nforged line\r\u{9b}2J\u{202e}txt";
    env.ok(&["integration", "add", "i", "--application", hostile]);
    let list = env.ok(&["integration", "list"]);
    let show = env.ok(&["integration", "show", "i"]);
    for out in [&list, &show] {
        assert!(!out.contains('\x1b') && !out.contains('\r'), "{out:?}");
        assert!(
            !out.contains('\u{9b}') && !out.contains('\u{202e}'),
            "{out:?}"
        );
        assert!(!out.lines().any(|l| l.starts_with("forged")), "{out}");
        assert!(
            out.contains(r"\x1b[31mred\nforged line\r\u{9b}2J\u{202e}txt"),
            "{out}"
        );
    }
    // JSON stays exact.
    let json = env.ok(&["integration", "show", "i", "-o", "json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value["application"]
            .as_str()
            .or(value["integration"]["application"].as_str()),
        Some(hostile),
        "{json}"
    );
    // A store written by hand holds the same in a description.
    let text = env.store_text().replace(
        "[integration.i]",
        "[integration.i]\ndescription = \"\\u001b]0;pwned\\u0007\\nerror: forged\"",
    );
    write(&env.store, &text);
    let show = env.ok(&["integration", "show", "i"]);
    assert!(!show.contains('\x1b') && !show.contains('\x07'), "{show:?}");
    assert!(
        !show.lines().any(|l| l.starts_with("error: forged")),
        "{show}"
    );

    // An argument echoed in an error.
    let run = env.fails(&["integration", "show", "\x1b[2Jnope\nerror: forged"], 3);
    assert!(!run.stderr.contains('\x1b'), "{:?}", run.stderr);
    assert!(
        !run.stderr.lines().any(|l| l.starts_with("error: forged")),
        "{}",
        run.stderr
    );
}
