//! Edge (CDN) access logs as analytics events: Varnish (`varnishncsa -j` with the format in
//! `docs/analytics.md`), CloudFront standard and real-time logs, Cloudflare Logpush (HTTP
//! requests dataset) and Fastly log streaming (the JSON format in the docs).
//!
//! A line becomes an [`Event`] with `edge` set to what the edge did (`hit`, `miss`, `pass`,
//! `synth`, `pipe`). The image is read from the signed URL's path with the request parser
//! ([`crate::url::split`], [`crate::source::parse`]; the signature is not checked: counting needs
//! none), the variant from the URL's options plus the `Vary`ed request headers the edge logged
//! (`Accept`, DPR, width, Save-Data). API, health and metrics paths are not image views and are
//! skipped, as are methods other than GET and HEAD (the origin counts those).

use serde_json::Value;

use super::record::{Event, Str};
use crate::metrics::{dpr_bucket, width_bucket};

/// The log formats `imago analytics import` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EdgeFormat {
    /// `varnishncsa -j -F '…'` with the format string of docs/analytics.md (JSON lines).
    Varnish,
    /// CloudFront standard logs (W3C, `#Fields:` header) or real-time logs (`--fields`).
    Cloudfront,
    /// Cloudflare Logpush, HTTP requests dataset (JSON lines).
    Cloudflare,
    /// Fastly log streaming with the JSON format of docs/analytics.md.
    Fastly,
}

/// The fields every supported edge can log, before mapping.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EdgeLine {
    /// Request start, milliseconds since the Unix epoch.
    pub ts_ms: i64,
    pub method: String,
    /// The path as requested (percent-encoded), with or without the query.
    pub url: String,
    pub status: u16,
    pub bytes: u64,
    pub latency_ms: f64,
    /// `hit`, `miss`, `pass`, `synth` or `pipe`.
    pub handling: &'static str,
    pub request_id: Option<String>,
    pub referer: Option<String>,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    pub dpr: Option<String>,
    pub width: Option<String>,
    pub save_data: Option<String>,
}

/// A line's parser state (CloudFront's `#Fields:` header names the columns that follow).
#[derive(Clone, Debug, Default)]
pub struct Parser {
    pub format: Option<EdgeFormat>,
    fields: Vec<String>,
}

impl Parser {
    /// A parser for `format`; `fields`: CloudFront real-time logs' field list (comma-separated,
    /// in the order configured), or none for standard logs (they name their fields).
    pub fn new(format: EdgeFormat, fields: Option<&str>) -> Parser {
        let fields = fields
            .map(|f| f.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_else(|| CLOUDFRONT_STANDARD.iter().map(|s| s.to_string()).collect());
        Parser { format: Some(format), fields }
    }

    /// The event of one line: `Ok(None)` for lines that are not image views (comments,
    /// headers, API paths, other methods), `Err` for lines that cannot be read.
    pub fn parse(&mut self, line: &str, edge: &str) -> Result<Option<Event>, String> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return Ok(None);
        }
        let parsed = match self.format.unwrap_or(EdgeFormat::Varnish) {
            EdgeFormat::Varnish => json_line(line, false)?,
            EdgeFormat::Fastly => json_line(line, true)?,
            EdgeFormat::Cloudflare => cloudflare(line)?,
            EdgeFormat::Cloudfront => {
                if let Some(f) = line.strip_prefix("#Fields:") {
                    self.fields = f.split_whitespace().map(|s| s.to_ascii_lowercase()).collect();
                    return Ok(None);
                }
                if line.starts_with('#') {
                    return Ok(None);
                }
                cloudfront(line, &self.fields)?
            }
        };
        Ok(parsed.and_then(|l| to_event(&l, edge)))
    }
}

