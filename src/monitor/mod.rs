//! `connctl monitor`: probes the chosen connections on a fixed schedule with
//! the staged test of `connection test`, reloads the store when it changes,
//! and publishes the results as Prometheus metrics (served by [`serve`] or
//! written as a node_exporter textfile).

pub mod metrics;
pub mod serve;

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::model::Store;
use crate::outbound::{self, Outbound, Outcome, RequestSpec, Target};
use crate::store::{Stamp, stamp};
use metrics::{Counters, CycleInfo};

/// Which connections to probe.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub active_only: bool,
    pub integration: Option<String>,
}

impl Selection {
    /// The chosen connections of `store`, ready to probe, in store order.
    pub fn targets(&self, store: &Store) -> Vec<Probe> {
        store
            .connection
            .iter()
            .filter(|(_, c)| !self.active_only || c.active)
            .filter(|(_, c)| {
                self.integration
                    .as_ref()
                    .is_none_or(|i| &c.integration == i)
            })
            .filter_map(|(name, c)| {
                Some(Probe {
                    target: Target::from_store(store, name).ok()?,
                    integration: c.integration.clone(),
                    environment: c.environment.to_string(),
                    active: c.active,
                })
            })
            .collect()
    }
}

/// One connection to probe, with the labels of its metrics.
#[derive(Debug, Clone)]
pub struct Probe {
    pub target: Target,
    pub integration: String,
    pub environment: String,
    pub active: bool,
}

/// The last test of one connection.
#[derive(Debug)]
pub struct ProbeResult {
    pub connection: String,
    pub integration: String,
    pub environment: String,
    pub active: bool,
    pub duration: Duration,
    pub outcome: Outcome,
}

/// How to probe.
#[derive(Debug, Clone)]
pub struct Config {
    pub store_path: PathBuf,
    pub selection: Selection,
    pub interval: Duration,
    pub jobs: usize,
    pub spec: RequestSpec,
}

/// What the HTTP server reads: the text of the last cycle. Scrapes never probe.
#[derive(Debug, Default)]
pub struct Published {
    text: RwLock<Arc<str>>,
    cycles: std::sync::atomic::AtomicU64,
}

