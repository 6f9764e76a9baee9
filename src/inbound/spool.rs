//! The message spool: one writer thread appends JSON lines and fsyncs them in
//! groups, answering each sender only once its line is on disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::HeaderMap;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

/// The file name inside `--spool DIR`.
pub const SPOOL_FILE: &str = "messages.jsonl";

struct Pending {
    line: Vec<u8>,
    done: oneshot::Sender<io::Result<()>>,
}

enum Target {
    File { file: File, path: PathBuf },
    Stdout,
}

/// A request's headers as its spool line records them, losslessly:
/// `headers` maps each lower-case name to its values joined by ", " when they
/// are all UTF-8 text; a header with a value that is not (HTTP allows any
/// byte from 0x80 up, "obs-text") is left out of it and goes to
/// `headers_base64` instead: the same joined value, its raw bytes in standard
/// Base64. The headers named in `redact` are "(redacted)" in `headers`,
/// whatever bytes they hold.
pub fn header_fields(headers: &HeaderMap, redact: &[&str]) -> (Value, Value) {
    let mut text = Map::new();
    let mut raw = Map::new();
    for name in headers.keys() {
        let name_text = name.as_str().to_string();
        if redact.contains(&name.as_str()) {
            text.insert(name_text, Value::String("(redacted)".to_string()));
            continue;
        }
        let mut joined: Vec<u8> = Vec::new();
        for (i, value) in headers.get_all(name).iter().enumerate() {
            if i > 0 {
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(value.as_bytes());
        }
        match String::from_utf8(joined) {
            Ok(value) => text.insert(name_text, Value::String(value)),
            Err(e) => raw.insert(name_text, Value::String(BASE64.encode(e.as_bytes()))),
        };
    }
    (Value::Object(text), Value::Object(raw))
}

/// The sending side; cheap to clone. The writer thread ends when every clone is dropped.
#[derive(Clone)]
pub struct Spool {
    tx: mpsc::UnboundedSender<Pending>,
}

/// The writer thread, to be joined after the last `Spool` is dropped.
pub struct SpoolWriter {
    handle: JoinHandle<()>,
}

impl SpoolWriter {
    pub fn join(self) {
        let _ = self.handle.join();
    }
}

impl Spool {
    /// Opens `DIR/messages.jsonl` for appending (creating the folder 0700 and
    /// the file 0600), or writes to stdout when `dir` is `None`.
    pub fn open(dir: Option<&Path>) -> Result<(Spool, SpoolWriter)> {
        let target = match dir {
            None => Target::Stdout,
            Some(dir) => {
                create_private_dir(dir)?;
                let path = dir.join(SPOOL_FILE);
                let mut options = OpenOptions::new();
                options.create(true).append(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let file = options.open(&path).map_err(|e| {
                    Error::invalid(format!("cannot open the spool file '{}'", path.display()))
                        .with_source(&e)
                })?;
                Target::File { file, path }
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = std::thread::Builder::new()
            .name("spool-writer".into())
            .spawn(move || write_loop(target, rx))
            .map_err(|e| Error::failed("cannot start the spool writer").with_source(&e))?;
        Ok((Spool { tx }, SpoolWriter { handle }))
    }

    /// Appends one line (a newline is added) and returns once it is durable.
    pub async fn append(&self, mut line: Vec<u8>) -> io::Result<()> {
        line.push(b'\n');
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending { line, done })
            .map_err(|_| io::Error::other("the spool writer has stopped"))?;
        wait.await
            .map_err(|_| io::Error::other("the spool writer has stopped"))?
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| {
        Error::invalid(format!(
            "cannot create the spool folder '{}'",
            dir.display()
        ))
        .with_source(&e)
    })
}

/// Group commit: take everything queued, write it, fsync once, answer all.
fn write_loop(mut target: Target, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while let Ok(next) = rx.try_recv() {
            batch.push(next);
        }
        let mut buffer = Vec::with_capacity(batch.iter().map(|p| p.line.len()).sum());
        for pending in &batch {
            buffer.extend_from_slice(&pending.line);
        }
        let result = write_durably(&mut target, &buffer);
        for pending in batch {
            let answer = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            let _ = pending.done.send(answer);
        }
    }
}

fn write_durably(target: &mut Target, buffer: &[u8]) -> io::Result<()> {
    match target {
        Target::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(buffer)?;
            out.flush()
        }
        Target::File { file, path } => {
            let before = file.metadata()?.len();
            let written = file.write_all(buffer).and_then(|()| file.sync_data());
            if let Err(e) = written {
                // Cut a partial batch off again, so the next batch starts on a
                // line of its own and no rejected message looks accepted.
                // The server logs the error (through its printer): a failed
                // cut is said there too.
                if file.set_len(before).is_err() {
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "{e}; and '{}' could not be cut back after the failed write",
                            path.display()
                        ),
                    ));
                }
                return Err(e);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn header_values_that_are_not_utf8_are_kept_as_base64() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-text",
            HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap(),
        );
        headers.append("x-raw", HeaderValue::from_bytes(b"a\xff").unwrap());
        headers.append("x-raw", HeaderValue::from_static("b"));
        headers.insert("cookie", HeaderValue::from_bytes(b"\xfe").unwrap());
        let (text, raw) = header_fields(&headers, &["cookie"]);
        assert_eq!(text["x-text"], "caf\u{e9}");
        assert_eq!(text["cookie"], "(redacted)");
        assert!(text.get("x-raw").is_none());
        assert_eq!(raw["x-raw"], BASE64.encode(b"a\xff, b"));
        assert!(raw.get("cookie").is_none());
    }
}
