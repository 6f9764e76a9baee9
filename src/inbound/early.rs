//! Early answers: a refusal (401, 403, 413, 408, ...) sent while the request
//! body is still arriving, made readable for the client.
//!
//! A client that is still sending when the answer comes must be able to read
//! it. Closing the connection at once makes the kernel answer its next write
//! with a reset, which can discard the answer before the client reads it (curl:
//! "Broken pipe"); resetting an HTTP/2 stream while curl still sends on it
//! makes curl 7.88 report a stream error instead of the status. So, as nginx
//! does, the server keeps reading what the client sends after the answer and
//! throws it away, for a bounded amount and time:
//!
//! - HTTP/1.x: the answer says `Connection: close`; when hyper then shuts the
//!   connection down, [`Lingering`] closes the sending half (the client sees
//!   the end of the answer) and reads and drops what still arrives until the
//!   client closes, [`DRAIN_LIMIT`] bytes or [`LINGER_TIME`] (nginx's
//!   `lingering_close`).
//! - HTTP/2: the answer ends its stream, [`drain_stream`] reads and drops the
//!   rest of the request's DATA (the connection stays open for other streams)
//!   under the same bounds; when it stops, h2 resets the stream with
//!   `NO_ERROR` (RFC 9113 §8.1), which also tells the client to stop sending.
//!
//! Nothing read here is kept: it goes through a fixed 16 KiB buffer.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::output::Printer;

/// The most the server reads (and drops) of a request after an early answer:
/// bytes on the wire for HTTP/1.x (TLS records included), DATA bytes of the
/// stream for HTTP/2.
pub const DRAIN_LIMIT: u64 = 4 * 1024 * 1024;

/// The longest the server keeps reading after an early answer.
pub const LINGER_TIME: Duration = Duration::from_secs(2);

/// Why draining stopped, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The client closed its side (HTTP/1.x) or ended the stream (HTTP/2).
    ClientDone,
    Limit,
    Time,
    /// A read failed: the client reset the stream or the connection.
    Reset,
}

impl Stop {
    fn describe(self) -> String {
        match self {
            Stop::ClientDone => "the client stopped sending".to_string(),
            Stop::Limit => format!("the drain limit of {DRAIN_LIMIT} bytes was reached"),
            Stop::Time => format!("the linger time of {} s was over", LINGER_TIME.as_secs()),
            Stop::Reset => "the client reset the stream or the connection".to_string(),
        }
    }
}

/// One log line per drained request: what a user can check the bound with.
fn log_drained(
    out: &Printer,
    peer: SocketAddr,
    what: &str,
    discarded: u64,
    started: Instant,
    stop: Stop,
) {
    out.log(&format!(
        "{peer}: after the early answer ({what}) {discarded} bytes of the request were read and discarded in {} ms; stopped: {}",
        started.elapsed().as_millis(),
        stop.describe()
    ));
}

/// A connection's promise to linger on close: set by the request handler
/// when it answered an HTTP/1.x request before reading its body.
pub struct LingerOnClose {
    armed: AtomicBool,
    peer: SocketAddr,
    out: Printer,
}

impl LingerOnClose {
    pub fn new(peer: SocketAddr, out: Printer) -> Arc<Self> {
        Arc::new(LingerOnClose {
            armed: AtomicBool::new(false),
            peer,
            out,
        })
    }

    /// Drains the connection when it closes.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::Release);
    }

    fn is_armed(&self) -> bool {
        self.armed.load(Ordering::Acquire)
    }
}

enum State {
    Open,
    Draining {
        deadline: Pin<Box<tokio::time::Sleep>>,
        started: Instant,
        discarded: u64,
    },
    Closed,
}

/// The client's socket (below TLS): a shutdown after an early answer closes
/// the sending half, then reads and drops what the client still sends.
pub struct Lingering<I> {
    inner: I,
    linger: Arc<LingerOnClose>,
    state: State,
}

impl<I> Lingering<I> {
    pub fn new(inner: I, linger: Arc<LingerOnClose>) -> Self {
        Lingering {
            inner,
            linger,
            state: State::Open,
        }
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> Lingering<I> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let State::Draining {
            deadline,
            started,
            discarded,
        } = &mut self.state
        else {
            return Poll::Ready(Ok(()));
        };
        let mut scratch = [0u8; 16 * 1024];
        let stop = loop {
            if deadline.as_mut().poll(cx).is_ready() {
                break Stop::Time;
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => break Stop::Reset,
                Poll::Ready(Ok(())) if buf.filled().is_empty() => break Stop::ClientDone,
                Poll::Ready(Ok(())) => {
                    *discarded += buf.filled().len() as u64;
                    if *discarded >= DRAIN_LIMIT {
                        break Stop::Limit;
                    }
                }
            }
        };
        log_drained(
            &self.linger.out,
            self.linger.peer,
            "HTTP/1.1",
            *discarded,
            *started,
            stop,
        );
        self.state = State::Closed;
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Lingering<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match this.state {
            State::Open => {
                std::task::ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
                if !this.linger.is_armed() {
                    this.state = State::Closed;
                    return Poll::Ready(Ok(()));
                }
                this.state = State::Draining {
                    deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
                    started: Instant::now(),
                    discarded: 0,
                };
                this.poll_drain(cx)
            }
            State::Draining { .. } => this.poll_drain(cx),
            State::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Reads and drops the rest of an HTTP/2 request body after its stream was
/// answered; dropping the body at the end makes h2 reset the stream with
/// `NO_ERROR` if the client has not ended it.
pub async fn drain_stream(mut body: Incoming, peer: SocketAddr, out: Printer) {
    let started = Instant::now();
    let mut discarded: u64 = 0;
    let drain = async {
        loop {
            match body.frame().await {
                None => return Stop::ClientDone,
                Some(Err(_)) => return Stop::Reset,
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        discarded += data.len() as u64;
                        if discarded >= DRAIN_LIMIT {
                            return Stop::Limit;
                        }
                    }
                }
            }
        }
    };
    let stop = tokio::time::timeout(LINGER_TIME, drain)
        .await
        .unwrap_or(Stop::Time);
    drop(body);
    log_drained(&out, peer, "HTTP/2 stream", discarded, started, stop);
}
