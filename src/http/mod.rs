//! The HTTP layer, the only place that knows routes: the route table ([`routes`], [`route`]), the
//! listeners ([`start`]), and the handlers: [`image`] (the image flow, [`crate::image`]),
//! [`uploads`] (tickets, embedded uploads, image info and deletion), [`analytics`] (reports),
//! [`openapi`] (the API's description), [`ops`] (health, readiness, metrics); [`middleware`] wraps them all.
//!
//! | route | handler | counted in `imago_http_requests_total` by |
//! |---|---|---|
//! | `GET /healthz`, `GET /readyz`, `GET /metrics` | [`ops`] | the middleware |
//! | `/v1/analytics`, `/v1/analytics/report` | [`analytics`] | the middleware |
//! | `GET /v1/openapi.json` | [`openapi`] | the middleware |
//! | `/v1/uploads…`, `/v1/images/…` | [`uploads`] | the handler |
//! | `/console…`, `POST /v1/sign` | [`console`] | the middleware |
//! | every other `GET`/`HEAD` path (the default service, no regex) | [`image::image`] | the handler |

pub mod analytics;
pub mod complete;
pub mod console;
pub mod edge;
pub mod image;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod uploads;

use std::net::{SocketAddr, TcpListener};

use actix_web::{web, App, HttpRequest, HttpResponse, ResponseError};

use crate::app::AppState;
use crate::config::Config;
use crate::error::Error;

/// Paths of the named routes (the API's own paths are registered by [`uploads`] and
/// [`analytics`] under the prefixes below).
const HEALTHZ: &str = "/healthz";
const READYZ: &str = "/readyz";
const METRICS: &str = "/metrics";
const ANALYTICS: &str = "/v1/analytics";
const ANALYTICS_REPORT: &str = "/v1/analytics/report";
const UPLOADS_PREFIX: &str = "/v1/uploads";
const IMAGES_PREFIX: &str = "/v1/images/";
/// The `http.route` of image paths.
const IMAGE_ROUTE: &str = "/{signature}/{options}/{source}";
/// The `imago_http_requests_total` label of image requests (counted by their handler).
const IMAGE_LABEL: &str = "image";

/// A request's route, from its path alone (no pattern matching on the hot path): the span's
/// `http.route`, and the `imago_http_requests_total` label when the middleware counts it
/// (`None`: its handler counts it itself).
pub(crate) fn route(path: &str, method: &actix_web::http::Method) -> (&'static str, Option<&'static str>) {
    use actix_web::http::Method;
    match path {
        HEALTHZ => (HEALTHZ, Some("healthz")),
        READYZ => (READYZ, Some("readyz")),
        METRICS => (METRICS, Some("metrics")),
        ANALYTICS => (ANALYTICS, Some("analytics")),
        ANALYTICS_REPORT => (ANALYTICS_REPORT, Some("analytics")),
        openapi::PATH => (openapi::PATH, Some("openapi")),
        p if p.starts_with("/v1/analytics/") => ("/v1/analytics/*", Some("other")),
        "/v1/sign" => ("/v1/sign", Some("sign")),
        p if p == console::CONSOLE || p.starts_with("/console/") => ("/console/*", Some("console")),
        // Upload and image-info handlers count themselves.
        p if p.starts_with(UPLOADS_PREFIX) => ("/v1/uploads/*", None),
        p if p.starts_with(IMAGES_PREFIX) => ("/v1/images/*", None),
        // Image paths (the app's default service): the image handler counts GET and HEAD;
        // anything else there is a 405.
        _ if method == Method::GET || method == Method::HEAD => (IMAGE_ROUTE, None),
        _ => (IMAGE_ROUTE, Some("other")),
    }
}

/// Probes and scrapes: no span (they would drown the traces).
fn quiet(path: &str) -> bool {
    matches!(path, HEALTHZ | READYZ | METRICS)
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    if req.method() != actix_web::http::Method::GET && req.method() != actix_web::http::Method::HEAD {
        return Error::MethodNotAllowed.error_response();
    }
    Error::NotFound.error_response()
}

/// Registers every route on an app.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(HEALTHZ, web::get().to(ops::healthz))
        .route(READYZ, web::get().to(ops::readyz))
        .route(METRICS, web::get().to(ops::metrics))
        .configure(console::routes)
        // The API's patterns are regular expressions: only paths under /v1/ try them, so image
        // paths (the app's default service) never run a regex.
        .service(
            web::scope("")
                .guard(actix_web::guard::fn_guard(|ctx| ctx.head().uri.path().starts_with("/v1/")))
                .route(openapi::PATH, web::get().to(openapi::document))
                .route(openapi::PATH, web::head().to(openapi::document))
                .configure(complete::routes)
                .configure(uploads::routes)
                .configure(analytics::routes)
                .configure(console::api_routes)
                .default_service(web::to(image_or_not_allowed)),
        );
}

