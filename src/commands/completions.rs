//! `connctl completions SHELL`.

use clap::CommandFactory;

use super::Context;
use crate::cli::{Cli, CompletionsArgs};
use crate::error::Result;

pub fn run(ctx: &Context, args: CompletionsArgs) -> Result<()> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "connctl", &mut buf);
    ctx.out.raw(&buf)
}
