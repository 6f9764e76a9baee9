//! A D-Bus session bus of a test's own, for keyring states that must not
//! touch the shared session of scripts/test.sh: a locked collection, a bus
//! with no Secret Service, a bus that never answers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub struct PrivateBus {
    dir: TempDir,
    pub address: String,
    children: Vec<Child>,
    /// Keeps a socket that accepts and never answers.
    _silent: Option<UnixListener>,
}

impl PrivateBus {
    /// A session bus with gnome-keyring on it, its login collection unlocked,
    /// in a HOME of its own.
    /// Nothing can be activated on it, so an unlock prompt fails at once
    /// (as on a host with no display) rather than waiting for a user.
    pub fn with_gnome_keyring() -> Self {
        let mut bus = Self::start();
        let home = bus.dir.path().join("home");
        let runtime = bus.dir.path().join("run");
        std::fs::create_dir_all(&home).expect("home");
        std::fs::create_dir_all(&runtime).expect("runtime dir");
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .expect("chmod");
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon (package gnome-keyring) must be installed");
        {
            let mut stdin = keyring.stdin.take().expect("stdin");
            stdin
                .write_all(b"private-bus-login")
                .expect("login password");
        }
        bus.children.push(keyring);
        bus.wait_for_name("org.freedesktop.secrets");
        bus
    }

    /// A session bus on which nothing provides or can start a Secret Service.
    pub fn without_secret_service() -> Self {
        Self::start()
    }

    /// A socket that accepts connections and never answers: a hung bus.
    pub fn silent() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bus");
        let listener = UnixListener::bind(&path).expect("bind");
        PrivateBus {
            address: format!("unix:path={}", path.display()),
            dir,
            children: Vec::new(),
            _silent: Some(listener),
        }
    }

    /// The address of a socket nothing listens on.
    pub fn dead_address(dir: &Path) -> String {
        let path = dir.join("dead-bus");
        drop(UnixListener::bind(&path).expect("bind"));
        format!("unix:path={}", path.display())
    }

    /// Starts dbus-daemon with no service activation at all: nothing on it
    /// can be started on demand.
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("bus");
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .expect("bus config");
        let mut daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (package dbus) must be installed");
        let mut line = String::new();
        BufReader::new(daemon.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("bus address");
        assert!(!line.trim().is_empty(), "dbus-daemon printed no address");
        PrivateBus {
            address: line.trim().to_string(),
            dir,
            children: vec![daemon],
            _silent: None,
        }
    }

    /// Runs dbus-send on this bus; returns stdout.
    pub fn send(&self, args: &[&str]) -> String {
        let out = Command::new("dbus-send")
            .arg("--session")
            .arg("--print-reply")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .expect("dbus-send");
        assert!(
            out.status.success(),
            "dbus-send {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for_name(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let reply = self.send(&[
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                &format!("string:{name}"),
            ]);
            if reply.contains("boolean true") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never appeared on the bus"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Locks the login collection of the bus's gnome-keyring.
    pub fn lock_login_collection(&self) {
        self.send(&[
            "--dest=org.freedesktop.secrets",
            "/org/freedesktop/secrets",
            "org.freedesktop.Secret.Service.Lock",
            "array:objpath:/org/freedesktop/secrets/collection/login",
        ]);
    }
}

impl PrivateBus {
    /// Kills the gnome-keyring daemon of `with_gnome_keyring` (the last child
    /// started): the Secret Service vanishes from the bus mid-session.
    pub fn kill_keyring(&mut self) {
        if let Some(mut keyring) = self.children.pop() {
            let _ = keyring.kill();
            let _ = keyring.wait();
        }
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        for child in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
