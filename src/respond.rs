//! Building responses: the only place that sets Cache-Control, ETag and Vary.

use std::time::SystemTime;

use actix_web::http::header::{self, HeaderValue};
use actix_web::HttpResponse;

use crate::cache::{Key, Outcome, Variant};

/// Client Hints imago uses, advertised with `Accept-CH`.
pub const ACCEPT_CH: &str = "Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width, DPR, Width, Viewport-Width";

/// Response settings from the configuration.
#[derive(Clone, Debug)]
pub struct RespondSettings {
    /// `Cache-Control` of signed variants (validated as a header value at start).
    pub cache_control: HeaderValue,
    pub debug_headers: bool,
}

/// The strong ETag of a resolved request.
pub fn etag(key: &Key) -> String {
    format!("\"{}\"", hex::encode(&key[..16]))
}

/// True when an `If-None-Match` value matches `etag` (weak comparison, as RFC 9110 asks for
/// If-None-Match).
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let bare = etag.trim_start_matches("W/");
    if_none_match.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == bare)
}

fn cache_control(s: &RespondSettings, expires: Option<i64>) -> HeaderValue {
    match expires {
        Some(exp) => {
            let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
            let left = (exp - now).max(0);
            HeaderValue::from_str(&format!("public, max-age={left}, s-maxage={left}"))
                .unwrap_or_else(|_| HeaderValue::from_static("no-store"))
        }
        None => s.cache_control.clone(),
    }
}

/// The edge purge tags of a variant: `Surrogate-Key` (Fastly, Varnish; space-separated) and
/// `Cache-Tag` (Cloudflare, Akamai; comma-separated), each holding the image's tag
/// (`img-{id}`) and, for an upload key, its tenant's (`tenant-{name}`).
#[derive(Clone, Debug)]
pub struct EdgeTags {
    pub surrogate_key: HeaderValue,
    pub cache_tag: HeaderValue,
}

impl EdgeTags {
    /// Tags are `[a-z0-9-]` (image tags are hex, tenant names `[a-z][a-z0-9-]*`).
    pub fn new(image_tag: &str, tenant: Option<&str>) -> EdgeTags {
        let mut tags = vec![image_tag.to_string()];
        if let Some(t) = tenant {
            tags.push(format!("tenant-{t}"));
        }
        let value =
            |sep: &str| HeaderValue::from_str(&tags.join(sep)).unwrap_or_else(|_| HeaderValue::from_static("imago"));
        EdgeTags { surrogate_key: value(" "), cache_tag: value(",") }
    }
}

/// What the cache headers of a variant depend on.
pub struct CacheHeaders<'a> {
    /// The strong ETag ([`etag`]) as a header value.
    pub etag: &'a HeaderValue,
    /// [`Vary::header_value`], built once per resolved request.
    pub vary: Option<&'a HeaderValue>,
    /// `exp:` of the URL: caches must not keep the response longer.
    pub expires: Option<i64>,
    /// Purge tags for the edge.
    pub tags: Option<&'a EdgeTags>,
    /// `fn:` (the filename stem) and `att:` of the URL.
    pub filename: Option<&'a str>,
    pub attachment: bool,
}

fn common(b: &mut actix_web::HttpResponseBuilder, h: &CacheHeaders<'_>, s: &RespondSettings) {
    b.insert_header((header::CACHE_CONTROL, cache_control(s, h.expires)));
    b.insert_header((header::ETAG, h.etag.clone()));
    if let Some(v) = h.vary {
        b.insert_header((header::VARY, v.clone()));
    }
    b.insert_header((header::HeaderName::from_static("accept-ch"), HeaderValue::from_static(ACCEPT_CH)));
    if let Some(t) = h.tags {
        b.insert_header((header::HeaderName::from_static("surrogate-key"), t.surrogate_key.clone()));
        b.insert_header((header::HeaderName::from_static("cache-tag"), t.cache_tag.clone()));
    }
}

/// 304 Not Modified: answered before any fetch or transform.
pub fn not_modified(h: &CacheHeaders<'_>, s: &RespondSettings) -> HttpResponse {
    let mut b = HttpResponse::NotModified();
    common(&mut b, h, s);
    if s.debug_headers {
        b.insert_header(("x-imago-cache", Outcome::NotModified.name()));
    }
    b.finish()
}

/// 200 with the image.
pub fn image(
    v: &Variant,
    h: &CacheHeaders<'_>,
    s: &RespondSettings,
    outcome: Outcome,
    fetch_ms: f64,
    total_ms: f64,
) -> HttpResponse {
    let mut b = HttpResponse::Ok();
    common(&mut b, h, s);
    let (disposition, last_modified) = v.header_values.get_or_init(|| {
        (
            HeaderValue::from_static(match v.format {
                crate::options::Format::Jpeg => "inline; filename=\"image.jpg\"",
                crate::options::Format::Png => "inline; filename=\"image.png\"",
                crate::options::Format::Webp => "inline; filename=\"image.webp\"",
                crate::options::Format::Avif => "inline; filename=\"image.avif\"",
                crate::options::Format::Gif => "inline; filename=\"image.gif\"",
                crate::options::Format::Jxl => "inline; filename=\"image.jxl\"",
            }),
            HeaderValue::from_str(&httpdate::fmt_http_date(v.last_modified))
                .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT")),
        )
    });
    b.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(v.format.mime())));
    if h.filename.is_some() || h.attachment {
        let ext = if v.format == crate::options::Format::Jpeg { "jpg" } else { v.format.name() };
        let value = crate::options::content_disposition(h.filename, ext, h.attachment);
        b.insert_header((header::CONTENT_DISPOSITION, HeaderValue::from_str(&value).unwrap_or(disposition.clone())));
    } else {
        b.insert_header((header::CONTENT_DISPOSITION, disposition.clone()));
    }
    b.insert_header((header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")));
    b.insert_header((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox")));
    b.insert_header((header::LAST_MODIFIED, last_modified.clone()));
    if s.debug_headers {
        b.insert_header(("x-imago-cache", outcome.name()));
        b.insert_header((
            "x-imago-variant",
            format!(
                "{} {}x{} q{}{}",
                v.format.name(),
                v.width,
                v.height,
                v.quality,
                if v.original { " original" } else { "" }
            ),
        ));
        b.insert_header((
            "server-timing",
            format!(
                "cache;desc={},fetch;dur={:.1},transform;dur={:.1},encode;dur={:.1},total;dur={:.1}",
                outcome.name(),
                fetch_ms,
                v.transform_ms,
                v.encode_ms,
                total_ms
            ),
        ));
    }
    b.body(v.bytes.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_matching() {
        let e = etag(&[7u8; 32]);
        assert!(e.starts_with('"') && e.len() == 34);
        assert!(etag_matches(&e, &e));
        assert!(etag_matches(&format!("\"x\", W/{e}"), &e));
        assert!(etag_matches("*", &e));
        assert!(!etag_matches("\"other\"", &e));
    }

    #[test]
    fn expiring_urls_are_not_cached_past_expiry() {
        let s = RespondSettings {
            cache_control: HeaderValue::from_static("public, max-age=31536000"),
            debug_headers: false,
        };
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
        let cc = cache_control(&s, Some(now + 100));
        let cc = cc.to_str().unwrap();
        let left: i64 = cc.split("max-age=").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
        assert!((98..=100).contains(&left), "{cc}");
        assert_eq!(cache_control(&s, None), "public, max-age=31536000");
    }
}
