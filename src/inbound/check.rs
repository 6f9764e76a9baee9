//! `inbound check`: which connection admits an inbound user, or why none does (DESIGN.md §1 rule 5).

use serde_json::{Value, json};

use crate::error::Result;
use crate::model::{Environment, RecordKind, Store};
use crate::secrets::{self, Secret, SecretRef};

/// The connection through which an inbound user is admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub integration: String,
    pub connection: String,
    pub environment: Environment,
}

/// An inactive connection that names the user: activating it would admit the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InactiveCandidate {
    pub connection: String,
    pub integration: String,
    pub environment: Environment,
    /// The integration's currently active connection, which activation would deactivate.
    pub active_sibling: Option<String>,
}

/// Why an inbound user is not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    NoSuchUser,
    /// A password was given but the user has no password source.
    NoPassword,
    WrongPassword,
    NoConnection,
    OnlyInactive(Vec<InactiveCandidate>),
}

impl Denial {
    /// A stable word for scripts (`-o json` field `code`).
    pub fn code(&self) -> &'static str {
        match self {
            Denial::NoSuchUser => "no_such_user",
            Denial::NoPassword => "no_password",
            Denial::WrongPassword => "wrong_password",
            Denial::NoConnection => "no_connection",
            Denial::OnlyInactive(_) => "only_inactive",
        }
    }
}

/// The answer of `inbound check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub user: String,
    pub verdict: std::result::Result<Admission, Denial>,
}

impl CheckReport {
    pub fn admitted(&self) -> bool {
        self.verdict.is_ok()
    }

    pub fn code(&self) -> &'static str {
        match &self.verdict {
            Ok(_) => "admitted",
            Err(denial) => denial.code(),
        }
    }

    /// One sentence an operator reads.
    pub fn reason(&self) -> String {
        let user = &self.user;
        match &self.verdict {
            Ok(a) => format!(
                "inbound-user '{user}' is admitted through connection '{}' ({}) of integration '{}'",
                a.connection, a.environment, a.integration
            ),
            Err(Denial::NoSuchUser) => format!("inbound-user '{user}' does not exist"),
            Err(Denial::NoPassword) => {
                format!("inbound-user '{user}' has no password, so no password can match")
            }
            Err(Denial::WrongPassword) => {
                format!("the password given does not match inbound-user '{user}'")
            }
            Err(Denial::NoConnection) => {
                format!("no connection names inbound-user '{user}'")
            }
            Err(Denial::OnlyInactive(candidates)) => {
                let names: Vec<String> = candidates
                    .iter()
                    .map(|c| {
                        format!(
                            "'{}' ({}, integration '{}')",
                            c.connection, c.environment, c.integration
                        )
                    })
                    .collect();
                let noun = if names.len() == 1 {
                    "connection"
                } else {
                    "connections"
                };
                format!(
                    "inbound-user '{user}' is only on inactive {noun}: {}",
                    names.join(", ")
                )
            }
        }
    }

    /// What the operator can run to change the verdict.
    pub fn hint(&self) -> Option<String> {
        match &self.verdict {
            Ok(_) => None,
            Err(Denial::NoSuchUser) => Some(format!(
                "run `connctl inbound-user list` to see the names, or `connctl inbound-user add {}` to create it",
                self.user
            )),
            Err(Denial::NoPassword) | Err(Denial::WrongPassword) => Some(format!(
                "set the password with `connctl inbound-user set-password {} --password-stdin`",
                self.user
            )),
            Err(Denial::NoConnection) => Some(format!(
                "name it on a connection: `connctl connection edit NAME --inbound-user {}`",
                self.user
            )),
            Err(Denial::OnlyInactive(candidates)) => {
                let commands: Vec<String> = candidates
                    .iter()
                    .map(|c| {
                        let mut command = format!("`connctl connection activate {}`", c.connection);
                        if let Some(sibling) = &c.active_sibling {
                            command.push_str(&format!(
                                " (deactivates '{sibling}' of integration '{}')",
                                c.integration
                            ));
                        }
                        command
                    })
                    .collect();
                match commands.as_slice() {
                    [] => None,
                    [one] => Some(format!("{one} would admit it")),
                    many => Some(format!(
                        "any one of these would admit it: {}",
                        many.join("; ")
                    )),
                }
            }
        }
    }

    /// `-o json`: {user, admitted, integration, connection, environment, reason, code, ...}.
    pub fn to_json(&self) -> Value {
        let (integration, connection, environment) = match &self.verdict {
            Ok(a) => (
                json!(a.integration),
                json!(a.connection),
                json!(a.environment.as_str()),
            ),
            Err(_) => (Value::Null, Value::Null, Value::Null),
        };
        let inactive: Vec<Value> = match &self.verdict {
            Err(Denial::OnlyInactive(candidates)) => candidates
                .iter()
                .map(|c| {
                    json!({
                        "connection": c.connection,
                        "integration": c.integration,
                        "environment": c.environment.as_str(),
                        "active_sibling": c.active_sibling,
                        "activate_command": format!("connctl connection activate {}", c.connection),
                    })
                })
                .collect(),
            _ => Vec::new(),
        };
        json!({
            "user": self.user,
            "admitted": self.admitted(),
            "integration": integration,
            "connection": connection,
            "environment": environment,
            "reason": self.reason(),
            "code": self.code(),
            "inactive_connections": inactive,
            "hint": self.hint(),
        })
    }
}

