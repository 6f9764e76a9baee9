//! What differs between two connections (`connection diff`, `integration diff`):
//! the facts of each side gathered once, then compared field by field by a pure
//! function, each row `same`, `differs (expected)` or `differs`.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::model::SecretSource;
use crate::outbound::{Outcome, Target};

/// How two values of one field relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Same,
    /// They differ where environments are meant to (host, names, values).
    Expected,
    /// They differ where environments should not.
    Differs,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Same => "same",
            Verdict::Expected => "differs (expected)",
            Verdict::Differs => "differs",
        }
    }
}

/// One field of the comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub field: String,
    pub a: String,
    pub b: String,
    pub verdict: Verdict,
    /// Accepted with `--ignore`: shown, but no longer unexpected.
    pub ignored: bool,
}

/// The rows comparing connection `a` with `b`, and notes for the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

/// Field names `--ignore` accepts besides the rows' own names: groups.
pub const GROUPS: [&str; 7] = [
    "oauth",
    "certificate",
    "endpoint",
    "mid_server",
    "protocol_profile",
    "variables",
    "live",
];

/// Every field a comparison can have (variables as `variables.KEY`).
pub const FIELDS: [&str; 24] = [
    "integration",
    "environment",
    "authentication",
    "user",
    "password",
    "oauth_profile",
    "oauth.token_host",
    "oauth.grant",
    "oauth.client_auth",
    "oauth.scopes",
    "oauth.client_secret",
    "mutual_auth",
    "protocol_profile",
    "certificate",
    "certificate.subject",
    "certificate.issuer",
    "certificate.key_type",
    "certificate.days_to_expiry",
    "protocol_profile.ca_bundle",
    "ca_bundle",
    "mid_server",
    "mid_server.host",
    "mid_server.password",
    "inbound_user",
];

/// More fields: the endpoint and, with `--live`, what the servers showed.
pub const MORE_FIELDS: [&str; 14] = [
    "endpoint.scheme",
    "endpoint.host",
    "endpoint.port",
    "endpoint.path",
    "live.result",
    "live.tls_version",
    "live.alpn",
    "live.server_issuer",
    "live.server_days_to_expiry",
    "live.client_cert_requested",
    "live.status",
    "live.status_class",
    "live.content_type",
    "variables.KEY",
];

/// Whether `--ignore NAME` names a field or group a comparison can have.
pub fn is_known_field(name: &str) -> bool {
    FIELDS.contains(&name)
        || GROUPS.contains(&name)
        || (MORE_FIELDS.contains(&name) && name != "variables.KEY")
        || name
            .strip_prefix("variables.")
            .is_some_and(|k| !k.is_empty())
}

impl Comparison {
    /// Rows that differ unexpectedly and are not ignored.
    pub fn unexpected(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Differs && !r.ignored)
            .count()
    }

    /// Accepts the differences of `fields`: a row's own name or a group
    /// (`variables` covers `variables.table`).
    pub fn ignore(&mut self, fields: &[String]) {
        for row in &mut self.rows {
            let covered = fields.iter().any(|f| {
                row.field == *f
                    || row
                        .field
                        .strip_prefix(f.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            });
            if covered && row.verdict == Verdict::Differs {
                row.ignored = true;
            }
        }
    }

    /// The `-o json` object: `{a, b, rows: [{field, a, b, verdict}], unexpected}`.
    pub fn to_json(&self) -> Value {
        json!({
            "a": self.a,
            "b": self.b,
            "rows": self.rows.iter().map(|r| {
                let mut row = json!({
                    "field": r.field,
                    "a": r.a,
                    "b": r.b,
                    "verdict": if r.ignored { Verdict::Expected.as_str() } else { r.verdict.as_str() },
                });
                if r.ignored {
                    row["ignored"] = Value::Bool(true);
                }
                row
            }).collect::<Vec<_>>(),
            "unexpected": self.unexpected(),
            "notes": self.notes,
        })
    }
}

/// A certificate as the comparison sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    pub subject: String,
    pub issuer: String,
    pub key_type: String,
    pub days_left: i64,
}

/// The OAuth profile of a side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OauthFacts {
    pub profile: String,
    pub token_host: String,
    pub grant: String,
    pub client_auth: String,
    pub scopes: String,
    pub client_secret: Option<String>,
}

