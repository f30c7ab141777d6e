//! The image flow, one function per step:
//!
//! 1. [`prepare`] (a request the memo has not seen): [`crate::url`] split → [`crate::signature`]
//!    check → [`crate::options`] parse → expiry → [`crate::source`] parse and authorize →
//!    [`crate::negotiate`] (format, size, quality from `Accept` and Client Hints) → cache key,
//!    ETag and `Vary`;
//! 2. [`Flow::run`]: the request memo (hits skip step 1), then [`serve`];
//! 3. [`serve`]: expiry of a remembered URL, `If-None-Match` → 304, the variant cache;
//! 4. [`miss`]: coalesced through the variant cache into one [`make_variant`];
//! 5. [`make_variant`]: the source cache / fetch, then the transform on a worker.
//!
//! The flow borrows the services it needs ([`Flow`], built by [`crate::app::AppState::flow`]); it
//! knows no routes (the handler is `http::image`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::{HttpRequest, HttpResponse};
use tracing::{info_span, Instrument};

use crate::analytics::{Draft, Subject, SubjectOf};
use crate::cache::{self, Outcome, Variant, VariantCache};
use crate::config::Config;
use crate::error::Error;
use crate::metrics::{dpr_bucket, width_bucket, Metrics};
use crate::negotiate::{self, HintClass, HintHeader, Hints, NegotiateSettings};
use crate::options::{self, FormatChoice, Presets};
use crate::respond::{self, RespondSettings};
use crate::source::{self, Sources};
use crate::transform::{EncodeSettings, RenderRequest, Workers};

/// The services one image request uses, borrowed from the application state.
pub struct Flow<'a> {
    pub cfg: &'a Config,
    pub presets: &'a Presets,
    pub sources: &'a Sources,
    pub cache: &'a VariantCache,
    pub source_cache: &'a cache::SourceCache,
    pub memo: &'a cache::RequestMemo<Prepared>,
    pub workers: &'a Workers,
    pub enc: &'a Arc<EncodeSettings>,
    pub neg: &'a NegotiateSettings,
    pub respond: &'a RespondSettings,
    pub metrics: &'a Metrics,
    pub shutting_down: &'a AtomicBool,
    /// Whether analytics events are recorded (the draft then keeps the memo entry).
    pub analytics: bool,
    /// Upload lifecycle: an upload key is served only once `ready` ([`crate::upload::state`]).
    /// The tenant owning an upload key (for the `Surrogate-Key` / `Cache-Tag` of a variant).
    pub uploads: &'a crate::upload::Uploads,
    /// The watermark and the fallback image.
    pub aux: &'a crate::auxiliary::Auxiliary,
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl SubjectOf for (cache::MemoId, Prepared) {
    fn subject(&self) -> &Subject {
        &self.1.subject
    }
}

/// What the front of the flow derived from a verified path and the request's header classes.
pub struct Prepared {
    src: source::SourceRef,
    /// What analytics record of this URL (events hold the memo entry: a hit copies nothing).
    subject: Subject,
    neg: negotiate::Negotiated,
    key: cache::Key,
    etag: String,
    etag_value: header::HeaderValue,
    vary_value: Option<header::HeaderValue>,
    /// The image the variant is made from ([`cache::image_id`] of the source).
    image: cache::ImageId,
    /// `Surrogate-Key` and `Cache-Tag`: the image's tag and its tenant's.
    tags: respond::EdgeTags,
}

