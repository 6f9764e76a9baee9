//! `connctl demo`: the main job end to end in a throwaway folder, each step a
//! real `connctl` command run as a child process and printed first, so a
//! newcomer sees the commands to use. Nothing is left behind: the folder,
//! the server and the keyring entries go at the end, also when a step fails.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Context;
use crate::cli::DemoArgs;
use crate::error::{Error, Result};
use crate::inbound::pki;
use crate::output::{Printer, sh_quote};
use crate::secrets::{self, Secret};

const INTEGRATION: &str = "orders";
const TEST_CONNECTION: &str = "orders.test";
const PROD_CONNECTION: &str = "orders.prod";
const PARTNER_USER: &str = "partner.orders";
const PROFILE: &str = "partner-mtls";
/// The variable holding the password when the keyring is not usable.
const PASSWORD_VAR: &str = "CONNCTL_DEMO_PASSWORD";
const SAMPLE: &str = r#"{"order":"A-1001","status":"shipped","items":2}"#;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C reaches the children (same process group) and ends the running
/// step; the demo itself survives it to clean up. A handler, not SIG_IGN:
/// handlers are reset in children, an ignored signal would stay ignored.
fn catch_interrupt() {
    #[cfg(unix)]
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        let handler = on_interrupt as extern "C" fn(libc::c_int);
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

/// Stops between steps once a signal came (a signal to the demo alone, not its group).
fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(Error::failed("interrupted"))
    } else {
        Ok(())
    }
}

/// Where the passwords live for this run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SecretMode {
    Keyring,
    Env,
}

/// The running demo: its folder, store, background server and the secret.
struct Demo {
    exe: PathBuf,
    dir: tempfile::TempDir,
    store: PathBuf,
    password: Secret,
    mode: SecretMode,
    server: Option<Child>,
    server_log: Arc<Mutex<Vec<String>>>,
    step: usize,
    out: Printer,
}

/// What one child run printed.
struct Ran {
    code: i32,
    stdout: String,
}

/// Can this machine's keyring store and give back a value? Leaves nothing
/// behind (the doctor's round trip, under a store id of its own).
fn keyring_works() -> std::result::Result<(), String> {
    let probe_store = format!("demo-probe-{}", uuid::Uuid::new_v4());
    match secrets::keyring_check(&probe_store).error {
        None => Ok(()),
        Some(e) => Err(e.message),
    }
}

impl Demo {
    /// One line of the tour to stdout; a closed stdout ends the demo.
    fn say(&self, text: &str) -> Result<()> {
        self.out.line(text)
    }