fn text(v: &Value, k: &str) -> Option<String> {
    match v.get(k)? {
        Value::String(s) if !s.is_empty() && s != "-" => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(v: &Value, k: &str) -> Option<f64> {
    match v.get(k)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `ts_ms` (epoch milliseconds) or `timestamp` (RFC 3339).
fn json_time(v: &Value) -> Result<i64, String> {
    if let Some(ms) = number(v, "ts_ms") {
        return Ok(ms as i64);
    }
    let t = text(v, "timestamp").ok_or("no ts_ms or timestamp")?;
    t.parse::<jiff::Timestamp>().map(|t| t.as_millisecond()).map_err(|e| format!("timestamp `{t}`: {e}"))
}

/// Varnish (`varnishncsa -j`) and Fastly lines: the JSON object of docs/analytics.md.
fn json_line(line: &str, fastly: bool) -> Result<Option<EdgeLine>, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let raw = text(&v, "handling").unwrap_or_default().to_ascii_lowercase();
    let handling = if fastly { fastly_state(&raw) } else { varnish_handling(&raw) };
    Ok(Some(EdgeLine {
        ts_ms: json_time(&v)?,
        method: text(&v, "method").unwrap_or_else(|| "GET".into()),
        url: text(&v, "url").ok_or("no url")?,
        status: number(&v, "status").ok_or("no status")? as u16,
        bytes: number(&v, "bytes").unwrap_or(0.0) as u64,
        latency_ms: number(&v, "duration_us").unwrap_or(0.0) / 1000.0,
        handling,
        request_id: text(&v, "request_id"),
        referer: text(&v, "referer"),
        content_type: text(&v, "content_type"),
        accept: text(&v, "accept"),
        dpr: text(&v, "dpr").or_else(|| text(&v, "dpr_legacy")),
        width: text(&v, "width").or_else(|| text(&v, "width_legacy")),
        save_data: text(&v, "save_data"),
    }))
}

fn varnish_handling(h: &str) -> &'static str {
    match h {
        "hit" => "hit",
        "pass" => "pass",
        "pipe" => "pipe",
        "synth" => "synth",
        _ => "miss",
    }
}

/// Fastly's `fastly_info.state`: `HIT`, `HIT-STALE`, `HIT-SYNTH`, `MISS`, `PASS`, `ERROR`, …
fn fastly_state(s: &str) -> &'static str {
    match s {
        s if s.starts_with("hit-synth") || s.starts_with("error") => "synth",
        s if s.starts_with("hit") => "hit",
        s if s.starts_with("pass") => "pass",
        _ => "miss",
    }
}

/// Cloudflare's `CacheCacheStatus`. `revalidated` and `expired` asked the origin (a miss here).
fn cloudflare_status(s: &str) -> &'static str {
    match s {
        "hit" | "stale" | "updating" => "hit",
        "bypass" | "dynamic" => "pass",
        _ => "miss",
    }
}

/// A Cloudflare Logpush line (HTTP requests dataset, JSON).
fn cloudflare(line: &str) -> Result<Option<EdgeLine>, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let ts_ms = match v.get("EdgeStartTimestamp") {
        // timestamp_format unixnano (the default), unix, or rfc3339.
        Some(Value::Number(n)) => {
            let n = n.as_f64().unwrap_or(0.0);
            if n > 1e15 {
                (n / 1e6) as i64
            } else {
                (n * 1000.0) as i64
            }
        }
        Some(Value::String(s)) => s.parse::<jiff::Timestamp>().map_err(|e| e.to_string())?.as_millisecond(),
        _ => return Err("no EdgeStartTimestamp".into()),
    };
    let url = text(&v, "ClientRequestURI").or_else(|| text(&v, "ClientRequestPath")).ok_or("no ClientRequestURI")?;
    Ok(Some(EdgeLine {
        ts_ms,
        method: text(&v, "ClientRequestMethod").unwrap_or_else(|| "GET".into()),
        url,
        status: number(&v, "EdgeResponseStatus").ok_or("no EdgeResponseStatus")? as u16,
        bytes: number(&v, "EdgeResponseBodyBytes").or_else(|| number(&v, "EdgeResponseBytes")).unwrap_or(0.0) as u64,
        latency_ms: number(&v, "EdgeTimeToFirstByteMs").unwrap_or(0.0),
        handling: cloudflare_status(&text(&v, "CacheCacheStatus").unwrap_or_default().to_ascii_lowercase()),
        request_id: text(&v, "RayID"),
        referer: text(&v, "ClientRequestReferer"),
        content_type: text(&v, "EdgeResponseContentType"),
        accept: None,
        dpr: None,
        width: None,
        save_data: None,
    }))
}

