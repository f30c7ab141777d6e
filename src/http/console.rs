//! The web console at `/console` (issue #19): static assets embedded in the binary
//! (`include_str!` of `src/http/console/*`), served under a strict CSP, and `POST /v1/sign`,
//! the API route that signs image URLs for it server-side (the URL-signing key never reaches a
//! browser). On by default only with the embedded store on a loopback bind (`IMAGO_CONSOLE`,
//! [`crate::config::console_enabled`]); off, `/console…` answers 404 `not-found`.
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /console`, `GET /console/{asset}` | – (the page signs in with an API key) | the console |
//! | `POST /v1/sign` | API key (`read-info`) | signed URL, `srcset` and `sizes` for an image of the key's tenant |

use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt;

use crate::app::AppState;
use crate::config::Scope;
use crate::error::Error;
use crate::upload::sign::SignRequest;
use crate::upload::UploadError;

/// The console's path.
pub const CONSOLE: &str = "/console";
/// Largest `POST /v1/sign` body.
const MAX_SIGN_BODY: usize = 16 * 1024;

/// `(file name, content type, contents)` of every asset.
const ASSETS: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("console/index.html")),
    ("console.css", "text/css; charset=utf-8", include_str!("console/console.css")),
    ("console.js", "text/javascript; charset=utf-8", include_str!("console/console.js")),
    ("api.js", "text/javascript; charset=utf-8", include_str!("console/api.js")),
    ("views.js", "text/javascript; charset=utf-8", include_str!("console/views.js")),
    ("charts.js", "text/javascript; charset=utf-8", include_str!("console/charts.js")),
    ("thumbhash.js", "text/javascript; charset=utf-8", include_str!("console/thumbhash.js")),
    ("sdk-upload.js", "text/javascript; charset=utf-8", include_str!("console/sdk-upload.js")),
];

/// The console's assets by name (for tests and the bundle check).
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    ASSETS.iter().find(|(n, _, _)| *n == name).map(|(_, t, body)| (*t, *body))
}

/// Registers `/console` and `/console/{asset}` (outside `/v1/`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(CONSOLE, web::get().to(page))
        .route("/console/", web::get().to(page))
        .route("/console/{asset:.+}", web::get().to(asset_route));
}

/// Registers `POST /v1/sign` (inside the `/v1/` scope).
pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/sign")
            .route(web::post().to(sign))
            .default_service(web::to(|| async { Error::MethodNotAllowed.error_response() })),
    );
}

/// The Content-Security-Policy of every console response: scripts, styles and fonts from the
/// console's own origin only, no inline script or style element; images and requests to the
/// console's origin and to `IMAGO_PUBLIC_URL` (where signed URLs and upload targets point);
/// never framed.
pub fn csp(public_url: &str) -> String {
    let origin = url::Url::parse(public_url).ok().map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    let extra = if origin.is_empty() || origin == "null" { String::new() } else { format!(" {origin}") };
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:{extra}; \
         connect-src 'self'{extra}; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

fn serve(st: &AppState, name: &str) -> HttpResponse {
    let Some((content_type, body)) = asset(name).filter(|_| st.cfg.console) else {
        return Error::NotFound.error_response();
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp(&st.uploads.settings.public_url)))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header(("cross-origin-opener-policy", "same-origin"))
        .body(body)
}

async fn page(st: web::Data<AppState>) -> HttpResponse {
    serve(&st, "index.html")
}

async fn asset_route(path: web::Path<String>, st: web::Data<AppState>) -> HttpResponse {
    serve(&st, &path)
}

/// `POST /v1/sign`: `{key, options?, srcset?, sizes?}` → `{key, source, url, path, srcset,
/// candidates, sizes}` (SPEC §10 "Signed URLs"). Served whether or not the console is.
async fn sign(req: HttpRequest, mut body: web::Payload, st: web::Data<AppState>) -> HttpResponse {
    let start = Instant::now();
    let up = &st.uploads;
    let deadline = tokio::time::Instant::now() + up.settings.body_timeout;
    let result = async {
        let auth = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let caller = up.authorize(auth, Scope::ReadInfo)?;
        let secs = up.settings.body_timeout.as_secs();
        let mut bytes = Vec::new();
        while let Some(chunk) =
            tokio::time::timeout_at(deadline, body.next()).await.map_err(|_| UploadError::Timeout(secs))?
        {
            let chunk = chunk.map_err(|_| UploadError::Incomplete)?;
            if bytes.len() + chunk.len() > MAX_SIGN_BODY {
                return Err(UploadError::InvalidRequest(format!(
                    "the request body is larger than {MAX_SIGN_BODY} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let r: SignRequest = serde_json::from_slice(&bytes)
            .map_err(|e| UploadError::InvalidRequest(format!("the body must be a JSON sign request: {e}")))?;
        up.sign_urls(&caller, &r, &st.cfg.width_ladder)
    }
    .await;
    let resp = match result {
        Ok(s) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::VARY, "Authorization"))
            .json(s),
        Err(e) => {
            st.metrics.upload_refusals.with_label_values(&[e.code()]).inc();
            Error::Upload(e).error_response()
        }
    };
    st.metrics.request_seconds.with_label_values(&["sign"]).observe(start.elapsed().as_secs_f64());
    resp
}

/// Whether `origin` (a request's `Origin`) is the origin of `public_url`: the console's own
/// uploads are same-origin requests, allowed whatever `IMAGO_CORS_ORIGINS` says.
pub fn same_origin(origin: &HeaderValue, public_url: &str) -> bool {
    let Ok(o) = origin.to_str() else { return false };
    url::Url::parse(public_url).is_ok_and(|u| u.origin().ascii_serialization() == o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_is_strict() {
        let c = csp("http://127.0.0.1:8080");
        assert!(c.starts_with("default-src 'self'; script-src 'self'; style-src 'self';"), "{c}");
        assert!(c.contains("img-src 'self' blob: data: http://127.0.0.1:8080;"), "{c}");
        assert!(c.contains("frame-ancestors 'none'") && !c.contains("unsafe"), "{c}");
        assert!(csp("not a url").contains("img-src 'self' blob: data:;"));
    }

    #[test]
    fn every_asset_is_embedded() {
        for name in [
            "index.html",
            "console.css",
            "console.js",
            "api.js",
            "views.js",
            "charts.js",
            "thumbhash.js",
            "sdk-upload.js",
        ] {
            assert!(asset(name).is_some_and(|(_, b)| !b.is_empty()), "{name}");
        }
        assert!(asset("../Cargo.toml").is_none());
    }

    #[test]
    fn origins() {
        assert!(same_origin(&HeaderValue::from_static("http://127.0.0.1:8080"), "http://127.0.0.1:8080"));
        assert!(!same_origin(&HeaderValue::from_static("http://localhost:8080"), "http://127.0.0.1:8080"));
    }
}
