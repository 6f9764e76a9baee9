//! `connctl integration diff I [--env E1 [--env E2]]`: an integration's
//! connections compared with its active (or production) connection.

use crate::cli::{ConnectionTarget, EnvArg, IntegrationDiffArgs};
use crate::commands::connection::diff::{check_ignore, compare_pairs, print, verdict};
use crate::commands::outbound::pick;
use crate::commands::{Context, not_found};
use crate::error::{Error, Result};
use crate::model::{Environment, RecordKind, Store};

pub fn run(ctx: &Context, args: IntegrationDiffArgs) -> Result<()> {
    check_ignore(&args.options.ignore)?;
    let store = ctx.load()?;
    let name = &args.name;
    if !store.integration.contains_key(name) {
        return Err(not_found(&store, RecordKind::Integration, name));
    }
    let pairs = pairs(&store, name, &args.env)?;
    let compared = compare_pairs(&store, &pairs, &args.options)?;
    print(ctx, &compared, true)?;
    verdict(ctx, &compared)
}

fn by_env(store: &Store, integration: &str, env: EnvArg) -> Result<String> {
    pick(
        store,
        &ConnectionTarget {
            name: None,
            integration: Some(integration.to_string()),
            env: Some(env),
        },
    )
}

/// The connection the others are compared with: the active one, else the production one.
fn reference(store: &Store, integration: &str) -> Result<String> {
    if let Some(active) = store.active_connection_of(integration) {
        return Ok(active.to_string());
    }
    let production = store
        .connections_of(integration)
        .any(|(_, c)| c.environment == Environment::Production);
    if production {
        return by_env(store, integration, EnvArg::Production);
    }
    Err(Error::usage(format!(
        "integration '{integration}' has no active and no production connection to compare with"
    ))
    .with_hint("name the two environments: --env test --env development"))
}

/// `(a, b)` pairs in store order: each other connection against the reference.
fn pairs(store: &Store, integration: &str, envs: &[EnvArg]) -> Result<Vec<(String, String)>> {
    let all: Vec<String> = store
        .connections_of(integration)
        .map(|(n, _)| n.clone())
        .collect();
    if all.len() < 2 {
        return Err(Error::invalid(format!(
            "integration '{integration}' has {} connection{}: nothing to compare",
            all.len(),
            if all.len() == 1 { "" } else { "s" }
        ))
        .with_hint(format!(
            "add another environment with `connctl connection copy {} NEW --env ENV --url URL`",
            all.first().map(String::as_str).unwrap_or("CONNECTION")
        )));
    }
    match envs {
        [] => {
            let reference = reference(store, integration)?;
            Ok(all
                .into_iter()
                .filter(|n| *n != reference)
                .map(|n| (n, reference.clone()))
                .collect())
        }
        [env] => {
            let a = by_env(store, integration, *env)?;
            let b = reference(store, integration)?;
            if a == b {
                return Err(Error::usage(format!(
                    "'{a}' is the connection the others are compared with: give a second --env"
                )));
            }
            Ok(vec![(a, b)])
        }
        [e1, e2] => {
            let (a, b) = (
                by_env(store, integration, *e1)?,
                by_env(store, integration, *e2)?,
            );
            if a == b {
                return Err(Error::usage(format!(
                    "both --env name connection '{a}': give two different environments"
                )));
            }
            Ok(vec![(a, b)])
        }
        _ => Err(Error::usage(
            "give --env at most twice: once to compare one environment with the active \
             (or production) connection, twice to compare two environments",
        )),
    }
}