/// Who admits `user`, by the store alone (rule 5: only an active connection admits).
pub fn admission(store: &Store, user: &str) -> std::result::Result<Admission, Denial> {
    if !store.inbound_user.contains_key(user) {
        return Err(Denial::NoSuchUser);
    }
    let mut candidates = Vec::new();
    for (name, c) in &store.connection {
        if c.inbound_user.as_deref() != Some(user) {
            continue;
        }
        if c.active {
            return Ok(Admission {
                integration: c.integration.clone(),
                connection: name.clone(),
                environment: c.environment,
            });
        }
        candidates.push(InactiveCandidate {
            connection: name.clone(),
            integration: c.integration.clone(),
            environment: c.environment,
            active_sibling: store
                .active_connection_of(&c.integration)
                .map(str::to_string),
        });
    }
    if candidates.is_empty() {
        Err(Denial::NoConnection)
    } else {
        Err(Denial::OnlyInactive(candidates))
    }
}

/// Where an inbound user's password lives in the keyring.
pub fn password_ref(store: &Store, user: &str) -> SecretRef {
    SecretRef::new(&store.store_id, RecordKind::InboundUser, user, "password")
}

/// Compares without an early exit, so the time taken does not tell how much matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

/// The full check: the user exists, the password matches (when one is given,
/// resolving the user's secret), and an active connection names the user.
///
/// An `Err` means the user's secret could not be read (exit 5), not a denial.
pub fn check(store: &Store, user: &str, password: Option<&Secret>) -> Result<CheckReport> {
    let report = |verdict| CheckReport {
        user: user.to_string(),
        verdict,
    };
    let Some(record) = store.inbound_user.get(user) else {
        return Ok(report(Err(Denial::NoSuchUser)));
    };
    if let Some(given) = password {
        let Some(source) = &record.password else {
            return Ok(report(Err(Denial::NoPassword)));
        };
        let expected = secrets::resolve(source, &password_ref(store, user))?;
        if !constant_time_eq(expected.expose().as_bytes(), given.expose().as_bytes()) {
            return Ok(report(Err(Denial::WrongPassword)));
        }
    }
    Ok(report(admission(store, user)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Connection, InboundUser, Integration};

    fn connection(integration: &str, env: Environment, active: bool, user: &str) -> Connection {
        Connection {
            integration: integration.into(),
            environment: env,
            active,
            endpoint_url: "https://example.test/".into(),
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

    fn store() -> Store {
        let mut store = Store::new();
        store
            .integration
            .insert("sync".into(), Integration::default());
        store
            .inbound_user
            .insert("remote".into(), InboundUser::default());
        store
            .inbound_user
            .insert("lonely".into(), InboundUser::default());
        store.connection.insert(
            "sync.test".into(),
            connection("sync", Environment::Test, false, "remote"),
        );
        store.connection.insert(
            "sync.prod".into(),
            connection("sync", Environment::Production, false, "remote"),
        );
        store
    }

    #[test]
    fn outcomes() {
        let mut store = store();
        assert_eq!(admission(&store, "nobody"), Err(Denial::NoSuchUser));
        assert_eq!(admission(&store, "lonely"), Err(Denial::NoConnection));
        match admission(&store, "remote") {
            Err(Denial::OnlyInactive(c)) => assert_eq!(c.len(), 2),
            other => panic!("{other:?}"),
        }
        store.activate_connection("sync.test", "now");
        let admitted = admission(&store, "remote").unwrap();
        assert_eq!(admitted.connection, "sync.test");
        assert_eq!(admitted.environment, Environment::Test);
    }

    #[test]
    fn hint_names_the_sibling_activation_would_deactivate() {
        let mut store = store();
        store.connection.get_mut("sync.test").unwrap().inbound_user = None;
        store.activate_connection("sync.test", "now");
        let report = check(&store, "remote", None).unwrap();
        let hint = report.hint().unwrap();
        assert!(
            hint.contains("connctl connection activate sync.prod"),
            "{hint}"
        );
        assert!(hint.contains("deactivates 'sync.test'"), "{hint}");
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
