//! `connctl connection diff A B`: two connections field by field, and with
//! `--live` what their servers showed. `integration diff` uses the same parts.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::cli::{ConnectionDiffArgs, DiffOptions};
use crate::commands::outbound::runtime;
use crate::commands::{Context, not_found};
use crate::compare::{self, Comparison, Facts, LiveFacts, Timing};
use crate::error::{Error, Result};
use crate::model::{RecordKind, Store};
use crate::outbound::{self, Outbound, Outcome, RequestSpec, Target};

pub fn run(ctx: &Context, args: ConnectionDiffArgs) -> Result<()> {
    check_ignore(&args.options.ignore)?;
    let store = ctx.load()?;
    for name in [&args.a, &args.b] {
        if !store.connection.contains_key(name) {
            return Err(not_found(&store, RecordKind::Connection, name));
        }
    }
    if args.a == args.b {
        return Err(Error::usage(format!(
            "'{}' is compared with itself: name two different connections",
            args.a
        )));
    }
    let compared = compare_pairs(&store, &[(args.a, args.b)], &args.options)?;
    print(ctx, &compared, false)?;
    verdict(ctx, &compared)
}

/// One pair's comparison, with the stage timings of `--live`.
pub struct Compared {
    pub comparison: Comparison,
    pub timings: Option<Vec<Timing>>,
}

/// `--ignore` names must be fields or groups a comparison can have (exit 2 otherwise).
pub fn check_ignore(fields: &[String]) -> Result<()> {
    for field in fields {
        if !compare::is_known_field(field) {
            return Err(Error::usage(format!(
                "--ignore '{}': no such field",
                field.escape_debug()
            ))
            .with_hint(format!(
                "fields: {}, variables.KEY, {}; groups: {}",
                compare::FIELDS.join(", "),
                compare::MORE_FIELDS
                    .iter()
                    .filter(|f| **f != "variables.KEY")
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
                compare::GROUPS.join(", ")
            )));
        }
    }
    Ok(())
}

/// Compares each pair (names known to exist); with `--live`, tests every
/// connection involved once, concurrently, and compares what the servers showed.
pub fn compare_pairs(
    store: &Store,
    pairs: &[(String, String)],
    options: &DiffOptions,
) -> Result<Vec<Compared>> {
    let mut targets: BTreeMap<String, Target> = BTreeMap::new();
    for (a, b) in pairs {
        for name in [a, b] {
            if !targets.contains_key(name) {
                targets.insert(name.clone(), Target::from_store(store, name)?);
            }
        }
    }
    let facts: BTreeMap<&str, Facts> = targets
        .iter()
        .map(|(name, t)| (name.as_str(), Facts::of(t, compare::read_cert)))
        .collect();
    let live = if options.live {
        Some(test_all(&targets, options.timeout)?)
    } else {
        None
    };
    let mut out = Vec::new();
    for (a, b) in pairs {
        let mut comparison = compare::compare(&facts[a.as_str()], &facts[b.as_str()]);
        let timings = live
            .as_ref()
            .map(|live| compare::compare_live(&mut comparison, &live[a], &live[b]));
        comparison.ignore(&options.ignore);
        out.push(Compared {
            comparison,
            timings,
        });
    }
    Ok(out)
}

/// The staged test of each connection, all at once.
fn test_all(
    targets: &BTreeMap<String, Target>,
    timeout: std::time::Duration,
) -> Result<BTreeMap<String, LiveFacts>> {
    let client = Arc::new(Outbound::new());
    let spec = Arc::new(RequestSpec {
        timeout,
        ..RequestSpec::default()
    });
    let outcomes: Vec<Outcome> = runtime(true)?.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for target in targets.values() {
            let (client, spec, target) = (client.clone(), spec.clone(), target.clone());
            set.spawn(async move {
                let mut outcome = client.exchange(&target, &spec).await;
                outcome.judge(outbound::default_accept, target.connection.authentication);
                outcome
            });
        }
        let mut done = Vec::new();
        while let Some(joined) = set.join_next().await {
            if let Ok(outcome) = joined {
                done.push(outcome);
            }
        }
        done
    });
    let mut live: BTreeMap<String, LiveFacts> = outcomes
        .iter()
        .map(|o| (o.connection.clone(), LiveFacts::of(o)))
        .collect();
    // A test task that panicked left no outcome: say so rather than guess.
    for name in targets.keys() {
        live.entry(name.clone()).or_insert_with(|| {
            LiveFacts::failed_at("secrets", "the test did not finish", Vec::new())
        });
    }
    Ok(live)
}

fn ms(value: Option<f64>) -> String {
    value
        .map(|v| format!("{v:.1}"))
        .unwrap_or_else(|| "-".into())
}

fn json_of(c: &Compared) -> Value {
    let mut json = c.comparison.to_json();
    if let Some(timings) = &c.timings {
        json["timings"] = timings
            .iter()
            .map(|t| serde_json::json!({"stage": t.stage, "a_ms": t.a_ms, "b_ms": t.b_ms}))
            .collect();
    }
    json
}

/// Table or JSON: one object for a pair (`connection diff`), an array for `integration diff`.
pub fn print(ctx: &Context, compared: &[Compared], array: bool) -> Result<()> {
    if ctx.out.is_json() {
        return if array {
            ctx.out
                .json(&Value::Array(compared.iter().map(json_of).collect()))
        } else {
            match compared.first() {
                Some(c) => ctx.out.json(&json_of(c)),
                None => Ok(()),
            }
        };
    }
    for (i, c) in compared.iter().enumerate() {
        let cmp = &c.comparison;
        let title = format!(
            "{}a: {}  b: {}\n",
            if i > 0 { "\n" } else { "" },
            cmp.a,
            cmp.b
        );
        ctx.out.raw(title.as_bytes())?;
        let rows = cmp
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.field.clone(),
                    r.a.clone(),
                    r.b.clone(),
                    if r.ignored {
                        "differs (ignored)".to_string()
                    } else {
                        r.verdict.as_str().to_string()
                    },
                ]
            })
            .collect();
        ctx.out.table(&["field", "a", "b", "verdict"], rows)?;
        if let Some(timings) = &c.timings {
            ctx.out.raw(b"\n")?;
            let rows = timings
                .iter()
                .map(|t| vec![t.stage.clone(), ms(t.a_ms), ms(t.b_ms)])
                .collect();
            ctx.out.table(&["stage", "a ms", "b ms"], rows)?;
        }
        for note in &cmp.notes {
            ctx.out.status(&format!("note: {note}"));
        }
    }
    Ok(())
}

/// Exit 0 when nothing differs unexpectedly, else 1 naming the fields.
pub fn verdict(ctx: &Context, compared: &[Compared]) -> Result<()> {
    let mut failures = Vec::new();
    for c in compared {
        let cmp = &c.comparison;
        let fields: Vec<&str> = cmp
            .rows
            .iter()
            .filter(|r| r.verdict == compare::Verdict::Differs && !r.ignored)
            .map(|r| r.field.as_str())
            .collect();
        if fields.is_empty() {
            ctx.out.status(&format!(
                "'{}' and '{}': nothing differs unexpectedly",
                cmp.a, cmp.b
            ));
        } else {
            failures.push(format!(
                "'{}' and '{}' differ in {}",
                cmp.a,
                cmp.b,
                fields.join(", ")
            ));
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    Err(Error::failed(failures.join("; "))
        .with_hint("fix the connection, or accept a known difference with --ignore FIELD"))
}
