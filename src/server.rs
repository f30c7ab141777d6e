//! The HTTP server: routes, shared state and the image request flow
//! (url → signature → options → negotiate → cache → source → transform → respond → metrics).

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer, ResponseError};
use tracing::{info, info_span, warn, Instrument};

use crate::cache::{self, Outcome, Variant, VariantCache};
use crate::config::Config;
use crate::error::Error;
use crate::metrics::{dpr_bucket, width_bucket, Metrics};
use crate::negotiate::{self, Hints, NegotiateSettings};
use crate::options::{self, FormatChoice, Presets};
use crate::respond::{self, RespondSettings};
use crate::source::{self, Sources};
use crate::transform::{EncodeSettings, RenderRequest, Workers};

/// Everything handlers share.
pub struct AppState {
    pub cfg: Arc<Config>,
    pub presets: Presets,
    pub sources: Sources,
    pub cache: VariantCache,
    pub source_cache: cache::SourceCache,
    /// Verified requests, remembered (see [`cache::RequestMemo`]).
    pub memo: cache::RequestMemo<Prepared>,
    pub workers: Workers,
    pub enc: Arc<EncodeSettings>,
    pub neg: NegotiateSettings,
    pub respond: RespondSettings,
    pub metrics: Metrics,
    pub shutting_down: AtomicBool,
    pub uploads: crate::upload::Uploads,
    /// The local root and the object store client (src/storage/), built once.
    pub storage: crate::storage::Storage,
    /// Request events, and the metrics listener (src/analytics/).
    pub analytics: crate::analytics::Analytics,
}

impl AppState {
    pub fn new(cfg: Config) -> Result<AppState, String> {
        crate::vips::init(cfg.raw.vips_concurrency)?;
        let r = &cfg.raw;
        let enc = EncodeSettings::from_config(r);
        let metrics = Metrics::new();
        metrics.workers.set(cfg.workers as i64);
        let storage = crate::storage::Storage::new(&cfg)?;
        let sources = Sources::new(&cfg, storage.clone())?;
        let analytics = crate::analytics::Analytics::start(&cfg, &metrics, &storage)?;
        Ok(AppState {
            presets: Presets { map: r.presets.clone(), only: r.presets_only },
            sources,
            cache: VariantCache::new(r.cache_size_mb * 1024 * 1024, Duration::from_secs(r.cache_ttl_secs)),
            source_cache: cache::SourceCache::new(
                r.source_cache_mb * 1024 * 1024,
                Duration::from_secs(r.cache_ttl_secs.min(600)),
            ),
            memo: cache::RequestMemo::new(r.request_memo_entries),
            workers: Workers::new(
                cfg.workers,
                cfg.queue_size,
                Duration::from_millis(r.queue_timeout_ms),
                Duration::from_millis(r.transform_timeout_ms),
            )
            .with_memory_limit(r.memory_limit_mb * 1024 * 1024),
            enc: Arc::new(enc),
            neg: NegotiateSettings { max_dpr: r.max_dpr, ladder: cfg.width_ladder.clone(), ect: r.ect },
            respond: RespondSettings {
                cache_control: header::HeaderValue::from_str(&r.cache_control)
                    .map_err(|_| "IMAGO_CACHE_CONTROL: not a valid header value".to_string())?,
                debug_headers: r.debug_headers,
            },
            metrics,
            shutting_down: AtomicBool::new(false),
            uploads: crate::upload::Uploads::with_storage(&cfg, storage.clone())?,
            storage,
            analytics,
            cfg: Arc::new(cfg),
        })
    }

