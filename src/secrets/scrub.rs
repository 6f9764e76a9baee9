//! Removing secrets from text that came back from elsewhere (a server's
//! answer, a command's stderr), in every encoding a secret takes on the wire.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::Secret;

const REDACTED: &str = "(redacted)";

/// `text` with every occurrence of the given secrets replaced by
/// `(redacted)`: a server that echoes what it was sent must not put a secret
/// into a message. Found in each form a request carries it: raw,
/// percent-encoded (any hex case, a space as `+` or `%20`, as a form body
/// has it), and inside Base64 (`Authorization: Basic` of `id:secret`, the
/// secret form-encoded first as RFC 6749 §2.3.1 wants), standard or URL-safe.
pub fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let values: Vec<&[u8]> = secrets
        .iter()
        .map(|s| s.expose().as_bytes())
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    for value in &values {
        spans.extend(encoded_spans(bytes, value));
        spans.extend(base64_spans(bytes, value));
    }
    spans.extend(decoded_base64_runs(bytes, &values));
    if spans.is_empty() {
        return text.to_string();
    }
    spans.sort();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (start, end) in spans {
        let (start, end) = (floor_boundary(text, start), ceil_boundary(text, end));
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in merged {
        out.push_str(&text[at..start]);
        out.push_str(REDACTED);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// The end of `secret` read at `text[at..]`, each byte raw or as `%XX`, a
/// space also as `+`.
fn match_at(text: &[u8], at: usize, secret: &[u8]) -> Option<usize> {
    let Some((&b, rest)) = secret.split_first() else {
        return Some(at);
    };
    let here = text.get(at..)?;
    if here.len() >= 3
        && here[0] == b'%'
        && let Some(v) = hex_pair(here[1], here[2])
        && v == b
        && let Some(end) = match_at(text, at + 3, rest)
    {
        return Some(end);
    }
    match here.first() {
        Some(b'+') if b == b' ' => match_at(text, at + 1, rest),
        Some(&c) if c == b => match_at(text, at + 1, rest),
        _ => None,
    }
}

fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    Some(digit(hi)? << 4 | digit(lo)?)
}

/// Where `secret` appears raw or percent-encoded.
fn encoded_spans(text: &[u8], secret: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match match_at(text, i, secret) {
            Some(end) if end > i => {
                spans.push((i, end));
                i = end;
            }
            _ => i += 1,
        }
    }
    spans
}

fn contains(text: &[u8], secret: &[u8]) -> bool {
    (0..text.len()).any(|i| match_at(text, i, secret).is_some())
}

fn is_base64_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'-' | b'_')
}

/// The run of Base64 characters around `text[start..end]`.
fn widen_to_run(text: &[u8], mut start: usize, mut end: usize) -> (usize, usize) {
    while start > 0 && is_base64_char(text[start - 1]) {
        start -= 1;
    }
    while end < text.len() && is_base64_char(text[end]) {
        end += 1;
    }
    (start, end)
}

/// The forms a secret is Base64-encoded from: raw, and form-encoded with
/// `+` or `%20` for a space.
fn wire_forms(secret: &[u8]) -> Vec<Vec<u8>> {
    let form: String = url::form_urlencoded::byte_serialize(secret).collect();
    let mut forms = vec![secret.to_vec()];
    for candidate in [form.clone(), form.replace('+', "%20")] {
        if !forms.iter().any(|f| f == candidate.as_bytes()) {
            forms.push(candidate.into_bytes());
        }
    }
    forms
}

/// Where the Base64 of a form of `secret` appears inside a longer Base64
/// text (such as `id:secret`), at any of the three byte alignments; each
/// match widened to its whole run of Base64 characters.
fn base64_spans(text: &[u8], secret: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for form in wire_forms(secret) {
        for shift in 0..3usize {
            let mut data = vec![0u8; shift];
            data.extend_from_slice(&form);
            let encoded = STANDARD.encode(&data);
            // Only the characters whose six bits all come from the secret.
            let first = (8 * shift).div_ceil(6);
            let last = 8 * (shift + form.len()) / 6;
            if last < first + 4 {
                continue;
            }
            let core = &encoded[first..last];
            let url_safe = core.replace('+', "-").replace('/', "_");
            for needle in [core, url_safe.as_str()] {
                let needle = needle.as_bytes();
                let mut i = 0;
                while i + needle.len() <= text.len() {
                    if &text[i..i + needle.len()] == needle {
                        spans.push(widen_to_run(text, i, i + needle.len()));
                        i += needle.len();
                    } else {
                        i += 1;
                    }
                }
            }
        }
    }
    spans
}