/// url → signature → options → negotiate → cache key, for a request the memo has not seen.
pub fn prepare(
    req: &HttpRequest,
    accept: &str,
    hints: &HintClass,
    f: &Flow<'_>,
    draft: &mut Draft,
) -> Result<Prepared, Error> {
    let split = crate::url::split_with(req.uri().path(), f.cfg.media.source_cipher.as_ref())?;
    crate::signature::check(&split, &f.cfg.verifier, f.cfg.raw.allow_insecure)?;
    let opts = options::parse(&split.options, split.extension.as_deref(), f.presets)?;
    // imgproxy refuses security options unless the server allows them (403).
    if let (false, Some(name)) = (f.cfg.raw.allow_security_options, opts.security.first_set()) {
        return Err(options::OptionError::SecurityDisabled(name.to_string()).into());
    }
    // SPEC §8 order: signature, options, expiry, then the source.
    if opts.expires.is_some_and(|e| e <= unix_now()) {
        return Err(Error::Expired);
    }
    let src = source::parse(&split.source)?;
    let src_key: Arc<str> = src.key().into();
    if let Err(e) = f.sources.authorize(&src) {
        draft.subject = Some(Arc::new(crate::analytics::subject(src_key, src.kind(), None)));
        return Err(e.into());
    }
    let neg = negotiate::negotiate_class(opts, accept, hints, f.neg);
    let subject = crate::analytics::subject(src_key, src.kind(), Some(&neg));
    let key = cache::key(&split.source, &neg);
    let etag = respond::etag(&key);
    let etag_value = header::HeaderValue::from_str(&etag).map_err(|e| Error::Internal(e.to_string()))?;
    let vary_value = neg.vary.header_value().and_then(|v| header::HeaderValue::from_str(&v).ok());
    let image = cache::image_id(&src.key_string());
    let tags = respond::EdgeTags::new(&cache::image_tag(&image), f.uploads.tenant_of_source(&src.key_string()));
    Ok(Prepared { subject, src, neg, key, etag, etag_value, vary_value, image, tags })
}

// Static names: looking a header up by `&str` parses the name on every request.
const DPR: [HeaderName; 2] = [HeaderName::from_static("sec-ch-dpr"), HeaderName::from_static("dpr")];
const WIDTH: [HeaderName; 2] = [HeaderName::from_static("sec-ch-width"), HeaderName::from_static("width")];
const VIEWPORT_WIDTH: [HeaderName; 2] =
    [HeaderName::from_static("sec-ch-viewport-width"), HeaderName::from_static("viewport-width")];
const SAVE_DATA: [HeaderName; 1] = [HeaderName::from_static("save-data")];
const ECT: [HeaderName; 1] = [HeaderName::from_static("ect")];

/// The Client Hints of a request (header reading stays here, at the edge of the pure
/// `negotiate` step).
fn hints(h: &HeaderMap) -> Hints {
    Hints::read(|which| {
        let names: &[HeaderName] = match which {
            HintHeader::Dpr => &DPR,
            HintHeader::Width => &WIDTH,
            HintHeader::ViewportWidth => &VIEWPORT_WIDTH,
            HintHeader::SaveData => &SAVE_DATA,
            HintHeader::Ect => &ECT,
        };
        names.iter().find_map(|n| h.get(n).and_then(|v| v.to_str().ok()))
    })
}

impl Flow<'_> {
    /// The whole flow for a `GET`/`HEAD` of an image path.
    pub async fn run(&self, req: &HttpRequest, start: Instant, draft: &mut Draft) -> Result<HttpResponse, Error> {
        let path = req.uri().path();
        let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        // Raw hint values are reduced to the few that can change the response before anything is
        // keyed on them (memo, cache key, ETag).
        let hints = hints(req.headers()).class(self.neg);
        let class = negotiate::AcceptClass::from_accept(accept);
        let entry = match self.memo.get(path, class, &hints).await {
            Some(e) => e,
            None => {
                let p = prepare(req, accept, &hints, self, draft)?;
                self.memo.insert(cache::MemoId { path: path.into(), accept: class, hints }, p).await
            }
        };
        let r = serve(req, self, start, draft, &entry.1).await;
        if self.analytics {
            draft.subject = Some(entry);
        }
        r
    }
}

