//! `connctl connection test`: the staged test of one, some or all connections.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::cli::ConnectionTestArgs;
use crate::commands::Context;
use crate::commands::outbound::{
    method, outcome_error, pick, render_path, runtime, stage_rows, total_ms, variables,
    warn_insecure,
};
use crate::error::ErrorKind;
use crate::error::{Error, Result};
use crate::model::Store;
use crate::net::{Stage, transport};
use crate::outbound::expiry::{self, Verdict};
use crate::outbound::{self, Outbound, Outcome, RequestSpec, Target};

pub fn run(ctx: &Context, args: ConnectionTestArgs) -> Result<()> {
    let store = ctx.load()?;
    let spec = RequestSpec {
        method: method(&args.method)?,
        path: args.path.clone(),
        timeout: args.timeout,
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
        let spec = RequestSpec {
            path: render_path(&variables(&target, &args.vars)?, args.path.as_deref())?,
            ..spec
        };
        let auth = target.connection.authentication;
        let client = Outbound::new();
        let mut outcome = runtime(false)?.block_on(client.exchange(&target, &spec));
        outcome.judge(&accept, auth);
        let now = expiry::now();
        let outcomes = std::slice::from_ref(&outcome);
        write_reports(&args, &store, outcomes, now)?;
        let (verdict, due) = expiry::verdict(&outcome, args.warn_days, now);
        if ctx.out.is_json() {
            ctx.out
                .json(&expiry::to_json(&outcome, args.warn_days, now))?;
        } else {
            ctx.out
                .table(&["stage", "ok", "ms", "detail"], stage_rows(&outcome.trace))?;
            for line in expiry::lifetime_lines(&outcome.trace.expiry, now) {
                ctx.out.status(&line);
            }
            if outcome.ok() {
                ctx.out.status(&format!(
                    "{name}: {} ({}, {:.0} ms)",
                    verdict.as_str(),
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
            None if verdict == Verdict::Renew => {
                Err(renew_error(&[(name.as_str(), due)], args.warn_days))
            }
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
        write_reports(&args, &store, &[], expiry::now())?;
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
        let target = Target::from_store(&store, name)?;
        // Each connection fills --path with its own variables; one that lacks
        // a variable stops the run before anything is sent.
        let path = render_path(&variables(&target, &args.vars)?, args.path.as_deref())?;
        targets.push((target, path));
    }
    let outcomes = test_many(ctx, targets, spec, args.jobs as usize, &accept)?;

    let now = expiry::now();
    write_reports(&args, &store, &outcomes, now)?;
    let verdicts: Vec<(Verdict, Vec<String>)> = outcomes
        .iter()
        .map(|o| expiry::verdict(o, args.warn_days, now))
        .collect();
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| !o.ok()).collect();
    if ctx.out.is_json() {
        ctx.out.json(&Value::Array(
            outcomes
                .iter()
                .map(|o| expiry::to_json(o, args.warn_days, now))
                .collect(),
        ))?;
    } else {
        let rows = outcomes
            .iter()
            .zip(&verdicts)
            .map(|(o, (verdict, due))| {
                let result = match o.trace.failed_stage() {
                    None if *verdict == Verdict::Renew => "RENEW".to_string(),
                    None if o.ok() => "ok".to_string(),
                    Some(stage) => format!("FAILED at {}", stage.as_str()),
                    None => "FAILED".to_string(),
                };
                let detail = match &o.error {
                    Some(e) => e.message.clone(),
                    None if !due.is_empty() => due.join("; "),
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
    let renew: Vec<(&str, Vec<String>)> = outcomes
        .iter()
        .zip(verdicts)
        .filter(|(_, (v, _))| *v == Verdict::Renew)
        .map(|(o, (_, due))| (o.connection.as_str(), due))
        .collect();
    match failed.as_slice() {
        [] if !renew.is_empty() => Err(renew_error(&renew, args.warn_days)),
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
    targets: Vec<(Target, Option<String>)>,
    spec: RequestSpec,
    jobs: usize,
    accept: &(dyn Fn(u16) -> bool + Sync),
) -> Result<Vec<Outcome>> {
    let total = targets.len();
    // Drawn only on a terminal, without -q and -o json; cleared when dropped.
    let progress = ctx.out.progress(total as u64, "testing");
    let client = Arc::new(Outbound::new());
    let semaphore = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let rt = runtime(true)?;
    let mut outcomes = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (index, (target, path)) in targets.into_iter().enumerate() {
            let client = client.clone();
            let spec = RequestSpec {
                path,
                ..spec.clone()
            };
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
            // Printed above the bar while it is on screen.
            ctx.out.debug(
                1,
                &match outcome.trace.failed_stage() {
                    None => format!("tested {}: ok", outcome.connection),
                    Some(stage) => {
                        format!(
                            "tested {}: failed at {}",
                            outcome.connection,
                            stage.as_str()
                        )
                    }
                },
            );
            done.push((index, outcome));
            progress.set(done.len() as u64, &format!("{failed} failed"));
        }
        done
    });
    drop(progress);
    outcomes.sort_by_key(|(index, _)| *index);
    Ok(outcomes.into_iter().map(|(_, o)| o).collect())
}

/// Writes the `--report` files (before the exit code is decided: a failing run
/// is what a CI report is for).
fn write_reports(
    args: &ConnectionTestArgs,
    store: &Store,
    outcomes: &[Outcome],
    now: i64,
) -> Result<()> {
    let integration_of = |name: &str| {
        store
            .connection
            .get(name)
            .map(|c| c.integration.clone())
            .unwrap_or_default()
    };
    crate::report::write_all(&args.reports, outcomes, integration_of, args.warn_days, now)
}

/// Exit 9: everything passed, but these certificates need renewing.
fn renew_error(due: &[(&str, Vec<String>)], warn_days: u32) -> Error {
    let list = due
        .iter()
        .take(10)
        .map(|(name, what)| format!("{name}: {}", what.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    Error::new(
        ErrorKind::Renew,
        format!("RENEW: certificates expire within {warn_days} days ({list})"),
    )
    .with_hint("renew them before they expire; --warn-days N changes the window")
}
