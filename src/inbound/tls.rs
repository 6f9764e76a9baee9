//! The server side of TLS: certificate, key, and required client certificates.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;

use crate::error::{Error, Result};

/// A rustls server configuration offering HTTP/2 and HTTP/1.1 by ALPN; with a
/// client CA, every client must present a certificate issued by it.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain = crate::pem::load_certs(cert, "TLS certificate")?;
    let key = crate::pem::load_key(key, "TLS key")?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::tls("cannot set up TLS").with_source(&e))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in crate::pem::load_certs(ca, "client CA")? {
                roots.add(cert).map_err(|e| {
                    Error::invalid(format!(
                        "the client CA '{}' holds an unusable certificate",
                        ca.display()
                    ))
                    .with_source(&e)
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| {
                    Error::tls("cannot set up client certificate checks").with_source(&e)
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        Error::invalid(format!(
            "the TLS certificate '{}' and its key do not fit together",
            cert.display()
        ))
        .with_source(&e)
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
