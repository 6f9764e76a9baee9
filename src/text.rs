//! Escaping of text from outside for terminals and logs: a leaf module, so
//! errors, the printer and the domain can all use it without importing each other.

/// Text from outside (a store field, a server's answer or certificate, an
/// argument, an inbound request) as it is shown on a terminal or in a log:
/// control characters (C0 with CR, LF, TAB, NUL and ESC; DEL; C1) and the
/// bidirectional overrides are written as escapes (`\x1b`, `\n`,
/// `\u{202e}`), so they can neither drive the terminal nor forge a line.
/// JSON output does not use it: JSON escapes them itself, exactly.
pub fn escape(text: &str) -> String {
    escape_except(text, None)
}

/// [`escape`] for a message connctl composed, which may have lines of its
/// own: every newline is kept, everything else is escaped. Untrusted text
/// with a newline in it must go through [`escape`] before it is put into
/// such a message.
pub fn escape_lines(text: &str) -> String {
    escape_except(text, Some('\n'))
}

fn escape_except(text: &str, keep: Option<char>) -> String {
    if !text.chars().any(|c| needs_escape(c) && Some(c) != keep) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !needs_escape(c) || Some(c) == keep {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod escape_tests {
    use super::*;

    #[test]
    fn control_characters_and_bidi_overrides_are_escaped() {
        assert_eq!(
            escape("a\x1b[31mb\nc\r\0\x7f"),
            "a\\x1b[31mb\\nc\\r\\0\\x7f"
        );
        assert_eq!(escape("\u{9b}x\u{202e}y"), "\\u{9b}x\\u{202e}y");
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
        assert_eq!(
            escape_lines("line one\nline\x1b two"),
            "line one\nline\\x1b two"
        );
    }
}
