//! Which connection an integration means: the one policy behind
//! `integration activate`, `connection test|send --integration` and
//! `integration diff --env` (DESIGN.md §1 rule 2).

use super::{Connection, Environment, RecordKind, Store};
use crate::error::{Error, ErrorKind, Result};

/// The policy, as `--help` and `docs/design.md` state it.
pub const CONNECTION_CHOICE: &str = "Among the integration's connections (only those of --env when given) \
connctl takes the active one, else the only one, else the one most recently active; with none to \
choose from (exit 3), or several of which none was ever active (exit 2), it lists the candidates. \
`connection test|send --integration` without --env use the active connection only (exit 3 when \
the integration is inactive, naming the one `integration activate` would choose).";

impl Store {
    /// The connection `connection test|send --integration` use: without
    /// `env`, the integration's active connection (DESIGN.md §4: a send
    /// never goes to a connection an operator deactivated just because it
    /// was the last one used); with `env`, [`Store::choose_connection`]
    /// among that environment's connections.
    pub fn connection_in_use(&self, integration: &str, env: Option<Environment>) -> Result<&str> {
        if env.is_some() {
            return self.choose_connection(integration, None, env);
        }
        // Not `active_connection_of`: its result borrows `integration` too.
        if let Some((active, _)) = self
            .connection
            .iter()
            .find(|(_, c)| c.integration == integration && c.active)
        {
            return Ok(active);
        }
        let hint = match self.choose_connection(integration, None, None) {
            Ok(would) => format!(
                "activate one (`connctl integration activate {integration}` would choose '{would}'), \
or name one: `--env {}` or the connection's name",
                self.connection[would].environment
            ),
            // No such integration, or no connections: that is the error.
            Err(e) if e.kind == ErrorKind::NotFound => return Err(e),
            Err(_) => {
                let all: Vec<(&String, &Connection)> = self
                    .connection
                    .iter()
                    .filter(|(_, c)| c.integration == integration)
                    .collect();
                format!(
                    "activate one (`connctl integration activate {integration} --connection NAME`), \
or name one by --env or by name: {}",
                    listing(&all)
                )
            }
        };
        Err(Error::new(
            ErrorKind::NotFound,
            format!("integration '{integration}' has no active connection"),
        )
        .with_hint(hint))
    }

    /// The connection of `integration` that a command means when it names the
    /// integration: `connection` when given (it must belong to the
    /// integration), else among the integration's connections (only those of
    /// `env` when given) the active one, else the only one, else the most
    /// recently active one ([`CONNECTION_CHOICE`]).
    ///
    /// Errors: an integration or connection that does not exist, or no
    /// connection to choose from (exit 3); a connection of another
    /// integration (exit 4); several candidates none of which was ever active
    /// (exit 2, listing them).
    pub fn choose_connection(
        &self,
        integration: &str,
        connection: Option<&str>,
        env: Option<Environment>,
    ) -> Result<&str> {
        if !self.integration.contains_key(integration) {
            return Err(self.missing(RecordKind::Integration, integration));
        }
        // Not `connections_of`: its items borrow `integration` too.
        let all: Vec<(&String, &Connection)> = self
            .connection
            .iter()
            .filter(|(_, c)| c.integration == integration)
            .collect();
        if let Some(wanted) = connection {
            let Some((name, c)) = self.connection.get_key_value(wanted) else {
                return Err(self.missing(RecordKind::Connection, wanted));
            };
            if c.integration != integration {
                return Err(Error::invalid(format!(
                    "connection '{wanted}' belongs to integration '{}', not '{integration}'",
                    c.integration
                ))
                .with_hint(format!("its connections: {}", listing(&all))));
            }
            return Ok(name);
        }
        if all.is_empty() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("integration '{integration}' has no connections"),
            )
            .with_hint(format!(
                "add one: connctl connection add {integration}.test --integration {integration} --env test --url https://..."
            )));
        }
        let candidates: Vec<(&String, &Connection)> = all
            .iter()
            .filter(|(_, c)| env.is_none_or(|e| c.environment == e))
            .copied()
            .collect();
        let env_text = env.map_or(String::new(), |e| format!("{e} "));
        if candidates.is_empty() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("integration '{integration}' has no {env_text}connection"),
            )
            .with_hint(format!("its connections: {}", listing(&all))));
        }
        if let Some(&(name, _)) = candidates.iter().find(|(_, c)| c.active) {
            return Ok(name);
        }
        if let [(only, _)] = candidates.as_slice() {
            return Ok(*only);
        }
        // Compare instants, not strings: RFC 3339 drops trailing zeros of the
        // fraction, so "…50.4Z" sorts after "…50.43Z" as text.
        let recent = candidates
            .iter()
            .filter_map(|(n, c)| {
                let stamp = c.last_activated.as_deref()?;
                let at = time::OffsetDateTime::parse(
                    stamp,
                    &time::format_description::well_known::Rfc3339,
                )
                .ok()?;
                Some((at, *n))
            })
            .max();
        if let Some((_, name)) = recent {
            return Ok(name);
        }
        Err(Error::usage(format!(
            "integration '{integration}' has {} {env_text}connections and none was active before: {}",
            candidates.len(),
            listing(&candidates)
        ))
        .with_hint(format!(
            "choose one by name: `connctl integration activate {integration} --connection {}` activates it; `connctl connection test {}` names it",
            candidates[0].0, candidates[0].0
        )))
    }
}

/// Connections as the errors list them: `a (test), b (production, active)`.
fn listing(list: &[(&String, &Connection)]) -> String {
    list.iter()
        .map(|(n, c)| {
            format!(
                "{n} ({}{})",
                c.environment,
                if c.active { ", active" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
