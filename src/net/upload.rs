//! The request body of an HTTP/1.1 exchange, held back behind
//! `Expect: 100-continue` when it is large.
//!
//! A server may refuse a request on its headers alone (401, 403, 413) and
//! answer before the body arrives. A client that writes a large body blindly
//! can then run into the server's close (a reset: "Broken pipe") before it
//! reads the answer, and reports a transport failure instead of the status.
//! As curl does, a body of [`EXPECT_THRESHOLD`] bytes or more is announced with
//! `Expect: 100-continue` and sent only once the server says `100 Continue`,
//! or after [`EXPECT_WAIT`] without any answer (servers that ignore the header).
//! A final answer that comes first is read as usual and the body is never sent.
//! HTTP/2 needs none of this: the server's answer ends the stream and flow
//! control bounds what is sent meanwhile.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use http::header::EXPECT;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;

/// Bodies at least this large wait for `100 Continue` (curl's threshold too).
pub const EXPECT_THRESHOLD: usize = 1024 * 1024;

/// How long a held body waits for `100 Continue` before it is sent anyway.
pub const EXPECT_WAIT: Duration = Duration::from_secs(1);

/// A whole request body, sent in one frame, perhaps after a wait.
pub struct RequestBody {
    data: Option<Bytes>,
    gate: Option<Gate>,
}

struct Gate {
    continued: oneshot::Receiver<()>,
    /// Started when hyper first asks for the body (the head is on its way).
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl RequestBody {
    /// A body sent as soon as hyper asks for it.
    pub fn ready(data: Bytes) -> Self {
        RequestBody {
            data: (!data.is_empty()).then_some(data),
            gate: None,
        }
    }

    /// The body of an HTTP/1.1 request: a large one is held behind
    /// `Expect: 100-continue` (added to `request`'s headers unless the caller
    /// set an `Expect` header of its own).
    pub fn expecting(request: &mut http::Request<()>, data: Bytes) -> Self {
        if data.len() < EXPECT_THRESHOLD || request.headers().contains_key(EXPECT) {
            return RequestBody::ready(data);
        }
        request
            .headers_mut()
            .insert(EXPECT, HeaderValue::from_static("100-continue"));
        let (tx, continued) = oneshot::channel();
        let tx = Mutex::new(Some(tx));
        hyper::ext::on_informational(request, move |answer| {
            if answer.status() == http::StatusCode::CONTINUE
                && let Some(tx) = tx.lock().unwrap_or_else(|p| p.into_inner()).take()
            {
                let _ = tx.send(());
            }
        });
        RequestBody {
            data: Some(data),
            gate: Some(Gate {
                continued,
                wait: None,
            }),
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(gate) = &mut self.gate {
            // A dropped sender (the request is gone) also ends the wait.
            let continued = Pin::new(&mut gate.continued).poll(cx).is_ready();
            let wait = gate
                .wait
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(EXPECT_WAIT)));
            if !continued && wait.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.gate = None;
        }
        Poll::Ready(self.data.take().map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_large_bodies_expect_continue() {
        let mut small = http::Request::new(());
        let body = RequestBody::expecting(&mut small, Bytes::from(vec![b'x'; 10]));
        assert!(body.gate.is_none());
        assert!(!small.headers().contains_key(EXPECT));
        assert_eq!(body.size_hint().exact(), Some(10));

        let mut large = http::Request::new(());
        let body = RequestBody::expecting(&mut large, Bytes::from(vec![b'x'; EXPECT_THRESHOLD]));
        assert!(body.gate.is_some());
        assert_eq!(large.headers()[EXPECT], "100-continue");
        assert_eq!(body.size_hint().exact(), Some(EXPECT_THRESHOLD as u64));

        // The caller's own Expect header (even an empty one, as with curl's `-H 'Expect:'`) wins.
        let mut own = http::Request::new(());
        own.headers_mut()
            .insert(EXPECT, HeaderValue::from_static(""));
        let body = RequestBody::expecting(&mut own, Bytes::from(vec![b'x'; EXPECT_THRESHOLD]));
        assert!(body.gate.is_none());
    }
}