/// The rest of the flow for a prepared (or remembered) request.
pub async fn serve(
    req: &HttpRequest,
    f: &Flow<'_>,
    start: Instant,
    draft: &mut Draft,
    p: &Prepared,
) -> Result<HttpResponse, Error> {
    let neg = &p.neg;
    // A remembered URL may have expired since.
    if neg.options.expires.is_some_and(|e| e <= unix_now()) {
        return Err(Error::Expired);
    }
    let headers = respond::CacheHeaders {
        etag: &p.etag_value,
        vary: p.vary_value.as_ref(),
        expires: neg.options.expires,
        tags: Some(&p.tags),
        filename: neg.options.extra.filename.as_deref(),
        attachment: neg.options.extra.return_attachment,
    };
    if let Some(inm) = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        if respond::etag_matches(inm, &p.etag) {
            record_image(f.metrics, neg, None, Outcome::NotModified);
            draft.outcome(None, Outcome::NotModified);
            return Ok(respond::not_modified(&headers, f.respond));
        }
    }
    if f.shutting_down.load(Ordering::Relaxed) {
        return Err(Error::ShuttingDown);
    }
    // Hits take the short path; the miss path (fetch, transform, coalescing) is boxed so its large
    // future is not part of every request's future (moving it cost more than the hit itself).
    let (variant, outcome) = match f.cache.get(&p.key).await {
        Some(v) => (v, Outcome::Hit),
        None => match Box::pin(miss(f, p)).await {
            Ok(made) => made,
            Err(e) if FALLBACK_CODES.contains(&e.code()) && f.aux.has_fallback() => {
                return Box::pin(fallback(f, p, &headers, start, draft, e)).await;
            }
            Err(e) => return Err(e),
        },
    };
    record_image(f.metrics, neg, Some(&variant), outcome);
    draft.outcome(Some(&variant), outcome);
    let fetch_ms = if outcome == Outcome::Miss { variant.fetch_ms } else { 0.0 };
    let total = start.elapsed().as_secs_f64() * 1000.0;
    Ok(respond::image(&variant, &headers, f.respond, outcome, fetch_ms, total))
}

/// A variant the cache does not hold: made once, however many requests wait for it.
pub async fn miss(f: &Flow<'_>, p: &Prepared) -> Result<(Arc<Variant>, Outcome), Error> {
    let neg = &p.neg;
    let watermark = if neg.options.watermark.is_some() { f.aux.watermark(f.sources).await? } else { None };
    let render_req =
        RenderRequest { options: neg.options.clone(), accept: neg.accept, save_data: neg.save_data, watermark };
    let make = make_variant(f, p.src.clone(), p.image, render_req);
    f.cache.get_or_make(p.key, make).await.map_err(|e| unshare(&e))
}

/// The errors a fallback image replaces (IMAGO_FALLBACK_IMAGE_*): the source is missing,
/// unreachable or broken. Never a bad signature, option or URL, a limit, a deleted image or an
/// overload: those answer their own error.
pub const FALLBACK_CODES: [&str; 6] = [
    "source-not-found",
    "upstream-error",
    "upstream-timeout",
    "storage-unavailable",
    "invalid-image",
    "unsupported-format",
];

/// The cache key source of fallback variants: no source URL can produce it (sources are parsed
/// before they are keyed).
const FALLBACK_SOURCE: &str = "\0imago:fallback";

