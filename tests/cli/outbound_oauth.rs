//! OAuth 2.0 through `connection test|send` and `oauth-profile token`: grants,
//! client authentication styles, the keyring token cache, refresh, and the MID server.
//! The cache lives in the OS keyring: run with `scripts/test.sh --test cli outbound`.

use std::sync::Arc;
use std::time::Duration;

use crate::outbound::{Fixture, conn, detail, mid_records};
use crate::outbound_servers::*;

const SECRET_ENV: &str = "CLIENT_SECRET";

struct Idp {
    f: Fixture,
    state: Arc<OauthState>,
    server: Server,
}

impl Idp {
    fn new(expires_in: u64) -> Idp {
        assert!(
            std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
            "the OAuth token cache lives in the keyring: run `scripts/test.sh --test cli outbound`"
        );
        let f = Fixture::new();
        let state = OauthState::new(expires_in);
        let server = f.server(oauth_handler(state.clone()));
        Idp { f, state, server }
    }

    /// Connection `o` using profile `idp` with the given grant and client auth style.
    fn store(&self, grant: &str, client_auth: &str, conn_extra: &str) {
        let extra = format!(
            "ca_bundle = \"{}\"\nauthentication = \"oauth\"\noauth_profile = \"idp\"\n{conn_extra}",
            self.f.ca()
        );
        self.f.store(&format!(
            "{}[oauth_profile.idp]\ntoken_url = \"{}\"\nclient_id = \"connctl-client\"\nclient_secret = \"env:{SECRET_ENV}\"\ngrant = \"{grant}\"\nclient_auth = \"{client_auth}\"\nscopes = [\"incident.write\", \"incident.read\"]\n\n",
            conn("o", &self.server.url("/api/incident"), &extra),
            self.server.url("/oauth/token"),
        ));
    }

