//! The rules of DESIGN.md §1 and the record checks beside them, each written
//! once: [`Store::validate`] (every load and every write) with one function
//! per record kind, the hint each violation carries, and how a planned change
//! that breaks one is refused ([`Store::check_change`], called by
//! `change::commit`). Commands build a draft and leave the checking here.

use std::collections::HashMap;
use std::fmt;

use super::{
    Authentication, ClientAuth, Connection, Environment, Grant, MidServer, OauthProfile,
    RecordKind, Store, check_http_url, check_name, check_proxy_url,
};
use crate::error::{Error, Result};
use crate::text::escape;

/// A broken rule, with the record and field it is about (so the store loader
/// can point at the line) and what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleViolation {
    pub rule: &'static str,
    pub kind: RecordKind,
    pub name: String,
    pub field: Option<&'static str>,
    pub message: String,
    /// What to do next, in the words of the command line.
    pub hint: String,
    /// A reference to a record that does not exist: its kind and name.
    pub missing: Option<(RecordKind, String)>,
}

impl fmt::Display for RuleViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.rule)
    }
}

impl RuleViolation {
    fn new(
        rule: &'static str,
        kind: RecordKind,
        name: &str,
        field: Option<&'static str>,
        message: String,
        hint: impl Into<String>,
    ) -> Self {
        RuleViolation {
            rule,
            kind,
            name: name.to_string(),
            field,
            message,
            hint: hint.into(),
            missing: None,
        }
    }

    /// A reference from `kind`/`name`'s `field` to a record that does not exist.
    fn reference(
        kind: RecordKind,
        name: &str,
        field: &'static str,
        target_kind: RecordKind,
        target: &str,
    ) -> Self {
        let shown = escape(target);
        let message = if target_kind == RecordKind::Integration {
            format!("{kind} '{name}' belongs to integration '{shown}', which does not exist")
        } else {
            format!("{kind} '{name}' names {target_kind} '{shown}', which does not exist")
        };
        RuleViolation {
            missing: Some((target_kind, target.to_string())),
            ..RuleViolation::new(
                RULE_REFERENCE,
                kind,
                name,
                Some(field),
                message,
                format!(
                    "add it with `connctl {target_kind} add {shown} ...`, or name another (`connctl {target_kind} list`)"
                ),
            )
        }
    }

    /// The violation as a command reports it: exit 4 with its hint.
    pub fn to_error(&self) -> Error {
        Error::invalid(self.message.clone())
            .with_cause(self.rule)
            .with_hint(self.hint.clone())
    }
}

pub const RULE_NAME: &str = "names: [A-Za-z0-9][A-Za-z0-9._-]{0,63}";
pub const RULE_ONE_ACTIVE: &str = "rule 1: at most one active connection per integration";
pub const RULE_AUTH: &str = "rule 3: authentication needs its credentials and profiles";
pub const RULE_REFERENCE: &str = "rule 4: every reference must exist";
pub const RULE_INBOUND: &str = "rule 5: an inbound user may be on at most one active connection";
pub const RULE_URL: &str = "rule 6: endpoint URLs are absolute http or https URLs";
pub const RULE_HTTP_PRODUCTION: &str = "rule 6: http to a production connection needs --allow-http";
pub const RULE_BASIC_USER: &str =
    "Basic user names hold no ':' and no control characters (RFC 7617)";
pub const RULE_PROXY_AUTH: &str = "MID server authentication needs both a user and a password";
pub const RULE_VARIABLES: &str =
    "variables: names are not empty, and a secret variable is not also a plain variable";

/// The ways to give a password, for hints.
pub const PASSWORD_FLAGS: &str = "--password-stdin (value kept in the keyring), --password-env VAR, --password-file PATH, --password-cmd CMD or --password-vault PATH#FIELD";

/// Why `user` cannot be a Basic user-id (RFC 7617 §2: no ':', no control
/// characters), or `None` when it can.
pub fn basic_user_problem(user: &str) -> Option<&'static str> {
    if user.contains(':') {
        Some(
            "contains ':', which Basic authentication cannot carry (the user-id ends at the first ':')",
        )
    } else if user.chars().any(char::is_control) {
        Some("contains control characters, which Basic authentication does not allow")
    } else {
        None
    }
}

