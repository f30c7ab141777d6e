//! The middleware wrapped around every app (the main listener and the metrics listener): the
//! request id (`X-Request-Id`, [`crate::telemetry::request_id`]), the `request` span (continuing
//! an incoming W3C `traceparent` when traces are exported), and the request count of the routes
//! whose handlers do not count themselves in `imago_http_requests_total` (the route table:
//! [`super::route`]).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};
use tracing::{field, info_span, Instrument, Span};

use super::{quiet, route};
use crate::app::AppState;
use crate::error::Error;
use crate::telemetry::{otel_enabled, request_id, REQUEST_ID};

struct HeaderExtractor<'a>(&'a actix_web::http::header::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Continues the trace of an incoming `traceparent` (only when exporting).
fn set_remote_parent(span: &Span, headers: &actix_web::http::header::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if headers.get("traceparent").is_none() {
        return;
    }
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    let _ = span.set_parent(cx);
}

fn is_json<B>(res: &ServiceResponse<B>) -> bool {
    res.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

/// Request id, request span (with trace-context propagation) and route counting.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let start = Instant::now();
    let id = request_id(req.headers().get(REQUEST_ID));
    let (route, label) = route(req.path(), req.method());
    // Probes and scrapes get no span (they would drown the traces).
    let span = if quiet(req.path()) {
        Span::none()
    } else {
        let s = info_span!(
            "request",
            otel.kind = "server",
            otel.name = field::Empty,
            http.request.method = %req.method(),
            http.route = route,
            http.response.status_code = field::Empty,
            request_id = %id,
        );
        if otel_enabled() {
            s.record("otel.name", format!("{} {route}", req.method()));
            set_remote_parent(&s, req.headers());
        }
        s
    };
    let state = if label.is_some() { req.app_data::<web::Data<AppState>>().cloned() } else { None };
    let header = HeaderValue::from_str(id.as_str(&mut [0; ulid::ULID_LEN])).ok();
    req.extensions_mut().insert(id);
    let res = next.call(req).instrument(span.clone()).await?;
    // Errors actix-web raised itself (extractors, payloads) become imago's JSON errors.
    let mut res = match res.response().error() {
        Some(err) if !is_json(&res) => {
            let e = Error::from_framework(res.status(), err);
            let (req, _) = res.into_parts();
            ServiceResponse::new(req, e.error_response()).map_into_right_body()
        }
        _ => res.map_into_left_body(),
    };
    let status = res.status();
    if !span.is_disabled() {
        span.record("http.response.status_code", i64::from(status.as_u16()));
    }
    if let (Some(st), Some(label)) = (state, label) {
        st.metrics.http_requests.with_label_values(&[label, status.as_str()]).inc();
        st.metrics.request_seconds.with_label_values(&[label]).observe(start.elapsed().as_secs_f64());
    }
    if let Some(v) = header {
        res.headers_mut().insert(HeaderName::from_static(REQUEST_ID), v);
    }
    Ok(res)
}
