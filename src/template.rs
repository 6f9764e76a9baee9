//! Connection variables in messages: `{{name}}` in a path, a header value or a
//! body, filled from the connection's variables, `--var` overrides and the
//! built-ins `connection`, `integration` and `environment`; `{{{{` writes `{{`.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, Result};
use crate::model::{Connection, SecretSource};
use crate::secrets::Secret;

/// The names that exist for every connection.
pub const BUILT_INS: [&str; 3] = ["connection", "integration", "environment"];

/// One part of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a [u8]),
    /// A `{{name}}`; `offset` is the byte where its `{{` starts.
    Var {
        name: String,
        offset: usize,
    },
}

/// Why a text is not a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxError {
    /// `{{` at this byte has no `}}` after it.
    Unclosed { offset: usize },
    /// `{{}}` (or only spaces) at this byte.
    EmptyName { offset: usize },
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyntaxError::Unclosed { offset } => {
                write!(f, "'{{{{' at byte {offset} is not closed by '}}}}'")
            }
            SyntaxError::EmptyName { offset } => {
                write!(f, "'{{{{}}}}' at byte {offset} names no variable")
            }
        }
    }
}

/// A text split into literal parts and `{{name}}` references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template<'a> {
    pieces: Vec<Piece<'a>>,
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

impl<'a> Template<'a> {
    /// Parses `input`: `{{{{` is a literal `{{`, `{{ name }}` a reference
    /// (spaces around the name are ignored), everything else literal text.
    pub fn parse(input: &'a [u8]) -> Result<Template<'a>, SyntaxError> {
        let mut pieces = Vec::new();
        let mut at = 0;
        while let Some(open) = find(input, b"{{", at) {
            if open > at {
                pieces.push(Piece::Text(&input[at..open]));
            }
            if input[open..].starts_with(b"{{{{") {
                pieces.push(Piece::Text(b"{{"));
                at = open + 4;
                continue;
            }
            let close =
                find(input, b"}}", open + 2).ok_or(SyntaxError::Unclosed { offset: open })?;
            let name = String::from_utf8_lossy(&input[open + 2..close])
                .trim()
                .to_string();
            if name.is_empty() {
                return Err(SyntaxError::EmptyName { offset: open });
            }
            pieces.push(Piece::Var { name, offset: open });
            at = close + 2;
        }
        if at < input.len() {
            pieces.push(Piece::Text(&input[at..]));
        }
        Ok(Template { pieces })
    }

    /// Each variable the template uses, with the byte offset of its first use.
    pub fn names(&self) -> Vec<(&str, usize)> {
        let mut seen: Vec<(&str, usize)> = Vec::new();
        for piece in &self.pieces {
            if let Piece::Var { name, offset } = piece
                && !seen.iter().any(|(n, _)| n == name)
            {
                seen.push((name, *offset));
            }
        }
        seen
    }

    /// Fills every reference with `lookup(name)`; the first name it does not
    /// know is returned with its offset.
    pub fn render<'v>(
        &self,
        lookup: impl Fn(&str) -> Option<&'v [u8]>,
    ) -> Result<Vec<u8>, (String, usize)> {
        let mut out = Vec::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.extend_from_slice(t),
                Piece::Var { name, offset } => match lookup(name) {
                    Some(value) => out.extend_from_slice(value),
                    None => return Err((name.clone(), *offset)),
                },
            }
        }
        Ok(out)
    }
}

/// The values a connection's messages may use, by name.
#[derive(Debug, Clone)]
pub struct Variables {
    connection: String,
    values: BTreeMap<String, String>,
    /// The connection's secret variables not overridden by `--var`: only
    /// their sources; the values are resolved in the secrets stage.
    secret: BTreeMap<String, SecretSource>,
}

