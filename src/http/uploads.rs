//! HTTP handlers for uploads ([`crate::upload`]; registered by [`routes`] before the image
//! catch-all):
//!
//! | route | auth | what |
//! |---|---|---|
//! | `POST /v1/uploads` | API key | issue a ticket (201, or 200 with `exists: true`) |
//! | `PUT /v1/uploads/{key}?ct&max&len&sha256&expires&signature` | ticket signature | embedded upload |
//! | `POST /v1/uploads/form` (multipart: fields, then `file`) | ticket signature | embedded upload |
//! | `OPTIONS` on both targets | – | CORS preflight (`IMAGO_CORS_ORIGINS`) |
//! | `GET /v1/images?prefix&cursor&limit&tenant` | API key (`read-info`) | a page of the tenant's images |
//! | `GET /v1/images/{key}/info` | API key (`read-info`) | image info (ETag, `Cache-Control: private`) |
//! | `DELETE /v1/images/{key}` | API key (`delete`) | delete the original (soft, `IMAGO_DELETE_GRACE_SECS`) |
//! | `POST /v1/images/{key}/restore` | API key (`delete`) | undo a soft delete within its grace period |
//!
//! Every API route checks the key, then its scope (`403 scope-missing`), then that the key is
//! the caller tenant's (`403 other-tenant`, before any storage lookup): [`crate::upload::tenancy`].

use std::time::Instant;

use actix_multipart::Multipart;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt;
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::config::Scope;
use crate::error::Error;
use crate::quota::RateState;
use crate::source::SourceRef;
use crate::upload::ingest::{Limits, Outcome, Stored};
use crate::upload::{info, Backend, EmbeddedGrant, ListQuery, Method, TicketRequest, UploadError, IMAGE_TYPES};

/// Largest ticket request body.
const MAX_TICKET_BODY: usize = 16 * 1024;
/// Largest non-file form field, and most fields, of an embedded POST upload.
const MAX_FIELD: usize = 4 * 1024;
const MAX_FIELDS: usize = 32;

/// Registers the upload routes (call before the image catch-all).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/v1/uploads").route(web::post().to(create_ticket)).default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/uploads/form")
            .route(web::post().to(form_upload))
            .route(web::method(actix_web::http::Method::OPTIONS).to(preflight))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/uploads/{key:.+}")
            .route(web::put().to(put_upload))
            .route(web::method(actix_web::http::Method::OPTIONS).to(preflight))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/images")
            .route(web::get().to(list_images))
            .route(web::head().to(list_images))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/images/{key:.+}/info")
            .route(web::get().to(image_info))
            .route(web::head().to(image_info))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/images/{key:.+}/restore")
            .route(web::post().to(restore_image))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/images/{key:.+}")
            .route(web::delete().to(delete_image))
            .default_service(web::to(fall_through)),
    );
}

async fn method_not_allowed() -> HttpResponse {
    Error::MethodNotAllowed.error_response()
}

/// `GET /v1/images/…` that is not `/info`: not an API route (image URLs never start so).
async fn fall_through() -> HttpResponse {
    Error::NotFound.error_response()
}

fn error_response(st: &AppState, e: UploadError, origin: Option<&HeaderValue>) -> HttpResponse {
    st.metrics.upload_refusals.with_label_values(&[e.code()]).inc();
    if e.status().is_server_error() {
        tracing::warn!(error = %e, code = e.code(), "upload request failed");
    } else {
        tracing::info!(error = %e, code = e.code(), "upload request refused");
    }
    let mut resp = Error::Upload(e).error_response();
    add_cors(&mut resp, origin);
    resp
}

fn record(st: &AppState, route: &str, resp: &HttpResponse, start: Instant) {
    st.metrics.http_requests.with_label_values(&[route, resp.status().as_str()]).inc();
    st.metrics.request_seconds.with_label_values(&[route]).observe(start.elapsed().as_secs_f64());
}

