//! `connctl monitor` scraped by a real Prometheus (Debian's package, started by
//! the test with its own config and storage), `promtool check metrics` on a
//! scrape, store reloads, SIGTERM, `--once --textfile`, and the example alert
//! rules under `promtool test rules`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::FleetPki;
use crate::outbound::{Fixture, conn};
use crate::outbound_servers::{OauthState, Tinyproxy, oauth_handler, ok_handler, refused_port};

const MID_PW: &str = "mid-secret-5e7a01";

/// A GET over plain HTTP/1.0: (status, body).
fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(tcp, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).expect("read answer");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// `connctl monitor ARGS` in the background, its stderr collected.
struct Monitor {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
}

impl Monitor {
    fn start(f: &Fixture, args: &[&str]) -> Monitor {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("connctl"));
        cmd.env_clear()
            .env("HOME", &f.env.home)
            .env("CONNCTL_STORE", &f.env.store)
            .env("NO_COLOR", "1")
            .env("MID_PW", MID_PW);
        for var in ["PATH", "DBUS_SESSION_BUS_ADDRESS"] {
            if let Ok(value) = std::env::var(var) {
                cmd.env(var, value);
            }
        }
        let mut child = cmd
            .arg("monitor")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start connctl monitor");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let collected = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("listening on http://127.0.0.1:") {
                    let port: u16 = rest.trim_end_matches("/metrics").parse().unwrap();
                    let _ = tx.send(port);
                }
                collected.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("monitor did not start: {}", stderr.lock().unwrap()));
        Monitor {
            child,
            port,
            stderr,
        }
    }

    fn scrape(&self) -> String {
        let (status, body) = http_get(self.port, "/metrics");
        assert_eq!(status, 200, "{body}");
        body
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit code.
    fn terminate(mut self) -> i32 {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "monitor ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Prometheus server of Debian's package, run by the test (not as a service).
struct Prometheus {
    child: Child,
    port: u16,
}

impl Prometheus {
    fn start(dir: &Path, target_port: u16) -> Prometheus {
        std::fs::create_dir_all(dir.join("tsdb")).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: connctl\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
            ),
        )
        .unwrap();
        let port = refused_port();
        let child = Command::new("/usr/bin/prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("/usr/bin/prometheus is needed (scripts/test.sh installs Debian's prometheus)");
        let prometheus = Prometheus { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http_get(port, "/-/ready").0 == 200
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus did not get ready: {}",
                std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        prometheus
    }

    /// `/api/v1/query`: the result vector.
    fn query(&self, promql: &str) -> Vec<Value> {
        let q: String = url::form_urlencoded::byte_serialize(promql.as_bytes()).collect();
        let (status, body) = http_get(self.port, &format!("/api/v1/query?query={q}"));
        assert_eq!(status, 200, "{promql}: {body}");
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["status"], "success", "{body}");
        json["data"]["result"].as_array().unwrap().clone()
    }

    /// Polls `promql` until `done` holds for its result, or fails after 60 s.
    #[track_caller]
    fn wait_for(&self, promql: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let result = self.query(promql);
            if done(&result) {
                return result;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus never had {promql} as wanted; last: {result:?}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The single value of `promql` for `connection`.
    #[track_caller]
    fn value(&self, promql: &str, connection: &str) -> f64 {
        let result = self.query(promql);
        let found: Vec<&Value> = result
            .iter()
            .filter(|s| s["metric"]["connection"] == connection)
            .collect();
        assert_eq!(found.len(), 1, "{promql} for {connection}: {result:?}");
        found[0]["value"][1].as_str().unwrap().parse().unwrap()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // Killed but deliberately not reaped: a reaped child's peak RSS joins
        // this test binary's RUSAGE_CHILDREN, which a memory test reads.
        let _ = self.child.kill();
    }
}

fn promtool_check_metrics(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed (scripts/test.sh installs Debian's prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn prometheus_scrapes_monitor_and_finds_every_connection_as_it_is() {
    let f = Fixture::new();
    let pki = FleetPki::new(&f.env.path("fleet"));
    let good = pki.leaf("good-server", false, 90);
    let expired = pki.leaf("expired-server", false, -3);
    let client = pki.leaf("short-client", true, 5);
    let ok = pki.server(&f, &good, false, ok_handler());
    let old = pki.server(&f, &expired, false, ok_handler());
    let mtls = pki.server(&f, &good, true, ok_handler());
    let proxy = Tinyproxy::start(&f.env.path("tinyproxy"), "miduser", MID_PW);
    // An OAuth connection: its token endpoint and API on one server.
    let tokens = OauthState::new(3600);
    let idp = pki.server(&f, &good, false, oauth_handler(tokens.clone()));
    let secret_file = f.env.path("client-secret");
    std::fs::write(&secret_file, &tokens.client_secret).unwrap();
    let ca = format!("ca_bundle = \"{}\"", pki.ca.display());
    let store = format!(
        "[integration.billing]\n\n{}{}{}{}[protocol_profile.short]\nclient_cert = \"{}\"\nclient_key = \"{}\"\n\n[mid_server.dmz]\nurl = \"{}\"\nuser = \"miduser\"\npassword = \"env:MID_PW\"\n\n",
        conn("inc.ok", &ok.url("/"), &ca),
        conn("inc.expired", &old.url("/"), &ca),
        conn(
            "inc.mtls",
            &mtls.url("/"),
            &format!("{ca}\nactive = true\nmutual_auth = true\nprotocol_profile = \"short\"")
        ),
        conn(
            "billing.mid",
            &ok.url("/mid"),
            &format!("{ca}\nmid_server = \"dmz\"")
        )
        .replace("\"inc\"", "\"billing\""),
        client.cert.display(),
        client.key.display(),
        proxy.url(),
    );
    let store = format!(
        "{}[oauth_profile.idp]\ntoken_url = \"{}\"\nclient_id = \"connctl-client\"\nclient_secret = \"file:{}\"\n\n{store}",
        conn(
            "inc.oauth",
            &idp.url("/api"),
            &format!("{ca}\nauthentication = \"oauth\"\noauth_profile = \"idp\"")
        ),
        idp.url("/oauth/token"),
        secret_file.display(),
    );
    f.store(&store);

    let monitor = Monitor::start(&f, &["--listen", "127.0.0.1:0", "--interval", "1s"]);
    let prometheus = Prometheus::start(&f.env.path("prometheus"), monitor.port);
    prometheus.wait_for("connctl_probe_success", |r| r.len() == 5);

    // Labels: connection, integration, environment (and the job Prometheus adds).
    let series = prometheus.query("connctl_probe_success{connection=\"billing.mid\"}");
    let labels = &series[0]["metric"];
    assert_eq!(labels["integration"], "billing");
    assert_eq!(labels["environment"], "test");
    assert_eq!(labels["job"], "connctl");

    // The passing connection.
    assert_eq!(prometheus.value("connctl_probe_success", "inc.ok"), 1.0);
    assert_eq!(prometheus.value("connctl_http_status", "inc.ok"), 200.0);
    assert_eq!(prometheus.value("connctl_active", "inc.ok"), 0.0);
    let server_left = prometheus.value(
        "connctl_tls_cert_not_after_seconds{role=\"server\"}",
        "inc.ok",
    ) - now();
    assert!(
        (89.0 * 86400.0..91.0 * 86400.0).contains(&server_left),
        "{server_left}"
    );
    assert!(prometheus.value("connctl_probe_duration_seconds", "inc.ok") > 0.0);
    let stages = prometheus.query("connctl_stage_duration_seconds{connection=\"inc.ok\"}");
    let mut names: Vec<&str> = stages
        .iter()
        .map(|s| s["metric"]["stage"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["dns", "http", "secrets", "tcp", "tls"]);
    assert!(
        prometheus
            .query("connctl_probe_failed_stage{connection=\"inc.ok\"} == 1")
            .is_empty()
    );

    // The expired server certificate: failing at tls, its notAfter in the past.
    assert_eq!(
        prometheus.value("connctl_probe_success", "inc.expired"),
        0.0
    );
    assert_eq!(
        prometheus.value("connctl_probe_failed_stage{stage=\"tls\"}", "inc.expired"),
        1.0
    );
    let failing = prometheus.query("connctl_probe_failed_stage{connection=\"inc.expired\"} == 1");
    assert_eq!(failing.len(), 1, "{failing:?}");
    let expired_ago = now()
        - prometheus.value(
            "connctl_tls_cert_not_after_seconds{role=\"server\"}",
            "inc.expired",
        );
    assert!(
        (3.0 * 86400.0..4.0 * 86400.0).contains(&expired_ago),
        "{expired_ago}"
    );
    assert!(
        prometheus
            .query("connctl_http_status{connection=\"inc.expired\"}")
            .is_empty()
    );

    // The client certificate that expires in 5 days, on the active connection.
    assert_eq!(prometheus.value("connctl_probe_success", "inc.mtls"), 1.0);
    assert_eq!(prometheus.value("connctl_active", "inc.mtls"), 1.0);
    let client_left = prometheus.value(
        "connctl_tls_cert_not_after_seconds{role=\"client\"}",
        "inc.mtls",
    ) - now();
    assert!(
        (5.0 * 86400.0..5.1 * 86400.0).contains(&client_left),
        "{client_left}"
    );
    // The example alert fires on exactly that one.
    let expiring = prometheus.query("(connctl_tls_cert_not_after_seconds - time()) < 14 * 86400");
    let mut expiring: Vec<(String, String)> = expiring
        .iter()
        .map(|s| {
            (
                s["metric"]["connection"].as_str().unwrap().to_string(),
                s["metric"]["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    expiring.sort();
    assert_eq!(
        expiring,
        [
            ("inc.expired".to_string(), "server".to_string()),
            ("inc.mtls".to_string(), "client".to_string())
        ]
    );

    // Behind the MID server: passing, and the tunnel went through tinyproxy.
    assert_eq!(
        prometheus.value("connctl_probe_success", "billing.mid"),
        1.0
    );
    assert_eq!(
        prometheus.value(
            "connctl_probe_failed_stage{stage=\"mid_connect\"}",
            "billing.mid"
        ),
        0.0
    );
    assert!(
        proxy
            .log_text()
            .contains(&format!("CONNECT localhost:{}", ok.port)),
        "{}",
        proxy.log_text()
    );

    // The OAuth connection: a token fetched (and reused across cycles), its
    // expiry exported, and neither the client secret nor a token in a scrape.
    assert_eq!(prometheus.value("connctl_probe_success", "inc.oauth"), 1.0);
    assert_eq!(prometheus.value("connctl_http_status", "inc.oauth"), 200.0);
    let token_left = prometheus.value("connctl_oauth_token_expiry_seconds", "inc.oauth") - now();
    assert!((3000.0..3700.0).contains(&token_left), "{token_left}");
    let stages = prometheus.query("connctl_stage_duration_seconds{connection=\"inc.oauth\"}");
    assert!(
        stages.iter().any(|s| s["metric"]["stage"] == "oauth_token"),
        "{stages:?}"
    );
    assert!(tokens.requests() >= 1);

    // A scrape is valid for promtool and never holds the MID server's password.
    let scrape = monitor.scrape();
    promtool_check_metrics(&scrape);
    assert!(!scrape.contains(MID_PW) && !monitor.stderr().contains(MID_PW));
    assert!(
        !scrape.contains(&tokens.client_secret)
            && !monitor.stderr().contains(&tokens.client_secret)
    );
    for token in tokens.tokens.lock().unwrap().keys() {
        assert!(
            !scrape.contains(token.as_str()),
            "an access token in the scrape"
        );
    }
    assert!(!scrape.contains(&proxy.url()), "{scrape}");

    // Scrapes never probe: a burst of them adds no request to the endpoint
    // beyond the schedule (one cycle a second).
    let before = ok.count("/");
    let started = Instant::now();
    for _ in 0..40 {
        monitor.scrape();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let probed = ok.count("/") - before;
    assert!(
        probed as f64 <= elapsed.ceil() + 1.0,
        "{probed} probes in {elapsed:.2} s"
    );

    // A change to the store is picked up without a restart.
    f.env.ok(&[
        "connection",
        "add",
        "inc.new",
        "--integration",
        "inc",
        "--env",
        "sandbox",
        "--url",
        &ok.url("/new"),
        "--ca-bundle",
        pki.ca.to_str().unwrap(),
    ]);
    prometheus.wait_for("connctl_probe_success{connection=\"inc.new\"} == 1", |r| {
        r.len() == 1
    });
    assert!(
        monitor.stderr().contains("store changed: reloaded"),
        "{}",
        monitor.stderr()
    );

    // An invalid store: the error is counted, the last results keep being served.
    let text = std::fs::read_to_string(&f.env.store).unwrap();
    std::fs::write(&f.env.store, format!("{text}\n[connection.broken\n")).unwrap();
    prometheus.wait_for("connctl_store_reload_errors_total >= 1", |r| r.len() == 1);
    prometheus.wait_for("connctl_store_valid == 0", |r| r.len() == 1);
    let scrape = monitor.scrape();
    assert!(
        scrape.contains("connctl_probe_success{connection=\"inc.new\",integration=\"inc\",environment=\"sandbox\"} 1"),
        "{scrape}"
    );
    assert!(
        monitor.stderr().contains("cannot be loaded"),
        "{}",
        monitor.stderr()
    );
    let (status, body) = http_get(monitor.port, "/healthz");
    assert_eq!(status, 200, "{body}");

    // Many cycles later, still the one token: the cache serves every probe.
    assert_eq!(tokens.requests(), 1, "{:?}", tokens.grants());

    // SIGTERM stops it cleanly.
    assert_eq!(monitor.terminate(), 0);
}

#[test]
fn once_writes_a_textfile_atomically_and_bad_arguments_are_refused() {
    let f = Fixture::new();
    let pki = FleetPki::new(&f.env.path("fleet"));
    let good = pki.leaf("good-server", false, 90);
    let ok = pki.server(&f, &good, false, ok_handler());
    let ca = format!("ca_bundle = \"{}\"", pki.ca.display());
    f.store(&format!(
        "{}{}",
        conn("inc.ok", &ok.url("/"), &format!("{ca}\nactive = true")),
        conn(
            "inc.down",
            &format!("https://127.0.0.1:{}/", refused_port()),
            &ca
        )
    ));
    let dir = f.env.path("textfile");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("connctl.prom");
    f.expect(
        &["monitor", "--once", "--textfile", file.to_str().unwrap()],
        &[],
        0,
    );
    let text = std::fs::read_to_string(&file).unwrap();
    promtool_check_metrics(&text);
    assert!(
        text.contains("connctl_probe_success{connection=\"inc.ok\",integration=\"inc\",environment=\"test\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "connctl_probe_failed_stage{connection=\"inc.down\",integration=\"inc\",environment=\"test\",stage=\"tcp\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("connctl_probes_total 2"), "{text}");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 1, "temporary files left: {files:?}");

    // --active: only the active connection.
    let run = f.expect(&["monitor", "--once", "--active"], &[], 0);
    assert!(
        run.stdout.contains("connection=\"inc.ok\""),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("connection=\"inc.down\""),
        "{}",
        run.stdout
    );

    f.expect(&["monitor", "--once", "--integration", "nope"], &[], 3);
    let run = f.expect(
        &["monitor", "--listen", "127.0.0.1:0", "--interval", "soon"],
        &[],
        2,
    );
    assert!(run.stderr.contains("is not a duration"), "{}", run.stderr);
    f.expect(&["monitor"], &[], 2);
    f.expect(
        &["monitor", "--textfile", "x.prom", "--listen", "127.0.0.1:0"],
        &[],
        2,
    );
}

#[test]
fn example_alert_rules_pass_promtool() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/prometheus");
    for args in [
        vec!["check", "rules", "connctl.rules.yml"],
        vec!["check", "config", "prometheus.yml"],
        vec!["test", "rules", "connctl.rules.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("promtool is needed (scripts/test.sh installs Debian's prometheus)");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
