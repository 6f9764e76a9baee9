//! `connctl connection ...`: the records; `test` and `send` in their own files.

pub mod diff;
mod send;
mod test;

use serde_json::Value;

use crate::cli::{ConnectionAddArgs, ConnectionCommand, ConnectionEditArgs, ConnectionListArgs};
use crate::commands::integration::yes_no;
use crate::commands::{
    Context, Named, check_new_name, check_url, existing_file, not_found, parse_var, password_input,
    record_json, require, take_secret,
};
use crate::error::{Error, Result};
use crate::model::{
    Authentication, Connection, Environment, RecordKind, SecretSource, now_rfc3339,
};
use crate::output::or_dash;

const KIND: RecordKind = RecordKind::Connection;

/// `--secret-var KEY=SOURCE` and `--secret-var-stdin KEY`, checked (all the
/// references first, then stdin read): each key with the secret to keep.
fn secret_vars(
    refs: &[String],
    stdin: Option<&str>,
) -> Result<Vec<(String, crate::commands::TakenSecret)>> {
    use crate::secrets::SecretInput;
    let key_of = |key: &str, flag: &str| {
        let key = key.trim();
        if key.is_empty() || key.contains("{{") || key.contains("}}") {
            return Err(Error::usage(format!(
                "{flag}: '{key}' is not a variable name"
            )));
        }
        Ok(key.to_string())
    };
    let mut inputs = Vec::new();
    for text in refs {
        let Some((key, source)) = text.split_once('=') else {
            // Not repeated: a value without '=' may be the secret itself, pasted.
            return Err(Error::usage("a --secret-var value is not KEY=SOURCE (it has no '=')")
                .with_hint("SOURCE is env:VAR, file:PATH, cmd:COMMAND or vault:PATH#FIELD; for the keyring use --secret-var-stdin KEY"));
        };
        let key = key_of(key, "--secret-var")?;
        let input = match source.split_once(':') {
            Some(("env", var)) => SecretInput::Env(var.to_string()),
            Some(("file", path)) => SecretInput::File(path.into()),
            Some(("cmd", command)) => SecretInput::Cmd(command.to_string()),
            Some(("vault", reference)) => SecretInput::Vault(reference.to_string()),
            _ => {
                return Err(Error::usage(format!(
                    "--secret-var {key}=...: the source is not env:VAR, file:PATH, cmd:COMMAND or vault:PATH#FIELD"
                ))
                .with_hint(format!("to keep the value in the keyring: --secret-var-stdin {key}")));
            }
        };
        inputs.push((key, input));
    }
    if let Some(key) = stdin {
        inputs.push((key_of(key, "--secret-var-stdin")?, SecretInput::Stdin));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (key, _) in &inputs {
        if !seen.insert(key.clone()) {
            return Err(Error::usage(format!(
                "secret variable '{key}' is given twice"
            )));
        }
    }
    let mut taken = Vec::new();
    // Stdin (last) is read only once every reference is known to be well formed.
    for (key, input) in inputs {
        if let Some(t) = take_secret(Some(input), None)? {
            taken.push((key, t));
        }
    }
    Ok(taken)
}

pub fn run(ctx: &Context, cmd: ConnectionCommand) -> Result<()> {
    match cmd {
        ConnectionCommand::Add(args) => add(ctx, *args),
        ConnectionCommand::List(args) => list(ctx, args),
        ConnectionCommand::Show { name } => show(ctx, &name),
        ConnectionCommand::Edit(args) => edit(ctx, *args),
        ConnectionCommand::Activate { name } => activate(ctx, &name),
        ConnectionCommand::Deactivate { name } => deactivate(ctx, &name),
        ConnectionCommand::Remove { name } => remove(ctx, &name),
        ConnectionCommand::Copy {
            source,
            new,
            env,
            url,
            allow_http,
        } => copy(ctx, &source, &new, env.into(), url, allow_http),
        ConnectionCommand::Test(args) => test::run(ctx, args),
        ConnectionCommand::Send(args) => send::run(ctx, args),
        ConnectionCommand::Rotate(args) => crate::commands::rotate::run(
            ctx,
            crate::commands::rotate::Rotate {
                kind: KIND,
                name: &args.name,
                input: password_input(&args.password),
                restore: args.options.restore,
                no_test: args.options.no_test,
                connection: None,
                timeout: args.options.timeout,
            },
        ),
        ConnectionCommand::Diff(args) => diff::run(ctx, args),
    }
}

fn add(ctx: &Context, args: ConnectionAddArgs) -> Result<()> {
    let name = args.name.clone();
    let authentication = match args.auth {
        Some(a) => a.into(),
        None if args.oauth_profile.is_some() => Authentication::Oauth,
        None if args.user.is_some() => Authentication::Basic,
        None => Authentication::None,
    };
    let mut variables = std::collections::BTreeMap::new();
    for var in &args.vars {
        let (k, v) = parse_var(var)?;
        variables.insert(k, v);
    }
    let ca_bundle = args
        .ca_bundle
        .as_deref()
        .map(|p| existing_file("--ca-bundle", p))
        .transpose()?;
    let mut record = Connection {
        integration: args.integration.clone(),
        environment: args.env.into(),
        active: false,
        endpoint_url: args.url.clone(),
        allow_http: args.allow_http,
        ca_bundle,
        authentication,
        user: args.user.clone().filter(|u| !u.is_empty()),
        password: None,
        oauth_profile: args.oauth_profile.clone(),
        mutual_auth: args.mutual_auth,
        protocol_profile: args.protocol_profile.clone(),
        mid_server: args.mid_server.clone(),
        inbound_user: args.inbound_user.clone(),
        last_activated: None,
        variables,
        secret_variables: Default::default(),
    };
    // Check what needs no store before reading a secret or taking the lock.
    crate::model::check_name(KIND, &name).map_err(Error::invalid)?;
    check_url("--url", &record.endpoint_url)?;
    let needs_password = record.authentication == Authentication::Basic && record.user.is_some();
    let prompt = format!(
        "password for {} on connection {name}",
        args.user.as_deref().unwrap_or("?")
    );
    let taken = take_secret(
        password_input(&args.password),
        needs_password.then_some(prompt.as_str()),
    )?;
    let secret_taken = secret_vars(&args.secret_vars, args.secret_var_stdin.as_deref())?;
    let deactivated = ctx
        .change(|store| {
            check_new_name(store, KIND, &name)?;
            if let Some(taken) = taken {
                record.password = Some(store.keep(KIND, &name, "password", taken));
            }
            for (key, taken) in secret_taken {
                let field = format!("var.{key}");
                let source = store.keep(KIND, &name, &field, taken);
                record.secret_variables.insert(key, source);
            }
            // The rules (and their hints) are checked on commit: `Store::check_change`.
            store.connection.insert(name.clone(), record);
            Ok(if args.activate {
                Some(store.activate_connection(&name, &now_rfc3339()))
            } else {
                None
            })
        })?
        .value;
    ctx.out.status(&format!("added connection '{name}'"));
    match deactivated {
        Some(others) => {
            ctx.out.status(&format!("activated connection '{name}'"));
            for other in others {
                ctx.out.status(&format!("deactivated connection '{other}'"));
            }
        }
        None => ctx
            .out
            .hint(&format!("it is inactive: `connctl connection activate {name}` makes it the integration's active connection")),
    }
    Ok(())
}

fn edit(ctx: &Context, args: ConnectionEditArgs) -> Result<()> {
    let name = args.name.clone();
    let mut vars = Vec::new();
    for var in &args.vars {
        vars.push(parse_var(var)?);
    }
    if let Some(url) = &args.url {
        check_url("--url", url)?;
    }
    let ca_bundle = args
        .ca_bundle
        .as_deref()
        .map(|p| existing_file("--ca-bundle", p))
        .transpose()?;
    let taken = take_secret(password_input(&args.password), None)?;
    let secret_taken = secret_vars(&args.secret_vars, args.secret_var_stdin.as_deref())?;
    let done = ctx.change(|store| {
        let mut c = store
            .connection
            .get(&name)
            .cloned()
            .ok_or_else(|| not_found(store, KIND, &name))?;
        let mut notes = Vec::new();
        if let Some(integration) = &args.integration
            && *integration != c.integration
        {
            if c.active {
                c.active = false;
                notes.push(format!(
                    "connection '{name}' was active in '{}' and is now inactive",
                    c.integration
                ));
            }
            c.integration = integration.clone();
        }
        if let Some(env) = args.env {
            c.environment = env.into();
        }
        if let Some(url) = &args.url {
            c.endpoint_url = url.clone();
        }
        if args.allow_http {
            c.allow_http = true;
        }
        if args.no_allow_http {
            c.allow_http = false;
        }
        if let Some(auth) = args.auth {
            c.authentication = auth.into();
            if c.authentication != Authentication::Oauth && c.oauth_profile.take().is_some() {
                notes.push("dropped the OAuth profile (authentication is no longer oauth)".into());
            }
        }
        if let Some(user) = &args.user {
            c.user = Some(user.clone()).filter(|u| !u.is_empty());
        }
        if let Some(profile) = &args.oauth_profile {
            c.oauth_profile = Some(profile.clone());
            if args.auth.is_none() {
                c.authentication = Authentication::Oauth;
            }
        }
        if args.mutual_auth {
            c.mutual_auth = true;
        }
        if args.no_mutual_auth {
            c.mutual_auth = false;
            if c.protocol_profile.take().is_some() {
                notes.push("dropped the protocol profile (mutual auth is off)".into());
            }
        }
        if let Some(profile) = &args.protocol_profile {
            c.protocol_profile = Some(profile.clone());
        }
        if let Some(mid) = &args.mid_server {
            c.mid_server = Some(mid.clone());
        }
        if args.no_mid_server {
            c.mid_server = None;
        }
        if let Some(user) = &args.inbound_user {
            c.inbound_user = Some(user.clone());
        }
        if args.no_inbound_user {
            c.inbound_user = None;
        }
        if let Some(ca) = &ca_bundle {
            c.ca_bundle = Some(ca.clone());
        }
        if args.no_ca_bundle {
            c.ca_bundle = None;
        }
        for (k, v) in &vars {
            c.variables.insert(k.clone(), v.clone());
        }
        for k in &args.unset_vars {
            if c.variables.remove(k).is_none() {
                return Err(Error::new(
                    crate::error::ErrorKind::NotFound,
                    format!("connection '{name}' has no variable '{k}'"),
                ));
            }
        }
        if let Some(taken) = taken {
            c.password = Some(store.keep(KIND, &name, "password", taken));
        }
        for k in &args.unset_secret_vars {
            if c.secret_variables.remove(k).is_none() {
                return Err(Error::new(
                    crate::error::ErrorKind::NotFound,
                    format!("connection '{name}' has no secret variable '{k}'"),
                ));
            }
        }
        for (key, taken) in secret_taken {
            let field = format!("var.{key}");
            let source = store.keep(KIND, &name, &field, taken);
            c.secret_variables.insert(key, source);
        }
        store.connection.insert(name.clone(), c);
        Ok(notes)
    })?;
    super::edited(ctx, KIND, &name, done.changed());
    for note in done.value {
        ctx.out.status(&note);
    }
    Ok(())
}

fn activate(ctx: &Context, name: &str) -> Result<()> {
    let (integration, deactivated) = ctx.update(|store| {
        let c = store
            .connection
            .get(name)
            .ok_or_else(|| not_found(store, KIND, name))?;
        let integration = c.integration.clone();
        let deactivated = store.activate_connection(name, &now_rfc3339());
        Ok((integration, deactivated))
    })?;
    ctx.out.status(&format!(
        "activated connection '{name}' (integration '{integration}' is active)"
    ));
    for other in deactivated {
        ctx.out.status(&format!("deactivated connection '{other}'"));
    }
    Ok(())
}

fn deactivate(ctx: &Context, name: &str) -> Result<()> {
    let (integration, was_active) = ctx.update(|store| {
        if !store.connection.contains_key(name) {
            return Err(not_found(store, KIND, name));
        }
        let Some(c) = store.connection.get_mut(name) else {
            return Err(Error::not_found("connection", name));
        };
        let was_active = c.active;
        c.active = false;
        Ok((c.integration.clone(), was_active))
    })?;
    if was_active {
        ctx.out.status(&format!(
            "deactivated connection '{name}' (integration '{integration}' is inactive)"
        ));
    } else {
        ctx.out
            .status(&format!("connection '{name}' was already inactive"));
    }
    Ok(())
}

fn remove(ctx: &Context, name: &str) -> Result<()> {
    let was_active = ctx.update(|store| {
        let c = store
            .connection
            .remove(name)
            .ok_or_else(|| not_found(store, KIND, name))?;
        // Its keyring password and the token cached for it go with it (change.rs).
        Ok(c.active.then_some(c.integration))
    })?;
    ctx.out.status(&format!("removed connection '{name}'"));
    if let Some(integration) = was_active {
        ctx.out.warn(&format!(
            "it was the active connection: integration '{integration}' is now inactive"
        ));
    }
    Ok(())
}

fn copy(
    ctx: &Context,
    source: &str,
    new: &str,
    env: Environment,
    url: Option<String>,
    allow_http: bool,
) -> Result<()> {
    if let Some(url) = &url {
        check_url("--url", url)?;
    }
    let needs_password = ctx.update(|store| {
        let mut c = store
            .connection
            .get(source)
            .cloned()
            .ok_or_else(|| not_found(store, KIND, source))?;
        check_new_name(store, KIND, new)?;
        c.environment = env;
        c.active = false;
        c.last_activated = None;
        c.allow_http = allow_http;
        if let Some(url) = &url {
            c.endpoint_url = url.clone();
        }
        // Secrets are never copied: a keyring password stays with its record,
        // and the copy's keyring entry is empty until set.
        let needs_password = c.password == Some(SecretSource::Keyring)
            || c.secret_variables
                .values()
                .any(|s| *s == SecretSource::Keyring);
        store.connection.insert(new.to_string(), c);
        Ok(needs_password)
    })?;
    ctx.out.status(&format!(
        "copied connection '{source}' to '{new}' ({env}, inactive)"
    ));
    if needs_password {
        ctx.out.hint(&format!(
            "secrets are not copied: set its keyring secrets with `connctl connection edit {new} --password-stdin` (or --secret-var-stdin KEY)"
        ));
    }
    Ok(())
}

fn list(ctx: &Context, args: ConnectionListArgs) -> Result<()> {
    let store = ctx.load()?;
    if let Some(i) = &args.integration {
        require(&store, RecordKind::Integration, i)?;
    }
    let env: Option<Environment> = args.env.map(Into::into);
    let selected = store.connection.iter().filter(|(_, c)| {
        args.integration
            .as_ref()
            .is_none_or(|i| c.integration == *i)
            && env.is_none_or(|e| c.environment == e)
            && (!args.active || c.active)
    });
    if ctx.out.is_json() {
        let items: Vec<Named<'_, Connection>> = selected
            .map(|(name, record)| Named { name, record })
            .collect();
        return ctx.out.json_of(&items);
    }
    let rows = selected
        .map(|(n, c)| {
            vec![
                n.clone(),
                c.integration.clone(),
                c.environment.to_string(),
                yes_no(c.active),
                auth_summary(c),
                c.endpoint_url.clone(),
            ]
        })
        .collect();
    ctx.out.table(
        &["name", "integration", "env", "active", "auth", "url"],
        rows,
    )
}

fn auth_summary(c: &Connection) -> String {
    let mut text = c.authentication.as_str().to_string();
    if c.mutual_auth {
        text.push_str("+mtls");
    }
    if c.mid_server.is_some() {
        text.push_str(" via mid");
    }
    text
}

fn show(ctx: &Context, name: &str) -> Result<()> {
    let store = ctx.load()?;
    let c = store
        .connection
        .get(name)
        .ok_or_else(|| not_found(&store, KIND, name))?;
    if ctx.out.is_json() {
        return ctx.out.json(&Value::Object(record_json(name, c)?));
    }
    let path = |p: &Option<std::path::PathBuf>| {
        or_dash(p.as_ref().map(|p| p.display().to_string()).as_deref())
    };
    let variables = if c.variables.is_empty() {
        "-".to_string()
    } else {
        c.variables
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Only the sources: a secret variable's value is never shown.
    let secret_variables = if c.secret_variables.is_empty() {
        "-".to_string()
    } else {
        c.secret_variables
            .iter()
            .map(|(k, source)| format!("{k} ({source})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    ctx.out.fields(&[
        ("name", name.to_string()),
        ("integration", c.integration.clone()),
        ("environment", c.environment.to_string()),
        ("active", yes_no(c.active)),
        ("endpoint url", c.endpoint_url.clone()),
        ("ca bundle", path(&c.ca_bundle)),
        ("authentication", c.authentication.as_str().to_string()),
        ("user", or_dash(c.user.as_deref())),
        (
            "password",
            or_dash(c.password.as_ref().map(|s| s.to_string()).as_deref()),
        ),
        ("oauth profile", or_dash(c.oauth_profile.as_deref())),
        ("mutual auth", yes_no(c.mutual_auth)),
        ("protocol profile", or_dash(c.protocol_profile.as_deref())),
        ("mid server", or_dash(c.mid_server.as_deref())),
        ("inbound user", or_dash(c.inbound_user.as_deref())),
        ("variables", variables),
        ("secret variables", secret_variables),
        ("last activated", or_dash(c.last_activated.as_deref())),
    ])
}