/// The `Access-Control-Allow-Origin` value for this request, or `Err` when its `Origin` is not
/// allowed. Requests without `Origin` (not from a browser) get `Ok(None)`.
fn cors_origin(st: &AppState, req: &HttpRequest) -> Result<Option<HeaderValue>, UploadError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(None);
    };
    let allowed = &st.uploads.settings.cors_origins;
    if allowed.iter().any(|o| o == "*") {
        return Ok(Some(HeaderValue::from_static("*")));
    }
    let o = origin.to_str().unwrap_or("");
    if allowed.iter().any(|a| a == o)
        || (st.cfg.console && super::console::same_origin(origin, &st.uploads.settings.public_url))
    {
        return Ok(Some(origin.clone()));
    }
    Err(UploadError::Forbidden(format!("origin {o} is not allowed (IMAGO_CORS_ORIGINS)")))
}

fn add_cors(resp: &mut HttpResponse, origin: Option<&HeaderValue>) {
    if let Some(o) = origin {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("ETag, Location"));
        if o != "*" {
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

/// `OPTIONS` on an upload target: the CORS preflight.
async fn preflight(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    let origin = match cors_origin(&st, &req) {
        Ok(o) => o,
        // No CORS headers: the browser refuses the upload.
        Err(_) => return HttpResponse::NoContent().insert_header((header::VARY, "Origin")).finish(),
    };
    let mut b = HttpResponse::NoContent();
    b.insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "PUT, POST, OPTIONS"));
    let requested = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("content-type")
        .to_string();
    b.insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, requested));
    b.insert_header((header::ACCESS_CONTROL_MAX_AGE, "3600"));
    b.insert_header((header::CACHE_CONTROL, "no-store"));
    let mut resp = b.finish();
    add_cors(&mut resp, origin.as_ref());
    resp
}

/// Reads a whole small body, refusing more than `limit` bytes and a body still arriving at
/// `deadline` ([`UploadError::Timeout`] after `secs`).
async fn read_limited(
    mut body: web::Payload,
    limit: usize,
    deadline: tokio::time::Instant,
    secs: u64,
) -> Result<Vec<u8>, UploadError> {
    let mut v = Vec::new();
    while let Some(chunk) =
        tokio::time::timeout_at(deadline, body.next()).await.map_err(|_| UploadError::Timeout(secs))?
    {
        let chunk = chunk.map_err(|_| UploadError::Incomplete)?;
        if v.len() + chunk.len() > limit {
            return Err(UploadError::InvalidRequest(format!("the request body is larger than {limit} bytes")));
        }
        v.extend_from_slice(&chunk);
    }
    Ok(v)
}

/// `POST /v1/uploads`.
async fn create_ticket(req: HttpRequest, body: web::Payload, st: web::Data<AppState>) -> HttpResponse {
    let start = Instant::now();
    let up = &st.uploads;
    let deadline = tokio::time::Instant::now() + up.settings.body_timeout;
    let mut rate = RateState::default();
    let result = async {
        let auth = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let caller = up.authorize(auth, Scope::Upload)?;
        let _slot = up.body_slot()?;
        let bytes = read_limited(body, MAX_TICKET_BODY, deadline, up.settings.body_timeout.as_secs()).await?;
        let tr: TicketRequest = serde_json::from_slice(&bytes)
            .map_err(|e| UploadError::InvalidRequest(format!("the body must be a JSON ticket request: {e}")))?;
        let now = Timestamp::now();
        // The quota (src/quota/) is taken once the ticket is known good: its declared size counts.
        let plan = up.plan_for(&tr, &caller.tenant, &now)?;
        up.admit(&caller, &plan, &mut rate).await?;
        up.issue_plan(&plan, &now).await
    }
    .await;
    let mut resp = match result {
        Ok(t) => {
            st.metrics.upload_tickets.with_label_values(&[up.backend.mode(), t.method]).inc();
            let status = if t.exists { StatusCode::OK } else { StatusCode::CREATED };
            HttpResponse::build(status).insert_header((header::CACHE_CONTROL, "no-store")).json(t)
        }
        Err(e) => error_response(&st, e, None),
    };
    for (name, value) in rate.headers() {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(header::HeaderName::from_static(name), v);
        }
    }
    record(&st, "upload_ticket", &resp, start);
    resp
}

