//! `connctl protocol-profile ...`

use serde_json::Value;

use super::{
    Context, check_new_name, existing_file, list_records, not_found, record_json, used_by,
};
use crate::cli::ProtocolProfileCommand;
use crate::error::{Error, Result};
use crate::model::{ProtocolProfile, RecordKind};
use crate::output::or_dash;

pub fn run(ctx: &Context, cmd: ProtocolProfileCommand) -> Result<()> {
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
        ProtocolProfileCommand::Remove { name } => super::remove_record(ctx, KIND, &name),
    }
}

fn check_profile_files(p: &ProtocolProfile) -> Result<()> {
    crate::pem::check_identity(&p.client_cert, &p.client_key)?;
    if let Some(ca) = &p.ca_bundle {
        crate::pem::load_certs(ca, "CA bundle")?;
    }
    Ok(())
}
