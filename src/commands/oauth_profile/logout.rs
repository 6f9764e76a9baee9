//! `connctl oauth-profile logout NAME`: revoke the refresh token (RFC 7009)
//! where the server has a revocation endpoint, then forget the cached tokens.

use crate::commands::outbound::runtime;
use crate::commands::{Context, not_found};
use crate::error::{Error, Result};
use crate::model::RecordKind;
use crate::net::Trace;
use crate::outbound::{Outbound, RequestSpec, oauth};

pub fn run(ctx: &Context, name: &str) -> Result<()> {
    let store = ctx.load()?;
    let Some(profile) = store.oauth_profile.get(name).cloned() else {
        return Err(not_found(&store, RecordKind::OauthProfile, name));
    };
    let target = super::token::profile_target(&store, name, &profile)?;
    let client = Outbound::new();
    let spec = RequestSpec::default();
    let done = runtime(false)?.block_on(async {
        let mut trace = Trace::default();
        let prepared = client.prepare(&target, &spec, &mut trace).await?;
        let source = prepared
            .token_source
            .as_ref()
            .ok_or_else(|| Error::failed("the profile has no token source"))?;
        oauth::login::logout(source).await
    })?;
    // Forget the refresh token through the records-and-secrets transaction.
    ctx.change(|draft| {
        let at = draft.secret_ref(RecordKind::OauthProfile, name, oauth::REFRESH_FIELD);
        draft.delete_secret(at);
        Ok(())
    })?;
    let what = match (done.held, done.revoked) {
        (true, true) => "refresh token revoked at the server and forgotten",
        (true, false) => "refresh token forgotten (the profile has no revocation endpoint)",
        (false, _) => "no refresh token was held",
    };
    ctx.out.status(&format!(
        "logged out of oauth-profile '{name}': {what}; cached access token dropped"
    ));
    Ok(())
}
