//! `connctl connection test|send` and `connctl oauth-profile token`.

use std::io::{IsTerminal, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

use super::{Context, not_found};
use crate::cli::{ConnectionSendArgs, ConnectionTarget, ConnectionTestArgs, OauthTokenArgs};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Authentication, Connection, Environment, Grant, RecordKind, Store};
use crate::outbound::{
    self, Outbound, Outcome, RequestSpec, Stage, Target, Trace, oauth, transport,
};

fn runtime(multi: bool) -> Result<tokio::runtime::Runtime> {
    let mut builder = if multi {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| Error::failed("cannot start the async runtime").with_source(&e))
}

fn timeout(secs: f64) -> Result<Duration> {
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(Error::usage(format!(
            "--timeout {secs}: give a number of seconds above 0"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn method(text: &str) -> Result<Method> {
    Method::from_bytes(text.to_ascii_uppercase().as_bytes())
        .map_err(|_| Error::usage(format!("'{text}' is not an HTTP method")))
}

/// The connection a NAME or `--integration I [--env E]` designates.
fn pick(store: &Store, target: &ConnectionTarget) -> Result<String> {
    if let Some(name) = &target.name {
        if !store.connection.contains_key(name) {
            return Err(not_found(store, RecordKind::Connection, name));
        }
        return Ok(name.clone());
    }
    let Some(integration) = &target.integration else {
        return Err(Error::usage(
            "name a connection, or give --integration (with --env to pick an environment)",
        ));
    };
    if !store.integration.contains_key(integration) {
        return Err(not_found(store, RecordKind::Integration, integration));
    }
    let all: Vec<(&String, &Connection)> = store.connections_of(integration).collect();
    let names = |list: &[(&String, &Connection)]| {
        list.iter()
            .map(|(n, c)| format!("{n} ({})", c.environment))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match target.env {
        None => match store.active_connection_of(integration) {
            Some(active) => Ok(active.to_string()),
            None => Err(Error::new(
                ErrorKind::NotFound,
                format!("integration '{integration}' has no active connection"),
            )
            .with_hint(if all.is_empty() {
                format!(
                    "add one with `connctl connection add NAME --integration {integration} ...`"
                )
            } else {
                format!("pick one with --env or by name: {}", names(&all))
            })),
        },
        Some(env) => {
            let env = Environment::from(env);
            let matching: Vec<_> = all
                .iter()
                .filter(|(_, c)| c.environment == env)
                .copied()
                .collect();
            match matching.as_slice() {
                [] => Err(Error::new(
                    ErrorKind::NotFound,
                    format!("integration '{integration}' has no {env} connection"),
                )
                .with_hint(if all.is_empty() {
                    "it has no connections yet".to_string()
                } else {
                    format!("its connections: {}", names(&all))
                })),
                [(name, _)] => Ok((*name).clone()),
                several => match several.iter().find(|(_, c)| c.active) {
                    Some((name, _)) => Ok((*name).clone()),
                    None => Err(Error::usage(format!(
                        "integration '{integration}' has several {env} connections: {}",
                        names(several)
                    ))
                    .with_hint("name the connection")),
                },
            }
        }
    }
}

fn stage_rows(trace: &Trace) -> Vec<Vec<String>> {
    trace
        .stages
        .iter()
        .map(|s| {
            vec![
                s.stage.as_str().to_string(),
                if s.ok { "ok" } else { "FAILED" }.to_string(),
                format!("{:.1}", s.ms),
                s.detail.clone(),
            ]
        })
        .collect()
}

fn total_ms(outcome: &Outcome) -> f64 {
    outcome.trace.stages.iter().map(|s| s.ms).sum()
}

/// An outcome's error, with the stage it failed at.
fn outcome_error(outcome: &Outcome) -> Option<Error> {
    let err = outcome.error.clone()?;
    Some(match outcome.trace.failed_stage() {
        Some(stage) => Error {
            message: format!("{} (stage {})", err.message, stage.as_str()),
            ..err
        },
        None => err,
    })
}

fn warn_insecure(ctx: &Context) {
    ctx.out.warn(
        "--insecure: the server certificate is NOT verified (issuer, expiry, host name). \
         Anyone between here and the server could be answering; this test proves nothing about trust.",
    );
}

pub fn test(ctx: &Context, args: ConnectionTestArgs) -> Result<()> {
    let store = ctx.load()?;
    let spec = RequestSpec {
        method: method(&args.method)?,
        path: args.path.clone(),
        timeout: timeout(args.timeout)?,
        insecure: args.insecure,
        ..RequestSpec::default()
    };
    if args.insecure {
        warn_insecure(ctx);
    }
    let expect = args.expect.clone();
    let accept = move |status: u16| {
        if expect.is_empty() {
            outbound::default_accept(status)
        } else {
            expect.contains(&status)
        }
    };

    if !args.all {
        let name = pick(&store, &args.target)?;
        let target = Target::from_store(&store, &name)?;
        let auth = target.connection.authentication;
        let client = Outbound::new();
        let mut outcome = runtime(false)?.block_on(client.exchange(&target, &spec));
        outcome.judge(&accept, auth);
        if ctx.out.is_json() {
            ctx.out.json(&outcome.to_json())?;
        } else {
            ctx.out
                .table(&["stage", "ok", "ms", "detail"], stage_rows(&outcome.trace))?;
            if outcome.ok() {
                ctx.out.status(&format!(
                    "{name}: OK ({}, {:.0} ms)",
                    outcome
                        .response
                        .as_ref()
                        .map(|r| transport::status_text(r.status))
                        .unwrap_or_default(),
                    total_ms(&outcome)
                ));
            }
        }
        return match outcome_error(&outcome) {
            Some(e) => Err(e),
            None => Ok(()),
        };
    }

    let names: Vec<String> = store
        .connection
        .iter()
        .filter(|(_, c)| !args.active || c.active)
        .map(|(n, _)| n.clone())
        .collect();
    if names.is_empty() {
        if ctx.out.is_json() {
            ctx.out.json(&json!([]))?;
        }
        ctx.out.status(if args.active {
            "no active connections to test"
        } else {
            "no connections to test"
        });
        return Ok(());
    }
    let mut targets = Vec::new();
    for name in &names {
        targets.push(Target::from_store(&store, name)?);
    }
    let outcomes = test_many(ctx, targets, spec, args.jobs as usize, &accept)?;

    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.ok()).collect();
    if ctx.out.is_json() {
        ctx.out.json(&Value::Array(
            outcomes.iter().map(Outcome::to_json).collect(),
        ))?;
    } else {
        let rows = outcomes
            .iter()
            .map(|o| {
                let result = match o.trace.failed_stage() {
                    None if o.ok() => "ok".to_string(),
                    Some(stage) => format!("FAILED at {}", stage.as_str()),
                    None => "FAILED".to_string(),
                };
                let detail = match &o.error {
                    Some(e) => e.message.clone(),
                    None => o
                        .trace
                        .stages
                        .iter()
                        .rev()
                        .find(|s| s.stage == Stage::Http)
                        .map(|s| s.detail.clone())
                        .unwrap_or_default(),
                };
                vec![
                    o.connection.clone(),
                    result,
                    o.status().map(|s| s.to_string()).unwrap_or("-".into()),
                    format!("{:.0}", total_ms(o)),
                    detail,
                ]
            })
            .collect();
        ctx.out
            .table(&["connection", "result", "status", "ms", "detail"], rows)?;
    }
    match failed.as_slice() {
        [] => {
            ctx.out
                .status(&format!("all {} connections OK", outcomes.len()));
            Ok(())
        }
        [only] if outcomes.len() == 1 => Err(outcome_error(only)
            .unwrap_or_else(|| Error::failed(format!("connection '{}' failed", only.connection)))),
        _ => Err(Error::failed(format!(
            "{} of {} connections failed: {}",
            failed.len(),
            outcomes.len(),
            failed
                .iter()
                .take(10)
                .map(|o| o.connection.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Tests connections concurrently (at most `jobs` at once), in store order.
fn test_many(
    ctx: &Context,
    targets: Vec<Target>,
    spec: RequestSpec,
    jobs: usize,
    accept: &(dyn Fn(u16) -> bool + Sync),
) -> Result<Vec<Outcome>> {
    let total = targets.len();
    let progress = std::io::stderr().is_terminal() && !ctx.out.quiet;
    let client = Arc::new(Outbound::new());
    let spec = Arc::new(spec);
    let semaphore = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let rt = runtime(true)?;
    let mut outcomes = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (index, target) in targets.into_iter().enumerate() {
            let client = client.clone();
            let spec = spec.clone();
            let semaphore = semaphore.clone();
            set.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let outcome = client.exchange(&target, &spec).await;
                (index, target.connection.authentication, outcome)
            });
        }
        let mut done = Vec::with_capacity(total);
        let mut failed = 0;
        while let Some(joined) = set.join_next().await {
            let Ok((index, auth, mut outcome)) = joined else {
                continue;
            };
            outcome.judge(accept, auth);
            if !outcome.ok() {
                failed += 1;
            }
            done.push((index, outcome));
            if progress {
                eprint!("\rtesting: {}/{total} done, {failed} failed ", done.len());
                let _ = std::io::stderr().flush();
            }
        }
        if progress {
            eprint!("\r\x1b[2K");
        }
        done
    });
    outcomes.sort_by_key(|(index, _)| *index);
    Ok(outcomes.into_iter().map(|(_, o)| o).collect())
}

fn read_body(data: &Option<String>) -> Result<Bytes> {
    match data.as_deref() {
        None => Ok(Bytes::new()),
        Some("@-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| Error::invalid("cannot read the body from stdin").with_source(&e))?;
            Ok(Bytes::from(buf))
        }
        Some(text) if text.starts_with('@') => {
            let path = &text[1..];
            std::fs::read(path).map(Bytes::from).map_err(|e| {
                Error::invalid(format!("cannot read the body file {path}")).with_source(&e)
            })
        }
        Some(text) => Ok(Bytes::from(text.to_string())),
    }
}

/// A yes on the terminal, or `--yes`; otherwise exit 4 and nothing is sent.
fn confirm_production(ctx: &Context, name: &str, what: &str, stdin_busy: bool) -> Result<()> {
    if ctx.yes {
        return Ok(());
    }
    let declined = Error::invalid(format!(
        "connection '{name}' is a production connection: not sent without confirmation"
    ))
    .with_hint("confirm on a terminal, or pass --yes");
    if stdin_busy || !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(declined);
    }
    eprint!("Send {what} through production connection '{name}'? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::invalid("cannot read the answer").with_source(&e))?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(declined)
    }
}

pub fn send(ctx: &Context, args: ConnectionSendArgs) -> Result<()> {
    let store = ctx.load()?;
    let name = pick(&store, &args.target)?;
    let target = Target::from_store(&store, &name)?;
    let conn = &target.connection;

    let body = read_body(&args.data)?;
    let method = match &args.method {
        Some(m) => method(m)?,
        None if args.data.is_some() => Method::POST,
        None => Method::GET,
    };
    let mut headers = Vec::new();
    for h in &args.headers {
        headers.push(outbound::parse_header(h)?);
    }
    let spec = RequestSpec {
        method: method.clone(),
        path: args.path.clone(),
        headers,
        body,
        // Without one, a body goes as application/json (`Outbound::http_request`).
        content_type: args.content_type.clone(),
        timeout: timeout(args.timeout)?,
        insecure: false,
    };
    let url = outbound::join_path(&conn.endpoint_url, spec.path.as_deref())?;

    if !conn.active {
        match store.active_connection_of(&conn.integration) {
            Some(active) => ctx.out.warn(&format!(
                "connection '{name}' is not active; integration '{}' sends through '{active}'",
                conn.integration
            )),
            None => ctx.out.warn(&format!(
                "connection '{name}' is not active, and integration '{}' has no active connection",
                conn.integration
            )),
        }
    }
    if conn.environment == Environment::Production {
        let stdin_busy = args.data.as_deref() == Some("@-");
        confirm_production(ctx, &name, &format!("{method} {url}"), stdin_busy)?;
    }

    let client = Outbound::new();
    let retries = args.retry;
    let out = ctx.out.clone();
    let on_retry = move |why: &str| out.warn(why);
    let mut outcome = runtime(false)?.block_on(client.send(&target, &spec, retries, &on_retry));
    outcome.judge(|s| (200..300).contains(&s), conn.authentication);

    for s in &outcome.trace.stages {
        ctx.out.debug(
            1,
            &format!(
                "{:<12} {:<6} {:>8.1} ms  {}",
                s.stage.as_str(),
                if s.ok { "ok" } else { "FAILED" },
                s.ms,
                s.detail
            ),
        );
    }
    if let Some(response) = &outcome.response {
        if args.include {
            let mut head = format!(
                "{:?} {}\r\n",
                response.version,
                transport::status_text(response.status)
            );
            for (k, v) in &response.headers {
                head.push_str(&format!(
                    "{k}: {}\r\n",
                    String::from_utf8_lossy(v.as_bytes())
                ));
            }
            head.push_str("\r\n");
            ctx.out.raw(head.as_bytes())?;
        }
        ctx.out.raw(&response.body)?;
        ctx.out.status(&format!(
            "{method} {url} → {} in {:.0} ms ({} bytes)",
            transport::status_text(response.status),
            total_ms(&outcome),
            response.body.len()
        ));
    }
    match outcome_error(&outcome) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

pub fn token(ctx: &Context, args: OauthTokenArgs) -> Result<()> {
    let store = ctx.load()?;
    let Some(profile) = store.oauth_profile.get(&args.name).cloned() else {
        return Err(not_found(&store, RecordKind::OauthProfile, &args.name));
    };
    let users: Vec<&String> = store
        .connection
        .iter()
        .filter(|(_, c)| {
            c.authentication == Authentication::Oauth
                && c.oauth_profile.as_deref() == Some(args.name.as_str())
        })
        .map(|(n, _)| n)
        .collect();
    let connection = match &args.connection {
        Some(c) => {
            let conn = store
                .connection
                .get(c)
                .ok_or_else(|| not_found(&store, RecordKind::Connection, c))?;
            if conn.oauth_profile.as_deref() != Some(args.name.as_str())
                || conn.authentication != Authentication::Oauth
            {
                return Err(Error::invalid(format!(
                    "connection '{c}' does not use OAuth profile '{}'",
                    args.name
                )));
            }
            Some(c.clone())
        }
        // One user of the profile: fetch as it does (its MID server, its user).
        None if users.len() == 1 => Some(users[0].clone()),
        None if profile.grant == Grant::Password => {
            return Err(Error::usage(format!(
                "OAuth profile '{}' uses the password grant: name the connection whose user is the resource owner with --connection",
                args.name
            ))
            .with_hint(if users.is_empty() {
                "no connection uses this profile yet".to_string()
            } else {
                format!("connections using it: {}", users.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
            }));
        }
        None => None,
    };
    let target = match &connection {
        Some(c) => Target::from_store(&store, c)?,
        None => Target {
            store_id: store.store_id.clone(),
            name: format!("(profile {})", args.name),
            connection: Connection {
                integration: String::new(),
                environment: Environment::Test,
                active: false,
                endpoint_url: profile.token_url.clone(),
                allow_http: true,
                ca_bundle: None,
                authentication: Authentication::Oauth,
                user: None,
                password: None,
                oauth_profile: Some(args.name.clone()),
                mutual_auth: false,
                protocol_profile: None,
                mid_server: None,
                inbound_user: None,
                last_activated: None,
                variables: Default::default(),
            },
            oauth: Some((args.name.clone(), profile.clone())),
            protocol: None,
            mid: None,
        },
    };
    let client = Outbound::new();
    let spec = RequestSpec::default();
    let (trace, token) = runtime(false)?.block_on(async {
        let mut trace = Trace::default();
        let prepared = client.prepare(&target, &spec, &mut trace).await?;
        let token = client.token(&prepared, false, &mut trace).await;
        Ok::<_, Error>((trace, token))
    })?;
    for s in &trace.stages {
        ctx.out.debug(
            1,
            &format!("{}: {} ({:.1} ms)", s.stage.as_str(), s.detail, s.ms),
        );
    }
    let token = token?.ok_or_else(|| Error::failed("no token was obtained"))?;
    let expires_at = time::OffsetDateTime::from_unix_timestamp(token.expires_at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    if let Some(note) = &token.note {
        ctx.out.warn(note);
    }
    if ctx.out.is_json() {
        let mut value = json!({
            "profile": args.name,
            "connection": connection,
            "origin": token.origin,
            "expires_at": expires_at,
            "expires_in": token.expires_in(),
            "scopes": token.scopes,
        });
        if args.print {
            value["access_token"] = Value::String(token.access_token.expose().to_string());
        }
        return ctx.out.json(&value);
    }
    let summary = format!(
        "{} token for '{}'{}: expires {expires_at} (in {}), scopes: {}",
        token.origin,
        args.name,
        connection
            .as_ref()
            .map(|c| format!(" (as connection '{c}')"))
            .unwrap_or_default(),
        oauth::human_secs(token.expires_in()),
        if token.scopes.is_empty() {
            "-".to_string()
        } else {
            token.scopes.join(" ")
        }
    );
    if args.print {
        ctx.out.status(&summary);
        ctx.out
            .raw(format!("{}\n", token.access_token.expose()).as_bytes())
    } else {
        ctx.out.fields(&[
            ("profile", args.name.clone()),
            ("connection", connection.unwrap_or_else(|| "-".into())),
            (
                "token",
                format!("{} (hidden; --print shows it)", token.origin),
            ),
            ("expires_at", expires_at),
            ("expires_in", oauth::human_secs(token.expires_in())),
            (
                "scopes",
                if token.scopes.is_empty() {
                    "-".into()
                } else {
                    token.scopes.join(" ")
                },
            ),
        ])
    }
}
