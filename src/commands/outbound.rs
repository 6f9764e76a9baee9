//! What `connection test`, `connection send` and `oauth-profile token` share:
//! the async runtime, flag parsing, choosing the connection, stage rows.

use http::Method;

use crate::cli::ConnectionTarget;
use crate::commands::{Context, not_found, parse_var};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Connection, Environment, RecordKind, Store};
use crate::net::Trace;
use crate::outbound::{Outcome, Target};
use crate::template::Variables;

pub fn runtime(multi: bool) -> Result<tokio::runtime::Runtime> {
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

pub fn method(text: &str) -> Result<Method> {
    Method::from_bytes(text.to_ascii_uppercase().as_bytes())
        .map_err(|_| Error::usage(format!("'{text}' is not an HTTP method")))
}

/// The connection a NAME or `--integration I [--env E]` designates.
pub fn pick(store: &Store, target: &ConnectionTarget) -> Result<String> {
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

pub fn stage_rows(trace: &Trace) -> Vec<Vec<String>> {
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

pub fn total_ms(outcome: &Outcome) -> f64 {
    outcome.trace.stages.iter().map(|s| s.ms).sum()
}

/// An outcome's error, with the stage it failed at.
pub fn outcome_error(outcome: &Outcome) -> Option<Error> {
    let err = outcome.error.clone()?;
    Some(match outcome.trace.failed_stage() {
        Some(stage) => Error {
            message: format!("{} (stage {})", err.message, stage.as_str()),
            ..err
        },
        None => err,
    })
}

pub fn warn_insecure(ctx: &Context) {
    ctx.out.warn(
        "--insecure: the server certificate is NOT verified (issuer, expiry, host name). \
         Anyone between here and the server could be answering; this test proves nothing about trust.",
    );
}

/// The variables of a test or send: the connection's, with `--var` overrides.
pub fn variables(target: &Target, vars: &[String]) -> Result<Variables> {
    let overrides = vars
        .iter()
        .map(|v| parse_var(v))
        .collect::<Result<Vec<_>>>()?;
    Ok(Variables::for_connection(
        &target.name,
        &target.connection,
        &overrides,
    ))
}

/// `--path` with its variables filled in.
pub fn render_path(vars: &Variables, path: Option<&str>) -> Result<Option<String>> {
    path.map(|p| vars.render_text("--path", p)).transpose()
}
