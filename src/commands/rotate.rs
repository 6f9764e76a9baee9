//! `rotate` of `connection`, `oauth-profile` and `mid-server`: a new secret
//! value is tested through the connections that use it before it replaces
//! the old one, which is kept as `<field>.previous` for `--restore`.

use serde_json::{Value, json};

use crate::commands::outbound::{outcome_error, runtime, total_ms};
use crate::commands::{Context, not_found, take_secret};
use crate::error::{Error, Result};
use crate::journal::{Action, Change};
use crate::model::{Authentication, Grant, RecordKind, SecretSource, Store};
use crate::outbound::{Outbound, Outcome, RequestSpec, Target, default_accept};
use crate::secrets::{self, Secret, SecretInput, SecretRef, previous};

/// One `rotate` as the command line asked for it.
pub struct Rotate<'a> {
    pub kind: RecordKind,
    pub name: &'a str,
    pub input: Option<SecretInput>,
    pub restore: bool,
    pub no_test: bool,
    /// For profiles and MID servers: test through this connection only.
    pub connection: Option<&'a str>,
    pub timeout: std::time::Duration,
}

impl Rotate<'_> {
    /// The record's field holding the secret, as in the store.
    fn field(&self) -> &'static str {
        match self.kind {
            RecordKind::OauthProfile => "client_secret",
            _ => "password",
        }
    }

    /// The secret in words: "password", "client secret", "proxy password".
    fn what(&self) -> &'static str {
        match self.kind {
            RecordKind::OauthProfile => "client secret",
            RecordKind::MidServer => "proxy password",
            _ => "password",
        }
    }

    fn command(&self) -> String {
        format!("connctl {} rotate {}", self.kind.cli_name(), self.name)
    }
}

/// The source a record's secret field holds now (None: the record has none).
fn source_of(store: &Store, kind: RecordKind, name: &str) -> Option<SecretSource> {
    match kind {
        RecordKind::Connection => store.connection.get(name)?.password.clone(),
        RecordKind::OauthProfile => store.oauth_profile.get(name)?.client_secret.clone(),
        RecordKind::MidServer => store.mid_server.get(name)?.password.clone(),
        _ => None,
    }
}

fn set_source(store: &mut Store, kind: RecordKind, name: &str, source: SecretSource) {
    let slot = match kind {
        RecordKind::Connection => store.connection.get_mut(name).map(|c| &mut c.password),
        RecordKind::OauthProfile => store
            .oauth_profile
            .get_mut(name)
            .map(|p| &mut p.client_secret),
        RecordKind::MidServer => store.mid_server.get_mut(name).map(|m| &mut m.password),
        _ => None,
    };
    if let Some(slot) = slot {
        *slot = Some(source);
    }
}

/// The connections that use the record's secret, whether active or not.
fn users(store: &Store, kind: RecordKind, name: &str) -> Vec<(String, bool)> {
    store
        .connection
        .iter()
        .filter(|(cname, c)| match kind {
            RecordKind::Connection => cname.as_str() == name,
            RecordKind::OauthProfile => c.oauth_profile_used() == Some(name),
            RecordKind::MidServer => c.mid_server.as_deref() == Some(name),
            _ => false,
        })
        .map(|(n, c)| (n.clone(), c.active))
        .collect()
}

/// Refuses a record whose secret the rotation cannot be about.
fn check_record(store: &Store, r: &Rotate<'_>) -> Result<SecretSource> {
    if !store.contains(r.kind, r.name) {
        return Err(not_found(store, r.kind, r.name));
    }
    let name = r.name;
    if r.kind == RecordKind::Connection
        && let Some(c) = store.connection.get(name)
    {
        let password_grant = c
            .oauth_profile_used()
            .and_then(|p| store.oauth_profile.get(p))
            .is_some_and(|p| p.grant == Grant::Password);
        if c.authentication != Authentication::Basic && !password_grant {
            let hint = match c.authentication {
                Authentication::Oauth => format!(
                    "its OAuth profile's client secret rotates with `connctl oauth-profile rotate {}`",
                    c.oauth_profile.as_deref().unwrap_or("PROFILE")
                ),
                _ => format!(
                    "to give it Basic authentication: connctl connection edit {name} --auth basic --user USER --password-stdin"
                ),
            };
            return Err(Error::invalid(format!(
                "connection '{name}' uses authentication {} and no password: there is nothing to rotate",
                c.authentication.as_str()
            ))
            .with_hint(hint));
        }
    }
    source_of(store, r.kind, name).ok_or_else(|| {
        Error::invalid(format!(
            "{} '{name}' has no {}: there is nothing to rotate",
            r.kind,
            r.what()
        ))
        .with_hint(format!(
            "give it one with `connctl {} edit {name}`",
            r.kind.cli_name()
        ))
    })
}