    /// A child's output, indented under its command line.
    fn indent(&self, text: &str) -> Result<()> {
        for line in text.lines() {
            self.say(&format!("    {line}"))?;
        }
        Ok(())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// An argument as printed: the demo folder shows as `$DEMO`.
    fn shown(&self, arg: &str) -> String {
        let dir = self.dir.path().display().to_string();
        match arg.strip_prefix(&dir) {
            Some(rest) => format!("\"$DEMO\"{}", sh_quote(rest)),
            None => sh_quote(arg),
        }
    }

    fn command_line(&self, args: &[&str]) -> String {
        let shown: Vec<String> = args.iter().map(|a| self.shown(a)).collect();
        format!("connctl {}", shown.join(" "))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.arg("--store")
            .arg(&self.store)
            .args(args)
            .env_remove("CONNCTL_STORE")
            .env_remove("CONNCTL_OUTPUT")
            .env("NO_COLOR", "1");
        if self.mode == SecretMode::Env {
            cmd.env(PASSWORD_VAR, self.password.expose());
        }
        cmd
    }

    fn heading(&mut self, title: &str) -> Result<()> {
        self.step += 1;
        self.say("")?;
        self.say(&format!("{}. {title}", self.step))
    }

    /// Runs one connctl command, printing it and its output; fails unless it
    /// exits with `expect`. With `pipe_password`, the password goes in on stdin.
    fn run(&self, args: &[&str], pipe_password: bool, expect: i32) -> Result<Ran> {
        interrupted()?;
        let line = self.command_line(args);
        if pipe_password {
            self.say(&format!("$ printf '%s' \"$PASSWORD\" | {line}"))?;
        } else {
            self.say(&format!("$ {line}"))?;
        }
        let mut cmd = self.command(args);
        cmd.stdin(if pipe_password {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::failed(format!("cannot run `{line}`")).with_source(&e))?;
        if pipe_password && let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(self.password.expose().as_bytes())
                .map_err(|e| Error::failed("cannot pipe the password").with_source(&e))?;
        }
        let output = child
            .wait_with_output()
            .map_err(|e| Error::failed(format!("`{line}` did not finish")).with_source(&e))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        self.indent(&stdout)?;
        self.indent(&stderr)?;
        let code = output.status.code().unwrap_or(-1);
        if code != expect {
            let mut error = Error::failed(format!(
                "step {}: `{line}` exited with {code}, expected {expect}",
                self.step
            ));
            if INTERRUPTED.load(Ordering::SeqCst) {
                error = Error::failed("interrupted");
            }
            return Err(error);
        }
        if expect != 0 {
            self.say(&format!("    (exit {code}, as expected)"))?;
        }
        Ok(Ran { code, stdout })
    }

    /// Starts `inbound serve` in the background; returns its URL.
    fn start_server(&mut self, pki: &pki::PkiFiles) -> Result<String> {
        interrupted()?;
        let spool = self.path("spool");
        let args: Vec<String> = vec![
            "inbound".into(),
            "serve".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--tls-cert".into(),
            pki.server_cert.display().to_string(),
            "--tls-key".into(),
            pki.server_key.display().to_string(),
            "--client-ca".into(),
            pki.ca_cert.display().to_string(),
            "--spool".into(),
            spool.display().to_string(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let line = self.command_line(&args);
        self.say(&format!("$ {line} &"))?;
        let mut child = self
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::failed(format!("cannot run `{line}`")).with_source(&e))?;
        let stderr = child.stderr.take();
        self.server = Some(child);
        let mut reader =
            BufReader::new(stderr.ok_or_else(|| Error::failed("inbound serve has no stderr"))?);
        let mut first = String::new();
        let _ = reader.read_line(&mut first);
        let Some(url) = first.trim().strip_prefix("listening on ") else {
            let mut rest = String::new();
            let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
            self.indent(&first)?;
            self.indent(&rest)?;
            return Err(Error::failed("`connctl inbound serve` did not start"));
        };
        let url = url.to_string();
        self.indent(first.trim_end())?;
        let log = self.server_log.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(std::result::Result::ok) {
                if let Ok(mut log) = log.lock() {
                    log.push(line);
                }
            }
        });
        Ok(url)
    }

    /// The server's log lines since `from`, printed indented.
    fn show_server_log(&self, from: usize) -> Result<usize> {
        // The server logs a request just after answering it.
        std::thread::sleep(Duration::from_millis(100));
        let log = self
            .server_log
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        for line in log.iter().skip(from) {
            self.say(&format!("    [inbound serve] {line}"))?;
        }
        Ok(log.len())
    }

    fn show_last_message(&self) -> Result<()> {
        let path = self.path("spool").join(crate::inbound::spool::SPOOL_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::failed(format!("cannot read the spool {}", path.display())).with_source(&e)
        })?;
        let last = text
            .lines()
            .last()
            .ok_or_else(|| Error::failed("the spool is empty: the message was not recorded"))?;
        let value: serde_json::Value = serde_json::from_str(last)
            .map_err(|e| Error::failed("the spool line is not JSON").with_source(&e))?;
        self.say(&format!(
            "$ tail -n 1 \"$DEMO\"/spool/{}",
            crate::inbound::spool::SPOOL_FILE
        ))?;
        self.indent(&serde_json::to_string_pretty(&value).unwrap_or_else(|_| last.to_string()))?;
        Ok(())
    }

    fn stop_server(&mut self) {
        let Some(mut child) = self.server.take() else {
            return;
        };
        #[cfg(unix)]
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Removes the keyring entries the demo's records hold.
    fn forget_keyring_entries(&self) -> Vec<String> {
        let Ok(store) = crate::store::load(&self.store) else {
            return Vec::new();
        };
        crate::change::discard_secrets(&store)
            .into_iter()
            .map(|left| format!("{}: {}", left.at.describe(), left.error.message))
            .collect()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop_server();
        for problem in self.forget_keyring_entries() {
            self.out.warn(&format!(
                "could not remove the demo's keyring entry for {problem}"
            ));
        }
        // The folder goes with `self.dir`.
    }
}

