//! `GET /v1/analytics` (JSON) and `GET /v1/analytics/report` (HTML), behind an API key
//! (`Authorization: Bearer`, one of `IMAGO_API_KEYS`, compared in constant time).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;

use crate::analytics::report::{self, Report};
use crate::analytics::{html, Store};
use crate::app::AppState;
use crate::auth::Refused;
use crate::config::Scope;
use crate::error::Error;
use crate::upload::UploadError;

/// Registers the routes (before the image catch-all).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/analytics")
            .route(web::get().to(json_report))
            .route(web::head().to(json_report))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/analytics/report")
            .route(web::get().to(html_report))
            .route(web::head().to(html_report))
            .default_service(web::to(method_not_allowed)),
    );
}

async fn method_not_allowed() -> HttpResponse {
    Error::MethodNotAllowed.error_response()
}

#[derive(Deserialize)]
struct Query {
    from: Option<String>,
    to: Option<String>,
}

fn unauthorized(why: &'static str) -> HttpResponse {
    let mut r = Error::Unauthorized(why).error_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    r
}

async fn build(req: &HttpRequest, st: &web::Data<AppState>) -> Result<Report, HttpResponse> {
    let auth = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let caller = match st.api_keys.caller(auth) {
        Ok(c) => c,
        Err(Refused::NoKeys) => return Err(unauthorized(Refused::NoKeys.message())),
        // One answer for a missing and a wrong key (as before: a report says nothing of which).
        Err(_) => return Err(unauthorized(Refused::Missing.message())),
    };
    if !caller.may(Scope::Analytics) {
        return Err(Error::Upload(UploadError::ScopeMissing(Scope::Analytics.name())).error_response());
    }
    // A tenant's key sees the events of its own uploads only (the event's `source` and `key`
    // name the object); an admin key sees every event.
    let filter: Option<report::Filter> = (!caller.admin()).then(|| {
        let st = st.clone();
        let tenant = caller.tenant.clone();
        std::sync::Arc::new(move |e: &crate::analytics::Event| {
            st.uploads.event_of(&tenant, e.source.as_deref(), e.key.as_deref())
        }) as report::Filter
    });
    let settings = &st.cfg.analytics;
    // Parsed here rather than by an extractor, so that a malformed query (`from=a&from=b`) gets
    // the same JSON error as a bad time.
    let q = web::Query::<Query>::from_query(req.query_string())
        .map_err(|e| Error::InvalidParameter(e.to_string()).error_response())?;
    let range = report::range(q.from.as_deref(), q.to.as_deref(), jiff::Timestamp::now())
        .map_err(|e| Error::InvalidParameter(e).error_response())?;
    let days = range.to.duration_since(range.from).as_secs() as f64 / 86_400.0;
    if days > settings.report_max_days as f64 {
        return Err(Error::InvalidParameter(format!(
            "the range is {days:.1} days; at most {} (IMAGO_ANALYTICS_REPORT_MAX_DAYS)",
            settings.report_max_days
        ))
        .error_response());
    }
    let store = Store::new(&st.cfg, &st.storage).map_err(|e| Error::Internal(e).error_response())?;
    report::build(&store, range, filter).await.map_err(|e| {
        tracing::warn!(error = %e, "analytics report failed");
        crate::error::json_response(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "analytics-unavailable",
            "the analytics store cannot be read",
            None,
        )
    })
}

async fn json_report(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    match build(&req, &st).await {
        Ok(r) => HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(r),
        Err(resp) => resp,
    }
}

async fn html_report(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    match build(&req, &st).await {
        Ok(r) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::CONTENT_SECURITY_POLICY, html::CSP))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .body(html::render(&r)),
        Err(resp) => resp,
    }
}
