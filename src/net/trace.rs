//! The record of one exchange: each stage timed with its result, what the TLS
//! handshake showed, and the lifetimes seen on the way. Every layer that talks
//! to a peer writes into it (the outbound stages, OAuth, Vault).

use tokio::time::Instant;

use crate::error::{Error, Result};

/// Lifetimes seen during one exchange, as Unix seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expiry {
    /// The server certificate's `notAfter` (also when the handshake refused it).
    pub server_cert: Option<i64>,
    /// The client certificate's `notAfter` (mutual TLS).
    pub client_cert: Option<i64>,
    /// When the OAuth access token used expires.
    pub token: Option<i64>,
}

/// The stages of an outbound request, in order (DESIGN.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Secrets,
    OauthToken,
    Dns,
    Tcp,
    MidConnect,
    Tls,
    Http,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Secrets => "secrets",
            Stage::OauthToken => "oauth_token",
            Stage::Dns => "dns",
            Stage::Tcp => "tcp",
            Stage::MidConnect => "mid_connect",
            Stage::Tls => "tls",
            Stage::Http => "http",
        }
    }
}

/// One stage as it went.
#[derive(Debug, Clone)]
pub struct StageRecord {
    pub stage: Stage,
    pub ok: bool,
    pub ms: f64,
    pub detail: String,
}

/// The stages of one exchange.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub stages: Vec<StageRecord>,
    /// What the endpoint's TLS handshake showed, once it completed.
    pub tls: Option<super::tls::TlsFacts>,
    /// Certificate and token lifetimes seen on the way.
    pub expiry: Expiry,
}

impl StageRecord {
    /// The stage as one `-v` log line: name, result, time, detail.
    pub fn log_line(&self) -> String {
        format!(
            "{:<12} {:<6} {:>8.1} ms  {}",
            self.stage.as_str(),
            if self.ok { "ok" } else { "FAILED" },
            self.ms,
            // One line: a certificate name with a newline in it stays on it.
            crate::text::escape(&self.detail)
        )
    }
}

fn elapsed_ms(started: Instant) -> f64 {
    (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
}

impl Trace {
    /// Records a stage's result; the error's message becomes the detail of a failed stage.
    pub fn record<T>(
        &mut self,
        stage: Stage,
        started: Instant,
        result: Result<T>,
        detail: impl FnOnce(&T) -> String,
    ) -> Result<T> {
        let ms = elapsed_ms(started);
        let (ok, detail) = match &result {
            Ok(value) => (true, detail(value)),
            Err(e) => (false, e.message.clone()),
        };
        self.stages.push(StageRecord {
            stage,
            ok,
            ms,
            detail,
        });
        result
    }

    /// Records a failed stage and hands the error back.
    pub fn fail(&mut self, stage: Stage, started: Instant, err: Error) -> Error {
        self.stages.push(StageRecord {
            stage,
            ok: false,
            ms: elapsed_ms(started),
            detail: err.message.clone(),
        });
        err
    }

    /// Marks an already recorded stage as failed (a TLS alert seen after the handshake).
    pub fn fail_last(&mut self, stage: Stage, err: &Error) {
        if let Some(record) = self.last_mut(stage) {
            record.ok = false;
            record.detail = err.message.clone();
        }
    }

    /// The last record of `stage`, to amend once more is known about it.
    pub fn last_mut(&mut self, stage: Stage) -> Option<&mut StageRecord> {
        self.stages.iter_mut().rev().find(|r| r.stage == stage)
    }

    pub fn failed_stage(&self) -> Option<Stage> {
        self.stages.iter().find(|r| !r.ok).map(|r| r.stage)
    }
}
