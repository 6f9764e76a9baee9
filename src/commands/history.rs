//! `connctl history`: the change journal, newest first.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::HistoryArgs;
use crate::commands::Context;
use crate::error::{Error, Result};
use crate::journal::{self, Action, Change, Entry, JournalRead};
use crate::output::sh_quote;

/// One row of `history -o json`: an entry's who/when/what with one record it touched.
#[derive(Serialize)]
struct Row<'a> {
    time: &'a str,
    user: &'a str,
    host: &'a str,
    command: &'a [String],
    kind: &'a str,
    name: &'a str,
    action: Action,
    fields: &'a [String],
    integration: Option<&'a str>,
    environment: Option<&'a str>,
    previous: Option<&'a str>,
}

/// Reads the journal of the context's store as of the store on disk now,
/// reporting (on stderr) and skipping lines that are not entries.
pub fn read_journal(ctx: &Context) -> Result<JournalRead> {
    // The store first: an entry appended after this read is judged against it.
    let text = crate::store::read_text(&ctx.store_path)?;
    let digest = text.as_deref().map(journal::digest);
    let read = journal::read(&ctx.store_path, digest.as_deref())?;
    let path = journal::path_for(&ctx.store_path);
    for bad in &read.bad {
        ctx.out.warn(&format!(
            "{}:{}: {}; skipped",
            path.display(),
            bad.line,
            bad.reason
        ));
    }
    Ok(read)
}

pub fn run(ctx: &Context, args: HistoryArgs) -> Result<()> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let read = read_journal(ctx)?;
    let wanted = |entry: &Entry, change: &Change| {
        if let Some(since) = since {
            match OffsetDateTime::parse(&entry.time, &Rfc3339) {
                Ok(at) if at >= since => {}
                _ => return false,
            }
        }
        if let Some(i) = &args.integration {
            let of_integration = change.integration.as_deref() == Some(i.as_str())
                || (change.kind == "integration" && change.name == *i);
            if !of_integration {
                return false;
            }
        }
        if let Some(c) = &args.connection {
            let of_connection = (change.kind == "connection" && change.name == *c)
                || (change.action.is_activation() && change.previous.as_deref() == Some(c));
            if !of_connection {
                return false;
            }
        }
        true
    };
    let limit = args.limit.unwrap_or(usize::MAX);
    let rows: Vec<Row<'_>> = read
        .entries
        .iter()
        .rev()
        .flat_map(|(_, entry)| entry.changes.iter().map(move |change| (entry, change)))
        .filter(|(entry, change)| wanted(entry, change))
        .take(limit)
        .map(|(entry, change)| Row {
            time: &entry.time,
            user: &entry.user,
            host: &entry.host,
            command: &entry.command,
            kind: &change.kind,
            name: &change.name,
            action: change.action,
            fields: &change.fields,
            integration: change.integration.as_deref(),
            environment: change.environment.as_deref(),
            previous: change.previous.as_deref(),
        })
        .collect();
    if ctx.out.is_json() {
        return ctx.out.json_of(&rows);
    }
    if rows.is_empty() {
        ctx.out.status(if read.entries.is_empty() {
            "the journal is empty: no change has been made to this store since it was started"
        } else {
            "no journal entries match"
        });
        return Ok(());
    }
    let table = rows
        .iter()
        .map(|r| {
            vec![
                short_time(r.time),
                format!("{}@{}", r.user, r.host),
                r.action.as_str().to_string(),
                format!("{} {}", r.kind, r.name),
                detail(r),
                r.command
                    .iter()
                    .map(|w| sh_quote(w))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    ctx.out.table(
        &["time", "user", "action", "record", "detail", "command"],
        table,
    )
}

fn detail(row: &Row<'_>) -> String {
    let place = match (row.integration, row.environment) {
        (Some(i), Some(e)) => format!("integration {i} ({e})"),
        (Some(i), None) => format!("integration {i}"),
        _ => String::new(),
    };
    match row.action {
        Action::Activated => format!("{place}, before: {}", row.previous.unwrap_or("none active")),
        Action::Deactivated => place,
        _ if !row.fields.is_empty() => row.fields.join(", "),
        _ => String::new(),
    }
}

/// `2026-12-01T21:06:33.516524454Z` → `2026-12-01T21:06:33Z`.
fn short_time(time: &str) -> String {
    match (time.find('.'), time.ends_with('Z')) {
        (Some(19), true) => format!("{}Z", &time[..19]),
        _ => time.to_string(),
    }
}

/// `--since`: a duration back from now (`90s`, `30m`, `12h`, `7d`, `2w`) or an RFC 3339 time.
fn parse_since(text: &str) -> Result<OffsetDateTime> {
    let bad = || {
        Error::usage(format!(
            "--since '{text}' is neither a duration (90s, 30m, 12h, 7d, 2w) nor an RFC 3339 time (2026-12-01T08:00:00Z)"
        ))
    };
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(bad)?;
    let (number, unit) = trimmed.split_at(split);
    let number: i64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    let back = time::Duration::seconds(number.checked_mul(seconds).ok_or_else(bad)?);
    OffsetDateTime::now_utc().checked_sub(back).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        let now = OffsetDateTime::now_utc();
        let at = parse_since("2h").unwrap();
        assert!((now - at - time::Duration::hours(2)).abs() < time::Duration::seconds(5));
        assert!(parse_since("2026-12-01T08:00:00Z").is_ok());
        assert!(parse_since("2x").is_err());
        assert!(parse_since("h").is_err());
        assert!(parse_since("yesterday").is_err());
    }

    #[test]
    fn short_times() {
        assert_eq!(
            short_time("2026-12-01T21:06:33.516524454Z"),
            "2026-12-01T21:06:33Z"
        );
        assert_eq!(short_time("garbage"), "garbage");
    }
}