/// The connections whose staged test the new value must pass.
fn test_targets(store: &Store, r: &Rotate<'_>) -> Result<Vec<String>> {
    let using = users(store, r.kind, r.name);
    if r.kind == RecordKind::Connection {
        return Ok(vec![r.name.to_string()]);
    }
    if let Some(chosen) = r.connection {
        if !store.connection.contains_key(chosen) {
            return Err(not_found(store, RecordKind::Connection, chosen));
        }
        if !using.iter().any(|(n, _)| n == chosen) {
            return Err(Error::invalid(format!(
                "connection '{chosen}' does not use {} '{}'",
                r.kind, r.name
            ))
            .with_hint(list_hint(&using)));
        }
        return Ok(vec![chosen.to_string()]);
    }
    let active: Vec<String> = using
        .iter()
        .filter(|(_, a)| *a)
        .map(|(n, _)| n.clone())
        .collect();
    if !active.is_empty() {
        return Ok(active);
    }
    let message = if using.is_empty() {
        format!(
            "no connection uses {} '{}': there is nothing to test the new {} with",
            r.kind,
            r.name,
            r.what()
        )
    } else {
        format!(
            "no active connection uses {} '{}': name one to test the new {} with",
            r.kind,
            r.name,
            r.what()
        )
    };
    Err(Error::invalid(message).with_hint(if using.is_empty() {
        "point a connection at it first, or skip the test with --no-test".to_string()
    } else {
        format!(
            "{}; e.g. {} --connection {} ...",
            list_hint(&using),
            r.command(),
            using[0].0
        )
    }))
}

fn list_hint(using: &[(String, bool)]) -> String {
    if using.is_empty() {
        return "no connection uses it".to_string();
    }
    format!(
        "connections using it: {}",
        using
            .iter()
            .map(|(n, a)| if *a {
                format!("{n} (active)")
            } else {
                n.clone()
            })
            .collect::<Vec<_>>()
            .join(", ")
    )
}

