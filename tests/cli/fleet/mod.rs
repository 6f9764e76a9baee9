//! Fleet checks: `connection test --report`, `--warn-days`, and `monitor`
//! scraped by a real Prometheus. Certificates with chosen lifetimes come from
//! a CA of this module's own.

mod monitor;
mod reports;

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::outbound::Fixture;
use crate::outbound_servers::{Handler, Server, TlsOptions, tls_server};

/// A CA and leaves whose lifetimes the tests choose.
pub struct FleetPki {
    pub ca: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    dir: PathBuf,
}

/// A certificate and its key, as PEM files.
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl FleetPki {
    pub fn new(dir: &Path) -> FleetPki {
        std::fs::create_dir_all(dir).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "connctl fleet CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = dir.join("fleet-ca.pem");
        std::fs::write(&ca, params.self_signed(&key).unwrap().pem()).unwrap();
        FleetPki {
            ca,
            issuer: Issuer::new(params, key),
            dir: dir.to_path_buf(),
        }
    }

    /// A leaf valid from a day ago until `days` (and one hour) from now; negative days: expired.
    pub fn leaf(&self, name: &str, client: bool, days: i64) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let names = if client {
            vec![]
        } else {
            vec!["localhost".to_string(), "127.0.0.1".to_string()]
        };
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(days.abs() + 30);
        let hour = time::Duration::hours(if days < 0 { -1 } else { 1 });
        params.not_after = now + time::Duration::days(days) + hour;
        let cert = params.signed_by(&key, &self.issuer).unwrap().pem();
        let leaf = Leaf {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}.key")),
        };
        std::fs::write(&leaf.cert, cert).unwrap();
        std::fs::write(&leaf.key, key.serialize_pem()).unwrap();
        leaf
    }

    /// An HTTPS server with `leaf`, asking for a client certificate of this CA when `mtls`.
    pub fn server(&self, f: &Fixture, leaf: &Leaf, mtls: bool, handler: Handler) -> Server {
        tls_server(
            &f.rt,
            TlsOptions {
                cert: &leaf.cert,
                key: &leaf.key,
                client_ca: mtls.then_some(self.ca.as_path()),
                h2: false,
            },
            handler,
        )
    }
}
