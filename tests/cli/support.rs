//! A hermetic environment per test: a temporary HOME and store, a cleared
//! environment, and the binary under test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use tempfile::TempDir;

pub struct TestEnv {
    pub dir: TempDir,
    pub home: PathBuf,
    pub store: PathBuf,
}

/// What one run of connctl produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(output: Output) -> Self {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl TestEnv {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        let store = dir.path().join("store").join("store.toml");
        TestEnv { dir, home, store }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A connctl command with a cleared environment: only what a test needs
    /// is passed on (PATH for `cmd:` sources, the private D-Bus session for
    /// the keyring).
    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// `cmd` as a plain `std::process::Command`, for a child a test starts
    /// and steers itself (stdin, signals, waiting).
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("connctl"));
        cmd.env_clear()
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("CONNCTL_STORE", &self.store)
            .env("NO_COLOR", "1");
        for var in ["PATH", "DBUS_SESSION_BUS_ADDRESS", "LANG"] {
            if let Ok(value) = std::env::var(var) {
                cmd.env(var, value);
            }
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from_output(self.cmd().args(args).output().expect("run connctl"))
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        Run::from_output(
            self.cmd()
                .args(args)
                .write_stdin(stdin.to_string())
                .output()
                .expect("run connctl"),
        )
    }

    /// Runs and insists on exit 0; returns stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(
            run.code, 0,
            "connctl {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        run.stdout
    }

    /// Runs and insists on exit `code`; returns the run.
    #[track_caller]
    pub fn fails(&self, args: &[&str], code: i32) -> Run {
        let run = self.run(args);
        assert_eq!(
            run.code, code,
            "connctl {args:?}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        run
    }

    pub fn store_text(&self) -> String {
        std::fs::read_to_string(&self.store).unwrap_or_default()
    }

    pub fn store_bytes(&self) -> Option<Vec<u8>> {
        std::fs::read(&self.store).ok()
    }
}

pub fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(path, text).expect("write");
}

// ---------------------------------------------------------------------------
// The keyring read from outside, and the store's id (issue 9)
// ---------------------------------------------------------------------------

/// The store's `store_id`, read from the file.
pub fn store_id(env: &TestEnv) -> String {
    let text = env.store_text();
    let line = text
        .lines()
        .find(|l| l.starts_with("store_id"))
        .expect("store_id in the store");
    line.split('"').nth(1).expect("quoted store_id").to_string()
}

/// Every Secret Service entry of service `connctl` whose account starts with
/// `prefix` (a store id, say), as account → value: read from outside with
/// `secret-tool search --all`, in the session bus `bus` (or the shared one).
pub fn keyring_entries(
    bus: Option<&str>,
    prefix: &str,
) -> std::collections::BTreeMap<String, String> {
    // secret-tool prints the secret on stdout and the attributes on stderr:
    // one unbuffered stream keeps each item's lines together. An item that
    // another test deletes while the search runs makes it fail: search again.
    let mut text = String::new();
    for attempt in 0.. {
        let mut cmd = std::process::Command::new("sh");
        cmd.args([
            "-c",
            "exec stdbuf -o0 secret-tool search --all --unlock service connctl 2>&1",
        ]);
        if let Some(address) = bus {
            cmd.env("DBUS_SESSION_BUS_ADDRESS", address);
        }
        let out = cmd
            .output()
            .expect("secret-tool (package libsecret-tools) must be installed");
        text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            break;
        }
        assert!(attempt < 10, "secret-tool search keeps failing:\n{text}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // One item is `[path]`, then `key = value` lines; the secret is `secret = ...`.
    let mut entries = std::collections::BTreeMap::new();
    let (mut account, mut secret) = (None::<String>, None::<String>);
    let mut flush = |account: &mut Option<String>, secret: &mut Option<String>| {
        if let (Some(a), Some(s)) = (account.take(), secret.take())
            && a.starts_with(prefix)
        {
            entries.insert(a, s);
        }
    };
    for line in text.lines() {
        if line.starts_with('[') {
            flush(&mut account, &mut secret);
        } else if let Some(v) = line.strip_prefix("secret = ") {
            secret = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("attribute.username = ") {
            account = Some(v.to_string());
        }
    }
    flush(&mut account, &mut secret);
    entries
}

/// Runs connctl on a pseudo-terminal of its own (`script`), types `answer`
/// and a newline once `prompt` is on the screen; returns the exit code and
/// the screen.
pub fn run_on_terminal(env: &TestEnv, args: &[&str], prompt: &str, answer: &str) -> (i32, String) {
    use std::io::{Read, Write};
    let connctl = assert_cmd::cargo::cargo_bin!("connctl");
    let line = std::iter::once(connctl.display().to_string())
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_clear()
        .env("HOME", &env.home)
        .env("CONNCTL_STORE", &env.store)
        .env("NO_COLOR", "1")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default(),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (package bsdutils) must be installed");
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains(prompt) {
        match rx.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(chunk) => seen.extend(chunk),
            Err(_) => panic!(
                "no prompt {prompt:?} on the terminal:\n{}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{answer}\n").as_bytes())
        .expect("type the answer");
    let status = child.wait().expect("wait");
    drop(stdin);
    while let Ok(chunk) = rx.recv() {
        seen.extend(chunk);
    }
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&seen).into_owned(),
    )
}

/// A store with integration `inc` and `records` (TOML tables), in a fresh
/// environment.
pub fn env_with(records: &str) -> TestEnv {
    let env = TestEnv::new();
    write(
        &env.store,
        &format!(
            "version = 1\nstore_id = \"{}\"\n\n[integration.inc]\n\n{records}",
            uuid::Uuid::new_v4()
        ),
    );
    env
}

/// A test connection of integration `inc` to `url`, with `extra` TOML lines.
pub fn conn(name: &str, url: &str, extra: &str) -> String {
    format!(
        "[connection.\"{name}\"]\nintegration = \"inc\"\nenvironment = \"test\"\nendpoint_url = \"{url}\"\n{extra}\n\n"
    )
}

/// Starts a server process that lives as long as the test binary and no
/// longer. `PR_SET_PDEATHSIG` sends `signal` when the spawning *thread*
/// ends, so the process is spawned from a thread that never does.
pub fn spawn_for_test_binary(
    mut cmd: std::process::Command,
    signal: libc::c_int,
) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, signal);
            Ok(())
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(cmd.spawn());
        loop {
            std::thread::park();
        }
    });
    rx.recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the spawning thread ended")))
}