    /// After the HTTP drain: writes buffered analytics events and stops the metrics listener.
    pub async fn shutdown(&self) -> crate::analytics::Flushed {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.analytics.shutdown().await
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl crate::analytics::SubjectOf for (cache::MemoId, Prepared) {
    fn subject(&self) -> &crate::analytics::Subject {
        &self.1.subject
    }
}

/// `GET|HEAD /{signature}/{options…}/{source}`.
async fn image(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    let start = Instant::now();
    let span = info_span!("image", path = %req.uri().path(), status = tracing::field::Empty);
    let mut draft = crate::analytics::Draft::default();
    let resp = async {
        match image_flow(&req, &st, start, &mut draft).await {
            Ok(r) => r,
            Err(e) => {
                draft.error(e.code());
                if e.status_code().is_server_error() {
                    warn!(error = %e, code = e.code(), "image request failed");
                } else {
                    info!(error = %e, code = e.code(), "image request refused");
                }
                e.error_response()
            }
        }
    }
    .instrument(span.clone())
    .await;
    span.record("status", resp.status().as_u16());
    st.metrics.http_requests.with_label_values(&["image", resp.status().as_str()]).inc();
    st.metrics.request_seconds.with_label_values(&["image"]).observe(start.elapsed().as_secs_f64());
    st.analytics.emit(&req, &resp, start, draft);
    resp
}

/// What the front of the flow derived from a verified path and the request's header classes.
pub struct Prepared {
    src: source::SourceRef,
    /// What analytics record of this URL (events hold the memo entry: a hit copies nothing).
    subject: crate::analytics::Subject,
    neg: negotiate::Negotiated,
    key: cache::Key,
    etag: String,
    etag_value: header::HeaderValue,
    vary_value: Option<header::HeaderValue>,
}

/// url → signature → options → negotiate → cache key, for a request the memo has not seen.
fn prepare(
    req: &HttpRequest,
    accept: &str,
    hints: &Hints,
    st: &AppState,
    draft: &mut crate::analytics::Draft,
) -> Result<Prepared, Error> {
    let split = crate::url::split(req.uri().path())?;
    crate::signature::check(&split, &st.cfg.verifier, st.cfg.raw.allow_insecure)?;
    let opts = options::parse(&split.options, split.extension.as_deref(), &st.presets)?;
    // SPEC §8 order: signature, options, expiry, then the source.
    if opts.expires.is_some_and(|e| e <= unix_now()) {
        return Err(Error::Expired);
    }
    let src = source::parse(&split.source)?;
    let src_key: Arc<str> = src.key().into();
    if let Err(e) = st.sources.authorize(&src) {
        draft.subject = Some(Arc::new(crate::analytics::subject(src_key, src.kind(), None)));
        return Err(e.into());
    }
    let neg = negotiate::negotiate(opts, accept, hints, &st.neg);
    let subject = crate::analytics::subject(src_key, src.kind(), Some(&neg));
    let key = cache::key(&split.source, &neg);
    let etag = respond::etag(&key);
    let etag_value = header::HeaderValue::from_str(&etag).map_err(|e| Error::Internal(e.to_string()))?;
    let vary_value = neg.vary.header_value().and_then(|v| header::HeaderValue::from_str(&v).ok());
    Ok(Prepared { subject, src, neg, key, etag, etag_value, vary_value })
}

async fn image_flow(
    req: &HttpRequest,
    st: &AppState,
    start: Instant,
    draft: &mut crate::analytics::Draft,
) -> Result<HttpResponse, Error> {
    let path = req.uri().path();
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let hints = Hints::from_headers(req.headers());
    let class = negotiate::AcceptClass::from_accept(accept);
    let entry = match st.memo.get(path, class, &hints).await {
        Some(e) => e,
        None => {
            let p = prepare(req, accept, &hints, st, draft)?;
            st.memo.insert(cache::MemoId { path: path.into(), accept: class, hints }, p).await
        }
    };
    let r = serve(req, st, start, draft, &entry.1).await;
    if st.analytics.enabled() {
        draft.subject = Some(entry);
    }
    r
}

/// The rest of the flow for a prepared (or remembered) request.
async fn serve(
    req: &HttpRequest,
    st: &AppState,
    start: Instant,
    draft: &mut crate::analytics::Draft,
    p: &Prepared,
) -> Result<HttpResponse, Error> {
    let neg = &p.neg;
    // A remembered URL may have expired since.
    if neg.options.expires.is_some_and(|e| e <= unix_now()) {
        return Err(Error::Expired);
    }
    let headers =
        respond::CacheHeaders { etag: &p.etag_value, vary: p.vary_value.as_ref(), expires: neg.options.expires };
    if let Some(inm) = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        if respond::etag_matches(inm, &p.etag) {
            record_image(st, neg, None, Outcome::NotModified);
            draft.outcome(None, Outcome::NotModified);
            return Ok(respond::not_modified(&headers, &st.respond));
        }
    }
    if st.shutting_down.load(Ordering::Relaxed) {
        return Err(Error::ShuttingDown);
    }
    // Hits take the short path; the miss path (fetch, transform, coalescing) is boxed so its large
    // future is not part of every request's future (moving it cost more than the hit itself).
    let (variant, outcome) = match st.cache.get(&p.key).await {
        Some(v) => (v, Outcome::Hit),
        None => Box::pin(miss(st, p)).await?,
    };
    record_image(st, neg, Some(&variant), outcome);
    draft.outcome(Some(&variant), outcome);
    let fetch_ms = if outcome == Outcome::Miss { variant.fetch_ms } else { 0.0 };
    let total = start.elapsed().as_secs_f64() * 1000.0;
    Ok(respond::image(&variant, &headers, &st.respond, outcome, fetch_ms, total))
}

async fn miss(st: &AppState, p: &Prepared) -> Result<(Arc<Variant>, Outcome), Error> {
    let neg = &p.neg;
    let render_req = RenderRequest { options: neg.options.clone(), accept: neg.accept, save_data: neg.save_data };
    let make = make_variant(st, p.src.clone(), render_req);
    st.cache.get_or_make(p.key, make).await.map_err(|e| unshare(&e))
}

/// Errors come back shared from the coalescing cache; rebuild an owned one with the same status,
/// code and message.
fn unshare(e: &Arc<Error>) -> Error {
    match Arc::try_unwrap(e.clone()) {
        Ok(owned) => owned,
        Err(shared) => Error::Shared(shared),
    }
}

async fn make_variant(st: &AppState, src: source::SourceRef, req: RenderRequest) -> Result<Variant, Error> {
    let t = Instant::now();
    let fetch = async {
        let f = st.sources.fetch(&src).instrument(info_span!("fetch", kind = src.kind())).await?;
        st.metrics.fetches.inc();
        st.metrics.fetch_seconds.observe(t.elapsed().as_secs_f64());
        st.metrics.source_bytes.inc_by(f.bytes.len() as u64);
        Ok(f)
    };
    let (fetched, _) = st.source_cache.get_or_fetch(&src.key_string(), fetch).await.map_err(|e| unshare(&e))?;
    let fetch_s = t.elapsed().as_secs_f64();
    let enc = st.enc.clone();
    let bytes = fetched.bytes.clone();
    st.metrics.queue_depth.set(st.workers.stats.waiting.load(Ordering::Relaxed) as i64);
    let span = info_span!("transform");
    let job = move || {
        let _g = span.enter();
        crate::vips::render(&bytes, &req, &enc)
    };
    let rendered = match st.workers.run(job).await {
        Ok(r) => r,
        Err(rejected) => {
            if let Some(reason) = rejected.shed_reason() {
                st.metrics.shed.with_label_values(&[reason]).inc();
            }
            return Err(rejected.into());
        }
    };
    st.metrics.transforms.inc();
    st.metrics.transform_seconds.observe(rendered.decode_ms / 1000.0);
    st.metrics.encode_seconds.observe(rendered.encode_ms / 1000.0);
    Ok(Variant {
        bytes: rendered.bytes.into(),
        format: rendered.format,
        width: rendered.width,
        height: rendered.height,
        quality: rendered.quality,
        source_format: rendered.source.format,
        source_bytes: fetched.bytes.len() as u64,
        original: rendered.original,
        last_modified: fetched.last_modified.unwrap_or_else(SystemTime::now),
        fetch_ms: fetch_s * 1000.0,
        transform_ms: rendered.decode_ms,
        encode_ms: rendered.encode_ms,
        header_values: Default::default(),
    })
}

fn record_image(st: &AppState, neg: &negotiate::Negotiated, v: Option<&Variant>, outcome: Outcome) {
    let negotiated = matches!(neg.options.format, FormatChoice::Auto | FormatChoice::Unset);
    let (out_fmt, src_fmt) = v.map(|v| (v.format.name(), v.source_format)).unwrap_or(("none", "none"));
    st.metrics
        .image_responses
        .with_label_values(&[
            out_fmt,
            src_fmt,
            dpr_bucket(neg.options.dpr),
            width_bucket(neg.target_width),
            if neg.save_data { "true" } else { "false" },
            if negotiated { "true" } else { "false" },
            outcome.name(),
        ])
        .inc();
    if let Some(v) = v {
        st.metrics.bytes_served.inc_by(v.bytes.len() as u64);
        st.metrics.bytes_saved.inc_by(v.source_bytes.saturating_sub(v.bytes.len() as u64));
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).body("ok")
}

async fn readyz(st: web::Data<AppState>) -> HttpResponse {
    let problem = if st.shutting_down.load(Ordering::Relaxed) {
        Some("shutting down".to_string())
    } else if st.workers.saturated() {
        Some("workers saturated".to_string())
    } else {
        st.sources.ready().await.err()
    };
    match problem {
        None => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({"ready": true})),
        Some(p) => HttpResponse::ServiceUnavailable()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({"ready": false, "reason": p})),
    }
}

