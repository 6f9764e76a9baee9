//! `connctl completions SHELL`: prints the registration script
//! (generated in `cli::complete`).

use super::Context;
use crate::cli::CompletionsArgs;
use crate::cli::complete::registration_script;
use crate::error::Result;

pub fn run(ctx: &Context, args: CompletionsArgs) -> Result<()> {
    ctx.out.raw(&registration_script(args.shell)?)
}
