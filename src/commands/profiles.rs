//! `connctl oauth-profile|protocol-profile|mid-server|inbound-user ...`

use serde_json::Value;

use super::{
    Context, Named, check_new_name, check_url, client_secret_input, existing_file, keep_secret,
    not_found, password_input, record_json, refuse_if_referenced, take_secret,
};
use crate::cli::{
    InboundUserCommand, MidServerCommand, OauthProfileCommand, ProtocolProfileCommand,
};
use crate::error::{Error, Result};
use crate::model::{
    InboundUser, MidServer, OauthProfile, ProtocolProfile, RecordKind, SecretSource,
};
use crate::output::or_dash;

fn source_text(source: &Option<SecretSource>) -> String {
    or_dash(source.as_ref().map(ToString::to_string).as_deref())
}

/// Prints a kind's records: JSON array, or a table from `row`.
fn list_records<R: serde::Serialize>(
    ctx: &Context,
    records: &std::collections::BTreeMap<String, R>,
    headers: &[&str],
    row: impl Fn(&str, &R) -> Vec<String>,
) -> Result<()> {
    if ctx.out.is_json() {
        let items: Vec<Named<'_, R>> = records
            .iter()
            .map(|(name, record)| Named { name, record })
            .collect();
        return ctx.out.json_of(&items);
    }
    ctx.out
        .table(headers, records.iter().map(|(n, r)| row(n, r)).collect())
}

fn used_by(store: &crate::model::Store, kind: RecordKind, name: &str) -> String {
    let users: Vec<String> = store
        .referrers(kind, name)
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    if users.is_empty() {
        "-".into()
    } else {
        users.join(", ")
    }
}

// ----- oauth-profile -----------------------------------------------------

