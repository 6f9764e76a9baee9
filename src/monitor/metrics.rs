//! Every metric family of `connctl monitor`, in one place, rendered with the
//! official client (prometheus-client) in the OpenMetrics text format.
//!
//! Labels hold record names only (connection, integration, environment, stage,
//! role): never a URL, a user or a secret.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::ProbeResult;

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of [`prometheus_text`].
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;
type Gauges = Family<Labels, FloatGauge>;

/// What outlives one probe cycle: the counters.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub probes: Counter,
    pub store_reload_errors: Counter,
}

/// The state of the exporter itself, besides the probe results.
#[derive(Debug, Clone, Copy, Default)]
pub struct CycleInfo {
    /// Whether the store file read last was valid.
    pub store_valid: bool,
    /// Unix time at which the last cycle finished.
    pub finished_at: f64,
    /// Wall time of the last cycle.
    pub duration_secs: f64,
}

fn gauges(registry: &mut Registry, name: &str, help: &str) -> Gauges {
    let family = Gauges::default();
    registry.register(name, help, family.clone());
    family
}

fn with(base: &Labels, key: &'static str, value: &str) -> Labels {
    let mut labels = base.clone();
    labels.push((key, value.to_string()));
    labels
}

/// The metrics text of the last cycle's results.
pub fn render(results: &[ProbeResult], counters: &Counters, cycle: CycleInfo) -> String {
    let mut registry = Registry::with_prefix("connctl");
    let success = gauges(
        &mut registry,
        "probe_success",
        "1 when the last staged test of the connection passed, else 0",
    );
    let duration = gauges(
        &mut registry,
        "probe_duration_seconds",
        "Wall time of the last staged test of the connection",
    );
    let stage_duration = gauges(
        &mut registry,
        "stage_duration_seconds",
        "Time of each stage of the last test (secrets, oauth_token, dns, tcp, mid_connect, tls, http)",
    );
    let failed_stage = gauges(
        &mut registry,
        "probe_failed_stage",
        "1 for the stage at which the last test failed, 0 for the stages that passed",
    );
    let http_status = gauges(
        &mut registry,
        "http_status",
        "HTTP status of the endpoint's answer to the last test (absent when none came)",
    );
    let not_after = gauges(
        &mut registry,
        "tls_cert_not_after_seconds",
        "Unix time at which the server's (role=server) or the client's (role=client) certificate expires",
    );
    let token_expiry = gauges(
        &mut registry,
        "oauth_token_expiry_seconds",
        "Unix time at which the OAuth access token used by the last test expires",
    );
    let active = gauges(
        &mut registry,
        "active",
        "1 when the connection is its integration's active connection, else 0",
    );
    registry.register(
        "probes",
        "Staged tests run since the start",
        counters.probes.clone(),
    );
    registry.register(
        "store_reload_errors",
        "Times the store changed but could not be loaded (the last valid version is kept)",
        counters.store_reload_errors.clone(),
    );
    let store_valid = FloatGauge::default();
    registry.register(
        "store_valid",
        "1 when the store file read last was valid, 0 while it is not",
        store_valid.clone(),
    );
    let last_cycle = FloatGauge::default();
    registry.register(
        "last_cycle_timestamp_seconds",
        "Unix time at which the last probe cycle finished",
        last_cycle.clone(),
    );
    let cycle_duration = FloatGauge::default();
    registry.register(
        "cycle_duration_seconds",
        "Wall time of the last probe cycle over every chosen connection",
        cycle_duration.clone(),
    );

    store_valid.set(if cycle.store_valid { 1.0 } else { 0.0 });
    last_cycle.set(cycle.finished_at);
    cycle_duration.set(cycle.duration_secs);

    for result in results {
        let base: Labels = vec![
            ("connection", result.connection.clone()),
            ("integration", result.integration.clone()),
            ("environment", result.environment.clone()),
        ];
        let outcome = &result.outcome;
        active
            .get_or_create(&base)
            .set(if result.active { 1.0 } else { 0.0 });
        success
            .get_or_create(&base)
            .set(if outcome.ok() { 1.0 } else { 0.0 });
        duration
            .get_or_create(&base)
            .set(result.duration.as_secs_f64());
        let failed = outcome.trace.failed_stage();
        for stage in &outcome.trace.stages {
            let labels = with(&base, "stage", stage.stage.as_str());
            stage_duration.get_or_create(&labels).set(stage.ms / 1000.0);
            failed_stage
                .get_or_create(&labels)
                .set(if Some(stage.stage) == failed {
                    1.0
                } else {
                    0.0
                });
        }
        if let Some(status) = outcome.status() {
            http_status.get_or_create(&base).set(f64::from(status));
        }
        let expiry = &outcome.trace.expiry;
        for (role, at) in [
            ("server", expiry.server_cert),
            ("client", expiry.client_cert),
        ] {
            if let Some(at) = at {
                not_after
                    .get_or_create(&with(&base, "role", role))
                    .set(at as f64);
            }
        }
        if let Some(at) = expiry.token {
            token_expiry.get_or_create(&base).set(at as f64);
        }
    }

    let mut text = String::with_capacity(256 + results.len() * 1200);
    // Writing into a String cannot fail.
    let _ = encode(&mut text, &registry);
    text
}

/// The OpenMetrics text of [`render`] in the older Prometheus text format
/// (0.0.4) that node_exporter's textfile collector, `promtool check metrics`
/// and scrapers without OpenMetrics read: a counter family is named after its
/// `_total` sample there, and there is no `# EOF`.
pub fn prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len() + 64);
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => text.push_str(&line),
            None => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_take_their_total_name_in_the_old_text_format() {
        let open = "# HELP connctl_probes Tests run.\n# TYPE connctl_probes counter\nconnctl_probes_total 2\n# HELP connctl_active Active.\n# TYPE connctl_active gauge\nconnctl_active{connection=\"a\"} 1.0\n# EOF\n";
        assert_eq!(
            prometheus_text(open),
            "# HELP connctl_probes_total Tests run.\n# TYPE connctl_probes_total counter\nconnctl_probes_total 2\n# HELP connctl_active Active.\n# TYPE connctl_active gauge\nconnctl_active{connection=\"a\"} 1.0\n"
        );
    }
}