/// Everything that is not a named route is an image path. It is the app's default service rather
/// than a `/{tail:.*}` pattern so no regex runs on the hot path.
async fn image_or_not_allowed(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    if req.method() == actix_web::http::Method::GET || req.method() == actix_web::http::Method::HEAD {
        image::image(req, st).await
    } else {
        not_found(req).await
    }
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    /// The metrics listener (`IMAGO_METRICS_BIND`), when configured.
    pub metrics_addr: Option<SocketAddr>,
    pub state: web::Data<AppState>,
    pub server: actix_web::dev::Server,
}

/// Binds and builds the server (not yet polled: await or spawn `server`).
pub fn start(cfg: Config) -> Result<Running, String> {
    let listener = TcpListener::bind(cfg.bind).map_err(|e| format!("cannot listen on {}: {e}", cfg.bind))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let http_workers = cfg.workers.max(1);
    // Upload tickets point at imago itself: without IMAGO_PUBLIC_URL, use the bound address.
    let mut cfg = cfg;
    if cfg.raw.public_url.is_none() {
        let url = format!("http://{addr}");
        cfg.uploads.public_url = url.clone();
        cfg.raw.public_url = Some(url);
    }
    let metrics_listener = metrics_listener(&cfg)?;
    let state = web::Data::new(AppState::new(cfg)?);
    let metrics_addr = serve_metrics(metrics_listener, &state)?;
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let weak = std::sync::Arc::downgrade(&state.clone().into_inner());
        rt.spawn(crate::upload::sweep::run_sweeper(weak.clone(), |st: &AppState| &st.uploads));
        rt.spawn(crate::upload::trash::run_purger(weak, |st: &AppState| &st.uploads));
    }
    let data = state.clone();
    let settings = edge::Settings { workers: http_workers, shutdown_timeout: 25, signals: true };
    let server = edge::serve(listener, settings, move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(middleware::middleware))
            .app_data(data.clone())
            .app_data(web::PathConfig::default())
            .configure(routes)
            .default_service(web::to(image_or_not_allowed))
    })
    .map_err(|e| e.to_string())?;
    Ok(Running { addr, metrics_addr, state, server })
}

/// Binds the metrics listener (`IMAGO_METRICS_BIND`) when configured.
fn metrics_listener(cfg: &Config) -> Result<Option<TcpListener>, String> {
    match cfg.analytics.metrics_bind {
        None => Ok(None),
        Some(a) => {
            TcpListener::bind(a).map(Some).map_err(|e| format!("cannot listen on {a} (IMAGO_METRICS_BIND): {e}"))
        }
    }
}

async fn metrics_not_found() -> HttpResponse {
    Error::NotFound.error_response()
}

/// Serves `GET /metrics` on its own small server (one worker, no signal handling of its own: it
/// is stopped last, by [`AppState::shutdown`], so Prometheus can scrape during the drain).
fn serve_metrics(listener: Option<TcpListener>, state: &web::Data<AppState>) -> Result<Option<SocketAddr>, String> {
    let Some(listener) = listener else { return Ok(None) };
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Handle::try_current().map_err(|_| "the metrics listener needs a Tokio runtime")?;
    let data = state.clone();
    let settings = edge::Settings { workers: 1, shutdown_timeout: 5, signals: false };
    let server = edge::serve(listener, settings, move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(middleware::middleware))
            .app_data(data.clone())
            .route(METRICS, web::get().to(ops::metrics_only))
            .default_service(web::to(metrics_not_found))
    })
    .map_err(|e| e.to_string())?;
    state.analytics.set_metrics_server(server.handle());
    rt.spawn(server);
    Ok(Some(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_from_paths() {
        use actix_web::http::Method;
        assert_eq!(route("/healthz", &Method::GET), ("/healthz", Some("healthz")));
        assert_eq!(route("/v1/analytics/report", &Method::GET), ("/v1/analytics/report", Some("analytics")));
        assert_eq!(route("/sig/w:100/plain/local:///a.jpg", &Method::GET), (IMAGE_ROUTE, None));
        assert_eq!(route("/sig/w:100/plain/local:///a.jpg", &Method::HEAD).1, None);
        assert_eq!(route("/sig/w:100/plain/local:///a.jpg", &Method::POST).1, Some("other"));
        assert_eq!(route("/v1/uploads", &Method::POST), ("/v1/uploads/*", None));
        assert_eq!(route("/v1/images/a.jpg/info", &Method::GET), ("/v1/images/*", None));
        assert_eq!(route("/v1/openapi.json", &Method::GET), ("/v1/openapi.json", Some("openapi")));
        assert_eq!(route("/v1/sign", &Method::POST), ("/v1/sign", Some("sign")));
        assert_eq!(route("/console", &Method::GET), ("/console/*", Some("console")));
        assert_eq!(route("/console/views.js", &Method::GET), ("/console/*", Some("console")));
        assert_eq!(route("/consolex", &Method::GET), (IMAGE_ROUTE, None));
    }
}