pub fn oauth(ctx: &Context, cmd: OauthProfileCommand) -> Result<()> {
    const KIND: RecordKind = RecordKind::OauthProfile;
    match cmd {
        OauthProfileCommand::Add(args) => {
            let name = args.name.clone();
            crate::model::check_name(KIND, &name).map_err(Error::invalid)?;
            check_url("--token-url", &args.token_url)?;
            if args.client_id.trim().is_empty() {
                return Err(Error::invalid("--client-id is empty"));
            }
            let taken = take_secret(
                client_secret_input(&args.secret),
                Some(&format!("client secret for {}", args.client_id)),
            )?;
            ctx.update(|store| {
                check_new_name(store, KIND, &name)?;
                let client_secret = match taken {
                    Some(t) => Some(keep_secret(
                        ctx,
                        store,
                        KIND,
                        &name,
                        "client_secret",
                        None,
                        t,
                    )?),
                    None => None,
                };
                store.oauth_profile.insert(
                    name.clone(),
                    OauthProfile {
                        token_url: args.token_url.clone(),
                        client_id: args.client_id.clone(),
                        client_secret,
                        grant: args.grant.into(),
                        client_auth: args.client_auth.into(),
                        scopes: args.scopes.clone(),
                    },
                );
                Ok(())
            })?;
            ctx.out.status(&format!("added oauth-profile '{name}'"));
            Ok(())
        }
        OauthProfileCommand::List => {
            let store = ctx.load()?;
            list_records(
                ctx,
                &store.oauth_profile,
                &[
                    "name",
                    "token url",
                    "client id",
                    "grant",
                    "client auth",
                    "scopes",
                    "client secret",
                ],
                |n, p| {
                    vec![
                        n.to_string(),
                        p.token_url.clone(),
                        p.client_id.clone(),
                        p.grant.as_str().into(),
                        p.client_auth.as_str().into(),
                        if p.scopes.is_empty() {
                            "-".into()
                        } else {
                            p.scopes.join(" ")
                        },
                        source_text(&p.client_secret),
                    ]
                },
            )
        }
        OauthProfileCommand::Show { name } => {
            let store = ctx.load()?;
            let p = store
                .oauth_profile
                .get(&name)
                .ok_or_else(|| not_found(&store, KIND, &name))?;
            if ctx.out.is_json() {
                return ctx.out.json(&Value::Object(record_json(&name, p)?));
            }
            ctx.out.fields(&[
                ("name", name.clone()),
                ("token url", p.token_url.clone()),
                ("client id", p.client_id.clone()),
                ("client secret", source_text(&p.client_secret)),
                ("grant", p.grant.as_str().into()),
                ("client auth", p.client_auth.as_str().into()),
                (
                    "scopes",
                    if p.scopes.is_empty() {
                        "-".into()
                    } else {
                        p.scopes.join(" ")
                    },
                ),
                ("used by", used_by(&store, KIND, &name)),
            ])
        }
        OauthProfileCommand::Edit(args) => {
            let name = args.name.clone();
            if let Some(url) = &args.token_url {
                check_url("--token-url", url)?;
            }
            let taken = take_secret(client_secret_input(&args.secret), None)?;
            let secret_given = taken.is_some();
            let changed = ctx.update(|store| {
                let mut p = store
                    .oauth_profile
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| not_found(store, KIND, &name))?;
                let before = p.clone();
                if let Some(url) = &args.token_url {
                    p.token_url = url.clone();
                }
                if let Some(id) = &args.client_id {
                    if id.trim().is_empty() {
                        return Err(Error::invalid("--client-id is empty"));
                    }
                    p.client_id = id.clone();
                }
                if let Some(g) = args.grant {
                    p.grant = g.into();
                }
                if let Some(a) = args.client_auth {
                    p.client_auth = a.into();
                }
                if !args.scopes.is_empty() {
                    p.scopes = args.scopes.clone();
                }
                if args.no_scopes {
                    p.scopes.clear();
                }
                if let Some(t) = taken {
                    let previous = p.client_secret.clone();
                    p.client_secret = Some(keep_secret(
                        ctx,
                        store,
                        KIND,
                        &name,
                        "client_secret",
                        previous.as_ref(),
                        t,
                    )?);
                }
                let changed = secret_given || p != before;
                store.oauth_profile.insert(name.clone(), p);
                Ok(changed)
            })?;
            super::edited(ctx, KIND, &name, changed);
            Ok(())
        }
        OauthProfileCommand::Remove { name } => {
            ctx.update(|store| {
                let Some(p) = store.oauth_profile.get(&name).cloned() else {
                    return Err(not_found(store, KIND, &name));
                };
                refuse_if_referenced(store, KIND, &name)?;
                store.oauth_profile.remove(&name);
                let mut fields = vec!["token"];
                if p.client_secret == Some(SecretSource::Keyring) {
                    fields.push("client_secret");
                }
                super::forget_secrets(ctx, store, KIND, &name, &fields);
                Ok(())
            })?;
            ctx.out.status(&format!("removed oauth-profile '{name}'"));
            Ok(())
        }
        OauthProfileCommand::Token(args) => super::outbound::token(ctx, args),
    }
}

// ----- protocol-profile --------------------------------------------------