pub fn run(ctx: &Context, _args: DemoArgs) -> Result<()> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::failed("cannot find the connctl executable").with_source(&e))?;
    let dir = tempfile::Builder::new()
        .prefix("connctl-demo-")
        .tempdir()
        .map_err(|e| Error::failed("cannot create a temporary folder").with_source(&e))?;
    catch_interrupt();
    let store = dir.path().join("store.toml");
    let mut demo = Demo {
        exe,
        dir,
        store,
        password: Secret::new(uuid::Uuid::new_v4().simple().to_string()),
        mode: SecretMode::Env,
        server: None,
        server_log: Arc::new(Mutex::new(Vec::new())),
        step: 0,
        out: ctx.out.clone(),
    };
    let result = steps(&mut demo);
    let server_log = demo
        .server_log
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    let folder = demo.dir.path().display().to_string();
    drop(demo);
    match result {
        Ok(()) => {
            ctx.out.line("")?;
            ctx.out.line(&format!(
                "Done. Removed {folder}, its keyring entries, and stopped the server."
            ))?;
            ctx.out.line(
                "Next: `connctl --help`, and `connctl connection add --help` for your own connections.",
            )
        }
        // stdout is closed: nothing more to show there.
        Err(e) if e.is_broken_pipe() => Err(e),
        Err(e) => {
            // As much of the log as stdout takes; the step's error is what counts.
            let show_log = || -> Result<()> {
                ctx.out.line("")?;
                if !server_log.is_empty() {
                    ctx.out.line("The server's log (inbound serve):")?;
                    for line in &server_log {
                        ctx.out.line(&format!("    {line}"))?;
                    }
                }
                Ok(())
            };
            let _ = show_log();
            ctx.out
                .status(&format!("removed {folder} and the demo's keyring entries"));
            Err(e)
        }
    }
}

