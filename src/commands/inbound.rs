//! `connctl inbound check|serve`.

use super::Context;
use crate::cli::InboundCommand;
use crate::error::{Error, Result};

pub fn run(_ctx: &Context, cmd: InboundCommand) -> Result<()> {
    match cmd {
        InboundCommand::Check(_) => Err(Error::failed("inbound check is not built yet")),
        InboundCommand::Serve(_) => Err(Error::failed("inbound serve is not built yet")),
    }
}