impl Variables {
    /// Built-ins, then the connection's variables, then `overrides`: a later
    /// one wins (a connection variable named `environment` replaces the built-in).
    pub fn for_connection(
        name: &str,
        connection: &Connection,
        overrides: &[(String, String)],
    ) -> Variables {
        let mut values = BTreeMap::new();
        values.insert("connection".to_string(), name.to_string());
        values.insert(
            "integration".to_string(),
            connection.integration.to_string(),
        );
        values.insert(
            "environment".to_string(),
            connection.environment.to_string(),
        );
        for (k, v) in &connection.variables {
            values.insert(k.clone(), v.clone());
        }
        for (k, v) in overrides {
            values.insert(k.clone(), v.clone());
        }
        let secret = connection
            .secret_variables
            .iter()
            .filter(|(k, _)| !values.contains_key(*k))
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        Variables {
            connection: name.to_string(),
            values,
            secret,
        }
    }

    /// The secret variables a header value uses, each with its source;
    /// checks every name first (an unknown one is exit 4, before any secret
    /// is resolved or anything is sent).
    pub fn secrets_used(&self, what: &str, input: &str) -> Result<Vec<(String, SecretSource)>> {
        let template = Template::parse(input.as_bytes()).map_err(|e| {
            Error::invalid(format!("{what}: {e}")).with_hint("write '{{{{' for a literal '{{'")
        })?;
        let mut used = Vec::new();
        for (name, offset) in template.names() {
            if self.values.contains_key(name) {
                continue;
            }
            match self.secret.get(name) {
                Some(source) => used.push((name.to_string(), source.clone())),
                None => return Err(self.unknown(what, name, offset)),
            }
        }
        Ok(used)
    }