/// The fallback image, processed with the request's options (as imgproxy): its variants are
/// cached per option set like any other, but the response is `IMAGO_FALLBACK_IMAGE_HTTP_CODE`,
/// short-lived (`IMAGO_FALLBACK_IMAGE_TTL`, never `immutable`), without ETag or
/// Last-Modified (a revalidation must not keep the fallback once the source exists), and says
/// what it is: `Fallback-Image: 1` (imgproxy's header) and `Imago-Fallback-Reason: {code}`.
async fn fallback(
    f: &Flow<'_>,
    p: &Prepared,
    headers: &respond::CacheHeaders<'_>,
    start: Instant,
    draft: &mut Draft,
    err: Error,
) -> Result<HttpResponse, Error> {
    let Some(bytes) = f.aux.fallback(f.sources).await else { return Err(err) };
    let code = err.code();
    let status = match f.cfg.media.fallback_status {
        0 => actix_web::ResponseError::status_code(&err),
        s => actix_web::http::StatusCode::from_u16(s).map_err(|e| Error::Internal(e.to_string()))?,
    };
    tracing::warn!(error = %err, code, "the source failed: serving the fallback image");
    let neg = &p.neg;
    let key = cache::key(FALLBACK_SOURCE, neg);
    let watermark = if neg.options.watermark.is_some() { f.aux.watermark(f.sources).await? } else { None };
    let render_req =
        RenderRequest { options: neg.options.clone(), accept: neg.accept, save_data: neg.save_data, watermark };
    let make = async {
        let admission = f.workers.admit().map_err(|r| shed(f, r))?;
        let fetched = source::Fetched { bytes, last_modified: None };
        render_fetched(f, admission, &fetched, 0.0, p.image, render_req).await
    };
    let (variant, outcome) = match f.cache.get(&key).await {
        Some(v) => (v, Outcome::Hit),
        None => f.cache.get_or_make(key, make).await.map_err(|e| unshare(&e))?,
    };
    record_image(f.metrics, neg, Some(&variant), outcome);
    draft.outcome(Some(&variant), outcome);
    let total = start.elapsed().as_secs_f64() * 1000.0;
    let mut r = respond::image(&variant, headers, f.respond, outcome, 0.0, total);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.remove(header::ETAG);
    h.remove(header::LAST_MODIFIED);
    let ttl = f.cfg.media.fallback_ttl;
    let cc = if ttl == 0 { "no-store".to_string() } else { format!("public, max-age={ttl}") };
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_str(&cc).map_err(|e| Error::Internal(e.to_string()))?);
    h.insert(HeaderName::from_static("fallback-image"), header::HeaderValue::from_static("1"));
    h.insert(HeaderName::from_static("imago-fallback-reason"), header::HeaderValue::from_static(code));
    Ok(r)
}

/// Errors come back shared from the coalescing cache; rebuild an owned one with the same status,
/// code and message.
fn unshare(e: &Arc<Error>) -> Error {
    match Arc::try_unwrap(e.clone()) {
        Ok(owned) => owned,
        Err(shared) => Error::Shared(shared),
    }
}

/// A request the worker pool refused, counted as shed.
fn shed(f: &Flow<'_>, rejected: crate::transform::Rejected) -> Error {
    if let Some(reason) = rejected.shed_reason() {
        f.metrics.shed.with_label_values(&[reason]).inc();
    }
    rejected.into()
}

/// Admission, then fetch (through the source cache), then the transform on a worker. Admission
/// comes first so a request the pool would refuse never downloads its source, and at most
/// `workers + queue` sources are being fetched or held at once.
pub async fn make_variant(
    f: &Flow<'_>,
    src: source::SourceRef,
    image: cache::ImageId,
    req: RenderRequest,
) -> Result<Variant, Error> {
    if req.options.extra.raw {
        return raw_variant(f, src, image, &req).await;
    }
    let admission = f.workers.admit().map_err(|r| shed(f, r))?;
    let t = Instant::now();
    let (fetched, fetch_s) = fetch_source(f, &src, &req, t).await?;
    render_fetched(f, admission, &fetched, fetch_s, image, req).await
}

/// The transform of fetched bytes on the admitted worker slot, as a cacheable [`Variant`].
async fn render_fetched(
    f: &Flow<'_>,
    admission: crate::transform::Admission,
    fetched: &source::Fetched,
    fetch_s: f64,
    image: cache::ImageId,
    req: RenderRequest,
) -> Result<Variant, Error> {
    let enc = f.enc.clone();
    let bytes = fetched.bytes.clone();
    f.metrics.queue_depth.set(f.workers.stats.waiting.load(Ordering::Relaxed) as i64);
    let span = info_span!("transform");
    let timeout = f.workers.transform_timeout();
    let job = move || {
        let _g = span.enter();
        // The job starts when it has a worker, as the pool's timeout does: libvips is stopped
        // at the same deadline, so a timed-out render gives its worker back.
        crate::transform::render_until(&bytes, &req, &enc, Some(Instant::now() + timeout))
    };
    let rendered = f.workers.run_admitted(admission, job).await.map_err(|r| shed(f, r))?;
    f.metrics.transforms.inc();
    f.metrics.transform_seconds.observe(rendered.decode_ms / 1000.0);
    f.metrics.encode_seconds.observe(rendered.encode_ms / 1000.0);
    Ok(Variant {
        bytes: rendered.bytes.into(),
        format: rendered.format,
        width: rendered.width,
        height: rendered.height,
        quality: rendered.quality,
        source_format: rendered.source.format,
        source_bytes: fetched.bytes.len() as u64,
        original: rendered.original,
        image,
        last_modified: fetched.last_modified.unwrap_or_else(SystemTime::now),
        fetch_ms: fetch_s * 1000.0,
        transform_ms: rendered.decode_ms,
        encode_ms: rendered.encode_ms,
        header_values: Default::default(),
    })
}