pub fn protocol(ctx: &Context, cmd: ProtocolProfileCommand) -> Result<()> {
    const KIND: RecordKind = RecordKind::ProtocolProfile;
    match cmd {
        ProtocolProfileCommand::Add(args) => {
            let name = args.name.clone();
            crate::model::check_name(KIND, &name).map_err(Error::invalid)?;
            let profile = ProtocolProfile {
                client_cert: existing_file("--client-cert", &args.client_cert)?,
                client_key: existing_file("--client-key", &args.client_key)?,
                ca_bundle: args
                    .ca_bundle
                    .as_deref()
                    .map(|p| existing_file("--ca-bundle", p))
                    .transpose()?,
            };
            check_profile_files(&profile)?;
            ctx.update(|store| {
                check_new_name(store, KIND, &name)?;
                store.protocol_profile.insert(name.clone(), profile);
                Ok(())
            })?;
            ctx.out.status(&format!("added protocol-profile '{name}'"));
            Ok(())
        }
        ProtocolProfileCommand::List => {
            let store = ctx.load()?;
            list_records(
                ctx,
                &store.protocol_profile,
                &["name", "client cert", "client key", "ca bundle"],
                |n, p| {
                    vec![
                        n.to_string(),
                        p.client_cert.display().to_string(),
                        p.client_key.display().to_string(),
                        or_dash(
                            p.ca_bundle
                                .as_ref()
                                .map(|c| c.display().to_string())
                                .as_deref(),
                        ),
                    ]
                },
            )
        }
        ProtocolProfileCommand::Show { name } => {
            let store = ctx.load()?;
            let p = store
                .protocol_profile
                .get(&name)
                .ok_or_else(|| not_found(&store, KIND, &name))?;
            let cert = crate::pem::describe_first(&p.client_cert);
            if ctx.out.is_json() {
                let mut map = record_json(&name, p)?;
                if let Ok((subject, days)) = &cert {
                    map.insert("client_cert_subject".into(), Value::String(subject.clone()));
                    map.insert("client_cert_days_left".into(), Value::from(*days));
                }
                return ctx.out.json(&Value::Object(map));
            }
            let cert_text = match cert {
                Ok((subject, days)) if days < 0 => {
                    format!("{subject} (EXPIRED {} days ago)", -days)
                }
                Ok((subject, days)) => format!("{subject} (expires in {days} days)"),
                Err(e) => format!("unreadable: {}", e.message),
            };
            ctx.out.fields(&[
                ("name", name.clone()),
                ("client cert", p.client_cert.display().to_string()),
                ("certificate", cert_text),
                ("client key", p.client_key.display().to_string()),
                (
                    "ca bundle",
                    or_dash(
                        p.ca_bundle
                            .as_ref()
                            .map(|c| c.display().to_string())
                            .as_deref(),
                    ),
                ),
                ("used by", used_by(&store, KIND, &name)),
            ])
        }
        ProtocolProfileCommand::Edit(args) => {
            let name = args.name.clone();
            let cert = args
                .client_cert
                .as_deref()
                .map(|p| existing_file("--client-cert", p))
                .transpose()?;
            let key = args
                .client_key
                .as_deref()
                .map(|p| existing_file("--client-key", p))
                .transpose()?;
            let ca = args
                .ca_bundle
                .as_deref()
                .map(|p| existing_file("--ca-bundle", p))
                .transpose()?;
            let changed = ctx.update(|store| {
                let mut p = store
                    .protocol_profile
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| not_found(store, KIND, &name))?;
                let before = p.clone();
                if let Some(c) = &cert {
                    p.client_cert = c.clone();
                }
                if let Some(k) = &key {
                    p.client_key = k.clone();
                }
                if let Some(c) = &ca {
                    p.ca_bundle = Some(c.clone());
                }
                if args.no_ca_bundle {
                    p.ca_bundle = None;
                }
                check_profile_files(&p)?;
                let changed = p != before;
                store.protocol_profile.insert(name.clone(), p);
                Ok(changed)
            })?;
            super::edited(ctx, KIND, &name, changed);
            Ok(())
        }
        ProtocolProfileCommand::Remove { name } => {
            ctx.update(|store| {
                if !store.protocol_profile.contains_key(&name) {
                    return Err(not_found(store, KIND, &name));
                }
                refuse_if_referenced(store, KIND, &name)?;
                store.protocol_profile.remove(&name);
                Ok(())
            })?;
            ctx.out
                .status(&format!("removed protocol-profile '{name}'"));
            Ok(())
        }
    }
}

fn check_profile_files(p: &ProtocolProfile) -> Result<()> {
    crate::pem::check_identity(&p.client_cert, &p.client_key)?;
    if let Some(ca) = &p.ca_bundle {
        crate::pem::load_certs(ca, "CA bundle")?;
    }
    Ok(())
}

// ----- mid-server --------------------------------------------------------

/// A MID server is reached over plain http: connctl speaks no TLS to the proxy
/// itself (a tunnel through it to an https endpoint is still TLS end to end).
fn check_mid_url(url: &str) -> Result<()> {
    if !url.contains("://") {
        // Never repeat a password written into the URL (`user:pw@host:3128`).
        let url = crate::model::without_credentials(url);
        return Err(Error::invalid(format!(
            "--url: '{url}' is not an absolute URL: write it with its scheme, e.g. http://{url}"
        )));
    }
    let scheme = check_url("--url", url)?;
    if scheme != "http" {
        return Err(Error::invalid(format!(
            "--url: a MID server URL must be http://, not {scheme}:// (TLS to the proxy itself is not supported)"
        ))
        .with_hint("https endpoints behind the MID server stay TLS end to end through its tunnel"));
    }
    Ok(())
}

