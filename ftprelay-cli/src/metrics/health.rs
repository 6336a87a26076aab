//! The HTTP side of `--metrics`: `/metrics`, `/healthz` and `/readyz`, on a
//! thread of its own whatever the relay's runtime (a scrape never waits for
//! the relay's executor, nor slows it), served by hyper's HTTP/1 server.
//!
//! Bounded: a few connections at once (more are closed at once), one
//! request each, its head at most hyper's smallest buffer (8 KiB) and read
//! within [`HEAD_TIMEOUT`], the whole exchange within [`EXCHANGE_TIMEOUT`].

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::Metrics;
use crate::error::CliError;

/// Connections served at once; more are closed unanswered.
const MAX_CONNECTIONS: usize = 16;
/// How long a request's head may take to arrive.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection may last, its answer written.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// hyper's smallest read buffer: a request head larger is refused (431).
const MAX_HEAD: usize = 8192;
/// How long to wait before accepting again after accept failed (out of
/// file descriptors, say): trying again at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Binds `addr` (now: an address in use is the command's one-line error),
/// then serves `metrics` there on a thread of its own until the process
/// exits. Returns the address bound (its port, for port 0).
pub(crate) fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<SocketAddr, CliError> {
    let failed = |e: std::io::Error| CliError::Runtime(format!("--metrics {addr}: {e}"));
    let listener = TcpListener::bind(addr).map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    listener.set_nonblocking(true).map_err(failed)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(failed)?;
    std::thread::Builder::new()
        .name("ftprelay-metrics".to_owned())
        .spawn(move || runtime.block_on(accept_loop(listener, metrics)))
        .map_err(failed)?;
    Ok(bound)
}

async fn accept_loop(listener: TcpListener, metrics: Arc<Metrics>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "metrics: cannot listen");
            return;
        }
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "metrics: accepting a connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("metrics: too many connections; one closed");
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let answer = answer(&metrics, &request);
                async move { Ok::<_, Infallible>(answer) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, connection).await;
            drop(slot);
        });
    }
}

/// The answer to `request`: the body is never read (no endpoint takes one).
fn answer(metrics: &Metrics, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match request.uri().path() {
        "/metrics" => {
            let mut response = Response::new(Full::new(Bytes::from(metrics.encode())));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                ),
            );
            response
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match metrics.not_ready() {
            None => text(StatusCode::OK, "ready\n"),
            Some(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("not ready: {why}\n"),
            ),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