/// Runs of Base64 characters that decode to text holding a secret (in any
/// form `encoded_spans` knows): a short secret whose encoding is too short
/// to search for is still found this way.
fn decoded_base64_runs(text: &[u8], secrets: &[&[u8]]) -> Vec<(usize, usize)> {
    let config = GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let engines = [
        GeneralPurpose::new(&base64::alphabet::STANDARD, config),
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, config),
    ];
    let mut spans = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if !is_base64_char(text[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < text.len() && is_base64_char(text[i]) {
            i += 1;
        }
        let run = &text[start..i];
        if run.len() < 4 {
            continue;
        }
        let body: &[u8] = {
            let trimmed = run
                .strip_suffix(b"==")
                .or(run.strip_suffix(b"="))
                .unwrap_or(run);
            if trimmed.len() % 4 == 1 {
                &trimmed[..trimmed.len() - 1]
            } else {
                trimmed
            }
        };
        let found = engines.iter().any(|engine| {
            engine
                .decode(body)
                .is_ok_and(|decoded| secrets.iter().any(|s| contains(&decoded, s)))
        });
        if found {
            spans.push((start, i));
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrubbed(text: &str, secrets: &[&str]) -> String {
        let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
        let refs: Vec<&Secret> = secrets.iter().collect();
        scrub(text, &refs)
    }

    const PW: &str = "p@ss w0rd!";

    #[test]
    fn raw_and_percent_encoded_forms() {
        assert_eq!(
            scrubbed("bad secret hunter2 (hunter2)", &["hunter2", ""]),
            "bad secret (redacted) ((redacted))"
        );
        for form in [
            "p@ss w0rd!",
            "p%40ss+w0rd%21",
            "p%40ss%20w0rd%21",
            "p%40ss%20w0rd!",
            "p@ss+w0rd!",
            "p%40SS+w0rd%21",
        ] {
            let out = scrubbed(&format!("password={form}&x=1"), &[PW]);
            // %40SS is not the secret: the case of the letters counts, that of hex digits not.
            if form.contains("SS") {
                assert_eq!(out, format!("password={form}&x=1"));
            } else {
                assert_eq!(out, "password=(redacted)&x=1", "{form}");
            }
        }
        assert_eq!(scrubbed("p%4", &[PW]), "p%4");
        assert_eq!(scrubbed("nothing here", &[PW]), "nothing here");
        assert_eq!(
            scrubbed("mot de passe: é p@ss w0rd!é", &[PW]),
            "mot de passe: é (redacted)é"
        );
    }

    #[test]
    fn basic_credentials_in_base64_and_decoded() {
        let basic = |id: &str, secret: &str| STANDARD.encode(format!("{id}:{secret}"));
        let form: String = url::form_urlencoded::byte_serialize(PW.as_bytes()).collect();
        for id in ["c", "client", "connctl-client", "a%40b"] {
            for secret in [PW.to_string(), form.clone(), form.replace('+', "%20")] {
                let token = basic(id, &secret);
                for text in [
                    format!("Authorization: Basic {token}"),
                    format!("auth=Basic+{token}."),
                    format!(
                        "{{\"h\":\"Basic {}\"}}",
                        token.replace('+', "-").replace('/', "_")
                    ),
                ] {
                    let out = scrubbed(&text, &[PW]);
                    assert!(
                        !out.contains(&token[token.len() / 2..]),
                        "{id} {secret}: {out}"
                    );
                    assert!(out.contains(REDACTED), "{out}");
                }
                // The decoded form keeps the id, never the secret.
                assert_eq!(
                    scrubbed(&format!("decoded {id}:{secret}"), &[PW]),
                    format!("decoded {id}:(redacted)")
                );
            }
        }
        // A secret too short to search for inside Base64 is found by decoding.
        let token = basic("id", "ab");
        assert_eq!(
            scrubbed(&format!("Basic {token}"), &["ab"]),
            "Basic (redacted)"
        );
    }

    #[test]
    fn unrelated_base64_is_left_alone() {
        let other = STANDARD.encode("someone:else");
        assert_eq!(
            scrubbed(&format!("Basic {other}"), &[PW]),
            format!("Basic {other}")
        );
    }
}
