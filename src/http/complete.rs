//! `POST /v1/uploads/{id}/complete` ([`crate::upload::complete`]): the client (holding the
//! ticket, whose `id` carries a MAC) or the app (with an API key) asks imago to check an upload.
//! `200` with the facts when it is ready; `422` with the check's code the first time it is
//! rejected (the object is removed), `409 upload-rejected` after; `404 not-found` when nothing
//! was uploaded; `409 upload-pending-expired` past `IMAGO_UPLOAD_PENDING_TTL_SECS` with
//! `IMAGO_UPLOAD_REQUIRE_COMPLETE`. An `Authorization` header, when sent, must be a key of the
//! upload's tenant with the `upload` scope.

use std::time::Instant;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::app::AppState;
use crate::config::Scope;
use crate::error::Error;

/// Registers the completion route (before the embedded PUT target's `{key:.+}` pattern).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/uploads/{id}/complete")
            .route(web::post().to(complete))
            .route(web::method(actix_web::http::Method::OPTIONS).to(preflight))
            .default_service(web::to(|| async { Error::MethodNotAllowed.error_response() })),
    );
}

fn cors(st: &AppState, req: &HttpRequest, resp: &mut HttpResponse) {
    let Some(origin) = req.headers().get(header::ORIGIN) else { return };
    let allowed = &st.uploads.settings.cors_origins;
    let value = if allowed.iter().any(|o| o == "*") {
        header::HeaderValue::from_static("*")
    } else if allowed.iter().any(|a| a.as_bytes() == origin.as_bytes()) {
        origin.clone()
    } else {
        return;
    };
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    h.append(header::VARY, header::HeaderValue::from_static("Origin"));
}

async fn preflight(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    let mut resp = HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "authorization, content-type"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "3600"))
        .finish();
    cors(&st, &req, &mut resp);
    resp
}

async fn complete(req: HttpRequest, path: web::Path<String>, st: web::Data<AppState>) -> HttpResponse {
    let start = Instant::now();
    let up = &st.uploads;
    let result = async {
        let key = up.key_of_id(&path)?;
        if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
            let caller = up.authorize(auth.to_str().ok(), Scope::Upload)?;
            up.owned_key(&caller, &key)?;
        }
        up.complete_key(&key).await
    }
    .await;
    let mut resp = match result {
        Ok(c) => HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(c),
        Err(e) => {
            st.metrics.upload_refusals.with_label_values(&[e.code()]).inc();
            Error::Upload(e).error_response()
        }
    };
    cors(&st, &req, &mut resp);
    st.metrics.http_requests.with_label_values(&["upload_complete", resp.status().as_str()]).inc();
    st.metrics.request_seconds.with_label_values(&["upload_complete"]).observe(start.elapsed().as_secs_f64());
    resp
}
