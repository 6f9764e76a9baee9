//! Every grant and client authentication end to end against a real
//! authorization server: panva's oidc-provider (tests/oidc/provider.mjs,
//! installed by scripts/test.sh), behind its own TLS front that asks for a
//! client certificate. Logins are driven headlessly by tests/oidc/browser.mjs
//! (BROWSER for connctl), and every send goes to the provider's /api, a
//! resource server that checks the token by introspection.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::outbound_servers::{Pki, Reply};
use crate::support::{Run, TestEnv};

/// `TestEnv::cmd` as a std Command (for spawn and piped output): the same
/// cleared environment.
pub fn std_cmd(env: &TestEnv) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("connctl"));
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

struct Oidc {
    port: u16,
    pki: Pki,
    /// The public keys the provider knows the signing clients by.
    _child: Child,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

fn pubkey(private: &Path, out: &Path) {
    let status = Command::new("openssl")
        .args(["pkey", "-in"])
        .arg(private)
        .args(["-pubout", "-out"])
        .arg(out)
        .status()
        .expect("openssl");
    assert!(status.success());
}

/// The provider, started once for the whole test binary.
fn oidc() -> &'static Oidc {
    static OIDC: OnceLock<Oidc> = OnceLock::new();
    OIDC.get_or_init(|| {
        assert!(
            dir().join("node_modules/oidc-provider").is_dir(),
            "oidc-provider is not installed: run the tests with scripts/test.sh (it runs `npm ci --prefix tests/oidc`)"
        );
        let keep = tempfile::tempdir().expect("temp").keep();
        let pki = Pki::new(&keep.join("pki"));
        let ec_pub = keep.join("ec.pub");
        let rsa_pub = keep.join("rsa.pub");
        pubkey(&pki.client_key_pkcs8, &ec_pub);
        pubkey(&pki.client_rsa_key_pkcs1, &rsa_pub);
        let mut cmd = Command::new("node");
        cmd.arg(dir().join("provider.mjs"))
            .env("OIDC_CERT", &pki.server_cert)
            .env("OIDC_KEY", &pki.server_key)
            .env("OIDC_CA", &pki.ca)
            .env("OIDC_EC_KEY_PUB", &ec_pub)
            .env("OIDC_RSA_KEY_PUB", &rsa_pub)
            .env("OIDC_MTLS_DN", "CN=connctl-client")
            .env("NODE_EXTRA_CA_CERTS", &pki.ca)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // The provider ends with the test binary.
        let mut child = crate::support::spawn_for_test_binary(cmd, libc::SIGTERM)
            .expect("node is needed (scripts/test.sh installs it)");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("oidc-provider ended before listening")
                .expect("read");
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(p) = v.get("port").and_then(|p| p.as_u64())
            {
                break p as u16;
            }
        };
        // Keep draining its notices so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Oidc {
            port,
            pki,
            _child: child,
        }
    })
}

impl Oidc {
    fn issuer(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// A GET of one of provider.mjs's /test/ routes, with curl.
    fn test_route(&self, path: &str) -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&self.pki.ca)
            .arg(format!("{}{path}", self.issuer()))
            .output()
            .expect("curl");
        serde_json::from_slice(&out.stdout).expect("json from the provider")
    }
}

/// A store with connection `api` to the provider's resource server, using `profile`.
struct Env {
    env: TestEnv,
}

impl Env {
    fn new() -> Env {
        let o = oidc();
        let env = TestEnv::new();
        crate::support::write(
            &env.store,
            &format!(
                "version = 1\nstore_id = \"{}\"\n\n[integration.inc]\n",
                uuid::Uuid::new_v4()
            ),
        );
        let e = Env { env };
        let _ = o;
        e
    }

