//! A throwaway private CA with a server certificate for localhost and a client
//! certificate, for `connctl demo` and the tests' TLS endpoints.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use crate::error::{Error, Result};

/// The PEM files `generate` writes.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn rcgen_error(what: &str, e: rcgen::Error) -> Error {
    Error::failed(format!("cannot make the {what}")).with_cause(e)
}

/// A realistic validity: from yesterday (clock skew) for a year.
fn set_validity(params: &mut CertificateParams) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365);
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "connctl demo");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn write_private(path: &Path, text: &str, private: bool) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    use std::io::Write;
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::failed(format!("cannot write '{}'", path.display())).with_source(&e))
}

/// Writes `ca.pem`, `server.pem`/`server-key.pem` (for `localhost`,
/// `127.0.0.1` and `::1`) and `client.pem`/`client-key.pem` (subject CN
/// `client_name`) into `dir`. Keys are written owner-only.
pub fn generate(dir: &Path, client_name: &str) -> Result<PkiFiles> {
    let ca_key = KeyPair::generate().map_err(|e| rcgen_error("CA key", e))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())
        .map_err(|e| rcgen_error("CA certificate", e))?;
    ca_params.distinguished_name = name("connctl demo CA");
    set_validity(&mut ca_params);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .map_err(|e| rcgen_error("CA certificate", e))?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf = |sans: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().map_err(|e| rcgen_error("key", e))?;
        let mut params = CertificateParams::new(sans).map_err(|e| rcgen_error("certificate", e))?;
        params.distinguished_name = name(cn);
        set_validity(&mut params);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| rcgen_error("certificate", e))?;
        Ok::<_, Error>((cert.pem(), key.serialize_pem()))
    };
    let (server_pem, server_key) = leaf(
        vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        "localhost",
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let (client_pem, client_key) =
        leaf(Vec::new(), client_name, ExtendedKeyUsagePurpose::ClientAuth)?;

    let files = PkiFiles {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server-key.pem"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client-key.pem"),
    };
    write_private(&files.ca_cert, &ca_cert.pem(), false)?;
    write_private(&files.server_cert, &server_pem, false)?;
    write_private(&files.server_key, &server_key, true)?;
    write_private(&files.client_cert, &client_pem, false)?;
    write_private(&files.client_key, &client_key, true)?;
    Ok(files)
}
