//! The files generated from the clap definitions into `completions/` and
//! `man/`, written and checked by `cargo run --example generate`.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_mangen::roff::{Roff, bold, roman};

use super::Cli;
use super::complete::registration_script;
use crate::error::{Error, Result};

/// The command to regenerate `completions/` and `man/`, named by the check.
pub const REGENERATE: &str = "cargo run --example generate -- --write";

// ----- generated files -------------------------------------------------------

/// One generated file: its path relative to the repository root, and content.
pub struct GeneratedFile {
    pub path: PathBuf,
    pub content: Vec<u8>,
}

/// The folders the generator owns entirely: files in them that it does not
/// generate are stale (a removed command's page) and go on `--write`.
pub const GENERATED_DIRS: [&str; 2] = ["completions", "man"];

/// Every generated file: a completion script per shell, a man page per
/// command and subcommand.
pub fn generated_files() -> Result<Vec<GeneratedFile>> {
    let mut files = Vec::new();
    for (shell, file) in [
        (clap_complete::Shell::Bash, "connctl.bash"),
        (clap_complete::Shell::Zsh, "_connctl"),
        (clap_complete::Shell::Fish, "connctl.fish"),
        (clap_complete::Shell::PowerShell, "connctl.ps1"),
        (clap_complete::Shell::Elvish, "connctl.elv"),
    ] {
        files.push(GeneratedFile {
            path: Path::new("completions").join(file),
            content: registration_script(shell)?,
        });
    }
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    man_pages(&cmd, None, &mut files)?;
    Ok(files)
}

fn man_pages(
    cmd: &clap::Command,
    parent: Option<&str>,
    files: &mut Vec<GeneratedFile>,
) -> Result<()> {
    let page = page_name(cmd);
    let mut content = Vec::new();
    render_man_page(cmd, parent, &mut content)
        .map_err(|e| Error::failed("cannot render a man page").with_source(&e))?;
    files.push(GeneratedFile {
        path: Path::new("man").join(format!("{page}.1")),
        content,
    });
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, Some(&page), files)?;
    }
    Ok(())
}

fn page_name(cmd: &clap::Command) -> String {
    cmd.get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string()
}

/// clap_mangen's sections, then the long help's trailing blocks as sections
/// of their own ("Exit codes:" becomes EXIT STATUS, "Environment:"
/// ENVIRONMENT, "Examples:" EXAMPLES), then SEE ALSO.
fn render_man_page(
    cmd: &clap::Command,
    parent: Option<&str>,
    w: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone())
        .source(concat!("connctl ", env!("CARGO_PKG_VERSION")))
        .manual("connctl manual");
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut page)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut page)?;
    }
    let mut roff = Roff::new();
    if let Some(text) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) {
        trailing_sections(&mut roff, &text.to_string());
    }
    if let Some(parent) = parent {
        roff.control("SH", ["SEE ALSO"]);
        roff.text([bold(parent), roman("(1)")]);
    }
    roff.to_writer(&mut page)?;
    // Each piece starts with the same preamble (defining the apostrophe
    // string); once at the top is enough.
    let page = String::from_utf8_lossy(&page);
    let (first, rest) = page.split_at(ROFF_PREAMBLE.len().min(page.len()));
    w.write_all(first.as_bytes())?;
    w.write_all(rest.replace(ROFF_PREAMBLE, "").as_bytes())
}

/// What `roff` writes before every document it renders.
const ROFF_PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// Turns blocks like "Exit codes:\n  0  success\n..." into man sections:
/// aligned `TERM  text` lines become tagged paragraphs, other lines
/// (examples) stay as typed.
fn trailing_sections(roff: &mut Roff, text: &str) {
    for block in text.split("\n\n") {
        let mut lines = block.lines();
        let Some(heading) = lines.next() else {
            continue;
        };
        let body: Vec<&str> = lines.collect();
        let title = heading.trim().trim_end_matches(':');
        let section = match title.to_ascii_lowercase().as_str() {
            "exit codes" | "exit status" => "EXIT STATUS".to_string(),
            "environment" => "ENVIRONMENT".to_string(),
            "example" | "examples" => "EXAMPLES".to_string(),
            _ => title.to_ascii_uppercase(),
        };
        roff.control("SH", [section.as_str()]);
        let items: Option<Vec<(&str, &str)>> = body.iter().map(|l| definition(l)).collect();
        match items {
            Some(items) if !items.is_empty() => {
                for (term, text) in items {
                    roff.control("TP", []);
                    roff.text([bold(term)]);
                    roff.text([roman(text)]);
                }
            }
            _ => {
                roff.control("nf", []);
                roff.control("RS", ["4"]);
                for line in body {
                    roff.text([roman(line.trim_start())]);
                }
                roff.control("RE", []);
                roff.control("fi", []);
            }
        }
    }
}

/// `  TERM   text` (term and text separated by two or more spaces).
fn definition(line: &str) -> Option<(&str, &str)> {
    let line = line.strip_prefix("  ")?;
    let end = line.find("  ")?;
    let (term, text) = line.split_at(end);
    let text = text.trim();
    (!term.contains(' ') && !text.is_empty()).then_some((term, text))
}

/// Writes every generated file under `root` and removes the stale ones.
/// Returns what changed, one line per file ("wrote PATH", "removed PATH").
pub fn write_generated(root: &Path) -> Result<Vec<String>> {
    let files = generated_files()?;
    let mut changed = Vec::new();
    for file in &files {
        let path = root.join(&file.path);
        if std::fs::read(&path).ok().as_deref() == Some(&file.content[..]) {
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        }
        std::fs::write(&path, &file.content).map_err(|e| io_error(&path, e))?;
        changed.push(format!("wrote {}", file.path.display()));
    }
    for stale in stale_files(root, &files) {
        std::fs::remove_file(root.join(&stale)).map_err(|e| io_error(&stale, e))?;
        changed.push(format!("removed {}", stale.display()));
    }
    Ok(changed)
}

/// What differs between the files under `root` and what the current
/// definitions generate: one line per file (changed, missing, stale).
pub fn check_generated(root: &Path) -> Result<Vec<String>> {
    let files = generated_files()?;
    let mut problems = Vec::new();
    for file in &files {
        match std::fs::read(root.join(&file.path)) {
            Ok(content) if content == file.content => {}
            Ok(_) => problems.push(format!("{} is out of date", file.path.display())),
            Err(_) => problems.push(format!("{} is missing", file.path.display())),
        }
    }
    for stale in stale_files(root, &files) {
        problems.push(format!(
            "{} is no longer generated (stale)",
            stale.display()
        ));
    }
    Ok(problems)
}

fn stale_files(root: &Path, files: &[GeneratedFile]) -> Vec<PathBuf> {
    let mut stale = Vec::new();
    for dir in GENERATED_DIRS {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = Path::new(dir).join(entry.file_name());
            if entry.path().is_file() && !files.iter().any(|f| f.path == path) {
                stale.push(path);
            }
        }
    }
    stale.sort();
    stale
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::failed(format!("cannot write {}", path.display())).with_source(&e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions() {
        assert_eq!(definition("  0  success"), Some(("0", "success")));
        assert_eq!(
            definition("  CONNCTL_STORE    the store file"),
            Some(("CONNCTL_STORE", "the store file"))
        );
        assert_eq!(definition("  connctl connection test x"), None);
    }
}