impl Store {
    /// Every rule of DESIGN.md §1 and every record check, in a stable order
    /// (names, then connections, OAuth profiles and MID servers by name).
    pub fn validate(&self) -> Vec<RuleViolation> {
        let mut out = Vec::new();
        for kind in RecordKind::ALL {
            for name in self.names(kind) {
                if let Err(message) = check_name(kind, name) {
                    out.push(RuleViolation::new(
                        RULE_NAME,
                        kind,
                        name,
                        None,
                        message,
                        "rename it: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
                    ));
                }
            }
        }
        let mut active_by_integration: HashMap<&str, &str> = HashMap::new();
        let mut active_by_inbound: HashMap<&str, &str> = HashMap::new();
        for (name, c) in &self.connection {
            self.connection_rules(name, c, &mut out);
            if !c.active {
                continue;
            }
            if let Some(other) = active_by_integration.insert(&c.integration, name) {
                out.push(RuleViolation::new(
                    RULE_ONE_ACTIVE,
                    RecordKind::Connection,
                    name,
                    Some("active"),
                    format!(
                        "connections '{other}' and '{name}' of integration '{}' are both active",
                        c.integration
                    ),
                    format!(
                        "keep one active: `connctl connection activate {other}` deactivates the integration's others (in a file to import: set active = false on one)"
                    ),
                ));
            }
            if let Some(user) = c.inbound_user.as_deref()
                && let Some(other) = active_by_inbound.insert(user, name)
            {
                out.push(RuleViolation::new(
                    RULE_INBOUND,
                    RecordKind::Connection,
                    name,
                    Some("inbound_user"),
                    format!(
                        "inbound-user '{user}' is on two active connections: '{other}' and '{name}'"
                    ),
                    format!(
                        "take it off one (`connctl connection edit {name} --no-inbound-user`), or deactivate one (`connctl connection deactivate {other}`)"
                    ),
                ));
            }
        }
        for (name, p) in &self.oauth_profile {
            self.oauth_profile_rules(name, p, &mut out);
        }
        for (name, m) in &self.mid_server {
            mid_server_rules(name, m, &mut out);
        }
        out
    }