/// The fields of CloudFront standard logs, in order (used until a `#Fields:` line names them).
pub const CLOUDFRONT_STANDARD: [&str; 33] = [
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(host)",
    "cs-uri-stem",
    "sc-status",
    "cs(referer)",
    "cs(user-agent)",
    "cs-uri-query",
    "cs(cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
];

/// CloudFront's result type: `Hit` served from the cache; `RefreshHit` and `Miss` asked the
/// origin; `Error`, `Redirect`, `LimitExceeded`, `CapacityExceeded` were answered by the edge.
fn cloudfront_result(s: &str) -> &'static str {
    match s {
        "hit" | "originshieldhit" => "hit",
        "miss" | "refreshhit" => "miss",
        "error" | "redirect" | "limitexceeded" | "capacityexceeded" => "synth",
        _ => "miss",
    }
}

/// A CloudFront line (tab-separated, columns named by `fields`).
fn cloudfront(line: &str, fields: &[String]) -> Result<Option<EdgeLine>, String> {
    let cols: Vec<&str> = line.split('\t').collect();
    let get = |name: &str| -> Option<&str> {
        let i = fields.iter().position(|f| f == name)?;
        cols.get(i).copied().filter(|v| !v.is_empty() && *v != "-")
    };
    let ts_ms = if let Some(t) = get("timestamp") {
        // Real-time logs: epoch seconds with milliseconds.
        (t.parse::<f64>().map_err(|_| format!("timestamp `{t}`"))? * 1000.0).round() as i64
    } else {
        let (d, t) = (get("date").ok_or("no date")?, get("time").ok_or("no time")?);
        format!("{d}T{t}Z").parse::<jiff::Timestamp>().map_err(|e| format!("{d} {t}: {e}"))?.as_millisecond()
    };
    let result = get("x-edge-result-type").or_else(|| get("x-edge-response-result-type")).unwrap_or("Miss");
    let seconds = get("time-taken").and_then(|t| t.parse::<f64>().ok()).unwrap_or(0.0);
    // Standard logs encode the referer's and headers' spaces and some characters as %XX.
    let decode = |s: Option<&str>| s.map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned());
    Ok(Some(EdgeLine {
        ts_ms,
        method: get("cs-method").unwrap_or("GET").to_string(),
        url: get("cs-uri-stem").ok_or("no cs-uri-stem")?.to_string(),
        status: get("sc-status").and_then(|s| s.parse().ok()).ok_or("no sc-status")?,
        bytes: get("sc-bytes").and_then(|s| s.parse().ok()).unwrap_or(0),
        latency_ms: seconds * 1000.0,
        handling: cloudfront_result(&result.to_ascii_lowercase()),
        request_id: get("x-edge-request-id").map(str::to_string),
        referer: decode(get("cs(referer)").or_else(|| get("cs-referer"))),
        content_type: decode(get("sc-content-type")),
        accept: decode(get("cs-accept")),
        dpr: None,
        width: None,
        save_data: None,
    }))
}

/// Whether a path is an image read (not the API, health, readiness or metrics).
fn is_image_path(path: &str) -> bool {
    !(path.starts_with("/v1/") || matches!(path, "/healthz" | "/readyz" | "/metrics" | "/" | "/favicon.ico"))
}

/// The `Accept` class the origin negotiates from: `avif`, `webp` or `legacy` (the edge's VCL
/// already reduced it to `image/avif`, `image/webp` or `legacy`; others are classified the same
/// way, ignoring q=0).
fn accept_class(accept: &str) -> &'static str {
    let has = |t: &str| {
        accept.split(',').any(|part| {
            let mut it = part.split(';');
            let ty = it.next().unwrap_or("").trim();
            let q0 = it.any(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f64>().ok()) == Some(0.0));
            ty.eq_ignore_ascii_case(t) && !q0
        })
    };
    if has("image/avif") {
        "avif"
    } else if has("image/webp") {
        "webp"
    } else {
        "legacy"
    }
}