pub fn mid_server(ctx: &Context, cmd: MidServerCommand) -> Result<()> {
    const KIND: RecordKind = RecordKind::MidServer;
    match cmd {
        MidServerCommand::Add(args) => {
            let name = args.name.clone();
            crate::model::check_name(KIND, &name).map_err(Error::invalid)?;
            check_mid_url(&args.url)?;
            let prompt = args
                .user
                .as_ref()
                .map(|u| format!("password of {u} on MID server {name}"));
            let taken = take_secret(password_input(&args.password), prompt.as_deref())?;
            if taken.is_some() && args.user.is_none() {
                return Err(Error::usage("a MID server password needs --user"));
            }
            if taken.is_none() && args.user.is_some() {
                return Err(Error::usage(format!(
                    "MID server '{name}' has a user but no password"
                ))
                .with_hint("add --password-stdin, --password-env VAR, --password-file PATH or --password-cmd CMD"));
            }
            ctx.update(|store| {
                check_new_name(store, KIND, &name)?;
                let password = match taken {
                    Some(t) => Some(keep_secret(ctx, store, KIND, &name, "password", None, t)?),
                    None => None,
                };
                store.mid_server.insert(
                    name.clone(),
                    MidServer {
                        url: args.url.clone(),
                        user: args.user.clone(),
                        password,
                    },
                );
                Ok(())
            })?;
            ctx.out.status(&format!("added mid-server '{name}'"));
            Ok(())
        }
        MidServerCommand::List => {
            let store = ctx.load()?;
            list_records(
                ctx,
                &store.mid_server,
                &["name", "url", "user", "password"],
                |n, m| {
                    vec![
                        n.to_string(),
                        m.url.clone(),
                        or_dash(m.user.as_deref()),
                        source_text(&m.password),
                    ]
                },
            )
        }
        MidServerCommand::Show { name } => {
            let store = ctx.load()?;
            let m = store
                .mid_server
                .get(&name)
                .ok_or_else(|| not_found(&store, KIND, &name))?;
            if ctx.out.is_json() {
                return ctx.out.json(&Value::Object(record_json(&name, m)?));
            }
            ctx.out.fields(&[
                ("name", name.clone()),
                ("url", m.url.clone()),
                ("user", or_dash(m.user.as_deref())),
                ("password", source_text(&m.password)),
                ("used by", used_by(&store, KIND, &name)),
            ])
        }
        MidServerCommand::Edit(args) => {
            let name = args.name.clone();
            if let Some(url) = &args.url {
                check_mid_url(url)?;
            }
            let taken = take_secret(password_input(&args.password), None)?;
            let secret_given = taken.is_some();
            let changed = ctx.update(|store| {
                let mut m = store
                    .mid_server
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| not_found(store, KIND, &name))?;
                let before = m.clone();
                if let Some(url) = &args.url {
                    m.url = url.clone();
                }
                if let Some(user) = &args.user {
                    m.user = Some(user.clone());
                }
                let previous = m.password.clone();
                if args.no_user {
                    m.user = None;
                    m.password = None;
                    if previous == Some(SecretSource::Keyring) {
                        super::forget_secrets(ctx, store, KIND, &name, &["password"]);
                    }
                }
                if let Some(t) = taken {
                    if m.user.is_none() {
                        return Err(Error::usage("a MID server password needs a user: add --user"));
                    }
                    m.password = Some(keep_secret(ctx, store, KIND, &name, "password", previous.as_ref(), t)?);
                }
                if m.user.is_some() && m.password.is_none() {
                    return Err(Error::usage(format!("MID server '{name}' has a user but no password"))
                        .with_hint("add --password-stdin, --password-env VAR, --password-file PATH or --password-cmd CMD"));
                }
                let changed = secret_given || m != before;
                store.mid_server.insert(name.clone(), m);
                Ok(changed)
            })?;
            super::edited(ctx, KIND, &name, changed);
            Ok(())
        }
        MidServerCommand::Remove { name } => {
            ctx.update(|store| {
                let Some(m) = store.mid_server.get(&name).cloned() else {
                    return Err(not_found(store, KIND, &name));
                };
                refuse_if_referenced(store, KIND, &name)?;
                store.mid_server.remove(&name);
                if m.password == Some(SecretSource::Keyring) {
                    super::forget_secrets(ctx, store, KIND, &name, &["password"]);
                }
                Ok(())
            })?;
            ctx.out.status(&format!("removed mid-server '{name}'"));
            Ok(())
        }
    }
}