fn query_pairs(q: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Rebuilds the signed grant from the query or form fields; then checks the signature (constant
/// time) and the expiry, in that order.
fn verify_grant(
    st: &AppState,
    method: Method,
    key: &str,
    pairs: &[(String, String)],
    ct_name: &str,
) -> Result<(EmbeddedGrant, &'static crate::upload::ImageType), UploadError> {
    let need = |n: &str| get(pairs, n).ok_or(UploadError::InvalidSignature);
    let num = |n: &str| -> Result<u64, UploadError> { need(n)?.parse().map_err(|_| UploadError::InvalidSignature) };
    let grant = EmbeddedGrant {
        method,
        key: key.to_string(),
        content_type: need(ct_name)?.to_string(),
        max_bytes: num("max")?,
        length: match get(pairs, "len") {
            Some(l) => Some(l.parse().map_err(|_| UploadError::InvalidSignature)?),
            None => None,
        },
        expires: need("expires")?.parse().map_err(|_| UploadError::InvalidSignature)?,
        sha256: get(pairs, "sha256").map(str::to_string),
    };
    if !st.uploads.grant_key.verify(&grant, need("signature")?) {
        return Err(UploadError::InvalidSignature);
    }
    if grant.expires < crate::upload::unix_now() {
        return Err(UploadError::Expired);
    }
    let t = IMAGE_TYPES.iter().find(|t| t.mime == grant.content_type).ok_or(UploadError::InvalidSignature)?;
    Ok((grant, t))
}

fn limits_of(grant: &EmbeddedGrant) -> Result<Limits, UploadError> {
    let sha256 = match &grant.sha256 {
        None => None,
        Some(h) => {
            let v = hex::decode(h).map_err(|_| UploadError::InvalidSignature)?;
            Some(v.try_into().map_err(|_| UploadError::InvalidSignature)?)
        }
    };
    Ok(Limits { max_bytes: grant.max_bytes, exact: grant.length, sha256 })
}

/// Embedded uploads are complete on receipt: the `upload.completed` event of a new one
/// ([`crate::upload::complete::on_completed`]) is announced in the background.
fn announce(st: &web::Data<AppState>, key: &str, stored: &Stored) {
    if stored.outcome == Outcome::Created {
        let (st, key) = (st.clone(), key.to_string());
        actix_web::rt::spawn(async move { st.uploads.announce_receipt(&key).await });
    }
}

fn stored_response(st: &AppState, key: &str, stored: &Stored, origin: Option<&HeaderValue>) -> HttpResponse {
    let up = &st.uploads;
    let image_url = up.image_url(key).unwrap_or_default();
    st.metrics.upload_bytes.inc_by(if stored.outcome == Outcome::Created { stored.bytes } else { 0 });
    let status = if stored.outcome == Outcome::Created { StatusCode::CREATED } else { StatusCode::OK };
    let sha = stored.sha256.map(hex::encode);
    // The key never holds other bytes, so it identifies the content; with a verified digest,
    // the digest does.
    let tag = match &sha {
        Some(h) => h[..32].to_string(),
        None => hex::encode(&Sha256::digest(key.as_bytes())[..16]),
    };
    let mut resp = HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::ETAG, format!("\"{tag}\"")))
        .insert_header((header::LOCATION, image_url.clone()))
        .json(serde_json::json!({
            "key": key,
            "source": up.source_of(key),
            "bytes": stored.bytes,
            "sha256": sha,
            "created": stored.outcome == Outcome::Created,
            "image_url": image_url,
            "info_url": format!("{}/v1/images/{key}/info", up.settings.public_url),
        }));
    add_cors(&mut resp, origin);
    resp
}

