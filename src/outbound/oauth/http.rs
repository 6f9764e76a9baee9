//! The `oauth2` crate's HTTP client, over connctl's own transport: token
//! requests keep the route (MID server, CA bundles, client certificate), the
//! timeout and the stage-by-stage diagnosis of every other request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use bytes::Bytes;
use http::StatusCode;

use crate::error::{Error, Result};
use crate::net::Trace;
use crate::net::transport::{self, HttpRequest, Route};
use crate::secret::Secret;

/// connctl's error, as the `oauth2` crate wants its client errors typed.
#[derive(Debug)]
pub struct TransportError(pub Error);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for TransportError {}

/// Form parameters made anew for each request (a `client_assertion`).
type FreshParams<'a> = Box<dyn Fn() -> Result<Vec<(String, Secret)>> + Send + Sync + 'a>;

/// One authorization server reached along one route. Redirects are never
/// followed (the transport does not follow them); answers are bounded.
pub struct Client<'a> {
    route: &'a Route,
    /// The endpoint as messages name it.
    endpoint: String,
    /// The status of the last answer: the crate keeps only the body.
    status: Mutex<Option<StatusCode>>,
    /// Added to the form of every request, made anew each time.
    fresh: Option<FreshParams<'a>>,
    /// The values `fresh` made, for scrubbing an answer that echoes them.
    issued: Mutex<Vec<Secret>>,
}

impl<'a> Client<'a> {
    pub fn new(route: &'a Route, endpoint: &str) -> Client<'a> {
        Client {
            route,
            endpoint: endpoint.to_string(),
            status: Mutex::new(None),
            fresh: None,
            issued: Mutex::new(Vec::new()),
        }
    }

    /// Adds `params()` to the form of each request this client sends, made
    /// anew every time. The device flow's polls are one request of the
    /// crate's sent again and again: a private_key_jwt `client_assertion`
    /// must not be (its `jti` is single-use, RFC 7523 §3).
    pub fn with_fresh_params(
        mut self,
        params: impl Fn() -> Result<Vec<(String, Secret)>> + Send + Sync + 'a,
    ) -> Client<'a> {
        self.fresh = Some(Box::new(params));
        self
    }

    /// Every value [`Client::with_fresh_params`] has put on the wire.
    pub fn issued(&self) -> Vec<Secret> {
        self.issued.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn last_status(&self) -> Option<StatusCode> {
        self.status.lock().ok().and_then(|s| *s)
    }

    /// One exchange: the crate's request through our transport, our response
    /// rebuilt as the crate's.
    pub async fn exchange(
        &self,
        request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, TransportError> {
        let (parts, mut body) = request.into_parts();
        if let Some(fresh) = &self.fresh {
            let params = fresh().map_err(TransportError)?;
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in &params {
                form.append_pair(name, value.expose());
            }
            let extra = form.finish();
            if !extra.is_empty() {
                if !body.is_empty() {
                    body.push(b'&');
                }
                body.extend_from_slice(extra.as_bytes());
            }
            if let Ok(mut issued) = self.issued.lock() {
                issued.extend(params.into_iter().map(|(_, v)| v));
            }
        }
        let url = url::Url::parse(&parts.uri.to_string()).map_err(|e| {
            TransportError(
                Error::invalid(format!("the URL {} is invalid", self.endpoint)).with_cause(e),
            )
        })?;
        let req = HttpRequest {
            url,
            method: parts.method,
            headers: parts.headers,
            body: Bytes::from(body),
        };
        let mut trace = Trace::default();
        let answer = transport::execute(&req, self.route, &mut trace)
            .await
            .map_err(|e| {
                let stage = trace
                    .failed_stage()
                    .map(|s| s.as_str())
                    .unwrap_or("request");
                TransportError(Error {
                    message: format!("token endpoint {} ({stage}): {}", self.endpoint, e.message),
                    ..e
                })
            })?;
        if let Ok(mut status) = self.status.lock() {
            *status = Some(answer.status);
        }
        let mut response = http::Response::new(answer.body.to_vec());
        *response.status_mut() = answer.status;
        *response.headers_mut() = answer.headers;
        Ok(response)
    }
}

impl<'c> oauth2::AsyncHttpClient<'c> for Client<'_> {
    type Error = TransportError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, TransportError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(self.exchange(request))
    }
}
