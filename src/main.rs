//! Parse, run, map the error to an exit code: nothing else.

use std::process::ExitCode;

use clap::{ColorChoice, CommandFactory, FromArgMatches};

use connctl::cli::Cli;
use connctl::cli::complete;
use connctl::commands::{self, Context};
use connctl::error::Error;
use connctl::output::Printer;

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
    let out = Printer::new(cli.output, cli.quiet, cli.verbose, cli.no_color);
    match run(cli, out.clone()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e, &out),
    }
}

fn run(cli: Cli, out: Printer) -> Result<(), Error> {
    let store_path = connctl::store::resolve_path(cli.store)?;
    let ctx = Context {
        store_path,
        out,
        yes: cli.yes,
        lock_timeout: cli.lock_timeout,
    };
    for warning in connctl::limits::env_warnings() {
        ctx.out.warn(&warning);
    }
    commands::dispatch(&ctx, cli.command)
}

/// The one place an error becomes text on stderr and an exit code.
fn report(err: &Error, out: &Printer) -> ExitCode {
    // A closed stdout (`| head`) is how the reader says it has seen enough.
    if !err.is_broken_pipe() {
        // One line per part (message, causes, hint), each escaped whole.
        out.error(&err.shown());
    }
    ExitCode::from(err.exit_code())
}
