//! The one printer: data to stdout as a table or JSON; status, warnings,
//! hints, verbose logs, progress, prompts, server logs and errors to stderr.

use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex};

use comfy_table::{ContentArrangement, Table, presets};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
pub use crate::text::{escape, escape_lines};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Where every line connctl writes goes: data to stdout, everything else
/// (status, warnings, hints, `-v` logs, progress, prompts, server logs, the
/// final error) to stderr, each kind filtered by `-q`/`-v` here and nowhere
/// else. Cheap to clone: clones share the progress bar on screen.
#[derive(Debug, Clone)]
pub struct Printer {
    pub format: Format,
    pub quiet: bool,
    pub verbose: u8,
    /// Colored labels on stderr (`error:`, `warning:`).
    pub color: bool,
    /// stderr is a terminal: progress is drawn and questions are asked only then.
    pub terminal: bool,
    /// The progress bar on screen, if any: other stderr lines are printed
    /// while it is suspended, so they never garble it.
    progress: Arc<Mutex<Option<ProgressBar>>>,
}

/// Writes to stdout; a reader that went away (`connctl ... | head`) is the
/// typed [`ErrorKind::BrokenPipe`], which main turns into a quiet exit 0.
fn stdout(bytes: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| {
            if e.kind() == io::ErrorKind::BrokenPipe {
                Error::new(ErrorKind::BrokenPipe, "stdout is closed")
            } else {
                Error::failed("cannot write to stdout").with_source(&e)
            }
        })
}

