//! `connctl monitor`: the long-running exporter (or `--once`), glued to the printer.

use std::sync::Arc;

use crate::cli::MonitorArgs;
use crate::commands::outbound::runtime;
use crate::commands::{Context, not_found};
use crate::error::{Error, Result};
use crate::model::RecordKind;
use crate::monitor::{self, Config, Published, Selection};
use crate::outbound::RequestSpec;

pub fn run(ctx: &Context, args: MonitorArgs) -> Result<()> {
    // A store that cannot be read, or an unknown integration, fails the start.
    let store = ctx.load()?;
    if let Some(integration) = &args.integration
        && !store.integration.contains_key(integration)
    {
        return Err(not_found(&store, RecordKind::Integration, integration));
    }
    let selection = Selection {
        active_only: args.active,
        integration: args.integration.clone(),
    };
    let count = selection.targets(&store).len();
    let config = Config {
        store_path: ctx.store_path.clone(),
        selection,
        interval: monitor::check_interval(args.interval)?,
        jobs: usize::from(args.jobs),
        spec: RequestSpec {
            timeout: args.timeout,
            ..RequestSpec::default()
        },
    };
    let published = Arc::new(Published::default());
    let out = ctx.out.clone();
    let log = move |line: &str| out.status(line);
    let out = ctx.out.clone();
    let debug = move |line: &str| out.debug(1, line);
    let rt = runtime(true)?;

    if args.once {
        rt.block_on(monitor::run(
            config,
            published.clone(),
            true,
            std::future::pending(),
            &log,
            &debug,
        ))?;
        let text = monitor::metrics::prometheus_text(&published.text());
        return match &args.textfile {
            Some(path) => {
                crate::report::write_atomic(path, text.as_bytes())?;
                ctx.out.status(&format!(
                    "wrote the metrics of {count} connections to {}",
                    path.display()
                ));
                Ok(())
            }
            None => ctx.out.raw(text.as_bytes()),
        };
    }

    let listen = args.listen.clone().unwrap_or_default();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| {
            Error::network(format!("cannot listen on '{listen}'"))
                .with_source(&e)
                .with_hint("give --listen HOST:PORT with a free port, e.g. 127.0.0.1:9464")
        })?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::network("cannot read the listening address").with_source(&e))?;
        // Watch for signals before announcing, so a signal right after the
        // announcement already stops the exporter cleanly.
        let shutdown = crate::inbound::serve::shutdown_signal()?;
        // The first stderr line, also with -q: tests read the port from it.
        ctx.out
            .notice(&format!("listening on http://{local}/metrics"));
        ctx.out.status(&format!(
            "probing {count} connection{} every {}",
            if count == 1 { "" } else { "s" },
            crate::net::transport::format_secs(config.interval)
        ));
        let server = tokio::spawn(monitor::serve::serve(listener, published.clone()));
        let result = monitor::run(config, published, false, shutdown, &log, &debug).await;
        server.abort();
        if result.is_ok() {
            ctx.out.status("stopped");
        }
        result
    })
}