pub fn run(ctx: &Context, r: Rotate<'_>) -> Result<()> {
    if r.restore && r.input.is_some() {
        return Err(Error::usage(format!(
            "--restore brings back the previous {}: give no new value with it",
            r.what()
        )));
    }
    let store = ctx.load()?;
    let current = check_record(&store, &r)?;
    let at = SecretRef::new(&store.store_id, r.kind, r.name, r.field());
    let targets = if r.no_test {
        Vec::new()
    } else {
        test_targets(&store, &r)?
    };
    let spec = RequestSpec {
        timeout: r.timeout,
        ..RequestSpec::default()
    };

    // The value on trial and the source the record will name.
    let (candidate, new_source) = if r.restore {
        match previous::previous_value(&at)? {
            Some(value) => (value, SecretSource::Keyring),
            None => {
                return Err(Error::invalid(format!(
                    "no previous {} is kept for {} '{}': there is nothing to restore",
                    r.what(),
                    r.kind,
                    r.name
                ))
                .with_hint(format!(
                    "a previous value is kept by a successful `{} ...`",
                    r.command()
                )));
            }
        }
    } else {
        let prompt = format!("new {} for {} {}", r.what(), r.kind, r.name);
        let Some(taken) = take_secret(r.input.clone(), Some(&prompt))? else {
            let flags = match r.kind {
                RecordKind::OauthProfile => {
                    "--client-secret-stdin, --client-secret-env VAR, --client-secret-file PATH or --client-secret-cmd CMD"
                }
                _ => {
                    "--password-stdin, --password-env VAR, --password-file PATH or --password-cmd CMD"
                }
            };
            return Err(Error::usage(format!("give the new {}: {flags}", r.what()))
                .with_hint("or run on a terminal to be asked for it"));
        };
        let value = match taken.value {
            Some(value) => value,
            // A new reference: it must be readable now, or there is nothing to test.
            None => secrets::resolve(&taken.source, &at).map_err(|e| Error {
                message: format!("the new {}: {}", r.what(), e.message),
                ..e
            })?,
        };
        (value, taken.source)
    };
    let outgoing = match secrets::resolve(&current, &at) {
        Ok(value) => Some(value),
        Err(e) => {
            ctx.out.warn(&format!(
                "the current {} of {} '{}' cannot be read ({}): no previous value will be kept",
                r.what(),
                r.kind,
                r.name,
                crate::text::escape(&e.message)
            ));
            None
        }
    };

    // The test before the swap.
    let outcomes = if r.no_test {
        ctx.out.warn(&format!(
            "--no-test: the new {} is committed without testing it; a wrong value breaks every connection that uses it (`{} --restore` brings the old one back)",
            r.what(),
            r.command()
        ));
        Vec::new()
    } else {
        trial(ctx, &store, &r, &targets, &candidate, &spec)?
    };
    let failed = outcomes.iter().find(|o| !o.ok());
    if let Some(failed) = failed {
        if ctx.out.is_json() {
            ctx.out.json(&report(&r, false, &outcomes))?;
        }
        let err = outcome_error(failed)
            .unwrap_or_else(|| Error::failed(format!("connection '{}' failed", failed.connection)));
        return Err(Error {
            message: format!(
                "the new {} failed the test through connection '{}': {}",
                r.what(),
                failed.connection,
                err.message
            ),
            hint: Some(format!(
                "nothing was changed: {} '{}' keeps its current {}{}",
                r.kind,
                r.name,
                r.what(),
                err.hint
                    .as_deref()
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default()
            )),
            ..err
        });
    }

    // The swap: journal entry, keyring, then the store, under the lock.
    let action = if r.restore {
        Action::Restored
    } else {
        Action::Rotated
    };
    let row = Change::new(r.kind, r.name, action).with_fields(vec![r.field().to_string()]);
    ctx.change_noted(vec![row], |draft| {
        if source_of(draft, r.kind, r.name).as_ref() != Some(&current) {
            return Err(Error::invalid(format!(
                "{} '{}' changed while its new {} was tested: nothing was changed",
                r.kind,
                r.name,
                r.what()
            ))
            .with_hint(format!("run `{} ...` again", r.command())));
        }
        set_source(draft, r.kind, r.name, new_source.clone());
        let at = draft.secret_ref(r.kind, r.name, r.field());
        let kept_at = previous::previous_of(&at);
        // The keyring value goes in with the store; a value that moved to an
        // env/file/cmd source leaves its keyring entry, which the change deletes.
        if new_source == SecretSource::Keyring {
            draft.set_secret(at, candidate.clone());
        }
        match &outgoing {
            Some(value) => draft.set_secret(kept_at, value.clone()),
            None => draft.delete_secret(kept_at),
        }
        Ok(())
    })?;
    if ctx.out.is_json() {
        ctx.out.json(&report(&r, true, &outcomes))?;
    }
    let verb = if r.restore { "restored" } else { "rotated" };
    let tested = if outcomes.is_empty() {
        "untested".to_string()
    } else {
        format!(
            "tested through {}",
            outcomes
                .iter()
                .map(|o| format!("'{}'", o.connection))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    ctx.out.status(&format!(
        "{verb} the {} of {} '{}' ({tested}; now {new_source})",
        r.what(),
        r.kind,
        r.name
    ));
    if outgoing.is_some() {
        ctx.out.hint(&format!(
            "the replaced value is kept: `{} --restore` brings it back",
            r.command()
        ));
    }
    Ok(())
}

/// Runs the staged test of each connection with `candidate` in place of the
/// stored value; a fresh OAuth token, the token cache left alone.
fn trial(
    ctx: &Context,
    store: &Store,
    r: &Rotate<'_>,
    targets: &[String],
    candidate: &Secret,
    spec: &RequestSpec,
) -> Result<Vec<Outcome>> {
    let client = Outbound::new();
    let rt = runtime(false)?;
    let mut outcomes = Vec::new();
    for name in targets {
        let mut target = Target::from_store(store, name)?;
        target.trial.secrets.push((
            r.kind,
            r.name.to_string(),
            r.field().to_string(),
            candidate.clone(),
        ));
        target.trial.fresh_token = true;
        let auth = target.connection.authentication;
        let mut outcome = rt.block_on(client.exchange(&target, spec));
        outcome.judge(default_accept, auth);
        for s in &outcome.trace.stages {
            ctx.out.debug(1, &s.log_line());
        }
        let verdict = match (&outcome.error, outcome.status()) {
            (None, Some(status)) => format!("ok (HTTP {status}, {:.0} ms)", total_ms(&outcome)),
            (None, None) => "ok".to_string(),
            (Some(e), _) => format!(
                "FAILED at {}: {}",
                outcome
                    .trace
                    .failed_stage()
                    .map_or("verdict", |s| s.as_str()),
                e.message
            ),
        };
        ctx.out.status(&format!(
            "test of connection '{name}' with the new {}: {verdict}",
            r.what()
        ));
        let failed = !outcome.ok();
        outcomes.push(outcome);
        if failed {
            break;
        }
    }
    Ok(outcomes)
}

/// `rotate -o json`: what was rotated, whether it was committed, and each test.
fn report(r: &Rotate<'_>, committed: bool, outcomes: &[Outcome]) -> Value {
    json!({
        "kind": r.kind.cli_name(),
        "name": r.name,
        "field": r.field(),
        "action": if r.restore { "restored" } else { "rotated" },
        "committed": committed,
        "tested": !r.no_test,
        "tests": outcomes.iter().map(Outcome::to_json).collect::<Vec<_>>(),
    })
}
