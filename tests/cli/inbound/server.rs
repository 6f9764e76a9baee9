//! `connctl inbound serve` as a child process of a test, plus a store and
//! certificates to serve with.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use connctl::inbound::pki::{self, PkiFiles};
use connctl::model::{Connection, Environment, InboundUser, Integration, Store};

use crate::support::TestEnv;

/// The password of the fixture's inbound users, read from `REMOTE_PW`.
pub const PASSWORD: &str = "inbound-pw-1";

/// A `std::process::Command` for connctl with the same hermetic environment as `TestEnv::cmd`.
pub fn std_cmd(env: &TestEnv) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_connctl"));
    cmd.env_clear()
        .env("HOME", &env.home)
        .env("XDG_CONFIG_HOME", env.home.join(".config"))
        .env("CONNCTL_STORE", &env.store)
        .env("NO_COLOR", "1");
    for var in ["PATH", "DBUS_SESSION_BUS_ADDRESS", "LANG"] {
        if let Ok(value) = std::env::var(var) {
            cmd.env(var, value);
        }
    }
    cmd
}

fn connection(integration: &str, environment: Environment, active: bool, user: &str) -> Connection {
    Connection {
        integration: integration.into(),
        environment,
        active,
        endpoint_url: "https://127.0.0.1:9/api".into(),
        allow_http: false,
        ca_bundle: None,
        authentication: Default::default(),
        user: None,
        password: None,
        oauth_profile: None,
        mutual_auth: false,
        protocol_profile: None,
        mid_server: None,
        inbound_user: Some(user.into()),
        last_activated: None,
        variables: Default::default(),
        secret_variables: Default::default(),
    }
}

/// Integration `orders` with `orders.test` (active) and `orders.prod`
/// (inactive), both naming inbound user `remote`; `billing` with the inactive
/// `billing.test` naming `idle`; `lonely` on no connection; `nopw` without a
/// password. Passwords come from `env:REMOTE_PW`.
pub fn fixture_store() -> Store {
    let mut store = Store::new();
    for name in ["orders", "billing"] {
        store
            .integration
            .insert(name.into(), Integration::default());
    }
    let with_password = || InboundUser {
        password: Some("env:REMOTE_PW".parse().expect("source")),
    };
    store.inbound_user.insert("remote".into(), with_password());
    store.inbound_user.insert("idle".into(), with_password());
    store.inbound_user.insert("lonely".into(), with_password());
    store
        .inbound_user
        .insert("nopw".into(), InboundUser::default());
    store.connection.insert(
        "orders.test".into(),
        connection("orders", Environment::Test, true, "remote"),
    );
    store.connection.insert(
        "orders.prod".into(),
        connection("orders", Environment::Production, false, "remote"),
    );
    store.connection.insert(
        "billing.test".into(),
        connection("billing", Environment::Test, false, "idle"),
    );
    store
}

pub fn write_store(env: &TestEnv, store: &Store) {
    assert!(store.validate().is_empty(), "{:?}", store.validate());
    let text = toml::to_string(store).expect("store TOML");
    crate::support::write(&env.store, &text);
}

pub fn make_pki(env: &TestEnv) -> PkiFiles {
    let dir = env.path("pki");
    std::fs::create_dir_all(&dir).expect("pki dir");
    pki::generate(&dir, "remote-system").expect("pki")
}

/// A running `inbound serve`.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// The URL from the "listening on" line.
    pub url: String,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts `connctl inbound serve --listen 127.0.0.1:0 ARGS` with `REMOTE_PW` set.
    pub fn start(env: &TestEnv, args: &[&str]) -> Server {
        let mut cmd = std_cmd(env);
        cmd.args(["inbound", "serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("REMOTE_PW", PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start inbound serve");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut first = String::new();
        stderr.read_line(&mut first).expect("read the first line");
        let Some(url) = first.trim().strip_prefix("listening on ") else {
            let mut rest = String::new();
            let _ = stderr.read_to_string(&mut rest);
            let _ = child.kill();
            panic!("inbound serve did not start:\n{first}{rest}");
        };
        let url = url.to_string();
        let addr: SocketAddr = url
            .split("://")
            .nth(1)
            .expect("scheme")
            .parse()
            .expect("address");
        let log = Arc::new(Mutex::new(first.clone()));
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).is_ok_and(|n| n > 0) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Server {
            child,
            addr,
            url,
            stderr: log,
            reader: Some(reader),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends SIGTERM without waiting.
    pub fn sigterm(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
    }

    /// SIGTERM, then waits; returns the exit status and all of stderr.
    pub fn stop(mut self) -> (ExitStatus, String) {
        self.sigterm();
        let status = self.child.wait().expect("wait for inbound serve");
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        (status, self.stderr())
    }

    /// Takes the child's stdout (the spool when no --spool is given).
    pub fn take_stdout(&mut self) -> std::process::ChildStdout {
        self.child.stdout.take().expect("stdout")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The spool's JSON lines.
pub fn spool_lines(dir: &Path) -> Vec<serde_json::Value> {
    let path: PathBuf = dir.join("messages.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad spool line ({e}): {line}"))
        })
        .collect()
}