    /// Renders a header value with plain and resolved secret variables in one
    /// pass (a value is never read as a template itself).
    pub fn render_secret_text(
        &self,
        what: &str,
        input: &str,
        secrets: &BTreeMap<String, Secret>,
    ) -> Result<Secret> {
        let template = Template::parse(input.as_bytes())
            .map_err(|e| Error::invalid(format!("{what}: {e}")))?;
        let bytes = template
            .render(|n| {
                self.get(n)
                    .map(str::as_bytes)
                    .or_else(|| secrets.get(n).map(|s| s.expose().as_bytes()))
            })
            .map_err(|(name, offset)| self.unknown(what, &name, offset))?;
        Ok(Secret::new(String::from_utf8_lossy(&bytes).into_owned()))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Renders `input` (named `what` in messages: `--path`, `header 'x-id'`,
    /// `the body`). Syntax errors and unknown names are invalid input (exit 4).
    pub fn render(&self, what: &str, input: &[u8]) -> Result<Vec<u8>> {
        let template = Template::parse(input).map_err(|e| {
            Error::invalid(format!("{what}: {e}")).with_hint(
                "write '{{{{' for a literal '{{', or send the body as it is with --raw-body",
            )
        })?;
        template
            .render(|n| self.get(n).map(str::as_bytes))
            .map_err(|(name, offset)| self.unknown(what, &name, offset))
    }

    /// Renders a text that must stay text (a path, a header value).
    pub fn render_text(&self, what: &str, input: &str) -> Result<String> {
        let bytes = self.render(what, input.as_bytes())?;
        // Inputs and values are both UTF-8, so the result is.
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn unknown(&self, what: &str, name: &str, offset: usize) -> Error {
        if self.secret.contains_key(name) {
            return Error::invalid(format!(
                "{what} uses secret variable '{}' (at byte {offset}); secret variables are filled in header values only",
                name.escape_debug()
            ))
            .with_hint(format!(
                "put it in a header (-H 'x-api-key: {{{{{}}}}}'), or pass --var {}=VALUE",
                name.escape_debug(),
                name.escape_debug()
            ));
        }
        let own: Vec<&str> = self
            .values
            .keys()
            .chain(self.secret.keys())
            .map(String::as_str)
            .filter(|k| !BUILT_INS.contains(k))
            .collect();
        Error::invalid(format!(
            "{what} uses variable '{}' (at byte {offset}), which connection '{}' does not have",
            name.escape_debug(),
            self.connection
        ))
        .with_hint(format!(
            "set it with `connctl connection edit {} --var {}=VALUE`, or pass --var {}=VALUE for one send; \
             its variables: {}",
            self.connection,
            name.escape_debug(),
            name.escape_debug(),
            if own.is_empty() {
                "none (built-ins: connection, integration, environment)".to_string()
            } else {
                format!("{} (and the built-ins)", own.join(", "))
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::model::{Authentication, Environment};

    fn conn(vars: &[(&str, &str)]) -> Connection {
        Connection {
            integration: "orders".into(),
            environment: Environment::Test,
            active: false,
            endpoint_url: "https://h/api".into(),
            allow_http: false,
            ca_bundle: None,
            authentication: Authentication::None,
            user: None,
            password: None,
            oauth_profile: None,
            mutual_auth: false,
            protocol_profile: None,
            mid_server: None,
            inbound_user: None,
            last_activated: None,
            variables: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            secret_variables: Default::default(),
        }
    }

    fn render(input: &str, vars: &[(&str, &str)]) -> Result<String> {
        Variables::for_connection("orders.test", &conn(vars), &[])
            .render("the body", input.as_bytes())
            .map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn fills_variables_and_built_ins() {
        assert_eq!(
            render(
                "/{{table}}/{{ id }}?env={{environment}}&c={{connection}}&i={{integration}}",
                &[("table", "incident"), ("id", "42")]
            )
            .unwrap(),
            "/incident/42?env=test&c=orders.test&i=orders"
        );
    }

    #[test]
    fn text_without_braces_is_untouched() {
        let odd = "{ \"a\": {\"b\": 1} } } { }}";
        assert_eq!(render(odd, &[]).unwrap(), odd);
        assert_eq!(render("", &[]).unwrap(), "");
    }

    #[test]
    fn four_braces_are_two_literal_braces() {
        assert_eq!(render("{{{{x}}", &[]).unwrap(), "{{x}}");
        assert_eq!(render("a{{{{b}} {{x}}", &[("x", "1")]).unwrap(), "a{{b}} 1");
        // `{{{{` is literal even when followed by a name and `}}`.
        assert_eq!(render("{{{{{{x}}", &[("x", "1")]).unwrap(), "{{1");
    }

    #[test]
    fn values_are_not_templates_themselves() {
        assert_eq!(render("{{a}}", &[("a", "{{b}}")]).unwrap(), "{{b}}");
    }

    #[test]
    fn overrides_win_over_connection_variables_and_built_ins() {
        let vars = Variables::for_connection(
            "orders.test",
            &conn(&[("table", "incident"), ("environment", "qa")]),
            &[("table".into(), "problem".into())],
        );
        assert_eq!(vars.get("table"), Some("problem"));
        assert_eq!(vars.get("environment"), Some("qa"));
    }

    #[test]
    fn unknown_variable_names_itself_the_offset_and_the_connection() {
        let err = render("{\"x\": \"{{nope}}\"}", &[("table", "t")]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert_eq!(
            err.message,
            "the body uses variable 'nope' (at byte 7), which connection 'orders.test' does not have"
        );
        let hint = err.hint.unwrap();
        assert!(hint.contains("--var nope=VALUE"), "{hint}");
        assert!(hint.contains("its variables: table"), "{hint}");
    }

    #[test]
    fn unclosed_braces_give_the_byte_offset() {
        let err = render("abc {{x}} {{y", &[("x", "1")]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
        assert_eq!(
            err.message,
            "the body: '{{' at byte 10 is not closed by '}}'"
        );
        assert!(err.hint.unwrap().contains("--raw-body"));
        assert_eq!(
            Template::parse(b"{{").unwrap_err(),
            SyntaxError::Unclosed { offset: 0 }
        );
    }

    #[test]
    fn empty_name_is_an_error() {
        assert_eq!(
            Template::parse(b"x{{  }}").unwrap_err(),
            SyntaxError::EmptyName { offset: 1 }
        );
    }

    #[test]
    fn names_lists_each_once_with_its_first_offset() {
        let t = Template::parse(b"{{a}}{{b}}{{a}}{{{{c}}").unwrap();
        assert_eq!(t.names(), vec![("a", 0), ("b", 5)]);
    }

    #[test]
    fn binary_bytes_pass_through() {
        let input = [0xff, 0x00, b'{', b'{', b'x', b'}', b'}', 0xfe];
        let vars = Variables::for_connection("c", &conn(&[("x", "é")]), &[]);
        assert_eq!(
            vars.render("the body", &input).unwrap(),
            [&[0xff, 0x00][..], "é".as_bytes(), &[0xfe]].concat()
        );
    }
}
