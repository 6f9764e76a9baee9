//! The one printer: data to stdout as a table or JSON, status, warnings,
//! hints and verbose logs to stderr.

use std::io::{self, IsTerminal, Write};

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value;

use crate::error::{Error, Result};
pub use crate::text::{escape, escape_lines};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Clone)]
pub struct Printer {
    pub format: Format,
    pub quiet: bool,
    pub verbose: u8,
    pub color: bool,
}

/// Writing to a closed stdout (`connctl ... | head`) is not an error worth a
/// message; main turns this kind into a quiet exit 0.
pub fn is_broken_pipe(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::BrokenPipe
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| {
            if is_broken_pipe(&e) {
                Error::failed(BROKEN_PIPE)
            } else {
                Error::failed("cannot write to stdout").with_source(&e)
            }
        })
}

/// The message of the error that stands for a closed stdout.
pub const BROKEN_PIPE: &str = "broken pipe";

impl Printer {
    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// Prints a JSON value (pretty, with a trailing newline) to stdout.
    pub fn json(&self, value: &Value) -> Result<()> {
        self.json_of(value)
    }

    /// Prints anything serializable as pretty JSON, without building a
    /// `Value` tree first: ten times faster for a list of 10,000 records.
    pub fn json_of<T: serde::Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let mut text = serde_json::to_string_pretty(value)
            .map_err(|e| Error::failed("cannot render JSON").with_source(&e))?;
        text.push('\n');
        write_stdout(text.as_bytes())
    }

    /// Prints rows as an aligned table with a header to stdout.
    pub fn table(&self, headers: &[&str], rows: Vec<Vec<String>>) -> Result<()> {
        let mut table = Table::new();
        table
            .load_style(presets::NOTHING)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(headers.iter().map(|h| h.to_uppercase()));
        for row in rows {
            table.add_row(row.iter().map(|cell| escape(cell)));
        }
        let mut text = String::new();
        for line in table.to_string().lines() {
            // comfy-table pads each cell by one space on the left: drop it.
            text.push_str(line.strip_prefix(' ').unwrap_or(line).trim_end());
            text.push('\n');
        }
        write_stdout(text.as_bytes())
    }

    /// Key/value lines for `show` in table mode.
    pub fn fields(&self, fields: &[(&str, String)]) -> Result<()> {
        let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut text = String::new();
        for (key, value) in fields {
            text.push_str(&format!("{key:<width$}  {}\n", escape(value)));
        }
        write_stdout(text.as_bytes())
    }

    /// Raw bytes to stdout (e.g. a response body), unchanged.
    pub fn raw(&self, bytes: &[u8]) -> Result<()> {
        write_stdout(bytes)
    }

    /// A status line on stderr (suppressed by -q).
    pub fn status(&self, message: &str) {
        if !self.quiet {
            eprintln!("{}", escape_lines(message));
        }
    }

    pub fn warn(&self, message: &str) {
        if self.color {
            eprintln!("\x1b[33mwarning:\x1b[0m {}", escape_lines(message));
        } else {
            eprintln!("warning: {}", escape_lines(message));
        }
    }

    pub fn hint(&self, message: &str) {
        if !self.quiet {
            eprintln!("hint: {}", escape_lines(message));
        }
    }

    /// A log line shown from `-v` (level 1) or `-vv` (level 2) on.
    pub fn debug(&self, level: u8, message: &str) {
        if self.verbose >= level {
            eprintln!("debug: {}", escape_lines(message));
        }
    }
}

impl Printer {
    /// Asks a yes/no question on the terminal (the question on stderr, the
    /// answer from stdin). `Ok(None)` when stdin or stderr is not a terminal:
    /// there is nobody to ask, and the caller decides (usually: refuse, and
    /// hint at `--yes`). Only `y` or `yes` is a yes.
    pub fn confirm(&self, question: &str) -> Result<Option<bool>> {
        if !io::stdin().is_terminal() || !io::stderr().is_terminal() {
            return Ok(None);
        }
        let mut err = io::stderr().lock();
        let _ = write!(err, "{question} [y/N] ").and_then(|()| err.flush());
        drop(err);
        let mut answer = String::new();
        io::stdin()
            .read_line(&mut answer)
            .map_err(|e| Error::invalid("cannot read the answer").with_source(&e))?;
        Ok(Some(matches!(
            answer.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        )))
    }
}

/// Whether to color stderr: not with --no-color, NO_COLOR, or a non-terminal.
pub fn use_color(no_color_flag: bool) -> bool {
    !no_color_flag
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && io::stderr().is_terminal()
}

/// `-` for an absent value in tables.
pub fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_string()
}

/// A word for sh: as is when it is plain, else single-quoted; for generated
/// scripts and for commands shown to be copied.
pub fn sh_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