/// `PUT /v1/uploads/{key}?…`: the embedded store's presigned PUT target.
async fn put_upload(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    st: web::Data<AppState>,
) -> HttpResponse {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + st.uploads.settings.body_timeout;
    let key = path.into_inner();
    let origin = cors_origin(&st, &req);
    let allow = origin.as_ref().ok().cloned().flatten();
    let result = async {
        origin?;
        let pairs = query_pairs(req.query_string());
        let (grant, t) = verify_grant(&st, Method::Put, &key, &pairs, "ct")?;
        let sent_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !sent_type.trim().eq_ignore_ascii_case(&grant.content_type) {
            return Err(UploadError::ContentTypeMismatch(grant.content_type.clone()));
        }
        let limits = limits_of(&grant)?;
        if let Some(len) = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .map(|v| v.to_str().ok().and_then(|s| s.parse::<u64>().ok()).ok_or(UploadError::Incomplete))
            .transpose()?
        {
            if len > limits.max_bytes {
                return Err(UploadError::TooLarge { limit: limits.max_bytes });
            }
            if let Some(exact) = limits.exact {
                if len != exact {
                    return Err(UploadError::LengthMismatch { expected: exact, got: len });
                }
            }
        }
        let _slot = st.uploads.body_slot()?;
        let stored = st.uploads.ingest.receive(&key, t, &limits, body, deadline).await?;
        st.uploads.settle(&key, if stored.outcome == Outcome::Created { stored.bytes } else { 0 }).await;
        st.uploads.revive(&key).await?;
        // Listed newest first before the answer (a retry of a failed one indexes it again).
        st.uploads.index_local(&key).await?;
        Ok(stored)
    }
    .await;
    let resp = match result {
        Ok(stored) => {
            announce(&st, &key, &stored);
            stored_response(&st, &key, &stored, allow.as_ref())
        }
        Err(e) => error_response(&st, e, allow.as_ref()),
    };
    record(&st, "upload_put", &resp, start);
    resp
}

/// `POST /v1/uploads/form`: the embedded store's presigned POST target (fields, then `file`).
/// The request is unauthenticated until its fields are read, so a slot is taken first and the
/// body timeout runs from the start: fields and file alike must arrive by then.
async fn form_upload(req: HttpRequest, body: web::Payload, st: web::Data<AppState>) -> HttpResponse {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + st.uploads.settings.body_timeout;
    let origin = cors_origin(&st, &req);
    let allow = origin.as_ref().ok().cloned().flatten();
    let mut key_out = String::new();
    let result = async {
        origin?;
        let _slot = st.uploads.body_slot()?;
        let mut mp = Multipart::new(req.headers(), body);
        let secs = st.uploads.settings.body_timeout.as_secs();
        let (fields, file) =
            tokio::time::timeout_at(deadline, form_fields(&mut mp)).await.map_err(|_| UploadError::Timeout(secs))??;
        let key = get(&fields, "key").ok_or(UploadError::InvalidSignature)?.to_string();
        key_out = key.clone();
        let (grant, t) = verify_grant(&st, Method::Post, &key, &fields, "Content-Type")?;
        let limits = limits_of(&grant)?;
        let stored = st.uploads.ingest.receive(&key, t, &limits, file, deadline).await?;
        st.uploads.settle(&key, if stored.outcome == Outcome::Created { stored.bytes } else { 0 }).await;
        st.uploads.index_local(&key).await?;
        Ok(stored)
    }
    .await;
    let resp = match result {
        Ok(stored) => {
            announce(&st, &key_out, &stored);
            stored_response(&st, &key_out, &stored, allow.as_ref())
        }
        Err(e) => error_response(&st, e, allow.as_ref()),
    };
    record(&st, "upload_form", &resp, start);
    resp
}

