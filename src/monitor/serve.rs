//! The exporter's HTTP side (hyper): `/metrics` answers the last cycle's
//! text, `/healthz` says the exporter runs. A scrape never starts a probe.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use super::Published;
use super::metrics::{CONTENT_TYPE, TEXT_CONTENT_TYPE, prometheus_text};

fn reply(status: StatusCode, content_type: &str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn answer(req: &Request<Incoming>, published: &Published) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"only GET and HEAD\n"),
        );
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let text = "text/plain; charset=utf-8";
    match req.uri().path() {
        "/metrics" => {
            // Prometheus asks for OpenMetrics; curl and older scrapers get the 0.0.4 text.
            let openmetrics = req
                .headers()
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains("application/openmetrics-text"));
            let body = published.text();
            if openmetrics {
                reply(
                    StatusCode::OK,
                    CONTENT_TYPE,
                    Bytes::from(body.as_bytes().to_vec()),
                )
            } else {
                reply(
                    StatusCode::OK,
                    TEXT_CONTENT_TYPE,
                    Bytes::from(prometheus_text(&body)),
                )
            }
        }
        "/healthz" => reply(
            StatusCode::OK,
            text,
            Bytes::from(format!("ok: {} probe cycles done\n", published.cycles())),
        ),
        "/" => reply(
            StatusCode::OK,
            text,
            Bytes::from_static(b"connctl monitor: /metrics (Prometheus), /healthz\n"),
        ),
        _ => reply(
            StatusCode::NOT_FOUND,
            text,
            Bytes::from_static(b"not found: try /metrics or /healthz\n"),
        ),
    }
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, published: Arc<Published>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            // Out of file descriptors, say: wait instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let published = published.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let response = answer(&req, &published);
                async move { Ok::<_, Infallible>(response) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10));
            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}