    fn cmd(&self, args: &[&str], vars: &[(&str, &str)]) -> Command {
        let o = oidc();
        let mut cmd = std_cmd(&self.env);
        cmd.env("SSL_CERT_FILE", &o.pki.ca)
            .env("NODE_EXTRA_CA_CERTS", &o.pki.ca)
            .env(
                "BROWSER",
                format!("node {}", dir().join("browser.mjs").display()),
            )
            .env("OIDC_BROWSER_LOG", self.env.path("browser.log"))
            .args(args);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd
    }

    #[track_caller]
    fn run(&self, args: &[&str], vars: &[(&str, &str)], code: i32) -> Run {
        let out = self.cmd(args, vars).output().expect("run connctl");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert_eq!(
            run.code, code,
            "connctl {args:?}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        no_credentials(&run);
        run
    }

    /// `oauth-profile add NAME --issuer ... ARGS`, then connection `api` using it.
    fn profile(&self, name: &str, args: &[&str], vars: &[(&str, &str)]) {
        let issuer = oidc().issuer();
        let mut all = vec!["oauth-profile", "add", name, "--issuer", &issuer];
        all.extend_from_slice(args);
        self.run(&all, vars, 0);
        let url = format!("{issuer}/api");
        self.run(
            &[
                "connection",
                "add",
                "api",
                "--integration",
                "inc",
                "--env",
                "test",
                "--url",
                &url,
                "--auth",
                "oauth",
                "--oauth-profile",
                name,
            ],
            &[],
            0,
        );
    }

    /// `connection send api`: the resource server's verdict.
    #[track_caller]
    fn send(&self, vars: &[(&str, &str)]) -> serde_json::Value {
        let run = self.run(&["connection", "send", "api"], vars, 0);
        serde_json::from_str(&run.stdout).expect("the resource server answers JSON")
    }

    fn token_stage(&self, vars: &[(&str, &str)]) -> String {
        let run = self.run(&["-o", "json", "connection", "test", "api"], vars, 0);
        crate::outbound::detail(&run.json(), "oauth_token")
    }
}

/// Nothing that proves identity reaches connctl's output: no JWT (assertions,
/// JWT tokens), no authorization code, no PKCE verifier parameter.
#[track_caller]
fn no_credentials(run: &Run) {
    let text = format!("{}{}", run.stdout, run.stderr);
    for needle in [
        "eyJ",
        "?code=",
        "&code=",
        "code_verifier",
        "forged-code",
        "refresh_token\"",
    ] {
        assert!(!text.contains(needle), "output shows {needle:?}:\n{text}");
    }
}

#[test]
fn client_credentials_with_private_key_jwt_from_discovery() {
    let e = Env::new();
    let key = oidc().pki.client_key_sec1.display().to_string();
    e.profile(
        "pk",
        &[
            "--client-id",
            "pkjwt-client",
            "--client-auth",
            "private_key_jwt",
            "--signing-key",
            &key,
            "--key-id",
            "ec-1",
        ],
        &[],
    );
    let show = e.run(&["oauth-profile", "show", "pk"], &[], 0).stdout;
    assert!(
        show.contains(&format!("{}/token", oidc().issuer())),
        "{show}"
    );
    assert!(show.contains("revocation url"), "{show}");
    let api = e.send(&[]);
    assert_eq!(api["client_id"], "pkjwt-client");
    assert!(e.token_stage(&[]).contains("cached token"));
}

#[test]
fn jwt_bearer_grant_signs_an_assertion_for_the_subject() {
    let e = Env::new();
    let key = oidc().pki.client_rsa_key_pkcs1.display().to_string();
    let vars = [("JWT_SECRET", "jwt-secret")];
    e.profile(
        "jb",
        &[
            "--client-id",
            "jwt-client",
            "--grant",
            "jwt_bearer",
            "--client-auth",
            "body",
            "--client-secret-env",
            "JWT_SECRET",
            "--signing-key",
            &key,
            "--subject",
            "svc.integration",
        ],
        &vars,
    );
    assert_eq!(e.send(&vars)["client_id"], "jwt-client");
    let seen = oidc().test_route("/test/assertions");
    let last = seen
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|a| a["sub"] == "svc.integration")
        .expect("the provider verified our assertion");
    assert_eq!(last["iss"], "jwt-client");
    assert_eq!(last["aud"], format!("{}/token", oidc().issuer()));
    let (exp, iat) = (last["exp"].as_i64().unwrap(), last["iat"].as_i64().unwrap());
    assert_eq!(exp - iat, 300);
    assert!(last["jti"].as_str().is_some_and(|j| j.len() >= 16));
}