/// Reads the form fields before `file` (at most [`MAX_FIELDS`] of [`MAX_FIELD`] bytes each);
/// returns them with the `file` field, unread.
async fn form_fields(mp: &mut Multipart) -> Result<(Vec<(String, String)>, actix_multipart::Field), UploadError> {
    let mut fields: Vec<(String, String)> = Vec::new();
    loop {
        let field = mp
            .next()
            .await
            .ok_or_else(|| UploadError::InvalidRequest("the form has no `file` field".into()))?
            .map_err(|e| UploadError::InvalidRequest(format!("multipart: {e}")))?;
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            return Ok((fields, field));
        }
        if fields.len() >= MAX_FIELDS {
            return Err(UploadError::InvalidRequest("too many form fields".into()));
        }
        let mut field = field;
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|_| UploadError::Incomplete)?;
            if value.len() + chunk.len() > MAX_FIELD {
                return Err(UploadError::InvalidRequest(format!("form field `{name}` is too long")));
            }
            value.extend_from_slice(&chunk);
        }
        let value = String::from_utf8(value)
            .map_err(|_| UploadError::InvalidRequest(format!("form field `{name}` is not UTF-8")))?;
        fields.push((name, value));
    }
}

/// `GET /v1/images?prefix=&cursor=&limit=&tenant=&order=`: a page of the caller tenant's images.
async fn list_images(req: HttpRequest, st: web::Data<AppState>) -> HttpResponse {
    let start = Instant::now();
    let up = &st.uploads;
    let result = async {
        let auth = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let caller = up.authorize(auth, Scope::ReadInfo)?;
        let pairs = query_pairs(req.query_string());
        let q = ListQuery {
            prefix: get(&pairs, "prefix").filter(|p| !p.is_empty()).map(str::to_string),
            cursor: get(&pairs, "cursor").filter(|p| !p.is_empty()).map(str::to_string),
            limit: get(&pairs, "limit").map(str::to_string),
            tenant: get(&pairs, "tenant").filter(|p| !p.is_empty()).map(str::to_string),
            order: get(&pairs, "order").filter(|p| !p.is_empty()).map(str::to_string),
        };
        up.list(&caller, &q).await
    }
    .await;
    let resp = match result {
        Ok(l) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::VARY, "Authorization"))
            .json(l),
        Err(e) => error_response(&st, e, None),
    };
    record(&st, "image_list", &resp, start);
    resp
}

/// `GET /v1/images/{key}/info`.
async fn image_info(req: HttpRequest, path: web::Path<String>, st: web::Data<AppState>) -> HttpResponse {
    let start = Instant::now();
    let up = &st.uploads;
    let result: Result<HttpResponse, Error> = async {
        let auth = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let caller = up.authorize(auth, Scope::ReadInfo)?;
        let key = up.readable_key(&caller, &path)?;
        up.refuse_deleted(&key).await?;
        // The object's identity (size + modification time, or the store's ETag) makes the ETag.
        let (src, size, identity) = match &up.backend {
            Backend::Local => {
                let m = up.ingest.stat(&key).await?.ok_or(UploadError::NotFound)?;
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                (SourceRef::Local(key.clone()), m.len(), format!("{}:{mtime}", m.len()))
            }
            Backend::S3(s) => {
                up.gate(s.name(), &key).await?;
                let m = s.head(&key).await.map_err(UploadError::from)?;
                let m = m.ok_or(UploadError::NotFound)?;
                (
                    SourceRef::S3 { bucket: s.name().to_string(), key: key.clone() },
                    m.size,
                    format!("{}:{}", m.size, m.etag),
                )
            }
        };
        let digest = Sha256::digest(format!("{}\n{key}\n{identity}", info::INFO_VERSION).as_bytes());
        let etag = format!("\"{}\"", hex::encode(&digest[..16]));
        let cache_control = format!("private, max-age={}", up.settings.info_max_age);
        if let Some(inm) = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
            if crate::respond::etag_matches(inm, &etag) {
                return Ok(HttpResponse::NotModified()
                    .insert_header((header::ETAG, etag))
                    .insert_header((header::CACHE_CONTROL, cache_control))
                    .finish());
            }
        }
        let fetched = st.sources.fetch(&src).await.map_err(|e| match e {
            crate::source::SourceError::NotFound => Error::Upload(UploadError::NotFound),
            other => Error::Source(other),
        })?;
        let bytes = fetched.bytes.clone();
        let max_mp = st.cfg.raw.max_src_megapixels;
        let facts = match st.workers.run(move || crate::transform::info_facts(&bytes, info::THUMB_BOX, max_mp)).await {
            Ok(f) => f,
            Err(rejected) => return Err(rejected.into()),
        };
        let body = info::build(&key, up.source_of(&key), size.max(fetched.bytes.len() as u64), &facts);
        Ok(HttpResponse::Ok()
            .insert_header((header::ETAG, etag))
            .insert_header((header::CACHE_CONTROL, cache_control))
            .insert_header((header::VARY, "Authorization"))
            .json(body))
    }
    .await;
    let resp = match result {
        Ok(r) => r,
        Err(Error::Upload(e)) => error_response(&st, e, None),
        Err(e) => e.error_response(),
    };
    record(&st, "image_info", &resp, start);
    resp
}

