//! `connctl connection send`: one message through a connection.

use std::io::Read;

use bytes::Bytes;
use http::Method;

use crate::cli::ConnectionSendArgs;
use crate::commands::Context;
use crate::commands::outbound::{
    method, outcome_error, pick, render_path, runtime, total_ms, variables,
};
use crate::error::{Error, Result};
use crate::model::Environment;
use crate::net::{Stage, transport};
use crate::outbound::{self, BodyMode, Outbound, RequestSpec, Target};

fn read_body(data: &Option<String>) -> Result<Bytes> {
    match data.as_deref() {
        None => Ok(Bytes::new()),
        Some("@-") => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| Error::invalid("cannot read the body from stdin").with_source(&e))?;
            Ok(Bytes::from(buf))
        }
        Some(text) if text.starts_with('@') => {
            let path = &text[1..];
            std::fs::read(path).map(Bytes::from).map_err(|e| {
                Error::invalid(format!("cannot read the body file {path}")).with_source(&e)
            })
        }
        Some(text) => Ok(Bytes::from(text.to_string())),
    }
}

/// Headers connctl writes itself. A `-H` for one of them would be dropped,
/// or would change the message's framing behind the body's back (hyper
/// honours a `Content-Length` that is shorter than the body and cuts the
/// body off), so each is refused, before anything is read or sent.
fn refuse_managed_header(name: &str, connection: &str) -> Result<()> {
    let name = name.trim();
    let lower = name.to_ascii_lowercase();
    let err = match lower.as_str() {
        "content-length" => Error::usage(format!(
            "header '{name}' cannot be set: connctl sets Content-Length from the body it sends"
        ))
        .with_hint("leave it out; give the body with -d (text, @FILE or @-)"),
        "transfer-encoding" => Error::usage(format!(
            "header '{name}' cannot be set: connctl sends the body whole, framed by the Content-Length it sets from the body"
        ))
        .with_hint("leave it out"),
        "host" => Error::usage(format!(
            "header '{name}' cannot be set: connctl sets Host (HTTP/2: :authority) from the connection's endpoint URL"
        ))
        .with_hint(format!(
            "to reach another host, change the URL: connctl connection edit {} --url https://HOST/...",
            crate::text::escape(connection)
        )),
        "connection" | "keep-alive" | "proxy-connection" | "upgrade" | "te" => Error::usage(
            format!(
                "header '{name}' cannot be set: it is about the connection, which connctl manages (HTTP/2 forbids it)"
            ),
        )
        .with_hint("leave it out"),
        _ => return Ok(()),
    };
    Err(err)
}

