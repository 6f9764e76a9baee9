//! Load generator for `connctl inbound serve` (used by scripts/bench-inbound.sh):
//! N concurrent senders, each on its own keep-alive connection, POST M JSON
//! messages with Basic credentials; prints messages per second and p50/p99 latency.
//!
//! inbound_load --addr 127.0.0.1:PORT --ca ca.pem [--cert C --key K] --user U
//!              [--senders 50] [--messages 200] [--http2]
//! inbound_load --make-pki DIR    (writes a CA, server and client certificate)
//! The password comes from the INBOUND_PASSWORD environment variable.

#[path = "../tests/cli/inbound/client.rs"]
mod client;

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Write ca.pem, server.pem, server-key.pem, client.pem, client-key.pem into DIR and exit
    #[arg(long, value_name = "DIR", exclusive = true)]
    make_pki: Option<PathBuf>,
    #[arg(long, required = true)]
    addr: Option<std::net::SocketAddr>,
    #[arg(long)]
    ca: Option<PathBuf>,
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    #[arg(long)]
    key: Option<PathBuf>,
    #[arg(long, required = true)]
    user: Option<String>,
    #[arg(long, default_value_t = 50)]
    senders: usize,
    #[arg(long, default_value_t = 200)]
    messages: usize,
    #[arg(long)]
    http2: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if let Some(dir) = &args.make_pki {
        std::fs::create_dir_all(dir)?;
        connctl::inbound::pki::generate(dir, "inbound-load")?;
        return Ok(());
    }
    let (Some(addr), Some(user)) = (args.addr, args.user.clone()) else {
        return Err("--addr and --user are required".into());
    };
    let password = std::env::var("INBOUND_PASSWORD")
        .map_err(|_| "set INBOUND_PASSWORD to the inbound user's password")?;
    let tls = args.ca.as_deref().map(|ca| {
        client::tls_config(
            ca,
            args.cert.as_deref().zip(args.key.as_deref()),
            args.http2,
        )
    });
    let target = client::Target {
        addr,
        tls,
        user,
        password,
        http2: args.http2,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(client::run_load(&target, args.senders, args.messages));
    let accepted = report.accepted_ids.len();
    let seconds = report.elapsed.as_secs_f64();
    println!(
        "senders={} messages_each={} protocol={} accepted={} other_statuses={:?} errors={} seconds={:.2} msg_per_s={:.0} p50_ms={:.2} p99_ms={:.2}",
        args.senders,
        args.messages,
        if args.http2 { "h2" } else { "http/1.1" },
        accepted,
        report
            .statuses
            .iter()
            .filter(|(s, _)| **s != 202)
            .collect::<Vec<_>>(),
        report.errors,
        seconds,
        accepted as f64 / seconds,
        report.percentile(0.50).as_secs_f64() * 1000.0,
        report.percentile(0.99).as_secs_f64() * 1000.0,
    );
    if accepted == args.senders * args.messages {
        Ok(())
    } else {
        Err("not every message was accepted".into())
    }
}
