//! What `connection test`, `connection send` and `oauth-profile token` share:
//! the async runtime, flag parsing, choosing the connection, stage rows.

use http::Method;

use crate::cli::ConnectionTarget;
use crate::commands::{Context, not_found, parse_var};
use crate::error::{Error, Result};
use crate::model::{Environment, RecordKind, Store};
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

/// The connection a NAME or `--integration I [--env E]` designates; for an
/// integration, `Store::connection_in_use` (policy in `model::CONNECTION_CHOICE`).
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
    Ok(store
        .connection_in_use(integration, target.env.map(Environment::from))?
        .to_string())
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