/// The protocol profile of a side; `cert` is the reason when it cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolFacts {
    pub profile: String,
    pub cert: Result<CertFacts, String>,
    pub ca_bundle: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MidFacts {
    pub name: String,
    pub host: String,
    pub password: Option<String>,
}

/// Everything about one connection that the comparison looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub name: String,
    pub integration: String,
    pub environment: String,
    pub authentication: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub oauth: Option<OauthFacts>,
    pub mutual_auth: bool,
    pub protocol: Option<ProtocolFacts>,
    pub ca_bundle: Option<String>,
    pub mid: Option<MidFacts>,
    pub inbound_user: Option<String>,
    pub scheme: String,
    pub host: String,
    pub port: String,
    pub path: String,
    pub variables: Vec<(String, String)>,
}

/// The kind of a secret source (`keyring`, `env`, `file`, `cmd`, `vault`): where the
/// value lives, never which variable, file or command.
pub fn source_kind(source: &SecretSource) -> &'static str {
    match source {
        SecretSource::Keyring => "keyring",
        SecretSource::Env(_) => "env",
        SecretSource::File(_) => "file",
        SecretSource::Cmd(_) => "cmd",
        SecretSource::Vault { .. } => "vault",
    }
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| url.to_string())
}

impl Facts {
    /// The facts of `target`; `read_cert` reads the protocol profile's
    /// client certificate (a file, so the caller decides how).
    pub fn of(target: &Target, read_cert: impl Fn(&Path) -> Result<CertFacts, String>) -> Facts {
        let c = &target.connection;
        let url = url::Url::parse(&c.endpoint_url).ok();
        Facts {
            name: target.name.clone(),
            integration: c.integration.clone(),
            environment: c.environment.to_string(),
            authentication: c.authentication.as_str().to_string(),
            user: c.user.clone(),
            password: c.password.as_ref().map(|s| source_kind(s).to_string()),
            oauth: target.oauth.as_ref().map(|(name, p)| OauthFacts {
                profile: name.clone(),
                token_host: host_of(&p.token_url),
                grant: p.grant.as_str().to_string(),
                client_auth: p.client_auth.as_str().to_string(),
                scopes: p.scopes.join(" "),
                client_secret: p.client_secret.as_ref().map(|s| source_kind(s).to_string()),
            }),
            mutual_auth: c.mutual_auth,
            protocol: target.protocol.as_ref().map(|(name, p)| ProtocolFacts {
                profile: name.clone(),
                cert: read_cert(&p.client_cert),
                ca_bundle: p.ca_bundle.as_ref().map(|b| b.display().to_string()),
            }),
            ca_bundle: c.ca_bundle.as_ref().map(|b| b.display().to_string()),
            mid: target.mid.as_ref().map(|(name, m)| MidFacts {
                name: name.clone(),
                host: host_of(&m.url),
                password: m.password.as_ref().map(|s| source_kind(s).to_string()),
            }),
            inbound_user: c.inbound_user.clone(),
            scheme: url
                .as_ref()
                .map(|u| u.scheme().to_string())
                .unwrap_or_default(),
            host: url
                .as_ref()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default(),
            port: url
                .as_ref()
                .and_then(|u| u.port_or_known_default())
                .map(|p| p.to_string())
                .unwrap_or_default(),
            path: url
                .as_ref()
                .map(|u| u.path().to_string())
                .unwrap_or_default(),
            variables: c
                .variables
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// Reads the first certificate of a PEM file: subject, issuer, key type, days left.
pub fn read_cert(path: &Path) -> Result<CertFacts, String> {
    let certs = crate::pem::load_certs(path, "client certificate").map_err(|e| {
        let mut text = e.message;
        for cause in e.causes {
            text.push_str(": ");
            text.push_str(&cause);
        }
        text
    })?;
    let (_, cert) = x509_parser::parse_x509_certificate(certs[0].as_ref())
        .map_err(|e| format!("the client certificate does not parse: {e}"))?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Ok(CertFacts {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        key_type: key_type(cert.public_key()),
        days_left: (cert.validity().not_after.timestamp() - now).div_euclid(86_400),
    })
}

fn key_type(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> String {
    use x509_parser::oid_registry as oids;
    use x509_parser::public_key::PublicKey;
    let alg = &spki.algorithm;
    if alg.algorithm == oids::OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = alg
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|oid| {
                if oid == oids::OID_EC_P256 {
                    "P-256".to_string()
                } else if oid == oids::OID_NIST_EC_P384 {
                    "P-384".to_string()
                } else if oid == oids::OID_NIST_EC_P521 {
                    "P-521".to_string()
                } else {
                    oid.to_id_string()
                }
            })
            .unwrap_or_else(|| "unknown curve".to_string());
        return format!("EC {curve}");
    }
    if alg.algorithm == oids::OID_SIG_ED25519 {
        return "Ed25519".to_string();
    }
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
        _ => alg.algorithm.to_id_string(),
    }
}

const NONE: &str = "-";

fn show(value: Option<&str>) -> String {
    value.unwrap_or(NONE).to_string()
}

/// The rows being built.
struct Rows(Vec<Row>);

impl Rows {
    fn push(&mut self, field: &str, a: String, b: String, verdict: Verdict) {
        self.0.push(Row {
            field: field.to_string(),
            a,
            b,
            verdict,
            ignored: false,
        });
    }

