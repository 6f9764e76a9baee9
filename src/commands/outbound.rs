//! `connctl connection test|send` and `connctl oauth-profile token`.

use super::Context;
use crate::cli::{ConnectionSendArgs, ConnectionTestArgs, OauthTokenArgs};
use crate::error::{Error, Result};

pub fn test(_ctx: &Context, _args: ConnectionTestArgs) -> Result<()> {
    Err(Error::failed("connection test is not built yet"))
}

pub fn send(_ctx: &Context, _args: ConnectionSendArgs) -> Result<()> {
    Err(Error::failed("connection send is not built yet"))
}

pub fn token(_ctx: &Context, _args: OauthTokenArgs) -> Result<()> {
    Err(Error::failed("oauth-profile token is not built yet"))
}
