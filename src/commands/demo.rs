//! `connctl demo`.

use super::Context;
use crate::cli::DemoArgs;
use crate::error::{Error, Result};

pub fn run(_ctx: &Context, _args: DemoArgs) -> Result<()> {
    Err(Error::failed("demo is not built yet"))
}