    /// Must be equal (presence included).
    fn strict(&mut self, field: &str, a: Option<&str>, b: Option<&str>) {
        let verdict = if a == b {
            Verdict::Same
        } else {
            Verdict::Differs
        };
        self.push(field, show(a), show(b), verdict);
    }

    /// Must be present on both sides or on neither; the values may differ.
    fn presence(&mut self, field: &str, a: Option<&str>, b: Option<&str>) {
        let verdict = match (a, b) {
            _ if a == b => Verdict::Same,
            (Some(_), Some(_)) => Verdict::Expected,
            _ => Verdict::Differs,
        };
        self.push(field, show(a), show(b), verdict);
    }
}

fn days_text(days: i64) -> String {
    match days {
        d if d < 0 => format!("EXPIRED {} days ago", -d),
        d if d < 30 => format!("{d} (RENEW SOON)"),
        d => d.to_string(),
    }
}

/// Compares connection `a` with `b` field by field.
pub fn compare(a: &Facts, b: &Facts) -> Comparison {
    let mut rows = Rows(Vec::new());
    let mut notes = Vec::new();

    rows.presence("integration", Some(&a.integration), Some(&b.integration));
    if a.integration != b.integration {
        notes.push(format!(
            "the connections belong to different integrations ('{}' and '{}')",
            a.integration, b.integration
        ));
    }
    rows.presence("environment", Some(&a.environment), Some(&b.environment));
    if a.environment == b.environment {
        notes.push(format!(
            "both connections reach the {} environment",
            a.environment
        ));
    }
    rows.strict(
        "authentication",
        Some(&a.authentication),
        Some(&b.authentication),
    );
    rows.presence("user", a.user.as_deref(), b.user.as_deref());
    rows.strict("password", a.password.as_deref(), b.password.as_deref());

    let (ao, bo) = (a.oauth.as_ref(), b.oauth.as_ref());
    rows.presence(
        "oauth_profile",
        ao.map(|o| o.profile.as_str()),
        bo.map(|o| o.profile.as_str()),
    );
    if ao.is_some() || bo.is_some() {
        rows.presence(
            "oauth.token_host",
            ao.map(|o| o.token_host.as_str()),
            bo.map(|o| o.token_host.as_str()),
        );
        rows.strict(
            "oauth.grant",
            ao.map(|o| o.grant.as_str()),
            bo.map(|o| o.grant.as_str()),
        );
        rows.strict(
            "oauth.client_auth",
            ao.map(|o| o.client_auth.as_str()),
            bo.map(|o| o.client_auth.as_str()),
        );
        rows.strict(
            "oauth.scopes",
            ao.map(|o| o.scopes.as_str()),
            bo.map(|o| o.scopes.as_str()),
        );
        rows.strict(
            "oauth.client_secret",
            ao.and_then(|o| o.client_secret.as_deref()),
            bo.and_then(|o| o.client_secret.as_deref()),
        );
    }

    let on_off = |on: bool| if on { "on" } else { "off" };
    rows.strict(
        "mutual_auth",
        Some(on_off(a.mutual_auth)),
        Some(on_off(b.mutual_auth)),
    );
    let (ap, bp) = (a.protocol.as_ref(), b.protocol.as_ref());
    rows.presence(
        "protocol_profile",
        ap.map(|p| p.profile.as_str()),
        bp.map(|p| p.profile.as_str()),
    );
    if ap.is_some() || bp.is_some() {
        let (ac, bc) = (ap.map(|p| &p.cert), bp.map(|p| &p.cert));
        if matches!(ac, Some(Err(_))) || matches!(bc, Some(Err(_))) {
            let text = |c: Option<&Result<CertFacts, String>>| match c {
                None => NONE.to_string(),
                Some(Ok(c)) => c.subject.clone(),
                Some(Err(why)) => format!("unreadable: {why}"),
            };
            rows.push("certificate", text(ac), text(bc), Verdict::Differs);
        } else {
            let (ac, bc) = (
                ac.and_then(|c| c.as_ref().ok()),
                bc.and_then(|c| c.as_ref().ok()),
            );
            rows.presence(
                "certificate.subject",
                ac.map(|c| c.subject.as_str()),
                bc.map(|c| c.subject.as_str()),
            );
            rows.strict(
                "certificate.issuer",
                ac.map(|c| c.issuer.as_str()),
                bc.map(|c| c.issuer.as_str()),
            );
            rows.strict(
                "certificate.key_type",
                ac.map(|c| c.key_type.as_str()),
                bc.map(|c| c.key_type.as_str()),
            );
            let (ad, bd) = (ac.map(|c| c.days_left), bc.map(|c| c.days_left));
            let verdict = match (ad, bd) {
                _ if ad == bd => Verdict::Same,
                (Some(x), Some(y)) if x >= 30 && y >= 30 => Verdict::Expected,
                _ => Verdict::Differs,
            };
            rows.push(
                "certificate.days_to_expiry",
                ad.map(days_text).unwrap_or_else(|| NONE.into()),
                bd.map(days_text).unwrap_or_else(|| NONE.into()),
                verdict,
            );
        }
        rows.presence(
            "protocol_profile.ca_bundle",
            ap.and_then(|p| p.ca_bundle.as_deref()),
            bp.and_then(|p| p.ca_bundle.as_deref()),
        );
    }
    rows.presence("ca_bundle", a.ca_bundle.as_deref(), b.ca_bundle.as_deref());

    let (am, bm) = (a.mid.as_ref(), b.mid.as_ref());
    rows.presence(
        "mid_server",
        am.map(|m| m.name.as_str()),
        bm.map(|m| m.name.as_str()),
    );
    if am.is_some() || bm.is_some() {
        rows.presence(
            "mid_server.host",
            am.map(|m| m.host.as_str()),
            bm.map(|m| m.host.as_str()),
        );
        rows.strict(
            "mid_server.password",
            am.and_then(|m| m.password.as_deref()),
            bm.and_then(|m| m.password.as_deref()),
        );
    }
    rows.presence(
        "inbound_user",
        a.inbound_user.as_deref(),
        b.inbound_user.as_deref(),
    );

    rows.strict("endpoint.scheme", Some(&a.scheme), Some(&b.scheme));
    rows.presence("endpoint.host", Some(&a.host), Some(&b.host));
    rows.strict("endpoint.port", Some(&a.port), Some(&b.port));
    rows.strict("endpoint.path", Some(&a.path), Some(&b.path));

    let keys: BTreeSet<&str> = a
        .variables
        .iter()
        .chain(&b.variables)
        .map(|(k, _)| k.as_str())
        .collect();
    let value = |f: &Facts, k: &str| {
        f.variables
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    for key in keys {
        rows.presence(
            &format!("variables.{key}"),
            value(a, key).as_deref(),
            value(b, key).as_deref(),
        );
    }

    Comparison {
        a: a.name.clone(),
        b: b.name.clone(),
        rows: rows.0,
        notes,
    }
}

/// What a server showed to one side's staged test (`--live`).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveFacts {
    /// The stage that failed and why, when the test failed.
    pub failed: Option<(String, String)>,
    pub tls_version: Option<String>,
    pub alpn: Option<String>,
    pub server_issuer: Option<String>,
    pub server_days_left: Option<i64>,
    pub client_cert_requested: Option<bool>,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    /// Each stage with its milliseconds, in order.
    pub stages: Vec<(String, f64)>,
}

impl LiveFacts {
    /// A side whose test failed at `stage` before the server showed anything.
    pub fn failed_at(stage: &str, why: &str, stages: Vec<(String, f64)>) -> LiveFacts {
        LiveFacts {
            failed: Some((stage.to_string(), why.to_string())),
            tls_version: None,
            alpn: None,
            server_issuer: None,
            server_days_left: None,
            client_cert_requested: None,
            status: None,
            content_type: None,
            stages,
        }
    }