fn format_of(content_type: &str) -> Option<&'static str> {
    let t = content_type.split(';').next()?.trim().to_ascii_lowercase();
    Some(match t.as_str() {
        "image/avif" => "avif",
        "image/webp" => "webp",
        "image/jpeg" => "jpeg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/jxl" => "jxl",
        _ => return None,
    })
}

/// The event of a mapped line (`None` when it is not an image view).
pub fn to_event(l: &EdgeLine, edge: &str) -> Option<Event> {
    let path = l.url.split('?').next().unwrap_or("");
    if !is_image_path(path) || !matches!(l.method.as_str(), "GET" | "HEAD") {
        return None;
    }
    let ts = jiff::Timestamp::from_millisecond(l.ts_ms).ok()?;
    let mut e = Event {
        ts: ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        instance: Str::Owned(format!("edge:{edge}")),
        request_id: l.request_id.clone(),
        method: Str::Owned(l.method.clone()),
        status: l.status,
        bytes: if l.method == "HEAD" { 0 } else { l.bytes },
        latency_ms: l.latency_ms,
        referrer_host: l.referer.as_deref().and_then(|r| super::host_of(r.as_bytes())).map(String::from),
        format: l.content_type.as_deref().and_then(format_of).map(Str::Borrowed),
        requests: Some(1),
        edge: Some(Str::Borrowed(l.handling)),
        ..Event::default()
    };
    let Ok(split) = crate::url::split(path) else { return Some(e) };
    if let Some(src) = split.checked_source().ok().and_then(|s| crate::source::parse(s).ok()) {
        e.key = Some(src.key());
        e.source = Some(Str::Borrowed(src.kind()));
    }
    let opts = &split.options;
    let arg = |names: &[&str]| {
        opts.iter().find_map(|o| {
            let (n, a) = o.split_once(':')?;
            names.contains(&n).then(|| a.split(':').next().unwrap_or("").to_string())
        })
    };
    e.variant = Some(opts.join("/"));
    let explicit = arg(&["f", "format", "ext"]).is_some_and(|f| f != "auto")
        || split.extension.as_deref().is_some_and(|x| x != "auto");
    e.negotiated = Some(!explicit);
    e.accept = Some(Str::Borrowed(l.accept.as_deref().map(accept_class).unwrap_or("legacy")));
    let dpr = l
        .dpr
        .as_deref()
        .or(arg(&["dpr"]).as_deref())
        .and_then(|d| d.trim().parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0)
        .unwrap_or(1.0);
    let url_w = arg(&["w", "width"]).and_then(|w| w.parse::<f64>().ok()).unwrap_or(0.0);
    let hint_w = l.width.as_deref().and_then(|w| w.trim().parse::<f64>().ok()).unwrap_or(0.0);
    let target = if hint_w > 0.0 { hint_w } else { (url_w * dpr).round() };
    let target = target.clamp(0.0, u32::MAX as f64) as u32;
    let save_data = l.save_data.as_deref().is_some_and(|s| s.trim().eq_ignore_ascii_case("on"));
    let (db, wb) = (dpr_bucket(Some(dpr)), width_bucket(target));
    e.dpr = Some(dpr);
    e.target_width = Some(target);
    e.dpr_bucket = Some(Str::Borrowed(db));
    e.width_bucket = Some(Str::Borrowed(wb));
    e.save_data = Some(save_data);
    e.device = Some(format!("dpr{db}/{wb}{}", if save_data { "/save-data" } else { "" }));
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/sig123/w:320/plain/local:///photos/cat.jpg";

    #[test]
    fn varnishncsa_lines_map_to_events() {
        let mut p = Parser::new(EdgeFormat::Varnish, None);
        let line = format!(
            r#"{{"ts_ms":1740868200123,"method":"GET","url":"{PATH}?x=1","status":200,"bytes":"1234","duration_us":152,"handling":"hit","request_id":"edge-1-2","referer":"https://Shop.example/p","accept":"image/avif","dpr":"2","width":"","save_data":"on","content_type":"image/avif"}}"#
        );
        let e = p.parse(&line, "varnish").unwrap().unwrap();
        assert_eq!(e.ts, "2025-03-01T22:30:00.123Z");
        assert_eq!((e.key.as_deref(), e.source.as_deref()), (Some("photos/cat.jpg"), Some("local")));
        assert_eq!((e.edge.as_deref(), e.request_id.as_deref()), (Some("hit"), Some("edge-1-2")));
        assert_eq!((e.status, e.bytes, e.latency_ms), (200, 1234, 0.152));
        assert_eq!((e.format.as_deref(), e.accept.as_deref(), e.negotiated), (Some("avif"), Some("avif"), Some(true)));
        assert_eq!(e.variant.as_deref(), Some("w:320"));
        assert_eq!(e.device.as_deref(), Some("dpr2/le640/save-data"));
        assert_eq!(e.referrer_host.as_deref(), Some("shop.example"));
        assert_eq!(e.instance, "edge:varnish");
        // `-` bytes (nothing sent), a miss, an explicit format.
        let line = r#"{"ts_ms":1740868200123,"method":"GET","url":"/s/f:webp/plain/local:///a.jpg","status":304,"bytes":"-","duration_us":9000,"handling":"miss","request_id":"","accept":"","content_type":""}"#;
        let e = p.parse(line, "v").unwrap().unwrap();
        assert_eq!((e.bytes, e.edge.as_deref(), e.request_id, e.negotiated), (0, Some("miss"), None, Some(false)));
        // Not views: the API, health, other methods; broken lines are errors.
        for skip in [
            r#"{"ts_ms":1,"method":"GET","url":"/v1/analytics","status":200,"handling":"pass"}"#,
            r#"{"ts_ms":1,"method":"GET","url":"/healthz","status":200,"handling":"pass"}"#,
            r#"{"ts_ms":1,"method":"BAN","url":"/","status":200,"handling":"synth"}"#,
            "",
        ] {
            assert_eq!(p.parse(skip, "v").unwrap(), None, "{skip}");
        }
        assert!(p.parse("{not json", "v").is_err());
        assert!(p.parse(r#"{"ts_ms":1}"#, "v").is_err());
    }

    #[test]
    fn cloudfront_standard_and_real_time_lines() {
        let mut p = Parser::new(EdgeFormat::Cloudfront, None);
        assert_eq!(p.parse("#Version: 1.0", "cf").unwrap(), None);
        let header = format!("#Fields: {}", CLOUDFRONT_STANDARD.join(" ").replace("cs(host)", "cs(Host)"));
        assert_eq!(p.parse(&header, "cf").unwrap(), None);
        let line = [
            "2019-12-04",
            "21:02:31",
            "LAX1",
            "392",
            "192.0.2.100",
            "GET",
            "d111111abcdef8.cloudfront.net",
            PATH,
            "200",
            "https://www.example.com/a%20b",
            "Mozilla/5.0",
            "-",
            "-",
            "Hit",
            "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
            "d111111abcdef8.cloudfront.net",
            "https",
            "23",
            "0.001",
            "-",
            "TLSv1.2",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "Hit",
            "HTTP/2.0",
            "-",
            "-",
            "11040",
            "0.001",
            "Hit",
            "image/webp",
            "78",
            "-",
            "-",
        ]
        .join("\t");
        let e = p.parse(&line, "cf").unwrap().unwrap();
        assert_eq!(e.ts, "2019-12-04T21:02:31.000Z");
        assert_eq!((e.key.as_deref(), e.edge.as_deref(), e.bytes), (Some("photos/cat.jpg"), Some("hit"), 392));
        assert_eq!(e.request_id.as_deref(), Some("SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ=="));
        assert_eq!((e.format.as_deref(), e.latency_ms), (Some("webp"), 1.0));
        assert_eq!(e.referrer_host.as_deref(), Some("www.example.com"));
        let refresh = line.replace("\tHit\t", "\tRefreshHit\t");
        assert_eq!(p.parse(&refresh, "cf").unwrap().unwrap().edge.as_deref(), Some("miss"));
        // Real-time logs: the fields configured, in order; epoch seconds.
        let mut rt = Parser::new(
            EdgeFormat::Cloudfront,
            Some("timestamp,cs-method,cs-uri-stem,sc-status,sc-bytes,x-edge-result-type,x-edge-request-id,time-taken,cs-accept,sc-content-type"),
        );
        let line =
            format!("1617136830.232\tGET\t{PATH}\t200\t500\tMiss\tabc==\t0.250\timage/avif,image/webp\timage/avif");
        let e = rt.parse(&line, "cf").unwrap().unwrap();
        assert_eq!(
            (e.ts.as_str(), e.edge.as_deref(), e.accept.as_deref()),
            ("2021-03-30T20:40:30.232Z", Some("miss"), Some("avif"))
        );
        assert_eq!(e.latency_ms, 250.0);
    }

    #[test]
    fn cloudflare_logpush_lines() {
        let mut p = Parser::new(EdgeFormat::Cloudflare, None);
        let line = format!(
            r#"{{"CacheCacheStatus":"hit","ClientRequestMethod":"GET","ClientRequestURI":"{PATH}","ClientRequestReferer":"","EdgeResponseBytes":2048,"EdgeResponseContentType":"image/avif","EdgeResponseStatus":200,"EdgeStartTimestamp":1740868200123000000,"EdgeTimeToFirstByteMs":12,"RayID":"7d1a2b3c4d5e6f70"}}"#
        );
        let e = p.parse(&line, "cloudflare").unwrap().unwrap();
        assert_eq!((e.ts.as_str(), e.edge.as_deref(), e.bytes), ("2025-03-01T22:30:00.123Z", Some("hit"), 2048));
        assert_eq!((e.key.as_deref(), e.request_id.as_deref()), (Some("photos/cat.jpg"), Some("7d1a2b3c4d5e6f70")));
        let miss = line.replace("\"hit\"", "\"expired\"").replace("1740868200123000000", "\"2025-03-01T22:30:00Z\"");
        let e = p.parse(&miss, "cloudflare").unwrap().unwrap();
        assert_eq!((e.ts.as_str(), e.edge.as_deref()), ("2025-03-01T22:30:00.000Z", Some("miss")));
        let dynamic = line.replace("\"hit\"", "\"dynamic\"");
        assert_eq!(p.parse(&dynamic, "cf").unwrap().unwrap().edge.as_deref(), Some("pass"));
    }

    #[test]
    fn fastly_lines() {
        let mut p = Parser::new(EdgeFormat::Fastly, None);
        let line = format!(
            r#"{{"timestamp":"2025-03-01T22:30:00Z","method":"GET","url":"{PATH}","status":200,"bytes":900,"duration_us":1500,"handling":"HIT-STALE","request_id":"6f1c…","accept":"image/webp","content_type":"image/webp"}}"#
        );
        let e = p.parse(&line, "fastly").unwrap().unwrap();
        assert_eq!((e.edge.as_deref(), e.format.as_deref(), e.latency_ms), (Some("hit"), Some("webp"), 1.5));
        assert_eq!(e.key.as_deref(), Some("photos/cat.jpg"));
        for (state, want) in [("MISS", "miss"), ("PASS", "pass"), ("HIT-SYNTH", "synth"), ("ERROR", "synth")] {
            let l = line.replace("HIT-STALE", state);
            assert_eq!(p.parse(&l, "f").unwrap().unwrap().edge.as_deref(), Some(want), "{state}");
        }
    }

    #[test]
    fn accept_classes_match_the_edge() {
        assert_eq!(accept_class("image/avif,image/webp,*/*"), "avif");
        assert_eq!(accept_class("image/avif;q=0,image/webp"), "webp");
        assert_eq!(accept_class("legacy"), "legacy");
        assert_eq!(accept_class("text/html"), "legacy");
    }
}