#[test]
fn tls_client_auth_presents_the_protocol_profiles_certificate() {
    let e = Env::new();
    let pki = &oidc().pki;
    let (cert, key) = (
        pki.client_cert.display().to_string(),
        pki.client_key_pkcs8.display().to_string(),
    );
    e.run(
        &[
            "protocol-profile",
            "add",
            "mtls",
            "--client-cert",
            &cert,
            "--client-key",
            &key,
        ],
        &[],
        0,
    );
    e.profile(
        "mt",
        &[
            "--client-id",
            "mtls-client",
            "--client-auth",
            "tls_client_auth",
            "--protocol-profile",
            "mtls",
        ],
        &[],
    );
    assert_eq!(e.send(&[])["client_id"], "mtls-client");
    // A certificate of another subject: the provider refuses the client.
    let (rogue, rogue_key) = (
        pki.client_rsa_cert.display().to_string(),
        pki.client_rsa_key_pkcs1.display().to_string(),
    );
    e.run(
        &[
            "protocol-profile",
            "edit",
            "mtls",
            "--client-cert",
            &rogue,
            "--client-key",
            &rogue_key,
        ],
        &[],
        0,
    );
    e.run(&["oauth-profile", "logout", "mt"], &[], 0); // drops the cached token
    let run = e.run(&["oauth-profile", "token", "mt"], &[], 8);
    assert!(run.stderr.contains("tls_client_auth"), "{}", run.stderr);
}

