//! Writes or checks the files generated from the clap definitions: the
//! completion scripts in completions/ and the man pages in man/.
//!
//!   cargo run --example generate -- --write   # regenerate after changing src/cli.rs
//!   cargo run --example generate -- --check   # exit 1 when a checked-in file is stale

use std::path::Path;
use std::process::ExitCode;

use connctl::cli::generate::{REGENERATE, check_generated, write_generated};

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mode = std::env::args().nth(1).unwrap_or_default();
    match mode.as_str() {
        "--write" => match write_generated(root) {
            Ok(changed) if changed.is_empty() => {
                eprintln!("completions/ and man/ are up to date");
                ExitCode::SUCCESS
            }
            Ok(changed) => {
                for line in changed {
                    eprintln!("{line}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        "--check" => match check_generated(root) {
            Ok(problems) if problems.is_empty() => {
                eprintln!("completions/ and man/ are up to date");
                ExitCode::SUCCESS
            }
            Ok(problems) => {
                for problem in problems {
                    eprintln!("{problem}");
                }
                eprintln!("regenerate them with: {REGENERATE}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: cargo run --example generate -- --write|--check");
            ExitCode::from(2)
        }
    }
}