    /// Rules 3, 4 and 6 and the variable checks for one connection.
    fn connection_rules(&self, name: &str, c: &Connection, out: &mut Vec<RuleViolation>) {
        const KIND: RecordKind = RecordKind::Connection;
        let rule = |rule, field, message: String, hint: &str| {
            RuleViolation::new(rule, KIND, name, Some(field), message, hint)
        };
        if !self.integration.contains_key(&c.integration) {
            out.push(RuleViolation::reference(
                KIND,
                name,
                "integration",
                RecordKind::Integration,
                &c.integration,
            ));
        }
        match check_http_url(&c.endpoint_url) {
            Err(message) => out.push(rule(
                RULE_URL,
                "endpoint_url",
                message,
                "give an absolute http or https URL with --url",
            )),
            Ok(scheme)
                if scheme == "http"
                    && c.environment == Environment::Production
                    && !c.allow_http =>
            {
                out.push(rule(
                    RULE_HTTP_PRODUCTION,
                    "endpoint_url",
                    format!(
                        "connection '{name}' is production but '{}' is plain http",
                        escape(&c.endpoint_url)
                    ),
                    "use an https URL, or pass --allow-http if the endpoint really is plain http",
                ))
            }
            Ok(_) => {}
        }
        let auth = c.authentication;
        match auth {
            Authentication::Oauth if c.oauth_profile.is_none() => out.push(rule(
                RULE_AUTH,
                "authentication",
                format!("connection '{name}' uses oauth but names no OAuth profile"),
                "add --oauth-profile NAME (see `connctl oauth-profile list`)",
            )),
            Authentication::Basic if c.user.is_none() => out.push(rule(
                RULE_AUTH,
                "authentication",
                format!("connection '{name}' uses basic authentication but has no user"),
                "add --user USER",
            )),
            Authentication::Basic if c.password.is_none() => out.push(rule(
                RULE_AUTH,
                "authentication",
                format!("connection '{name}' uses basic authentication but has no password"),
                &format!("add {PASSWORD_FLAGS}"),
            )),
            _ => {}
        }
        if auth == Authentication::Basic
            && let Some(user) = &c.user
            && let Some(problem) = basic_user_problem(user)
        {
            out.push(rule(
                RULE_BASIC_USER,
                "user",
                format!("connection '{name}': the user '{}' {problem}", escape(user)),
                "give the user-id without ':' (RFC 7617); a password may hold ':'",
            ));
        }
        if auth != Authentication::Oauth && c.oauth_profile.is_some() {
            out.push(rule(
                RULE_AUTH,
                "oauth_profile",
                format!(
                    "connection '{name}' names an OAuth profile but its authentication is {}",
                    auth.as_str()
                ),
                "add --auth oauth, or leave out --oauth-profile",
            ));
        }
        if let Some(profile) = c.oauth_profile.as_deref() {
            match self.oauth_profile.get(profile) {
                None => out.push(RuleViolation::reference(
                    KIND,
                    name,
                    "oauth_profile",
                    RecordKind::OauthProfile,
                    profile,
                )),
                Some(p)
                    if p.grant == Grant::Password
                        && auth == Authentication::Oauth
                        && (c.user.is_none() || c.password.is_none()) =>
                {
                    out.push(rule(
                        RULE_AUTH,
                        "oauth_profile",
                        format!(
                            "connection '{name}' uses oauth-profile '{profile}' with the password grant but lacks a user or a password source"
                        ),
                        &format!(
                            "the password grant sends the connection's user and password as the resource owner's: add --user USER and {PASSWORD_FLAGS}"
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        if c.mutual_auth && c.protocol_profile.is_none() {
            out.push(rule(
                RULE_AUTH,
                "mutual_auth",
                format!("connection '{name}' has mutual auth on but names no protocol profile"),
                "add --protocol-profile NAME (see `connctl protocol-profile list`)",
            ));
        }
        if !c.mutual_auth && c.protocol_profile.is_some() {
            out.push(rule(
                RULE_AUTH,
                "protocol_profile",
                format!("connection '{name}' names a protocol profile but mutual auth is off"),
                "add --mutual-auth",
            ));
        }
        let refs = [
            (
                c.protocol_profile.as_deref(),
                RecordKind::ProtocolProfile,
                "protocol_profile",
            ),
            (c.mid_server.as_deref(), RecordKind::MidServer, "mid_server"),
            (
                c.inbound_user.as_deref(),
                RecordKind::InboundUser,
                "inbound_user",
            ),
        ];
        for (target, target_kind, field) in refs {
            if let Some(target) = target
                && !self.contains(target_kind, target)
            {
                out.push(RuleViolation::reference(
                    KIND,
                    name,
                    field,
                    target_kind,
                    target,
                ));
            }
        }
        if c.variables.keys().any(String::is_empty) {
            out.push(rule(
                RULE_VARIABLES,
                "variables",
                format!("connection '{name}' has a variable with an empty name"),
                "give every --var a name: KEY=VALUE",
            ));
        }
        for key in c.secret_variables.keys() {
            if key.is_empty() {
                out.push(rule(
                    RULE_VARIABLES,
                    "secret_variables",
                    format!("connection '{name}' has a secret variable with an empty name"),
                    "give every --secret-var a name: KEY=SOURCE",
                ));
            } else if c.variables.contains_key(key) {
                let key = escape(key);
                out.push(rule(
                    RULE_VARIABLES,
                    "secret_variables",
                    format!(
                        "connection '{name}': '{key}' would be both a variable and a secret variable"
                    ),
                    &format!(
                        "remove one: `connctl connection edit {name} --unset-var {key}` or `--unset-secret-var {key}`"
                    ),
                ));
            }
        }
    }

    /// What an OAuth profile's grant and client authentication need.
    fn oauth_profile_rules(&self, name: &str, p: &OauthProfile, out: &mut Vec<RuleViolation>) {
        const KIND: RecordKind = RecordKind::OauthProfile;
        let rule = |rule, field, message: String, hint: &str| {
            RuleViolation::new(rule, KIND, name, Some(field), message, hint)
        };
        if let Err(message) = check_http_url(&p.token_url) {
            out.push(rule(
                RULE_URL,
                "token_url",
                message,
                "give --token-url URL (or --issuer URL to discover it)",
            ));
        }
        if p.client_id.trim().is_empty() {
            out.push(rule(
                "oauth profiles need a client_id",
                "client_id",
                format!("oauth-profile '{name}' has an empty client_id"),
                "give --client-id ID: the id the authorization server registered",
            ));
        }
        for (field, flag, url) in [
            (
                "authorization_url",
                "--authorization-url",
                &p.authorization_url,
            ),
            (
                "device_authorization_url",
                "--device-authorization-url",
                &p.device_authorization_url,
            ),
            ("revocation_url", "--revocation-url", &p.revocation_url),
            ("issuer", "--issuer", &p.issuer),
        ] {
            if let Some(url) = url
                && let Err(message) = check_http_url(url)
            {
                out.push(rule(
                    RULE_URL,
                    field,
                    message,
                    &format!("give an absolute http or https URL with {flag}"),
                ));
            }
        }
        let mut missing: Vec<(&'static str, &str, &str)> = Vec::new();
        if p.grant == Grant::AuthorizationCode && p.authorization_url.is_none() {
            missing.push((
                "authorization_url",
                "the authorization_code grant",
                "give --authorization-url URL, or --issuer URL whose discovery metadata has an authorization_endpoint",
            ));
        }
        if p.grant == Grant::DeviceCode && p.device_authorization_url.is_none() {
            missing.push((
                "device_authorization_url",
                "the device_code grant",
                "give --device-authorization-url URL, or --issuer URL whose discovery metadata has a device_authorization_endpoint",
            ));
        }
        if (p.grant == Grant::JwtBearer || p.client_auth == ClientAuth::PrivateKeyJwt)
            && p.signing_key.is_none()
        {
            missing.push((
                "signing_key",
                "the jwt_bearer grant and private_key_jwt client auth",
                "give the private key with --signing-key PATH (or --signing-key-stdin/-env/-file/-cmd)",
            ));
        }
        if p.client_auth == ClientAuth::TlsClientAuth && p.protocol_profile.is_none() {
            missing.push((
                "protocol_profile",
                "tls_client_auth",
                "give --protocol-profile NAME: its client certificate proves the client",
            ));
        }
        for (field, what, hint) in missing {
            out.push(RuleViolation::new(
                "oauth profiles have what their grant and client auth need",
                KIND,
                name,
                Some(field),
                format!("oauth-profile '{name}' uses {what} but has no {field}"),
                hint,
            ));
        }
        if let Some(pp) = &p.protocol_profile
            && !self.protocol_profile.contains_key(pp)
        {
            out.push(RuleViolation::reference(
                KIND,
                name,
                "protocol_profile",
                RecordKind::ProtocolProfile,
                pp,
            ));
        }
    }

    /// Refuses a planned store (`self`, the store after a change) that breaks
    /// a rule, with the error the command reports. `before` is the store the
    /// change started from (valid: it was loaded). A reference to a record
    /// that does not exist is "not found" (exit 3) when the change named it,
    /// and a refused removal (exit 4, naming the records that use it) when the
    /// change removed it; every other broken rule is exit 4 with its hint.
    pub fn check_change(&self, before: &Store) -> Result<()> {
        let violations = self.validate();
        let first = violations
            .iter()
            .find(|v| v.missing.is_some())
            .or_else(|| violations.first());
        match first {
            None => Ok(()),
            Some(v) => Err(match &v.missing {
                Some((kind, target)) if before.contains(*kind, target) => {
                    self.still_referenced(*kind, target)
                }
                Some((kind, target)) => self.missing(*kind, target),
                None => v.to_error(),
            }),
        }
    }

    /// Removing a record others reference is refused, naming them (rule 4).
    fn still_referenced(&self, kind: RecordKind, name: &str) -> Error {
        let referrers = self.referrers(kind, name);
        let mut groups: Vec<(RecordKind, Vec<&str>)> = Vec::new();
        for (k, n) in &referrers {
            match groups.iter_mut().find(|(g, _)| g == k) {
                Some((_, names)) => names.push(n),
                None => groups.push((*k, vec![n.as_str()])),
            }
        }
        let listing = groups
            .iter()
            .map(|(k, names)| {
                format!(
                    "{} {k}{}: {}",
                    names.len(),
                    if names.len() == 1 { "" } else { "s" },
                    names.join(", ")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let (verb, hint) = match (kind, referrers.first()) {
            (RecordKind::Integration, _) => {
                ("still has", "remove its connections first".to_string())
            }
            (_, Some((k, first))) => (
                "is used by",
                format!(
                    "point them elsewhere first, e.g. `connctl {k} edit {first} ...`, or remove them"
                ),
            ),
            (_, None) => ("is used by", "point them elsewhere first".to_string()),
        };
        Error::invalid(format!("{kind} '{name}' {verb} {listing}"))
            .with_cause(RULE_REFERENCE)
            .with_hint(hint)
    }

    /// "does not exist" (exit 3), with the closest existing name as a hint.
    pub fn missing(&self, kind: RecordKind, name: &str) -> Error {
        let err = Error::not_found(kind.cli_name(), name);
        let names = self.names(kind);
        match closest(&names, name) {
            Some(near) => err.with_hint(format!(
                "did you mean '{near}'? (`connctl {kind} list` shows all)"
            )),
            None if names.is_empty() => err.with_hint(format!(
                "there are no {kind} records yet: add one with `connctl {kind} add`"
            )),
            None => err,
        }
    }
}

/// A MID server: an absolute `http://` proxy URL, and proxy authentication
/// with both a user and a password or neither.
fn mid_server_rules(name: &str, m: &MidServer, out: &mut Vec<RuleViolation>) {
    const KIND: RecordKind = RecordKind::MidServer;
    let rule = |rule, field, message: String, hint: &str| {
        RuleViolation::new(rule, KIND, name, Some(field), message, hint)
    };
    if let Err((message, hint)) = check_proxy_url(&m.url) {
        out.push(rule(RULE_URL, "url", message, hint));
    }
    match (&m.user, &m.password) {
        (None, Some(_)) => out.push(rule(
            RULE_PROXY_AUTH,
            "password",
            format!("mid-server '{name}' has a password source but no user"),
            "add --user USER: the proxy user the password belongs to (or, on edit, --no-user for no proxy authentication)",
        )),
        (Some(_), None) => out.push(rule(
            RULE_PROXY_AUTH,
            "user",
            format!("mid-server '{name}' has a user but no password"),
            &format!(
                "add {PASSWORD_FLAGS} (or, on edit, --no-user for no proxy authentication)"
            ),
        )),
        _ => {}
    }
    if let Some(user) = &m.user
        && let Some(problem) = basic_user_problem(user)
    {
        out.push(rule(
            RULE_BASIC_USER,
            "user",
            format!(
                "mid-server '{name}': the proxy user '{}' {problem}",
                escape(user)
            ),
            "give the user-id without ':' (proxy authentication is Basic, RFC 7617)",
        ));
    }
}

/// The name nearest to `name` (case-insensitive edit distance), if near enough.
fn closest<'a>(names: &[&'a str], name: &str) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    names
        .iter()
        .map(|n| (edit_distance(&n.to_ascii_lowercase(), &lower), *n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            closest(&["incident-sync", "other"], "incident-snyc"),
            Some("incident-sync")
        );
        assert_eq!(closest(&["abc"], "xyz"), None);
    }

    #[test]
    fn basic_users() {
        assert_eq!(basic_user_problem("svc.incident"), None);
        assert!(basic_user_problem("a:b").is_some());
        assert!(basic_user_problem("a\nb").is_some());
    }
}