#[test]
fn authorization_code_login_refresh_and_logout() {
    let e = Env::new();
    e.profile(
        "app",
        &[
            "--client-id",
            "native-app",
            "--grant",
            "authorization_code",
            "--client-auth",
            "none",
            "--scope",
            "openid",
            "--scope",
            "offline_access",
        ],
        &[],
    );
    // Before login: a send says what to do.
    let run = e.run(&["connection", "send", "api"], &[], 8);
    assert!(
        run.stderr.contains("oauth-profile login app"),
        "{}",
        run.stderr
    );

    let run = e.run(&["oauth-profile", "login", "app"], &[], 0);
    assert!(
        run.stderr.contains("code_challenge_method=S256"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("refresh token kept"), "{}", run.stderr);
    let log = std::fs::read_to_string(e.env.path("browser.log")).unwrap();
    assert!(log.contains("redirect delivered: 200"), "{log}");
    let show = e.run(&["oauth-profile", "show", "app"], &[], 0).stdout;
    assert!(
        show.contains("authorization_code") && show.contains("held (not shown)"),
        "{show}"
    );
    assert_eq!(e.send(&[])["sub"], "alice");

    // The provider's access tokens for this client live 33 s; past the 30 s margin
    // the next send refreshes silently.
    std::thread::sleep(Duration::from_secs(4));
    let stage = e.token_stage(&[]);
    assert!(stage.contains("refreshed token"), "{stage}");
    assert_eq!(e.send(&[])["sub"], "alice");
    assert_eq!(
        oidc().test_route("/test/refresh-active?client=native-app")["active"],
        true
    );

    // Logout revokes at the server: introspection says so.
    let run = e.run(&["oauth-profile", "logout", "app"], &[], 0);
    assert!(run.stderr.contains("revoked"), "{}", run.stderr);
    assert_eq!(
        oidc().test_route("/test/refresh-active?client=native-app")["active"],
        false
    );
    let show = e.run(&["oauth-profile", "show", "app"], &[], 0).stdout;
    assert!(
        show.contains("none: run `connctl oauth-profile login app`"),
        "{show}"
    );
    e.run(&["connection", "send", "api"], &[], 8);
}

#[test]
fn a_refused_refresh_says_to_log_in_again() {
    let e = Env::new();
    e.profile(
        "app2",
        &[
            "--client-id",
            "native-app2",
            "--grant",
            "authorization_code",
            "--client-auth",
            "none",
            "--scope",
            "openid",
            "--scope",
            "offline_access",
        ],
        &[],
    );
    e.run(&["oauth-profile", "login", "app2"], &[], 0);
    let killed = oidc().test_route("/test/kill-refresh?client=native-app2");
    assert_eq!(killed["killed"], true);
    std::thread::sleep(Duration::from_secs(4));
    let run = e.run(&["connection", "send", "api"], &[], 8);
    assert!(run.stderr.contains("was refused"), "{}", run.stderr);
    assert!(
        run.stderr.contains("oauth-profile login app2` again"),
        "{}",
        run.stderr
    );
}

#[test]
fn login_refused_or_forged_stores_nothing() {
    let e = Env::new();
    e.profile(
        "app3",
        &[
            "--client-id",
            "native-app3",
            "--grant",
            "authorization_code",
            "--client-auth",
            "none",
            "--scope",
            "openid",
        ],
        &[],
    );
    // The person refuses consent: error=access_denied comes back on the redirect.
    let run = e.run(
        &["oauth-profile", "login", "app3"],
        &[("OIDC_DENY", "1")],
        8,
    );
    assert!(run.stderr.contains("access_denied"), "{}", run.stderr);
    assert!(run.stderr.contains("nothing was stored"), "{}", run.stderr);
    // A redirect that does not carry our state.
    let forge = format!("node {} --forge-state", dir().join("browser.mjs").display());
    let run = e.run(
        &["oauth-profile", "login", "app3"],
        &[("BROWSER", &forge)],
        8,
    );
    assert!(
        run.stderr.contains("state does not match"),
        "{}",
        run.stderr
    );
    let show = e.run(&["oauth-profile", "show", "app3"], &[], 0).stdout;
    assert!(
        show.contains("refresh token") && show.contains("none: run"),
        "{show}"
    );
    assert!(show.contains("none cached"), "{show}");
}

/// Starts `oauth-profile login NAME` for a device flow and returns the child
/// and the verification URI and user code it printed.
fn start_device_login(e: &Env, name: &str) -> (Child, String, String) {
    let mut child = e
        .cmd(&["oauth-profile", "login", name], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    std::thread::spawn(move || for _ in lines {});
    let words: Vec<&str> = first.split_whitespace().collect();
    let at = |w: &str| words.iter().position(|x| *x == w).unwrap();
    (
        child,
        words[at("open") + 1].to_string(),
        words[at("code") + 1].to_string(),
    )
}

#[test]
fn device_flow_with_private_key_jwt_signs_each_poll_anew() {
    let e = Env::new();
    let key = oidc().pki.client_key_sec1.display().to_string();
    e.profile(
        "devpk",
        &[
            "--client-id",
            "device-pkjwt",
            "--grant",
            "device_code",
            "--client-auth",
            "private_key_jwt",
            "--signing-key",
            &key,
            "--key-id",
            "ec-1",
            "--scope",
            "openid",
        ],
        &[],
    );
    let (mut child, uri, code) = start_device_login(&e, "devpk");
    // Let the first poll find the approval pending, so the token comes from a
    // later poll: one that reused the first assertion's jti would be refused.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let approved = Command::new("node")
        .arg(dir().join("browser.mjs"))
        .args(["--device", &uri, &code])
        .env("NODE_EXTRA_CA_CERTS", &oidc().pki.ca)
        .status()
        .unwrap();
    assert!(approved.success());
    assert_eq!(
        child.wait().unwrap().code(),
        Some(0),
        "the device login did not get its token"
    );
    let api = e.send(&[]);
    assert_eq!(api["client_id"], "device-pkjwt");
    assert_eq!(api["sub"], "alice");
}

#[test]
fn device_flow_login_then_sends() {
    let e = Env::new();
    e.profile(
        "dev",
        &[
            "--client-id",
            "device-app",
            "--grant",
            "device_code",
            "--client-auth",
            "none",
            "--scope",
            "openid",
            "--scope",
            "offline_access",
        ],
        &[],
    );
    let (mut child, uri, code) = start_device_login(&e, "dev");
    assert!(uri.ends_with("/device"), "{uri}");
    let approved = Command::new("node")
        .arg(dir().join("browser.mjs"))
        .args(["--device", &uri, &code])
        .env("NODE_EXTRA_CA_CERTS", &oidc().pki.ca)
        .status()
        .unwrap();
    assert!(approved.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(e.send(&[])["sub"], "alice");
}

#[test]
fn device_flow_that_nobody_approves_expires() {
    let e = Env::new();
    e.profile(
        "short",
        &[
            "--client-id",
            "device-short",
            "--grant",
            "device_code",
            "--client-auth",
            "none",
        ],
        &[],
    );
    // device-short's codes live 4 s; nobody approves.
    let run = e.run(&["oauth-profile", "login", "short"], &[], 8);
    assert!(run.stderr.contains("expired"), "{}", run.stderr);
}

#[test]
fn bad_signing_keys_are_refused_naming_the_file() {
    let e = Env::new();
    let before = e.env.store_text();
    let issuer = oidc().issuer();
    let cert = oidc().pki.client_cert.display().to_string();
    let run = e.run(
        &[
            "oauth-profile",
            "add",
            "k",
            "--issuer",
            &issuer,
            "--client-id",
            "x",
            "--client-auth",
            "private_key_jwt",
            "--signing-key",
            &cert,
        ],
        &[],
        4,
    );
    assert!(run.stderr.contains(&cert), "{}", run.stderr);
    // An EC key on P-384: neither RS256 nor ES256.
    let p384 = e.env.path("p384.pem");
    let status = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-out",
        ])
        .arg(&p384)
        .status()
        .unwrap();
    assert!(status.success());
    let p384 = p384.display().to_string();
    let run = e.run(
        &[
            "oauth-profile",
            "add",
            "k",
            "--issuer",
            &issuer,
            "--client-id",
            "x",
            "--grant",
            "jwt_bearer",
            "--signing-key",
            &p384,
        ],
        &[],
        4,
    );
    assert!(
        run.stderr.contains(&p384) && run.stderr.contains("RS256 or ES256"),
        "{}",
        run.stderr
    );
    assert_eq!(e.env.store_text(), before);
}

#[test]
fn discovery_without_the_needed_endpoint_is_refused() {
    let f = crate::outbound::Fixture::new();
    let issuer_holder = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let held = issuer_holder.clone();
    let server = f.server(std::sync::Arc::new(move |_| {
        let issuer = held.lock().unwrap().clone();
        Reply::new(
            200,
            &serde_json::json!({"issuer": issuer, "token_endpoint": format!("{issuer}/token")})
                .to_string(),
        )
        .header("content-type", "application/json")
    }));
    let issuer = server.url("");
    *issuer_holder.lock().unwrap() = issuer.clone();
    let before = f.env.store_text();
    let mut cmd = std_cmd(&f.env);
    let out = cmd
        .env("SSL_CERT_FILE", f.ca())
        .args([
            "oauth-profile",
            "add",
            "d",
            "--issuer",
            &issuer,
            "--client-id",
            "x",
            "--grant",
            "device_code",
            "--client-auth",
            "none",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("device_authorization_endpoint"), "{stderr}");
    assert_eq!(f.env.store_text(), before);
}
