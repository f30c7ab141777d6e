//! `GET /v1/openapi.json`: the OpenAPI 3.1 description of the `/v1` routes, written by hand in
//! [`openapi.json`](./openapi.json) and embedded in the binary. No key; cacheable
//! (`Cache-Control: public`, a strong `ETag` of the document, `If-None-Match` answers 304).
//!
//! `tests/openapi.rs` keeps it true: it validates the document against the OpenAPI 3.1
//! meta-schema, checks that its `ErrorCode` enum is `error::CODES` and that every `/v1` route
//! registered in `src/http/` is described, then exercises each operation against a running
//! imago (embedded store and Garage) and validates every response against the document.
//! A new `/v1` route (e.g. the web console's signing endpoint) gets its path here and a request
//! in that test.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// Its path.
pub const PATH: &str = "/v1/openapi.json";

fn etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| format!("\"{}\"", hex::encode(&Sha256::digest(DOCUMENT.as_bytes())[..16])))
}

/// `GET` / `HEAD /v1/openapi.json`.
pub async fn document(req: HttpRequest) -> HttpResponse {
    let etag = etag();
    let cache_control = "public, max-age=3600";
    if let Some(inm) = req.headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        if crate::respond::etag_matches(inm, etag) {
            return HttpResponse::NotModified()
                .insert_header((header::ETAG, etag))
                .insert_header((header::CACHE_CONTROL, cache_control))
                .finish();
        }
    }
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(DOCUMENT)
}