/// The source through the source cache (upload gates first), with the URL's `msfs` applied: a
/// source above it is refused like one above the server's limit (`source-too-large`).
async fn fetch_source(
    f: &Flow<'_>,
    src: &source::SourceRef,
    req: &RenderRequest,
    t: Instant,
) -> Result<(source::Fetched, f64), Error> {
    let fetch = async {
        match src {
            source::SourceRef::S3 { bucket, key } => f.uploads.gate(bucket, key).await?,
            source::SourceRef::Local(key) => f.uploads.refuse_deleted(key).await?,
            _ => {}
        }
        let fetched = f.sources.fetch(src).instrument(info_span!("fetch", kind = src.kind())).await?;
        f.metrics.fetches.inc();
        f.metrics.fetch_seconds.observe(t.elapsed().as_secs_f64());
        f.metrics.source_bytes.inc_by(fetched.bytes.len() as u64);
        Ok(fetched)
    };
    let (fetched, _) = f.source_cache.get_or_fetch(&src.key_string(), fetch).await.map_err(|e| unshare(&e))?;
    if let Some(limit) = req.options.security.src_file_size() {
        if fetched.bytes.len() as u64 > limit {
            return Err(source::SourceError::TooLarge { limit }.into());
        }
    }
    Ok((fetched, t.elapsed().as_secs_f64()))
}

/// `raw`: the source as it is, without a worker or any decode (still signed, fetched within the
/// source limits, and only as an image type imago can label). It holds an admission place while
/// fetching, so raw sources count in the `workers + queue` bound on sources in flight.
async fn raw_variant(
    f: &Flow<'_>,
    src: source::SourceRef,
    image: cache::ImageId,
    req: &RenderRequest,
) -> Result<Variant, Error> {
    let admission = f.workers.admit().map_err(|r| shed(f, r))?;
    let t = Instant::now();
    let (fetched, fetch_s) = fetch_source(f, &src, req, t).await?;
    drop(admission);
    let b = &fetched.bytes;
    let (format, name) = match crate::transform::sniff(b) {
        Some("heif") if b.len() >= 12 && matches!(&b[8..12], b"avif" | b"avis") => (options::Format::Avif, "avif"),
        Some(n) => match options::Format::parse(n) {
            Some(f) => (f, n),
            None => return Err(crate::transform::TransformError::Unsupported(format!("raw {n}")).into()),
        },
        None => return Err(crate::transform::TransformError::Unsupported("raw: not an image".into()).into()),
    };
    Ok(Variant {
        bytes: fetched.bytes.clone(),
        format,
        width: 0,
        height: 0,
        quality: 0,
        source_format: name,
        source_bytes: fetched.bytes.len() as u64,
        original: true,
        image,
        last_modified: fetched.last_modified.unwrap_or_else(SystemTime::now),
        fetch_ms: fetch_s * 1000.0,
        transform_ms: 0.0,
        encode_ms: 0.0,
        header_values: Default::default(),
    })
}

fn record_image(metrics: &Metrics, neg: &negotiate::Negotiated, v: Option<&Variant>, outcome: Outcome) {
    let negotiated = matches!(neg.options.format, FormatChoice::Auto | FormatChoice::Unset);
    let (out_fmt, src_fmt) = v.map(|v| (v.format.name(), v.source_format)).unwrap_or(("none", "none"));
    metrics
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
        metrics.bytes_served.inc_by(v.bytes.len() as u64);
        metrics.bytes_saved.inc_by(v.source_bytes.saturating_sub(v.bytes.len() as u64));
    }
}
