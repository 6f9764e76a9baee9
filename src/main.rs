//! Parse, run, map the error to an exit code: nothing else.

use std::process::ExitCode;

use clap::{ColorChoice, CommandFactory, FromArgMatches};

use connctl::cli::Cli;
use connctl::cli::complete;
use connctl::commands::{self, Context};
use connctl::error::Error;
use connctl::output::{self, Printer};

fn main() -> ExitCode {
    // `COMPLETE=bash connctl -- WORDS...` (the completion scripts' callback) ends here.
    clap_complete::CompleteEnv::with_factory(Cli::command)
        .var(complete::COMPLETE_VAR)
        .shells(complete::SHELLS)
        .complete();
    // clap colors its own help and usage errors on a terminal; it honors NO_COLOR
    // but cannot know of --no-color before parsing.
    let mut command = Cli::command();
    if std::env::args_os()
        .take_while(|a| a != "--")
        .any(|a| a == "--no-color")
    {
        command = command.color(ColorChoice::Never);
    }
    let parsed = command
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let color = output::use_color(cli.no_color);
    match run(cli, color) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.message == output::BROKEN_PIPE => ExitCode::SUCCESS,
        Err(e) => report(&e, color),
    }
}

fn run(cli: Cli, color: bool) -> Result<(), Error> {
    let store_path = connctl::store::resolve_path(cli.store)?;
    let ctx = Context {
        store_path,
        out: Printer {
            format: cli.output,
            quiet: cli.quiet,
            verbose: cli.verbose,
            color,
        },
        yes: cli.yes,
        lock_timeout: cli.lock_timeout,
    };
    for warning in connctl::limits::env_warnings() {
        ctx.out.warn(&warning);
    }
    commands::dispatch(&ctx, cli.command)
}

/// The one place an error becomes text on stderr and an exit code.
fn report(err: &Error, color: bool) -> ExitCode {
    let label = if color {
        "\x1b[31merror:\x1b[0m"
    } else {
        "error:"
    };
    // One line per part (message, causes, hint), each escaped whole.
    eprintln!("{label} {}", err.shown());
    ExitCode::from(err.exit_code())
}