    pub fn of(outcome: &Outcome) -> LiveFacts {
        let tls = outcome.trace.tls.as_ref();
        let failed = outcome.error.as_ref().map(|e| {
            (
                outcome
                    .trace
                    .failed_stage()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "verdict".to_string()),
                e.message.clone(),
            )
        });
        LiveFacts {
            failed,
            tls_version: tls.map(|t| t.version.clone()),
            alpn: tls.and_then(|t| t.alpn.clone()),
            server_issuer: tls.and_then(|t| t.server.as_ref().map(|c| c.issuer.clone())),
            server_days_left: tls.and_then(|t| t.server.as_ref().map(|c| c.days_left())),
            client_cert_requested: tls.map(|t| t.client_cert_requested),
            status: outcome.status(),
            content_type: outcome.response.as_ref().and_then(|r| {
                r.headers
                    .get(http::header::CONTENT_TYPE)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            }),
            stages: outcome
                .trace
                .stages
                .iter()
                .map(|s| (s.stage.as_str().to_string(), s.ms))
                .collect(),
        }
    }
}

/// Stage timings of both sides, side by side; never a verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub stage: String,
    pub a_ms: Option<f64>,
    pub b_ms: Option<f64>,
}

/// Adds the `live.*` rows comparing what the two servers showed, and returns
/// the stage timings side by side.
pub fn compare_live(c: &mut Comparison, a: &LiveFacts, b: &LiveFacts) -> Vec<Timing> {
    let mut rows = Rows(Vec::new());
    let result = |f: &LiveFacts| match &f.failed {
        None => "ok".to_string(),
        Some((stage, why)) => format!("FAILED at {stage}: {why}"),
    };
    let verdict = if a.failed.is_none() && b.failed.is_none() {
        Verdict::Same
    } else {
        Verdict::Differs
    };
    rows.push("live.result", result(a), result(b), verdict);
    rows.strict(
        "live.tls_version",
        a.tls_version.as_deref(),
        b.tls_version.as_deref(),
    );
    rows.strict("live.alpn", a.alpn.as_deref(), b.alpn.as_deref());
    rows.strict(
        "live.server_issuer",
        a.server_issuer.as_deref(),
        b.server_issuer.as_deref(),
    );
    let (ad, bd) = (a.server_days_left, b.server_days_left);
    let verdict = match (ad, bd) {
        _ if ad == bd => Verdict::Same,
        (Some(x), Some(y)) if x >= 30 && y >= 30 => Verdict::Expected,
        _ => Verdict::Differs,
    };
    rows.push(
        "live.server_days_to_expiry",
        ad.map(days_text).unwrap_or_else(|| NONE.into()),
        bd.map(days_text).unwrap_or_else(|| NONE.into()),
        verdict,
    );
    let yes_no = |v: Option<bool>| v.map(|r| if r { "yes" } else { "no" });
    rows.strict(
        "live.client_cert_requested",
        yes_no(a.client_cert_requested),
        yes_no(b.client_cert_requested),
    );
    let status = |f: &LiveFacts| f.status.map(|s| s.to_string());
    rows.presence("live.status", status(a).as_deref(), status(b).as_deref());
    let class = |f: &LiveFacts| f.status.map(|s| format!("{}xx", s / 100));
    rows.strict(
        "live.status_class",
        class(a).as_deref(),
        class(b).as_deref(),
    );
    // `application/json; charset=utf-8` and `application/json` are the same type.
    let essence = |f: &LiveFacts| {
        f.content_type.as_ref().map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    };
    let verdict = if essence(a) == essence(b) {
        Verdict::Same
    } else {
        Verdict::Differs
    };
    rows.push(
        "live.content_type",
        show(a.content_type.as_deref()),
        show(b.content_type.as_deref()),
        verdict,
    );
    c.rows.extend(rows.0);

    let mut timings: Vec<Timing> = Vec::new();
    for (stage, _) in a.stages.iter().chain(&b.stages) {
        if timings.iter().any(|t| t.stage == *stage) {
            continue;
        }
        let ms = |f: &LiveFacts| f.stages.iter().find(|(s, _)| s == stage).map(|(_, ms)| *ms);
        timings.push(Timing {
            stage: stage.clone(),
            a_ms: ms(a),
            b_ms: ms(b),
        });
    }
    timings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(issuer: &str, days: i64) -> CertFacts {
        CertFacts {
            subject: "CN=client".into(),
            issuer: issuer.into(),
            key_type: "EC P-256".into(),
            days_left: days,
        }
    }

    fn facts(name: &str, env: &str, host: &str) -> Facts {
        Facts {
            name: name.into(),
            integration: "orders".into(),
            environment: env.into(),
            authentication: "basic".into(),
            user: Some(format!("svc.{env}")),
            password: Some("keyring".into()),
            oauth: None,
            mutual_auth: false,
            protocol: None,
            ca_bundle: None,
            mid: None,
            inbound_user: None,
            scheme: "https".into(),
            host: host.into(),
            port: "443".into(),
            path: "/api/orders".into(),
            variables: vec![("table".into(), format!("t_{env}"))],
        }
    }

    fn row<'a>(c: &'a Comparison, field: &str) -> &'a Row {
        c.rows
            .iter()
            .find(|r| r.field == field)
            .unwrap_or_else(|| panic!("no row {field}: {:#?}", c.rows))
    }

    fn verdicts(c: &Comparison) -> Vec<(&str, Verdict)> {
        c.rows
            .iter()
            .map(|r| (r.field.as_str(), r.verdict))
            .collect()
    }

    #[test]
    fn matching_environments_differ_only_where_expected() {
        let c = compare(
            &facts("o.test", "test", "test.example.com"),
            &facts("o.prod", "production", "api.example.com"),
        );
        assert_eq!(
            verdicts(&c),
            [
                ("integration", Verdict::Same),
                ("environment", Verdict::Expected),
                ("authentication", Verdict::Same),
                ("user", Verdict::Expected),
                ("password", Verdict::Same),
                ("oauth_profile", Verdict::Same),
                ("mutual_auth", Verdict::Same),
                ("protocol_profile", Verdict::Same),
                ("ca_bundle", Verdict::Same),
                ("mid_server", Verdict::Same),
                ("inbound_user", Verdict::Same),
                ("endpoint.scheme", Verdict::Same),
                ("endpoint.host", Verdict::Expected),
                ("endpoint.port", Verdict::Same),
                ("endpoint.path", Verdict::Same),
                ("variables.table", Verdict::Expected),
            ]
        );
        assert_eq!(c.unexpected(), 0);
        assert!(c.notes.is_empty(), "{:?}", c.notes);
        let host = row(&c, "endpoint.host");
        assert_eq!(
            (host.a.as_str(), host.b.as_str()),
            ("test.example.com", "api.example.com")
        );
    }

    #[test]
    fn authentication_mutual_auth_mid_and_variable_keys_differ() {
        let a = facts("a", "test", "h1");
        let mut b = facts("b", "production", "h2");
        b.authentication = "oauth".into();
        b.user = None;
        b.password = None;
        b.oauth = Some(OauthFacts {
            profile: "idp".into(),
            token_host: "idp.example.com".into(),
            grant: "client_credentials".into(),
            client_auth: "basic".into(),
            scopes: "a b".into(),
            client_secret: Some("env".into()),
        });
        b.mutual_auth = true;
        b.protocol = Some(ProtocolFacts {
            profile: "mtls".into(),
            cert: Ok(cert("CN=CA", 90)),
            ca_bundle: None,
        });
        b.mid = Some(MidFacts {
            name: "dmz".into(),
            host: "mid.internal".into(),
            password: None,
        });
        b.variables.push(("only_b".into(), "x".into()));
        let c = compare(&a, &b);
        for (field, a_text, b_text) in [
            ("authentication", "basic", "oauth"),
            ("user", "svc.test", "-"),
            ("password", "keyring", "-"),
            ("oauth_profile", "-", "idp"),
            ("oauth.grant", "-", "client_credentials"),
            ("oauth.client_secret", "-", "env"),
            ("mutual_auth", "off", "on"),
            ("protocol_profile", "-", "mtls"),
            ("certificate.issuer", "-", "CN=CA"),
            ("certificate.days_to_expiry", "-", "90"),
            ("mid_server", "-", "dmz"),
            ("mid_server.host", "-", "mid.internal"),
            ("variables.only_b", "-", "x"),
        ] {
            let r = row(&c, field);
            assert_eq!(
                (r.a.as_str(), r.b.as_str(), r.verdict),
                (a_text, b_text, Verdict::Differs),
                "{field}"
            );
        }
        // Same on both sides: no password on the MID server of either.
        assert_eq!(row(&c, "mid_server.password").verdict, Verdict::Same);
        assert_eq!(c.unexpected(), 18);
    }

    #[test]
    fn certificate_from_another_issuer_and_expiry() {
        let mut a = facts("a", "test", "h1");
        let mut b = facts("b", "production", "h2");
        a.mutual_auth = true;
        b.mutual_auth = true;
        a.protocol = Some(ProtocolFacts {
            profile: "p-test".into(),
            cert: Ok(cert("CN=Test CA", 200)),
            ca_bundle: Some("/etc/ca.pem".into()),
        });
        b.protocol = Some(ProtocolFacts {
            profile: "p-prod".into(),
            cert: Ok(cert("CN=Prod CA", 90)),
            ca_bundle: Some("/etc/ca-prod.pem".into()),
        });
        let c = compare(&a, &b);
        assert_eq!(row(&c, "protocol_profile").verdict, Verdict::Expected);
        assert_eq!(row(&c, "certificate.subject").verdict, Verdict::Same);
        assert_eq!(row(&c, "certificate.issuer").verdict, Verdict::Differs);
        assert_eq!(row(&c, "certificate.key_type").verdict, Verdict::Same);
        assert_eq!(
            row(&c, "certificate.days_to_expiry").verdict,
            Verdict::Expected
        );
        assert_eq!(
            row(&c, "protocol_profile.ca_bundle").verdict,
            Verdict::Expected
        );
        assert_eq!(c.unexpected(), 1);

        // Inside 30 days is worth a look.
        b.protocol.as_mut().unwrap().cert = Ok(cert("CN=Test CA", 12));
        let c = compare(&a, &b);
        let r = row(&c, "certificate.days_to_expiry");
        assert_eq!(
            (r.b.as_str(), r.verdict),
            ("12 (RENEW SOON)", Verdict::Differs)
        );
    }

    #[test]
    fn unreadable_certificate_is_one_differs_row_with_the_cause() {
        let mut a = facts("a", "test", "h1");
        let mut b = facts("b", "production", "h2");
        a.mutual_auth = true;
        b.mutual_auth = true;
        a.protocol = Some(ProtocolFacts {
            profile: "p".into(),
            cert: Ok(cert("CN=CA", 90)),
            ca_bundle: None,
        });
        b.protocol = Some(ProtocolFacts {
            profile: "p".into(),
            cert: Err("cannot read the client certificate /x.pem".into()),
            ca_bundle: None,
        });
        let c = compare(&a, &b);
        let r = row(&c, "certificate");
        assert_eq!(r.a, "CN=client");
        assert_eq!(r.b, "unreadable: cannot read the client certificate /x.pem");
        assert_eq!(r.verdict, Verdict::Differs);
        assert!(!c.rows.iter().any(|r| r.field == "certificate.issuer"));
    }

    #[test]
    fn different_integrations_are_allowed_with_a_note() {
        let a = facts("a", "test", "h1");
        let mut b = facts("b", "test", "h1");
        b.integration = "billing".into();
        let c = compare(&a, &b);
        assert_eq!(row(&c, "integration").verdict, Verdict::Expected);
        assert_eq!(
            c.notes,
            [
                "the connections belong to different integrations ('orders' and 'billing')",
                "both connections reach the test environment"
            ]
        );
    }

    #[test]
    fn ignore_accepts_fields_and_groups() {
        let a = facts("a", "test", "h1");
        let mut b = facts("b", "production", "h2");
        b.path = "/api/v2".into();
        b.variables = vec![("other".into(), "1".into())];
        let mut c = compare(&a, &b);
        assert_eq!(c.unexpected(), 3);
        c.ignore(&["variables".into()]);
        assert_eq!(c.unexpected(), 1);
        c.ignore(&["endpoint.path".into(), "endpoint.pat".into()]);
        assert_eq!(c.unexpected(), 0);
        let json = c.to_json();
        let path = json["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["field"] == "endpoint.path")
            .unwrap();
        assert_eq!(path["verdict"], "differs (expected)");
        assert_eq!(path["ignored"], true);
        assert_eq!(json["unexpected"], 0);
        assert_eq!(json["a"], "a");
    }

    fn live(version: &str, issuer: &str, status: u16) -> LiveFacts {
        LiveFacts {
            failed: None,
            tls_version: Some(version.into()),
            alpn: Some("h2".into()),
            server_issuer: Some(issuer.into()),
            server_days_left: Some(89),
            client_cert_requested: Some(false),
            status: Some(status),
            content_type: Some("application/json".into()),
            stages: vec![
                ("dns".into(), 0.5),
                ("tls".into(), 3.0),
                ("http".into(), 2.0),
            ],
        }
    }

    #[test]
    fn live_rows_compare_what_the_servers_showed() {
        let base = compare(&facts("a", "test", "h1"), &facts("b", "production", "h2"));
        let mut c = base.clone();
        let a = live("TLS 1.3", "CN=CA", 200);
        let mut b = live("TLS 1.3", "CN=CA", 204);
        b.content_type = Some("Application/JSON; charset=utf-8".into());
        b.stages.insert(1, ("mid_connect".into(), 1.0));
        let timings = compare_live(&mut c, &a, &b);
        assert_eq!(c.unexpected(), 0, "{:#?}", c.rows);
        assert_eq!(row(&c, "live.status").verdict, Verdict::Expected);
        assert_eq!(row(&c, "live.status_class").a, "2xx");
        assert_eq!(row(&c, "live.content_type").verdict, Verdict::Same);
        assert_eq!(
            timings
                .iter()
                .map(|t| (t.stage.as_str(), t.a_ms, t.b_ms))
                .collect::<Vec<_>>(),
            [
                ("dns", Some(0.5), Some(0.5)),
                ("tls", Some(3.0), Some(3.0)),
                ("http", Some(2.0), Some(2.0)),
                ("mid_connect", None, Some(1.0)),
            ]
        );

        let mut c = base.clone();
        let b = live("TLS 1.2", "CN=Other CA", 500);
        compare_live(&mut c, &a, &b);
        for field in [
            "live.tls_version",
            "live.server_issuer",
            "live.status_class",
        ] {
            assert_eq!(row(&c, field).verdict, Verdict::Differs, "{field}");
        }
        assert_eq!(c.unexpected(), 3);
    }

    #[test]
    fn a_failed_side_names_its_stage() {
        let mut c = compare(&facts("a", "test", "h1"), &facts("b", "production", "h2"));
        let a = live("TLS 1.3", "CN=CA", 200);
        let b = LiveFacts::failed_at(
            "tcp",
            "connection refused",
            vec![("dns".into(), 0.1), ("tcp".into(), 0.2)],
        );
        compare_live(&mut c, &a, &b);
        let r = row(&c, "live.result");
        assert_eq!(
            (r.a.as_str(), r.b.as_str(), r.verdict),
            ("ok", "FAILED at tcp: connection refused", Verdict::Differs)
        );
    }

    #[test]
    fn known_fields_for_ignore() {
        for f in [
            "variables.table",
            "certificate",
            "endpoint.path",
            "live.tls_version",
            "oauth",
        ] {
            assert!(is_known_field(f), "{f}");
        }
        for f in ["variables.", "endpoint.hostname", "nope", "live"] {
            assert_eq!(is_known_field(f), f == "live", "{f}");
        }
    }
}