/// A response header value as `-i` prints it: the server chose its bytes, so
/// control characters and bidirectional overrides are escaped
/// (`crate::text::escape`) and bytes that are not UTF-8 are written `\xNN`.
fn shown_header_value(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(&crate::text::escape(chunk.valid()));
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

pub fn run(ctx: &Context, args: ConnectionSendArgs) -> Result<()> {
    for h in &args.headers {
        if let Some((name, _)) = h.split_once(':') {
            refuse_managed_header(name, args.target.name.as_deref().unwrap_or("NAME"))?;
        }
    }
    let store = ctx.load()?;
    let name = pick(&store, &args.target)?;
    let target = Target::from_store(&store, &name)?;
    let conn = &target.connection;

    // Variables are filled in before anything is resolved or sent: an unknown
    // one is exit 4 with nothing sent.
    let vars = variables(&target, &args.vars)?;
    let path = render_path(&vars, args.path.as_deref())?;
    let body = read_body(&args.data)?;
    let body = if args.raw_body {
        body
    } else {
        Bytes::from(vars.render("the body", &body)?)
    };
    let method = match &args.method {
        Some(m) => method(m)?,
        None if args.data.is_some() => Method::POST,
        None => Method::GET,
    };
    let mut headers = Vec::new();
    let mut secret_headers = Vec::new();
    let mut secret_variables: Vec<(String, crate::model::SecretSource)> = Vec::new();
    for h in &args.headers {
        let text = match h.split_once(':') {
            Some((name, value)) => {
                let what = format!("header '{}'", name.trim());
                let used = vars.secrets_used(&what, value)?;
                if !used.is_empty() {
                    // Filled in after the secrets stage (Outbound::prepare).
                    let (header, _) = outbound::parse_header(&format!("{name}: x"))?;
                    secret_headers.push((header, value.to_string()));
                    for (key, source) in used {
                        if !secret_variables.iter().any(|(k, _)| *k == key) {
                            secret_variables.push((key, source));
                        }
                    }
                    continue;
                }
                format!("{name}:{}", vars.render_text(&what, value)?)
            }
            None => h.clone(),
        };
        headers.push(outbound::parse_header(&text)?);
    }
    let spec = RequestSpec {
        method: method.clone(),
        path,
        headers,
        body,
        // Without one, a body goes as application/json (`Outbound::http_request`).
        content_type: args.content_type.clone(),
        timeout: args.timeout,
        insecure: false,
        // The body goes to stdout as it arrives: memory does not grow with its size.
        read: BodyMode::Stream,
        secret_headers,
        secret_variables,
        variables: Some(vars),
    };
    let url = outbound::join_path(&conn.endpoint_url, spec.path.as_deref())?;

    if !conn.active {
        match store.active_connection_of(&conn.integration) {
            Some(active) => ctx.out.warn(&format!(
                "connection '{name}' is not active; integration '{}' sends through '{active}'",
                conn.integration
            )),
            None => ctx.out.warn(&format!(
                "connection '{name}' is not active, and integration '{}' has no active connection",
                conn.integration
            )),
        }
    }
    if conn.environment == Environment::Production {
        let stdin_busy = args.data.as_deref() == Some("@-");
        let question = format!("Send {method} {url} through production connection '{name}'?");
        ctx.confirm_production(&name, "sent", (!stdin_busy).then_some(question.as_str()))?;
    }

    let client = Outbound::new();
    let retries = args.retry;
    let out = ctx.out.clone();
    // `why` may quote a server (a status, a certificate name): one line.
    let on_retry = move |why: &str| out.warn(&crate::text::escape(why));
    let rt = runtime(false)?;
    let mut outcome = rt.block_on(client.send(&target, &spec, retries, &on_retry));
    outcome.judge(|s| (200..300).contains(&s), conn.authentication);

    for s in &outcome.trace.stages {
        ctx.out.debug(1, &s.log_line());
    }
    if let Some(response) = &mut outcome.response {
        if args.include {
            let mut head = format!(
                "{:?} {}\r\n",
                response.version,
                transport::status_text(response.status)
            );
            for (k, v) in &response.headers {
                head.push_str(&format!("{k}: {}\r\n", shown_header_value(v.as_bytes())));
            }
            head.push_str("\r\n");
            ctx.out.raw(head.as_bytes())?;
        }
        ctx.out.raw(&response.body)?;
        let mut written = response.body.len() as u64;
        let status = response.status;
        let streamed = match response.rest.take() {
            Some(mut rest) => rt.block_on(async {
                while let Some(chunk) = rest.chunk().await? {
                    ctx.out.raw(&chunk)?;
                    written += chunk.len() as u64;
                }
                Ok::<_, Error>(())
            }),
            None => Ok(()),
        };
        match streamed {
            Ok(()) => ctx.out.status(&format!(
                "{method} {url} → {} in {:.0} ms ({written} bytes)",
                transport::status_text(status),
                total_ms(&outcome)
            )),
            // A body cut short: stdout holds only part of it, which a script must learn.
            Err(e) if !e.is_broken_pipe() => {
                if let Some(record) = outcome.trace.last_mut(Stage::Http) {
                    record.ok = false;
                }
                outcome.error = Some(Error {
                    message: format!("{} after {written} bytes", e.message),
                    ..e
                });
            }
            Err(e) => return Err(e),
        }
    }
    match outcome_error(&outcome) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
