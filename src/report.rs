//! Report files of `connection test --report`: JUnit XML for CI reporters and
//! the `-o json` array, written atomically; also the atomic writer the
//! monitor's textfile uses.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::net::Stage;
use crate::outbound::Outcome;
use crate::outbound::expiry::{self, Verdict};

/// What `--report KIND:FILE` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Junit,
    Json,
}

/// One `--report KIND:FILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportTarget {
    pub kind: ReportKind,
    pub path: PathBuf,
}

/// Parses `junit:FILE` or `json:FILE` (clap value parser).
pub fn parse_target(text: &str) -> std::result::Result<ReportTarget, String> {
    let (kind, path) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' must look like junit:FILE or json:FILE"))?;
    let kind = match kind.to_ascii_lowercase().as_str() {
        "junit" => ReportKind::Junit,
        "json" => ReportKind::Json,
        other => return Err(format!("unknown report kind '{other}': use junit or json")),
    };
    if path.is_empty() {
        return Err(format!("'{text}' names no file"));
    }
    Ok(ReportTarget {
        kind,
        path: PathBuf::from(path),
    })
}

/// Writes `bytes` to `path` atomically (a temporary file in the same folder,
/// fsync, rename), readable by others (0644): reports and metrics hold no secrets,
/// and node_exporter usually runs as another user.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let fail = |what: &str, e: &std::io::Error| {
        Error::invalid(format!("cannot {what} {}", path.display())).with_source(e)
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| fail("write", &e))?;
    tmp.write_all(bytes).map_err(|e| fail("write", &e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.as_file().sync_all().map_err(|e| fail("sync", &e))?;
    tmp.persist(path).map_err(|e| fail("replace", &e.error))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn total(outcome: &Outcome) -> Duration {
    Duration::from_secs_f64(outcome.trace.stages.iter().map(|s| s.ms).sum::<f64>() / 1000.0)
}

/// The stage timings and lifetimes of one test, as `<system-out>` text.
fn stage_log(outcome: &Outcome, now: i64) -> String {
    let mut text = String::new();
    for s in &outcome.trace.stages {
        text.push_str(&format!(
            "{:<12} {:<6} {:>8.1} ms  {}\n",
            s.stage.as_str(),
            if s.ok { "ok" } else { "FAILED" },
            s.ms,
            s.detail
        ));
    }
    for line in expiry::lifetime_lines(&outcome.trace.expiry, now) {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// The JUnit XML of a run: one testsuite per integration, one testcase per
/// connection; a failure names the stage (`type`) and its message, a RENEW
/// verdict is a failure of type `renew`.
pub fn junit(
    outcomes: &[Outcome],
    integration_of: impl Fn(&str) -> String,
    warn_days: u32,
    now: i64,
) -> Result<String> {
    let mut suites: BTreeMap<String, TestSuite> = BTreeMap::new();
    for outcome in outcomes {
        let integration = integration_of(&outcome.connection);
        let status = match expiry::verdict(outcome, warn_days, now) {
            (Verdict::Ok, _) => TestCaseStatus::success(),
            (Verdict::Renew, due) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status
                    .set_type("renew")
                    .set_message(format!("{} (--warn-days {warn_days})", due.join("; ")))
                    .set_description(stage_log(outcome, now));
                status
            }
            (Verdict::Failed, _) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let stage = outcome.trace.failed_stage().map(Stage::as_str);
                status.set_type(stage.unwrap_or("check"));
                if let Some(err) = &outcome.error {
                    status.set_message(err.message.clone());
                    let mut description = err.to_string();
                    if let Some(stage) = stage {
                        description = format!("stage {stage} failed: {description}");
                    }
                    status.set_description(description);
                }
                status
            }
        };
        let mut case = TestCase::new(outcome.connection.clone(), status);
        case.set_classname(integration.clone())
            .set_time(total(outcome))
            .set_system_out(stage_log(outcome, now));
        suites
            .entry(integration.clone())
            .or_insert_with(|| TestSuite::new(integration))
            .add_test_case(case);
    }
    let mut report = Report::new("connctl connection test");
    report.add_test_suites(suites.into_values());
    report
        .to_string()
        .map_err(|e| Error::failed("cannot write the JUnit report").with_cause(e))
}

/// Writes every requested report.
pub fn write_all(
    targets: &[ReportTarget],
    outcomes: &[Outcome],
    integration_of: impl Fn(&str) -> String,
    warn_days: u32,
    now: i64,
) -> Result<()> {
    for target in targets {
        let bytes = match target.kind {
            ReportKind::Junit => junit(outcomes, &integration_of, warn_days, now)?.into_bytes(),
            ReportKind::Json => {
                let array = Value::Array(
                    outcomes
                        .iter()
                        .map(|o| expiry::to_json(o, warn_days, now))
                        .collect(),
                );
                let mut text = serde_json::to_string_pretty(&array)
                    .map_err(|e| Error::failed("cannot write the JSON report").with_cause(e))?;
                text.push('\n');
                text.into_bytes()
            }
        };
        write_atomic(&target.path, &bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_report_targets() {
        assert_eq!(
            parse_target("junit:out/r.xml"),
            Ok(ReportTarget {
                kind: ReportKind::Junit,
                path: PathBuf::from("out/r.xml")
            })
        );
        assert_eq!(parse_target("JSON:a:b").map(|t| t.path), Ok("a:b".into()));
        assert!(parse_target("xml:r.xml").is_err());
        assert!(parse_target("junit:").is_err());
        assert!(parse_target("r.xml").is_err());
    }
}
