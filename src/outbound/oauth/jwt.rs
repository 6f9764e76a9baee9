//! Signed JWT assertions (RFC 7523): the jwt_bearer grant (§2.1) and
//! private_key_jwt client authentication (§2.2). The `oauth2` crate has
//! neither; signing is `jsonwebtoken` on aws-lc-rs, the crypto library rustls
//! already uses.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RsaKeyPair};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::secrets::Secret;

/// How long a signed assertion is valid.
pub const ASSERTION_LIFETIME_SECS: i64 = 300;

/// A private key ready to sign: RSA → RS256, EC P-256 → ES256.
pub struct SigningKey {
    key: EncodingKey,
    pub alg: Algorithm,
    kid: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: String,
}

fn not_a_key(label: &str, why: &str) -> Error {
    Error::invalid(format!("the signing key {label} {why}")).with_hint(
        "give a PEM private key: RSA (signs RS256) or EC P-256 (signs ES256), \
         PKCS#8, PKCS#1 or SEC1",
    )
}

impl SigningKey {
    /// Reads a PEM private key. `label` names where it came from (a file, a
    /// secret source) in errors, which never repeat key material (exit 4).
    pub fn from_pem(pem: &str, label: &str, kid: Option<String>) -> Result<SigningKey> {
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
            not_a_key(
                label,
                "holds no PEM private key (expected -----BEGIN PRIVATE KEY----- or similar)",
            )
        })?;
        let (key, alg) = match &der {
            PrivateKeyDer::Pkcs1(rsa) => {
                RsaKeyPair::from_der(rsa.secret_pkcs1_der())
                    .map_err(|_| not_a_key(label, "is not a valid RSA private key"))?;
                (
                    EncodingKey::from_rsa_der(rsa.secret_pkcs1_der()),
                    Algorithm::RS256,
                )
            }
            PrivateKeyDer::Sec1(ec) => {
                let pair = EcdsaKeyPair::from_private_key_der(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    ec.secret_sec1_der(),
                )
                .map_err(|_| {
                    not_a_key(
                        label,
                        "is an EC key on a curve other than P-256 (ES256 needs P-256)",
                    )
                })?;
                let pkcs8 = pair
                    .to_pkcs8v1()
                    .map_err(|_| not_a_key(label, "is an EC key that cannot be used"))?;
                (EncodingKey::from_ec_der(pkcs8.as_ref()), Algorithm::ES256)
            }
            PrivateKeyDer::Pkcs8(p8) => {
                let der = p8.secret_pkcs8_der();
                if EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).is_ok() {
                    (EncodingKey::from_ec_der(der), Algorithm::ES256)
                } else if RsaKeyPair::from_pkcs8(der).is_ok() {
                    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
                    let pem =
                        format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
                    let key = EncodingKey::from_rsa_pem(pem.as_bytes())
                        .map_err(|_| not_a_key(label, "is an RSA key that cannot be used"))?;
                    (key, Algorithm::RS256)
                } else {
                    return Err(not_a_key(
                        label,
                        "is neither an RSA nor an EC P-256 private key (RS256 or ES256)",
                    ));
                }
            }
            _ => return Err(not_a_key(label, "is not a supported private key")),
        };
        let key = SigningKey { key, alg, kid };
        // Prove it signs now, so a bad key is named before any request.
        key.sign("connctl", "connctl", "connctl", 0)
            .map_err(|_| not_a_key(label, "cannot sign with its algorithm"))?;
        Ok(key)
    }

    pub fn alg_name(&self) -> &'static str {
        match self.alg {
            Algorithm::ES256 => "ES256",
            _ => "RS256",
        }
    }

    /// A signed assertion: `iss`, `sub`, `aud`, `exp` (now + 5 min), `iat`,
    /// `nbf` and a fresh `jti`.
    pub fn sign(&self, iss: &str, sub: &str, aud: &str, now: i64) -> Result<Secret> {
        let mut header = Header::new(self.alg);
        header.kid = self.kid.clone();
        let claims = Claims {
            iss,
            sub,
            aud,
            exp: now + ASSERTION_LIFETIME_SECS,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(Secret::new)
            .map_err(|e| Error::invalid("cannot sign the JWT assertion").with_cause(e))
    }
}