fn steps(demo: &mut Demo) -> Result<()> {
    demo.say("connctl demo: the main job end to end, in a throwaway folder.")?;
    demo.say(&format!("DEMO={}", demo.dir.path().display()))?;
    demo.say("Every command below runs with --store \"$DEMO\"/store.toml, a store of its own,")?;
    demo.say("so your own store is not touched.")?;

    demo.heading("Where secrets go")?;
    match keyring_works() {
        Ok(()) => {
            demo.mode = SecretMode::Keyring;
            demo.say("The OS keyring works here (a test value went in and came back):")?;
            demo.say("passwords are piped in with --password-stdin and kept in the keyring.")?;
            demo.say("$PASSWORD below is a random password made for this run.")?;
        }
        Err(why) => {
            demo.mode = SecretMode::Env;
            demo.say(&format!("The OS keyring is not usable here ({why})."))?;
            demo.say(&format!(
                "Passwords are referenced as env:{PASSWORD_VAR} instead (--password-env), a variable"
            ))?;
            demo.say("each command below gets. Never a secret on the command line, either way.")?;
        }
    }

    demo.heading("Certificates for a private CA, a server (localhost) and a client")?;
    let pki_dir = demo.path("pki");
    std::fs::create_dir_all(&pki_dir)
        .map_err(|e| Error::failed("cannot create the certificate folder").with_source(&e))?;
    let pki = pki::generate(&pki_dir, "connctl-demo-client")?;
    for path in [
        &pki.ca_cert,
        &pki.server_cert,
        &pki.server_key,
        &pki.client_cert,
        &pki.client_key,
    ] {
        demo.say(&format!("    {}", demo.shown(&path.display().to_string())))?;
    }

    demo.heading("An inbound user: the identity the remote system authenticates as")?;
    let password_flags: Vec<&str> = match demo.mode {
        SecretMode::Keyring => vec!["--password-stdin"],
        SecretMode::Env => vec!["--password-env", PASSWORD_VAR],
    };
    let piped = demo.mode == SecretMode::Keyring;
    let mut args = vec!["inbound-user", "add", PARTNER_USER];
    args.extend(&password_flags);
    demo.run(&args, piped, 0)?;

    demo.heading("The remote system: `connctl inbound serve` with TLS and client certificates")?;
    demo.say(
        "It plays the partner's endpoint. It admits a sender only with the Basic credentials",
    )?;
    demo.say("of an inbound user that an active connection names, and only with a client")?;
    demo.say(
        "certificate from the demo CA. It reads the same store, so one user serves both ways.",
    )?;
    let url = demo.start_server(&pki)?;
    let log_mark = demo.show_server_log(0)?;
    let endpoint = format!("{}/api/orders", url.replace("127.0.0.1", "localhost"));

    demo.heading("An integration, and the protocol profile for mutual TLS")?;
    demo.run(
        &[
            "integration",
            "add",
            INTEGRATION,
            "--application",
            "Order Management",
            "--description",
            "Orders to and from the partner",
        ],
        false,
        0,
    )?;
    let (cert, key, ca) = (
        pki.client_cert.display().to_string(),
        pki.client_key.display().to_string(),
        pki.ca_cert.display().to_string(),
    );
    demo.run(
        &[
            "protocol-profile",
            "add",
            PROFILE,
            "--client-cert",
            &cert,
            "--client-key",
            &key,
            "--ca-bundle",
            &ca,
        ],
        false,
        0,
    )?;

    demo.heading("Two connections: test and production, Basic auth + mutual TLS")?;
    for (name, env) in [(TEST_CONNECTION, "test"), (PROD_CONNECTION, "production")] {
        let channel = format!("channel=orders-{env}");
        let mut args = vec![
            "connection",
            "add",
            name,
            "--integration",
            INTEGRATION,
            "--env",
            env,
            "--url",
            &endpoint,
            "--auth",
            "basic",
            "--user",
            PARTNER_USER,
        ];
        args.extend(&password_flags);
        args.extend([
            "--mutual-auth",
            "--protocol-profile",
            PROFILE,
            "--inbound-user",
            PARTNER_USER,
            "--var",
            &channel,
        ]);
        demo.run(&args, piped, 0)?;
    }

    demo.heading("Compare them: they may differ only where environments should")?;
    demo.say("Authentication, mutual TLS, certificate issuer, MID server use, path and variable")?;
    demo.say("keys must match; environment, host and variable values may differ.")?;
    demo.run(
        &["connection", "diff", TEST_CONNECTION, PROD_CONNECTION],
        false,
        0,
    )?;

    demo.heading("Nothing is active yet, so the remote system is not let in")?;
    demo.run(&["inbound", "check", PARTNER_USER], false, 1)?;

    demo.heading("Activate the test connection")?;
    demo.run(&["connection", "activate", TEST_CONNECTION], false, 0)?;
    demo.run(&["connection", "list"], false, 0)?;

    demo.heading("Test the connection: each stage of the outbound path, timed")?;
    demo.run(&["connection", "test", TEST_CONNECTION], false, 0)?;
    let log_mark = demo.show_server_log(log_mark)?;

    demo.heading("Send a message through the test connection")?;
    demo.run(
        &[
            "connection",
            "send",
            TEST_CONNECTION,
            "-X",
            "POST",
            "--path",
            "/new",
            "-d",
            SAMPLE,
        ],
        false,
        0,
    )?;
    let log_mark = demo.show_server_log(log_mark)?;

    demo.heading("The message as the remote system received and recorded it")?;
    demo.show_last_message()?;

    demo.heading("Who is let in now")?;
    demo.run(&["inbound", "check", PARTNER_USER], false, 0)?;

    demo.heading("Switch the integration to production")?;
    demo.say("Activating a connection deactivates the integration's other one.")?;
    demo.run(&["connection", "activate", PROD_CONNECTION], false, 0)?;
    demo.run(&["inbound", "check", PARTNER_USER, "-o", "json"], false, 0)?;
    demo.say(
        "The running server re-reads the store on its next request (no restart): the partner",
    )?;
    demo.say("is now admitted through production, and a send by integration goes through the")?;
    demo.say("integration's active connection, now production.")?;
    demo.say("Production sends ask for confirmation; --yes gives it in a script.")?;
    let ran = demo.run(
        &[
            "connection",
            "send",
            "--integration",
            INTEGRATION,
            "-X",
            "POST",
            "--path",
            "/new",
            "-d",
            SAMPLE,
            "--yes",
        ],
        false,
        0,
    )?;
    debug_assert_eq!(ran.code, 0);
    if !ran.stdout.contains(PROD_CONNECTION) {
        return Err(Error::failed(format!(
            "step {}: the send was not attributed to {PROD_CONNECTION}",
            demo.step
        )));
    }
    demo.show_server_log(log_mark)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::output::sh_quote as shell_quote;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("orders.test"), "orders.test");
        assert_eq!(shell_quote("Order Management"), "'Order Management'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(r#"{"a":1}"#), r#"'{"a":1}'"#);
    }
}