impl Published {
    pub fn text(&self) -> Arc<str> {
        self.text
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Cycles finished so far.
    pub fn cycles(&self) -> u64 {
        self.cycles.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn publish(&self, text: String) {
        let text: Arc<str> = text.into();
        match self.text.write() {
            Ok(mut slot) => *slot = text,
            Err(p) => *p.into_inner() = text,
        }
        self.cycles
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Probes every connection once, at most `jobs` at a time; results in input order.
pub async fn probe_all(probes: &[Probe], spec: &RequestSpec, jobs: usize) -> Vec<ProbeResult> {
    // A new Outbound per cycle: DNS answers and CA bundles are read afresh.
    let client = Arc::new(Outbound::new());
    let spec = Arc::new(spec.clone());
    let semaphore = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (index, probe) in probes.iter().cloned().enumerate() {
        let (client, spec, semaphore) = (client.clone(), spec.clone(), semaphore.clone());
        set.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let started = Instant::now();
            let mut outcome = client.exchange(&probe.target, &spec).await;
            outcome.judge(
                outbound::default_accept,
                probe.target.connection.authentication,
            );
            let result = ProbeResult {
                connection: probe.target.name.clone(),
                integration: probe.integration,
                environment: probe.environment,
                active: probe.active,
                duration: started.elapsed(),
                outcome,
            };
            (index, result)
        });
    }
    let mut results = Vec::with_capacity(probes.len());
    while let Some(joined) = set.join_next().await {
        if let Ok(pair) = joined {
            results.push(pair);
        }
    }
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, r)| r).collect()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The store as last loaded, reloaded when its file changes (one `stat` per cycle).
struct StoreWatch {
    path: PathBuf,
    stamp: Option<Option<Stamp>>,
}

impl StoreWatch {
    /// `Some(result)` when the file changed since the last look (or on the first).
    fn reload(&mut self) -> Option<Result<Store>> {
        let now = stamp(&self.path);
        if self.stamp.as_ref() == Some(&now) {
            return None;
        }
        self.stamp = Some(now);
        Some(crate::store::load(&self.path))
    }
}

/// Probes on the interval until `shutdown` resolves (or once), publishing each
/// cycle's metrics. `log` gets one line per store reload or reload error;
/// `debug` one per cycle.
pub async fn run(
    config: Config,
    published: Arc<Published>,
    once: bool,
    shutdown: impl Future<Output = ()>,
    log: &(dyn Fn(&str) + Sync),
    debug: &(dyn Fn(&str) + Sync),
) -> Result<()> {
    let counters = Counters::default();
    let mut watch = StoreWatch {
        path: config.store_path.clone(),
        stamp: None,
    };
    let mut probes: Vec<Probe> = Vec::new();
    let mut store_valid = true;
    let mut first = true;
    tokio::pin!(shutdown);
    loop {
        let started = Instant::now();
        match watch.reload() {
            None => {}
            Some(Ok(store)) => {
                probes = config.selection.targets(&store);
                store_valid = true;
                if !first {
                    log(&format!(
                        "store changed: reloaded '{}' ({} connections to probe)",
                        config.store_path.display(),
                        probes.len()
                    ));
                }
            }
            Some(Err(e)) if first => return Err(e),
            Some(Err(e)) => {
                counters.store_reload_errors.inc();
                store_valid = false;
                log(&format!(
                    "warning: the store changed but cannot be loaded; still probing the previous version: {}",
                    e.shown()
                ));
            }
        }
        first = false;
        let results = tokio::select! {
            results = probe_all(&probes, &config.spec, config.jobs) => results,
            _ = &mut shutdown => return Ok(()),
        };
        counters.probes.inc_by(results.len() as u64);
        let failed = results.iter().filter(|r| !r.outcome.ok()).count();
        let elapsed = started.elapsed();
        debug(&format!(
            "cycle: {} probed, {failed} failed, {:.0} ms",
            results.len(),
            elapsed.as_secs_f64() * 1000.0
        ));
        published.publish(metrics::render(
            &results,
            &counters,
            CycleInfo {
                store_valid,
                finished_at: unix_now(),
                duration_secs: elapsed.as_secs_f64(),
            },
        ));
        if once {
            return Ok(());
        }
        // The next cycle starts one interval after this one started, however
        // often /metrics is scraped (a slow cycle starts the next at once).
        tokio::select! {
            _ = tokio::time::sleep_until(started + config.interval) => {}
            _ = &mut shutdown => return Ok(()),
        }
    }
}

/// Parses `60s`, `1m`, `1m30s`, `2h`, `500ms` or plain seconds.
pub fn parse_interval(text: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("'{text}' is not a duration: write e.g. 15s, 1m, 1m30s or 2h");
    let text_trim = text.trim();
    if let Ok(secs) = text_trim.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs))
            .ok_or_else(bad);
    }
    let mut total = Duration::ZERO;
    let mut rest = text_trim;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, tail) = rest.split_at(digits);
        let value: f64 = number.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let secs = match unit {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::from_secs_f64(secs);
        rest = tail;
    }
    Ok(total)
}

/// Refuses an interval too short to be a schedule.
pub fn check_interval(interval: Duration) -> Result<Duration> {
    if interval < Duration::from_secs(1) {
        return Err(Error::usage(format!(
            "--interval {:?} is too short: probe at most once a second",
            interval
        )));
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_intervals() {
        let p = |t: &str| parse_interval(t).unwrap();
        assert_eq!(p("60s"), Duration::from_secs(60));
        assert_eq!(p("15"), Duration::from_secs(15));
        assert_eq!(p("1m30s"), Duration::from_secs(90));
        assert_eq!(p("2h"), Duration::from_secs(7200));
        assert_eq!(p("500ms"), Duration::from_millis(500));
        assert!(parse_interval("soon").is_err());
        assert!(parse_interval("5 parsecs").is_err());
        assert!(parse_interval("10x").is_err());
    }
}