async fn metrics(st: web::Data<AppState>) -> HttpResponse {
    // With IMAGO_METRICS_BIND, /metrics is served on that listener only.
    if st.cfg.raw.metrics_bind.as_deref().is_some_and(|b| !b.trim().is_empty()) {
        return Error::NotFound.error_response();
    }
    metrics_response(&st)
}

/// The Prometheus text exposition (also served by the metrics listener).
pub(crate) fn metrics_response(st: &AppState) -> HttpResponse {
    st.metrics.queue_depth.set(st.workers.stats.waiting.load(Ordering::Relaxed) as i64);
    st.metrics.in_flight.set(st.workers.stats.in_flight.load(Ordering::Relaxed) as i64);
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(st.metrics.render())
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    if req.method() != actix_web::http::Method::GET && req.method() != actix_web::http::Method::HEAD {
        return Error::MethodNotAllowed.error_response();
    }
    Error::NotFound.error_response()
}

/// Registers every route on an app.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        // The API's patterns are regular expressions: only paths under /v1/ try them, so image
        // paths (the app's default service) never run a regex.
        .service(
            web::scope("")
                .guard(actix_web::guard::fn_guard(|ctx| ctx.head().uri.path().starts_with("/v1/")))
                .configure(crate::upload::handlers::routes)
                .configure(crate::analytics::handlers::routes)
                .default_service(web::to(image_or_not_allowed)),
        );
}

/// Everything that is not a named route is an image path. It is the app's default service rather
/// than a `/{tail:.*}` pattern so no regex runs on the hot path.
async fn image_or_not_allowed(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    if req.method() == actix_web::http::Method::GET || req.method() == actix_web::http::Method::HEAD {
        image(req, st).await
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
        cfg.raw.public_url = Some(format!("http://{addr}"));
    }
    let metrics_listener = crate::telemetry::metrics_listener(&cfg)?;
    let state = web::Data::new(AppState::new(cfg)?);
    let metrics_addr = crate::telemetry::serve_metrics(metrics_listener, &state)?;
    let data = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(crate::telemetry::middleware))
            .app_data(data.clone())
            .app_data(web::PathConfig::default())
            .configure(routes)
            .default_service(web::to(image_or_not_allowed))
    })
    .workers(http_workers)
    .shutdown_timeout(25)
    .listen(listener)
    .map_err(|e| e.to_string())?
    .run();
    Ok(Running { addr, metrics_addr, state, server })
}
