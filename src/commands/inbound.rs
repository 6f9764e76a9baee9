//! `connctl inbound check|serve`.

use super::Context;
use crate::cli::{InboundCheckArgs, InboundCommand, InboundServeArgs};
use crate::error::{Error, Result};
use crate::inbound::{self, ServeOptions};
use crate::secrets::{self, SecretInput};

pub fn run(ctx: &Context, cmd: InboundCommand) -> Result<()> {
    match cmd {
        InboundCommand::Check(args) => check(ctx, args),
        InboundCommand::Serve(args) => serve(ctx, args),
    }
}

fn check(ctx: &Context, args: InboundCheckArgs) -> Result<()> {
    let password = if args.password_stdin {
        secrets::take_input(Some(SecretInput::Stdin), None)?.and_then(|(_, value)| value)
    } else {
        None
    };
    let store = ctx.load()?;
    let report = inbound::check(&store, &args.user, password.as_ref())?;
    if ctx.out.is_json() {
        ctx.out.json(&report.to_json())?;
    }
    match &report.verdict {
        Ok(admission) => {
            if !ctx.out.is_json() {
                ctx.out.fields(&[
                    ("user", report.user.clone()),
                    ("admitted", "yes".into()),
                    ("integration", admission.integration.clone()),
                    ("connection", admission.connection.clone()),
                    ("environment", admission.environment.to_string()),
                    (
                        "password",
                        if password.is_some() {
                            "matches".into()
                        } else {
                            "not checked (use --password-stdin)".into()
                        },
                    ),
                ])?;
            }
            Ok(())
        }
        Err(_) => {
            // Denied is exit 1 (DESIGN.md §5), also for a user that does not
            // exist: the question asked is "is this user let in?".
            let mut error = Error::failed(format!("denied: {}", report.reason()));
            if let Some(hint) = report.hint() {
                error = error.with_hint(hint);
            }
            Err(error)
        }
    }
}

fn serve(ctx: &Context, args: InboundServeArgs) -> Result<()> {
    let max_body = inbound::parse_size(&args.max_body)
        .map_err(|message| Error::usage(format!("--max-body: {message}")))?;
    inbound::serve(ServeOptions {
        store_path: ctx.store_path.clone(),
        listen: args.listen,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        client_ca: args.client_ca,
        spool: args.spool,
        max_body,
        request_timeout: args.request_timeout,
        out: ctx.out.clone(),
    })
}
