//! Certificate and token lifetimes as results of a test: what the exchange
//! saw, the RENEW verdict of `--warn-days`, and the fields they add to JSON.

use serde_json::{Value, json};

use super::Outcome;

pub use crate::net::Expiry;

/// The default of `--warn-days`.
pub const DEFAULT_WARN_DAYS: u32 = 30;

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Whole days from `now` to `not_after`, counted toward zero: 3 while 3 days and
/// some hours are left, -3 once it expired 3 days and some hours ago.
pub fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now) / 86_400
}

/// The overall result of a test, with expiry taken into account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Passed, but a certificate expires within the warning window.
    Renew,
    Failed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Renew => "RENEW",
            Verdict::Failed => "FAILED",
        }
    }
}

fn lifetime_text(not_after: i64, now: i64) -> String {
    let days = days_left(not_after, now);
    match days {
        0 if not_after <= now => "EXPIRED today".to_string(),
        0 => "expires today".to_string(),
        d if d < 0 => format!("EXPIRED {} day{} ago", -d, if d == -1 { "" } else { "s" }),
        1 => "expires in 1 day".to_string(),
        d => format!("expires in {d} days"),
    }
}

/// "1h05m", "4m10s", "42s"; "0s" once past.
fn short_secs(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

fn date(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!("[year]-[month]-[day]"))
                .ok()
        })
        .unwrap_or_default()
}

/// The lifetimes seen, one line each: "server certificate expires in 89 days (2027-03-01)",
/// "OAuth token expires in 59m40s".
pub fn lifetime_lines(expiry: &Expiry, now: i64) -> Vec<String> {
    let mut lines = Vec::new();
    for (what, not_after) in [
        ("server certificate", expiry.server_cert),
        ("client certificate", expiry.client_cert),
    ] {
        if let Some(at) = not_after {
            lines.push(format!("{what} {} ({})", lifetime_text(at, now), date(at)));
        }
    }
    if let Some(at) = expiry.token {
        lines.push(format!("OAuth token expires in {}", short_secs(at - now)));
    }
    lines
}

/// The certificates that expire within `warn_days`, in words:
/// "server certificate expires in 12 days".
pub fn renewals(expiry: &Expiry, warn_days: u32, now: i64) -> Vec<String> {
    let mut due = Vec::new();
    for (what, not_after) in [
        ("server certificate", expiry.server_cert),
        ("client certificate", expiry.client_cert),
    ] {
        if let Some(at) = not_after
            && at - now < i64::from(warn_days) * 86_400
        {
            due.push(format!("{what} {}", lifetime_text(at, now)));
        }
    }
    due
}

/// The verdict of an outcome and, for RENEW, what to renew.
pub fn verdict(outcome: &Outcome, warn_days: u32, now: i64) -> (Verdict, Vec<String>) {
    if !outcome.ok() {
        return (Verdict::Failed, Vec::new());
    }
    let due = renewals(&outcome.trace.expiry, warn_days, now);
    if due.is_empty() {
        (Verdict::Ok, due)
    } else {
        (Verdict::Renew, due)
    }
}

/// The exit code of a RENEW verdict (documented in DESIGN notes and `--help`).
pub const RENEW_EXIT_CODE: u8 = 9;

fn rfc3339(at: i64) -> Value {
    crate::model::rfc3339(at).map_or(Value::Null, Value::String)
}

/// The object of `connection test -o json`: the outcome's fields, then
/// `verdict`, `renew` and the lifetimes (dates in RFC 3339, days, seconds).
pub fn to_json(outcome: &Outcome, warn_days: u32, now: i64) -> Value {
    let mut value = outcome.to_json();
    let (verdict, due) = verdict(outcome, warn_days, now);
    let expiry = &outcome.trace.expiry;
    if let Value::Object(map) = &mut value {
        if verdict == Verdict::Renew {
            map.insert("exit_code".into(), json!(RENEW_EXIT_CODE));
        }
        map.insert("verdict".into(), json!(verdict.as_str()));
        map.insert("renew".into(), json!(due));
        for (prefix, at) in [
            ("server_cert", expiry.server_cert),
            ("client_cert", expiry.client_cert),
        ] {
            map.insert(
                format!("{prefix}_not_after"),
                at.map(rfc3339).unwrap_or(Value::Null),
            );
            map.insert(
                format!("{prefix}_days_left"),
                json!(at.map(|at| days_left(at, now))),
            );
        }
        map.insert(
            "token_expires_in_secs".into(),
            json!(expiry.token.map(|at| at - now)),
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn renews_inside_the_window_only() {
        let now = 1_000_000_000;
        let expiry = Expiry {
            server_cert: Some(now + 12 * DAY + 5),
            client_cert: Some(now + 90 * DAY),
            token: Some(now + 3600),
        };
        assert_eq!(
            renewals(&expiry, 30, now),
            vec!["server certificate expires in 12 days".to_string()]
        );
        assert!(renewals(&expiry, 12, now).is_empty());
        assert_eq!(renewals(&expiry, 91, now).len(), 2);
        let expired = Expiry {
            client_cert: Some(now - 3 * DAY - 5),
            ..Expiry::default()
        };
        assert_eq!(
            renewals(&expired, 0, now),
            vec!["client certificate EXPIRED 3 days ago".to_string()]
        );
    }
}
