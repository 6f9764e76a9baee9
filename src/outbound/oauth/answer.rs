//! The token answer as real servers send it: the `oauth2` crate's standard
//! response, lenient where servers are (`expires_in` as a string, no
//! `token_type`), and the check that an access token can go in a header.

use std::time::Duration;

use oauth2::basic::BasicTokenType;
use oauth2::{AccessToken, RefreshToken, Scope};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;

/// RFC 6749 §5.1, as the crate's `TokenResponse`.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenAnswer {
    access_token: AccessToken,
    #[serde(default = "bearer")]
    token_type: BasicTokenType,
    #[serde(default, deserialize_with = "seconds")]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<RefreshToken>,
    #[serde(default, rename = "scope", deserialize_with = "scopes")]
    scopes: Option<Vec<Scope>>,
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

/// A number, or a number in a string (older Azure AD and others).
fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Secs {
        Number(u64),
        Text(String),
        Float(f64),
    }
    Ok(match Option::<Secs>::deserialize(d)? {
        Some(Secs::Number(n)) => Some(n),
        Some(Secs::Text(t)) => t.trim().parse().ok(),
        Some(Secs::Float(f)) if f.is_finite() && f >= 0.0 => Some(f as u64),
        _ => None,
    })
}

fn scopes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Scope>>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|s| {
        s.split_whitespace()
            .map(|s| Scope::new(s.to_string()))
            .collect()
    }))
}

impl oauth2::TokenResponse for TokenAnswer {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }
    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

/// Refuses a token that cannot be sent as `Authorization: Bearer TOKEN`:
/// empty, or not an RFC 6750 `b64token` (which also keeps CR, LF, NUL and
/// every other byte RFC 9110 forbids in a field value out). `endpoint` names
/// the token endpoint that issued it; the token itself is never repeated.
pub fn check_bearer(token: &str, endpoint: &str) -> Result<(), Error> {
    let refuse = |what: String| {
        Error::auth(format!(
            "the token endpoint {endpoint} returned an access token that cannot be sent: {what}"
        ))
        .with_hint(
            "nothing was sent to the endpoint; the authorization server is misbehaving: \
             report it to its operators",
        )
    };
    if token.is_empty() {
        return Err(refuse("it is empty".into()));
    }
    let body = token.trim_end_matches('=');
    if let Some((at, c)) = body.char_indices().find(|(_, c)| {
        !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/'))
    }) {
        let what = if c.is_control() {
            format!("a control character (U+{:04X})", c as u32)
        } else if c == ' ' {
            "a space".to_string()
        } else if c == '=' {
            "'=' before its end".to_string()
        } else {
            "a character outside A-Z a-z 0-9 - . _ ~ + /".to_string()
        };
        return Err(refuse(format!(
            "{what} at position {} is not allowed in a bearer token (RFC 6750 b64token)",
            at + 1
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        assert!(check_bearer("abc.DEF-_~+/==", "e").is_ok());
        assert!(check_bearer("eyJhbGciOi.eyJzdWIi.sig", "e").is_ok());
        for bad in ["", "a\r\nX-Evil: 1", "a\0b", "a b", "a=b", "é"] {
            let err = check_bearer(bad, "https://idp/token").unwrap_err();
            assert_eq!(err.exit_code(), 8, "{bad:?}");
            assert!(err.message.contains("https://idp/token"));
        }
    }

    #[test]
    fn lenient_answers() {
        let a: TokenAnswer =
            serde_json::from_str(r#"{"access_token":"x","expires_in":"3600"}"#).unwrap();
        assert_eq!(a.expires_in, Some(3600));
        let a: TokenAnswer = serde_json::from_str(
            r#"{"access_token":"x","token_type":"Bearer","expires_in":60,"scope":"a b"}"#,
        )
        .unwrap();
        assert_eq!(a.expires_in, Some(60));
        assert_eq!(a.scopes.map(|s| s.len()), Some(2));
    }
}
