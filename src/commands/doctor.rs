//! `connctl doctor`.

use super::Context;
use crate::cli::DoctorArgs;
use crate::error::{Error, Result};

pub fn run(_ctx: &Context, _args: DoctorArgs) -> Result<()> {
    Err(Error::failed("doctor is not built yet"))
}