/// `DELETE /v1/images/{key}`: soft-deletes the original at an upload key (under
/// `IMAGO_UPLOAD_PREFIXES`, an image file name; in embedded mode never outside the root) —
/// a `deleted` record, purged after `IMAGO_DELETE_GRACE_SECS` ([`crate::upload::trash`]) — or
/// removes it at once when that is 0; then drops its variants from this replica's memory,
/// purges the edges and records `image.deleted` ([`AppState::image_deleted`]).
async fn delete_image(req: HttpRequest, path: web::Path<String>, st: web::Data<AppState>) -> HttpResponse {
    let start = Instant::now();
    let up = &st.uploads;
    let result = async {
        let auth = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let caller = up.authorize(auth, Scope::Delete)?;
        let key = up.owned_key(&caller, &path)?;
        if up.settings.delete_grace.is_zero() {
            up.delete(&key).await.map(|()| (key, None))
        } else {
            up.soft_delete(&key, &caller.tenant).await.map(|d| (key, Some(d.purge_at_text())))
        }
    }
    .await;
    let resp = match result {
        Ok((key, purge_at)) => {
            st.image_deleted(&key, purge_at.as_deref()).await;
            HttpResponse::NoContent().insert_header((header::CACHE_CONTROL, "no-store")).finish()
        }
        Err(e) => error_response(&st, e, None),
    };
    record(&st, "image_delete", &resp, start);
    resp
}

/// `POST /v1/images/{key}/restore`: undoes a soft delete within its grace period (same scope
/// and tenant rules as `DELETE`); `200` with the image's URLs, then `image.restored`.
async fn restore_image(req: HttpRequest, path: web::Path<String>, st: web::Data<AppState>) -> HttpResponse {
    let start = Instant::now();
    let up = &st.uploads;
    let result = async {
        let auth = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let caller = up.authorize(auth, Scope::Delete)?;
        let key = up.owned_key(&caller, &path)?;
        let d = up.restore(&key).await?;
        up.announce_restored(&key, &caller.tenant, &d).await;
        Ok::<_, UploadError>(key)
    }
    .await;
    let resp = match result {
        Ok(key) => HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(serde_json::json!({
            "key": key,
            "state": "ready",
            "image_url": up.image_url(&key).unwrap_or_default(),
            "info_url": format!("{}/v1/images/{key}/info", up.settings.public_url),
        })),
        Err(e) => error_response(&st, e, None),
    };
    record(&st, "image_restore", &resp, start);
    resp
}
