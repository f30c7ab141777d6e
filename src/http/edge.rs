//! The connection edge: every listener is served through [`serve`], which wraps each accepted
//! connection in [`JsonErrors`].
//!
//! actix-http answers a request it cannot parse (a request line or path that is not valid HTTP or
//! not UTF-8, a header section over its buffer, a head that does not arrive within the client
//! request timeout) by itself, before any service or middleware runs, with a bare status and no
//! body, and then closes the connection. [`JsonErrors`] recognises exactly those answers (a
//! status of 400, 408 or 431 with `content-length: 0` and only the headers actix-http writes for
//! them, as the last bytes before the close) and writes imago's JSON error instead. Everything
//! else passes through untouched; every response of the app carries `x-request-id`, which those
//! answers never do.

use std::io;
use std::net::TcpListener;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use actix_http::{Request, Response};
use actix_service::{IntoServiceFactory, ServiceFactory};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Server};
use actix_web::ResponseError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::Error;

/// If `buf` ends with a bare error head of actix-http's, the bytes to write instead: everything
/// before it, then the JSON error (same status, same `date`).
fn rewrite(buf: &[u8]) -> Option<Vec<u8>> {
    if !buf.ends_with(b"\r\n\r\n") || buf.len() > 64 * 1024 {
        return None;
    }
    let start = buf.windows(9).rposition(|w| w == b"HTTP/1.1 " || w == b"HTTP/1.0 ")?;
    let head = std::str::from_utf8(&buf[start..buf.len() - 4]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.get(9..12)?.parse().ok()?;
    let error = Error::from_bare_status(status)?;
    let reason = error.status_code().canonical_reason().unwrap_or("");
    let mut date = None;
    let mut empty = false;
    for line in lines {
        let (name, value) = line.split_once(": ")?;
        match name.to_ascii_lowercase().as_str() {
            "content-length" if value == "0" => empty = true,
            "connection" if value == "close" => {}
            "date" => date = Some(value),
            _ => return None,
        }
    }
    if !empty {
        return None;
    }
    let body = serde_json::json!({ "code": error.code(), "message": error.public_message() }).to_string();
    let mut out = buf[..start].to_vec();
    out.extend_from_slice(
        format!(
            "{} {status} {reason}\r\ncontent-length: {}\r\nconnection: close\r\ncontent-type: application/json\r\n\
             cache-control: no-store\r\nx-content-type-options: nosniff\r\n",
            &status_line[..8],
            body.len()
        )
        .as_bytes(),
    );
    if let Some(d) = date {
        out.extend_from_slice(format!("date: {d}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    Some(out)
}

/// A connection whose framework-made bare error answers become JSON errors (see the module).
pub struct JsonErrors<IO> {
    io: IO,
    /// Rewritten bytes still to be written (already reported as written to the caller).
    pending: Vec<u8>,
    written: usize,
}

impl<IO> JsonErrors<IO> {
    pub fn new(io: IO) -> Self {
        JsonErrors { io, pending: Vec::new(), written: 0 }
    }
}

impl<IO: AsyncWrite + Unpin> JsonErrors<IO> {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for JsonErrors<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for JsonErrors<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(out) = rewrite(buf) {
            self.pending = out;
            // Reported as written; the rest goes out on the next write, flush or shutdown.
            if let Poll::Ready(Err(e)) = self.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// How a listener is served.
pub struct Settings {
    pub workers: usize,
    pub shutdown_timeout: u64,
    /// Handle SIGTERM/SIGINT itself (the main listener) or be stopped by its owner.
    pub signals: bool,
}

/// Serves `app` on `listener` like `actix_web::HttpServer` does (same timeouts, graceful
/// shutdown of idle keep-alive connections), with every connection wrapped in [`JsonErrors`].
pub fn serve<F, I, S, B>(listener: TcpListener, settings: Settings, app: F) -> io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as actix_web::dev::Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    use actix_service::ServiceFactoryExt;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let mut builder =
        actix_server::Server::build().workers(settings.workers).shutdown_timeout(settings.shutdown_timeout);
    if !settings.signals {
        builder = builder.disable_signals();
    }
    let graceful = builder.graceful_shutdown_signal();
    let server = builder
        .listen(format!("imago-{addr}"), listener, move || {
            let graceful = graceful.clone();
            let factory = app().into_factory().map_err(|e| {
                let e: actix_web::Error = e.into();
                e.error_response()
            });
            let http = actix_http::HttpService::build()
                .client_request_timeout(Duration::from_secs(5))
                .client_disconnect_timeout(Duration::from_secs(1))
                .h1_allow_half_closed(true)
                .local_addr(addr)
                .graceful_shutdown_signal(move || {
                    let g = graceful.clone();
                    async move { g.notified().await }
                })
                .finish(actix_service::map_config(factory, |_| AppConfig::default()));
            actix_service::fn_service(|io: actix_rt::net::TcpStream| {
                let peer = io.peer_addr().ok();
                std::future::ready(Ok::<_, actix_http::error::DispatchError>((
                    JsonErrors::new(io),
                    actix_http::Protocol::Http1,
                    peer,
                )))
            })
            .and_then(http)
        })?
        .run();
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_bare_framework_errors() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: Thu, 03 Dec 2026 05:56:39 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(bare).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(out.contains("content-type: application/json") && out.contains("date: Thu, 03 Dec 2026"), "{out}");
        let body: serde_json::Value = serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["code"], "malformed-request");
        // After a whole response on the same connection.
        let mut two = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-request-id: 1\r\n\r\nok".to_vec();
        two.extend_from_slice(bare);
        let out = rewrite(&two).unwrap();
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-request-id: 1\r\n\r\nok"));
        // The app's own answers are left alone.
        for keep in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nx-request-id: 1\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 10\r\nconnection: close\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"some body bytes\r\n\r\n",
        ] {
            assert!(rewrite(keep).is_none(), "{}", String::from_utf8_lossy(keep));
        }
    }
}