impl Printer {
    /// The printer for this process: color unless `--no-color`, `NO_COLOR` or
    /// a stderr that is not a terminal.
    pub fn new(format: Format, quiet: bool, verbose: u8, no_color: bool) -> Self {
        let terminal = io::stderr().is_terminal();
        Printer {
            format,
            quiet,
            verbose,
            color: terminal
                && !no_color
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            terminal,
            progress: Arc::default(),
        }
    }

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
        self.stdout(text.as_bytes())
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
        self.stdout(text.as_bytes())
    }

    /// Key/value lines for `show` in table mode.
    pub fn fields(&self, fields: &[(&str, String)]) -> Result<()> {
        let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut text = String::new();
        for (key, value) in fields {
            text.push_str(&format!("{key:<width$}  {}\n", escape(value)));
        }
        self.stdout(text.as_bytes())
    }

    /// Raw bytes to stdout (e.g. a response body), unchanged.
    pub fn raw(&self, bytes: &[u8]) -> Result<()> {
        self.stdout(bytes)
    }

    /// One line of connctl's own text to stdout (the demo's tour).
    pub fn line(&self, message: &str) -> Result<()> {
        self.stdout(format!("{}\n", escape_lines(message)).as_bytes())
    }

    /// Writes to stdout, above the progress bar if one is on screen (stdout
    /// may be the same terminal).
    fn stdout(&self, bytes: &[u8]) -> Result<()> {
        match self.bar() {
            Some(bar) => bar.suspend(|| stdout(bytes)),
            None => stdout(bytes),
        }
    }

    /// The progress bar on screen, if any.
    fn bar(&self) -> Option<ProgressBar> {
        self.progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Writes to stderr. A closed or broken stderr (`2>&-`, a reader that
    /// went away) loses the text but never fails or ends the command: the
    /// exit code stays the one the work earned.
    fn stderr(&self, text: &str) {
        let write = || {
            let mut err = io::stderr().lock();
            let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
        };
        match self.bar() {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    fn label(&self, label: &str, color: &str) -> String {
        if self.color {
            format!("\x1b[{color}m{label}:\x1b[0m")
        } else {
            format!("{label}:")
        }
    }

    /// A status line on stderr (suppressed by -q).
    pub fn status(&self, message: &str) {
        if !self.quiet {
            self.stderr(&format!("{}\n", escape_lines(message)));
        }
    }

    /// A line the operator needs even with -q: what to do to log in, the
    /// address a server listens on.
    pub fn notice(&self, message: &str) {
        self.stderr(&format!("{}\n", escape_lines(message)));
    }

    /// Something the operator must know; shown with -q too.
    pub fn warn(&self, message: &str) {
        let label = self.label("warning", "33");
        self.stderr(&format!("{label} {}\n", escape_lines(message)));
    }

    /// An error: always shown. The final error of a command (main's report)
    /// and errors a server logs and survives.
    pub fn error(&self, message: &str) {
        let label = self.label("error", "31");
        self.stderr(&format!("{label} {}\n", escape_lines(message)));
    }

    pub fn hint(&self, message: &str) {
        if !self.quiet {
            self.stderr(&format!("hint: {}\n", escape_lines(message)));
        }
    }

    /// A log line shown from `-v` (level 1) or `-vv` (level 2) on.
    pub fn debug(&self, level: u8, message: &str) {
        if self.verbose >= level {
            self.stderr(&format!("debug: {}\n", escape_lines(message)));
        }
    }

    /// One line of a server's log (suppressed by -q), escaped whole: its
    /// parts come from clients, so a newline in them cannot forge a line.
    pub fn log(&self, line: &str) {
        if !self.quiet {
            self.stderr(&format!("{}\n", escape(line)));
        }
    }

    /// Asks a yes/no question on the terminal (the question on stderr, the
    /// answer from stdin). `Ok(None)` when stdin or stderr is not a terminal:
    /// there is nobody to ask, and the caller decides (usually: refuse, and
    /// hint at `--yes`). Only `y` or `yes` is a yes.
    pub fn confirm(&self, question: &str) -> Result<Option<bool>> {
        if !io::stdin().is_terminal() || !self.terminal {
            return Ok(None);
        }
        self.stderr(&format!("{} [y/N] ", escape_lines(question)));
        let mut answer = String::new();
        io::stdin()
            .read_line(&mut answer)
            .map_err(|e| Error::invalid("cannot read the answer").with_source(&e))?;
        Ok(Some(matches!(
            answer.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        )))
    }

    /// A progress bar of `total` steps on stderr (`WHAT: [bar] n/N done,
    /// MESSAGE`), drawn only when stderr is a terminal, without -q and not
    /// with -o json; otherwise nothing is drawn at all. While it is on
    /// screen, every other stderr line of this printer is printed above it.
    /// It is cleared when the returned handle is dropped.
    pub fn progress(&self, total: u64, what: &str) -> Progress {
        let note = Arc::new(Mutex::new(String::new()));
        if !self.terminal || self.quiet || self.is_json() {
            return Progress {
                bar: None,
                slot: None,
                note,
            };
        }
        // The note is read when the bar is drawn, so one `set` draws once.
        let shown = note.clone();
        let style = ProgressStyle::with_template(&format!(
            "{}: [{{bar:30}}] {{pos}}/{{len}} done{{note}}",
            escape(what)
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "note",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let note = shown
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if !note.is_empty() {
                    let _ = write!(w, ", {note}");
                }
            },
        )
        .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
            .with_style(style);
        *self
            .progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(bar.clone());
        bar.tick();
        Progress {
            bar: Some(bar),
            slot: Some(self.progress.clone()),
            note,
        }
    }
}

/// A progress bar on screen (or nothing, where none is drawn); see
/// [`Printer::progress`].
pub struct Progress {
    bar: Option<ProgressBar>,
    slot: Option<Arc<Mutex<Option<ProgressBar>>>>,
    /// Shown after the count (`, 3 failed`).
    note: Arc<Mutex<String>>,
}

impl Progress {
    /// Moves to `done` steps, with a short note after the count.
    pub fn set(&self, done: u64, note: &str) {
        if let Some(bar) = &self.bar {
            *self
                .note
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = escape(note);
            bar.set_position(done);
        }
    }
}

impl Drop for Progress {
    /// Leaves a clean line: the bar is erased, and later lines go straight to stderr.
    fn drop(&mut self) {
        if let Some(slot) = &self.slot {
            slot.lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take();
        }
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
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
