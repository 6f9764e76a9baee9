//! `connctl integration rollback`: undo the last activation change the journal recorded.

use crate::commands::history::read_journal;
use crate::commands::{Context, not_found};
use crate::error::{Error, Result};
use crate::journal;
use crate::model::{Environment, RecordKind, now_rfc3339};

/// What the rollback makes of the integration.
enum Goal {
    Activate(String),
    Deactivate,
}

pub fn run(ctx: &Context, name: &str, to: Option<&str>) -> Result<()> {
    let store = ctx.load()?;
    if !store.integration.contains_key(name) {
        return Err(not_found(&store, RecordKind::Integration, name));
    }
    let read = read_journal(ctx)?;
    let journal_path = journal::path_for(&ctx.store_path);
    let active = store.active_connection_of(name).map(str::to_string);
    let goal = match to {
        Some(target) => {
            // Exists and belongs to the integration, as `integration activate --connection`.
            store.choose_connection(name, Some(target), None)?;
            if !journal::was_active(&read.entries, name, target) {
                return Err(Error::invalid(format!(
                    "the journal never shows connection '{target}' active for integration '{name}': \
                     --to only returns to a connection that was active before"
                ))
                .with_hint(format!(
                    "see `connctl history --integration {name}`; to switch anyway: connctl connection activate {target}"
                )));
            }
            Goal::Activate(target.to_string())
        }
        None => {
            let Some((entry, previous)) = journal::last_activation_change(&read.entries, name)
            else {
                return Err(Error::invalid(format!(
                    "integration '{name}' has no activation change in the journal ({}): there is \
                     no earlier active connection to return to",
                    journal_path.display()
                ))
                .with_hint(format!(
                    "activate one directly: connctl integration activate {name} --connection NAME"
                )));
            };
            ctx.out.debug(
                1,
                &format!(
                    "rolling back the change of {} by {}",
                    entry.time, entry.user
                ),
            );
            match previous {
                Some(previous) => {
                    if !store.connection.contains_key(previous) {
                        return Err(Error::not_found("connection", previous).with_hint(format!(
                            "it was the active connection of '{name}' before its last activation change \
                             and has been removed since; activate another: connctl integration activate {name} --connection NAME"
                        )));
                    }
                    Goal::Activate(previous.to_string())
                }
                None => Goal::Deactivate,
            }
        }
    };

    match &goal {
        Goal::Activate(target) if active.as_deref() == Some(target.as_str()) => {
            ctx.out.status(&format!(
                "integration '{name}' is already active through connection '{target}': nothing to roll back"
            ));
            return Ok(());
        }
        Goal::Deactivate if active.is_none() => {
            ctx.out.status(&format!(
                "integration '{name}' is already inactive: nothing to roll back"
            ));
            return Ok(());
        }
        Goal::Activate(target) => {
            let production = store
                .connection
                .get(target)
                .is_some_and(|c| c.environment == Environment::Production);
            if production {
                let question =
                    format!("Roll integration '{name}' back to production connection '{target}'?");
                ctx.confirm_production(target, "activated", Some(&question))?;
            }
        }
        Goal::Deactivate => {}
    }

    let expected = active.clone();
    let now = ctx.update(|store| {
        // Another writer may have switched since the journal was read.
        let current = store.active_connection_of(name).map(str::to_string);
        if current != expected {
            return Err(Error::invalid(format!(
                "integration '{name}' changed while rolling back (now {}): nothing was done",
                current.as_deref().unwrap_or("inactive")
            ))
            .with_hint("look at `connctl history` and run the rollback again"));
        }
        match &goal {
            Goal::Activate(target) => {
                store.activate_connection(target, &now_rfc3339());
            }
            Goal::Deactivate => {
                store.deactivate_integration(name);
            }
        }
        Ok(current)
    })?;
    match (&goal, now) {
        (Goal::Activate(target), Some(was)) => ctx.out.status(&format!(
            "rolled back integration '{name}': connection '{target}' is active again (deactivated '{was}')"
        )),
        (Goal::Activate(target), None) => ctx.out.status(&format!(
            "rolled back integration '{name}': connection '{target}' is active again"
        )),
        (Goal::Deactivate, was) => ctx.out.status(&format!(
            "rolled back integration '{name}': it is inactive again (deactivated '{}')",
            was.unwrap_or_default()
        )),
    }
    Ok(())
}
