//! Reading PEM certificates and keys, with errors that name the file.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::invalid(format!("cannot read the {what} {}", path.display())).with_source(&e)
    })
}

/// All certificates of a PEM file; at least one.
pub fn load_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            Error::invalid(format!("the {what} {} is not valid PEM", path.display())).with_cause(e)
        })?;
    if certs.is_empty() {
        return Err(Error::invalid(format!(
            "the {what} {} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    for cert in &certs {
        x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| {
            Error::invalid(format!(
                "the {what} {} holds a certificate that does not parse",
                path.display()
            ))
            .with_cause(e)
        })?;
    }
    Ok(certs)
}

/// The private key of a PEM file: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
pub fn load_key(path: &Path, what: &str) -> Result<PrivateKeyDer<'static>> {
    let bytes = read(path, what)?;
    // Never echo key material: the errors name only the file.
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
        Error::invalid(format!(
            "the {what} {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            path.display()
        ))
    })
}

/// Checks that a certificate and key belong together, as a TLS client would use them.
pub fn check_identity(cert_path: &Path, key_path: &Path) -> Result<()> {
    let certs = load_certs(cert_path, "client certificate")?;
    let key = load_key(key_path, "client key")?;
    let signing_key = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key).map_err(|e| {
        Error::invalid(format!(
            "the client key {} is not a supported key",
            key_path.display()
        ))
        .with_cause(e)
    })?;
    let certified = rustls::sign::CertifiedKey::new(certs, signing_key);
    certified.keys_match().map_err(|_| {
        Error::invalid(format!(
            "the client key {} does not belong to the certificate {}",
            key_path.display(),
            cert_path.display()
        ))
    })
}

/// Subject and days to expiry of the first certificate of a PEM file.
pub fn describe_first(path: &Path) -> Result<(String, i64)> {
    let certs = load_certs(path, "certificate")?;
    let (_, cert) = x509_parser::parse_x509_certificate(certs[0].as_ref())
        .map_err(|e| Error::invalid("certificate does not parse").with_cause(e))?;
    let expires = cert.validity().not_after.timestamp();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Ok((
        cert.subject().to_string(),
        (expires - now).div_euclid(86_400),
    ))
}