    fn secret(&self) -> [(&'static str, &str); 2] {
        [
            (SECRET_ENV, self.state.client_secret.as_str()),
            ("CONN_PW", self.state.owner.1.as_str()),
        ]
    }

    fn api_calls(&self) -> usize {
        self.server.count("/api/incident")
    }
}

#[test]
fn client_credentials_token_is_fetched_once_and_reused() {
    let idp = Idp::new(3600);
    idp.store("client_credentials", "basic", "");
    let vars = idp.secret();
    let (json, run) = idp.f.test_json("o", &[], &vars, 0);
    let token_stage = detail(&json, "oauth_token");
    assert!(token_stage.contains("fetched token"), "{token_stage}");
    assert!(
        token_stage.contains("scopes incident.write incident.read"),
        "{token_stage}"
    );
    assert!(!run.stdout.contains("access-0") && !run.stderr.contains("access-0"));

    for _ in 0..3 {
        let run = idp
            .f
            .expect(&["connection", "send", "o", "-d", "{}"], &vars, 0);
        assert_eq!(run.stdout, "{\"api\":\"ok\"}");
        assert!(!run.stderr.contains("access-0"), "{}", run.stderr);
    }
    // Four exchanges, one token request.
    assert_eq!(idp.state.requests(), 1);
    assert_eq!(idp.api_calls(), 4);
    assert_eq!(*idp.state.client_auth_seen.lock().unwrap(), ["basic"]);
    assert_eq!(
        *idp.state.scopes_seen.lock().unwrap(),
        ["incident.write incident.read"]
    );
    for seen in idp.server.requests() {
        if seen.path == "/api/incident" {
            assert_eq!(seen.header("authorization"), Some("Bearer access-0"));
        }
    }
    let (json, _) = idp.f.test_json("o", &[], &vars, 0);
    assert!(detail(&json, "oauth_token").contains("cached token"));

    // oauth-profile token shows expiry and scopes, the token only with --print.
    let out = idp
        .f
        .expect(&["oauth-profile", "token", "idp"], &vars, 0)
        .stdout;
    assert!(out.contains("incident.write incident.read"), "{out}");
    assert!(out.contains("expires_at"), "{out}");
    assert!(!out.contains("access-0"), "{out}");
    let run = idp
        .f
        .expect(&["oauth-profile", "token", "idp", "--print"], &vars, 0);
    assert_eq!(run.stdout, "access-0\n");
    assert_eq!(idp.state.requests(), 1);
}

#[test]
fn expired_token_is_refreshed_with_the_refresh_token() {
    // 31 s of life is one second of use before the 30 s safety margin.
    let idp = Idp::new(31);
    idp.store("client_credentials", "basic", "");
    let vars = idp.secret();
    idp.f.expect(&["connection", "send", "o"], &vars, 0);
    std::thread::sleep(Duration::from_millis(2100));
    let (json, _) = idp.f.test_json("o", &[], &vars, 0);
    assert!(
        detail(&json, "oauth_token").contains("refreshed token"),
        "{json:#}"
    );
    assert_eq!(idp.state.grants(), ["client_credentials", "refresh_token"]);
    assert_eq!(idp.state.requests(), 2);

    // A refresh token the server no longer knows: refused, then a full fetch.
    idp.state.refresh_tokens.lock().unwrap().clear();
    std::thread::sleep(Duration::from_millis(2100));
    let (json, _) = idp.f.test_json("o", &[], &vars, 0);
    let token_stage = detail(&json, "oauth_token");
    assert!(token_stage.contains("fetched token"), "{token_stage}");
    assert!(token_stage.contains("refresh refused"), "{token_stage}");
    assert_eq!(
        idp.state.grants(),
        [
            "client_credentials",
            "refresh_token",
            "refresh_token",
            "client_credentials"
        ]
    );
}

#[test]
fn refused_cached_token_is_dropped_and_fetched_once_more() {
    let idp = Idp::new(3600);
    idp.store("client_credentials", "basic", "");
    let vars = idp.secret();
    idp.f.expect(&["connection", "send", "o"], &vars, 0);
    idp.state.revoke_all();
    let run = idp.f.expect(&["connection", "send", "o"], &vars, 0);
    assert_eq!(run.stdout, "{\"api\":\"ok\"}");
    assert_eq!(idp.state.requests(), 2);
    // One 200, one 401 for the revoked token, one 200 with the new one.
    assert_eq!(idp.api_calls(), 3);
    // An endpoint that refuses every token: one fresh fetch, one retry, then exit 8.
    let deny = idp.f.server(status_handler(401));
    idp.store("client_credentials", "basic", "");
    let text = std::fs::read_to_string(&idp.f.env.store).unwrap();
    std::fs::write(
        &idp.f.env.store,
        text.replace(&idp.server.url("/api/incident"), &deny.url("/deny")),
    )
    .unwrap();
    let before = idp.state.requests();
    let run = idp.f.expect(&["connection", "send", "o"], &vars, 8);
    assert!(run.stderr.contains("401 Unauthorized"), "{}", run.stderr);
    assert_eq!(idp.state.requests(), before + 1);
    assert_eq!(deny.count("/deny"), 2);
}

#[test]
fn body_client_auth_and_password_grant() {
    let idp = Idp::new(3600);
    idp.store(
        "password",
        "body",
        "user = \"svc.owner\"\npassword = \"env:CONN_PW\"",
    );
    let vars = idp.secret();
    let run = idp.f.expect(&["connection", "send", "o"], &vars, 0);
    assert_eq!(run.stdout, "{\"api\":\"ok\"}");
    assert_eq!(idp.state.grants(), ["password"]);
    assert_eq!(*idp.state.client_auth_seen.lock().unwrap(), ["body"]);

    // The resource owner's password is wrong: the token endpoint says so.
    let idp = Idp::new(3600);
    idp.store(
        "password",
        "body",
        "user = \"svc.owner\"\npassword = \"env:CONN_PW\"",
    );
    let (json, run) = idp.f.test_json(
        "o",
        &[],
        &[
            (SECRET_ENV, idp.state.client_secret.as_str()),
            ("CONN_PW", "nope"),
        ],
        8,
    );
    assert_eq!(json["failed_stage"], "oauth_token");
    assert!(
        run.stderr
            .contains("rejected the resource owner's user or password"),
        "{}",
        run.stderr
    );

    // The password grant without a connection has no resource owner.
    idp.f.expect(
        &["oauth-profile", "token", "idp", "--connection", "o"],
        &vars,
        0,
    );
}

#[test]
fn wrong_client_secret_is_an_authentication_failure_before_any_request() {
    let idp = Idp::new(3600);
    for style in ["basic", "body"] {
        idp.store("client_credentials", style, "");
        let (json, run) = idp.f.test_json("o", &[], &[(SECRET_ENV, "wrong")], 8);
        assert_eq!(json["failed_stage"], "oauth_token");
        assert!(
            run.stderr
                .contains("token endpoint rejected the client secret"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("OAuth profile 'idp'"), "{}", run.stderr);
        let run = idp
            .f
            .expect(&["connection", "send", "o"], &[(SECRET_ENV, "wrong")], 8);
        assert!(
            run.stderr.contains("rejected the client secret"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(idp.api_calls(), 0);
    // Unset secret variable: a secret error (5), nothing sent.
    let before = idp.state.requests();
    let (json, _) = idp.f.test_json("o", &[], &[], 5);
    assert_eq!(json["failed_stage"], "secrets");
    assert_eq!(idp.state.requests(), before);
}

#[test]
fn token_request_goes_through_the_mid_server() {
    let idp = Idp::new(3600);
    let proxy = Tinyproxy::start(&idp.f.env.path("tinyproxy"), "miduser", "midpass");
    let oauth = format!(
        "[oauth_profile.idp]\ntoken_url = \"{}\"\nclient_id = \"connctl-client\"\nclient_secret = \"env:{SECRET_ENV}\"\n\n",
        idp.server.url("/oauth/token")
    );
    let records = mid_records(
        &idp.f,
        &proxy,
        &idp.server.url("/api/incident"),
        "authentication = \"oauth\"\noauth_profile = \"idp\"",
    );
    idp.f.store(&format!("{records}{oauth}"));
    let vars = [
        (SECRET_ENV, idp.state.client_secret.as_str()),
        ("MID_PW", "midpass"),
    ];
    let (json, _) = idp.f.test_json("viamid", &[], &vars, 0);
    assert!(detail(&json, "oauth_token").contains("fetched"));
    let log = proxy.log_text();
    let tunnels = log
        .matches(&format!("CONNECT localhost:{}", idp.server.port))
        .count();
    // One tunnel for the token request, one for the API request.
    assert_eq!(tunnels, 2, "tinyproxy log:\n{log}");
    assert_eq!(idp.state.requests(), 1);

    // With the MID server refusing, the token stage names it.
    let (json, run) = idp
        .f
        .test_json("viamid", &[], &[(SECRET_ENV, "x"), ("MID_PW", "wrong")], 8);
    // The cached token is reused, so the refusal shows at the endpoint's own tunnel.
    assert_eq!(json["failed_stage"], "mid_connect");
    assert!(
        run.stderr.contains("MID server refused the credentials"),
        "{}",
        run.stderr
    );
}

#[test]
fn connections_sharing_a_profile_share_one_token_in_test_all() {
    let idp = Idp::new(3600);
    idp.store("client_credentials", "body", "");
    let text = std::fs::read_to_string(&idp.f.env.store).unwrap();
    let mut extra = String::new();
    for i in 0..6 {
        extra.push_str(&conn(
            &format!("o{i}"),
            &idp.server.url("/api/incident"),
            &format!(
                "ca_bundle = \"{}\"\nauthentication = \"oauth\"\noauth_profile = \"idp\"",
                idp.f.ca()
            ),
        ));
    }
    std::fs::write(&idp.f.env.store, format!("{text}{extra}")).unwrap();
    let run = idp.f.expect(
        &["-o", "json", "connection", "test", "--all", "--jobs", "7"],
        &idp.secret(),
        0,
    );
    assert_eq!(run.json().as_array().unwrap().len(), 7);
    assert_eq!(idp.state.requests(), 1);
    assert_eq!(idp.api_calls(), 7);
}

/// A token endpoint that repeats what it was sent in its error answer: the
/// client secret, the resource owner's password and the Basic header value
/// never reach a message, a stage detail or a log.
#[test]
fn token_endpoint_echoing_secrets_does_not_leak_them() {
    use base64::Engine;
    const CANARY: &str = "LEAK-canary-7f3a9b";
    let client_secret = format!("{CANARY}-client");
    let owner_password = format!("{CANARY}-owner");
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("connctl-client:{client_secret}"));
    let f = Fixture::new();
    let echo: Handler = Arc::new(|req: &Seen| {
        let form: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        let decoded = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let said = format!(
            "you sent {:?} ({decoded}) {form:?} {}",
            req.header("authorization"),
            String::from_utf8_lossy(&req.body)
        );
        let (status, code) = if decoded.is_empty() {
            (400, format!("bad_{said}"))
        } else {
            (401, "invalid_client".to_string())
        };
        Reply::new(
            status,
            &serde_json::json!({"error": code, "error_description": said}).to_string(),
        )
        .header("content-type", "application/json")
    });
    let server = f.server(echo);
    let vars = [
        (SECRET_ENV, client_secret.as_str()),
        ("CONN_PW", owner_password.as_str()),
    ];
    let mut printed = Vec::new();
    for (grant, client_auth) in [("client_credentials", "basic"), ("password", "body")] {
        let extra = format!(
            "ca_bundle = \"{}\"\nauthentication = \"oauth\"\noauth_profile = \"idp\"\nuser = \"svc.owner\"\npassword = \"env:CONN_PW\"\n",
            f.ca()
        );
        f.store(&format!(
            "{}[oauth_profile.idp]\ntoken_url = \"{}\"\nclient_id = \"connctl-client\"\nclient_secret = \"env:{SECRET_ENV}\"\ngrant = \"{grant}\"\nclient_auth = \"{client_auth}\"\n\n",
            conn("o", &server.url("/api"), &extra),
            server.url("/oauth/token"),
        ));
        for args in [
            &["-vv", "connection", "test", "o"][..],
            &["-vv", "-o", "json", "connection", "test", "o"],
            &["-vv", "connection", "send", "o", "-i"],
            &["-vv", "oauth-profile", "token", "idp"],
            &["-vv", "-o", "json", "oauth-profile", "token", "idp"],
        ] {
            let run = f.expect(args, &vars, 8);
            printed.push((
                grant,
                args.join(" "),
                format!("{}\n{}", run.stdout, run.stderr),
            ));
        }
    }
    // The server did get the secrets and did echo them.
    let requests = server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Basic {basic}")))
    );
    assert!(
        requests
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains(&owner_password))
    );
    for (grant, what, text) in &printed {
        assert!(
            !text.contains(CANARY) && !text.contains(&basic),
            "{grant}: `connctl {what}` printed a secret:\n{text}"
        );
    }
    assert!(printed.iter().any(|(_, _, t)| t.contains("(redacted)")));
}