// ----- inbound-user ------------------------------------------------------

pub fn inbound_user(ctx: &Context, cmd: InboundUserCommand) -> Result<()> {
    const KIND: RecordKind = RecordKind::InboundUser;
    match cmd {
        InboundUserCommand::Add { name, password } => {
            crate::model::check_name(KIND, &name).map_err(Error::invalid)?;
            let taken = take_secret(
                password_input(&password),
                Some(&format!("password for inbound user {name}")),
            )?
            .ok_or_else(|| {
                Error::usage(format!("inbound user '{name}' needs a password"))
                    .with_hint("add --password-stdin, --password-env VAR, --password-file PATH or --password-cmd CMD")
            })?;
            ctx.update(|store| {
                check_new_name(store, KIND, &name)?;
                let source = keep_secret(ctx, store, KIND, &name, "password", None, taken)?;
                store.inbound_user.insert(
                    name.clone(),
                    InboundUser {
                        password: Some(source),
                    },
                );
                Ok(())
            })?;
            ctx.out.status(&format!("added inbound-user '{name}'"));
            Ok(())
        }
        InboundUserCommand::List => {
            let store = ctx.load()?;
            if ctx.out.is_json() {
                let items: Vec<Named<'_, InboundUser>> = store
                    .inbound_user
                    .iter()
                    .map(|(name, record)| Named { name, record })
                    .collect();
                return ctx.out.json_of(&items);
            }
            let rows = store
                .inbound_user
                .iter()
                .map(|(n, u)| {
                    let admitted_by = store
                        .connection
                        .iter()
                        .find(|(_, c)| c.active && c.inbound_user.as_deref() == Some(n))
                        .map(|(cn, _)| cn.as_str());
                    vec![
                        n.clone(),
                        source_text(&u.password),
                        or_dash(admitted_by),
                        used_by(&store, KIND, n),
                    ]
                })
                .collect();
            ctx.out
                .table(&["name", "password", "admitted by", "connections"], rows)
        }
        InboundUserCommand::Show { name } => {
            let store = ctx.load()?;
            let u = store
                .inbound_user
                .get(&name)
                .ok_or_else(|| not_found(&store, KIND, &name))?;
            if ctx.out.is_json() {
                return ctx.out.json(&Value::Object(record_json(&name, u)?));
            }
            ctx.out.fields(&[
                ("name", name.clone()),
                ("password", source_text(&u.password)),
                ("connections", used_by(&store, KIND, &name)),
            ])
        }
        InboundUserCommand::Remove { name } => {
            ctx.update(|store| {
                let Some(u) = store.inbound_user.get(&name).cloned() else {
                    return Err(not_found(store, KIND, &name));
                };
                refuse_if_referenced(store, KIND, &name)?;
                store.inbound_user.remove(&name);
                if u.password == Some(SecretSource::Keyring) {
                    super::forget_secrets(ctx, store, KIND, &name, &["password"]);
                }
                Ok(())
            })?;
            ctx.out.status(&format!("removed inbound-user '{name}'"));
            Ok(())
        }
        InboundUserCommand::SetPassword { name, password } => {
            {
                let store = ctx.load()?;
                if !store.inbound_user.contains_key(&name) {
                    return Err(not_found(&store, KIND, &name));
                }
            }
            let taken = take_secret(
                password_input(&password),
                Some(&format!("new password for inbound user {name}")),
            )?
            .ok_or_else(|| {
                Error::usage("no password given")
                    .with_hint("add --password-stdin, --password-env VAR, --password-file PATH or --password-cmd CMD")
            })?;
            ctx.update(|store| {
                let previous = store
                    .inbound_user
                    .get(&name)
                    .ok_or_else(|| not_found(store, KIND, &name))?
                    .password
                    .clone();
                let source = keep_secret(
                    ctx,
                    store,
                    KIND,
                    &name,
                    "password",
                    previous.as_ref(),
                    taken,
                )?;
                if let Some(u) = store.inbound_user.get_mut(&name) {
                    u.password = Some(source);
                }
                Ok(())
            })?;
            ctx.out
                .status(&format!("set the password of inbound-user '{name}'"));
            Ok(())
        }
    }
}
