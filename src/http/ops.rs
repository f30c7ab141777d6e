//! Operations routes: `/healthz`, `/readyz`, `/metrics` (also on the metrics listener).

use std::sync::atomic::Ordering;

use actix_web::http::header;
use actix_web::{web, HttpResponse, ResponseError};

use crate::app::AppState;
use crate::error::Error;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).body("ok")
}

pub async fn readyz(st: web::Data<AppState>) -> HttpResponse {
    let problem = if st.shutting_down.load(Ordering::Relaxed) {
        Some("shutting down".to_string())
    } else if st.workers.saturated() {
        Some("workers saturated".to_string())
    } else {
        st.sources.ready().await.err()
    };
    let mut body = match &problem {
        None => serde_json::json!({"ready": true}),
        Some(p) => serde_json::json!({"ready": false, "reason": p}),
    };
    // S3 chain credentials that fail to refresh but are still valid: ready, with a warning.
    if let Some(w) = st.storage.warning() {
        body["warning"] = serde_json::Value::String(w);
    }
    let mut resp = if problem.is_none() { HttpResponse::Ok() } else { HttpResponse::ServiceUnavailable() };
    resp.insert_header((header::CACHE_CONTROL, "no-store")).json(body)
}

/// `/metrics` on the public listener: a 404 unless `IMAGO_PUBLIC_METRICS` opts in (and no
/// `IMAGO_METRICS_BIND` listener serves them); metrics belong on the metrics listener.
pub async fn metrics(st: web::Data<AppState>) -> HttpResponse {
    if !st.cfg.raw.public_metrics || st.cfg.analytics.metrics_bind.is_some() {
        return Error::NotFound.error_response();
    }
    metrics_response(&st)
}

/// `/metrics` on the metrics listener.
pub async fn metrics_only(st: web::Data<AppState>) -> HttpResponse {
    metrics_response(&st)
}

/// The Prometheus text exposition.
fn metrics_response(st: &AppState) -> HttpResponse {
    st.metrics.queue_depth.set(st.workers.stats.waiting.load(Ordering::Relaxed) as i64);
    st.metrics.in_flight.set(st.workers.stats.in_flight.load(Ordering::Relaxed) as i64);
    if let Some(c) = st.storage.s3().and_then(|s| s.credentials().status()) {
        st.metrics.s3_credentials(c.source, c.refreshes, c.failures, c.expires);
    }
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(st.metrics.render())
}
