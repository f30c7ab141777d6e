//! The report as one self-contained HTML page: inline CSS and inline SVG charts, no scripts, no
//! fonts or images from anywhere (it opens offline and passes a `default-src 'none'` CSP).

use std::fmt::Write;

use super::report::{Hour, Report, Top};

/// The Content-Security-Policy the page is served with.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// HTML-escapes text (element content and attribute values).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// 1234567 → "1,234,567".
pub fn num(n: u64) -> String {
    let s = n.to_string();
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    o
}

/// Bytes in binary units: "12.3 MiB".
pub fn bytes(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    let mut v = n.unsigned_abs() as f64;
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{sign}{v:.0} B")
    } else {
        format!("{sign}{v:.1} {}", units[u])
    }
}

fn pct(r: Option<f64>) -> String {
    r.map(|r| format!("{:.1} %", r * 100.0)).unwrap_or_else(|| "–".into())
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
        Some(v) if v >= 10.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.1} ms"),
        None => "–".into(),
    }
}

/// A round axis maximum ≥ v (1, 2, 2.5, 5 × 10^k).
fn nice_max(v: u64) -> u64 {
    if v <= 4 {
        return 4;
    }
    let mut p = 1u64;
    while p.saturating_mul(10) <= v {
        p *= 10;
    }
    for m in [1, 2, 4, 5, 8, 10] {
        let c = m * p;
        if c >= v && c.is_multiple_of(4) {
            return c;
        }
    }
    (v / 4 + 1) * 4
}

const PALETTE: &[&str] = &["#3b6ea8", "#e07b39", "#4c9a6a", "#b5485d", "#7d5ba6", "#c9a227", "#2f8f9d", "#8c6d46"];

/// Horizontal bars for a small category mix.
fn hbars(id: &str, title: &str, items: &[(String, u64)], color_offset: usize) -> String {
    let row = 28.0;
    let (label_w, bar_x, width) = (150.0, 158.0, 460.0);
    let bar_max = width - bar_x - 90.0;
    let total: u64 = items.iter().map(|(_, v)| v).sum();
    let max = items.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let h = (items.len().max(1) as f64) * row + 16.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" id="{id}" role="img" viewBox="0 0 {width} {h}" width="{width}" height="{h}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(title)
    );
    if items.is_empty() {
        let _ = write!(s, r##"<text x="10" y="26" class="muted">No data in this range</text>"##);
    }
    for (i, (label, v)) in items.iter().enumerate() {
        let y = 8.0 + i as f64 * row;
        let w = (*v as f64 / max as f64 * bar_max).max(if *v > 0 { 2.0 } else { 0.0 });
        let color = PALETTE[(i + color_offset) % PALETTE.len()];
        let share = if total > 0 { *v as f64 / total as f64 * 100.0 } else { 0.0 };
        let _ = write!(
            s,
            r#"<text x="{label_w}" y="{ty}" text-anchor="end" class="lbl">{l}</text><rect class="bar" x="{bar_x}" y="{y}" width="{w:.1}" height="{bh}" rx="3" fill="{color}"><title>{l}: {n} ({share:.1} %)</title></rect><text x="{tx:.1}" y="{ty}" class="val">{n} · {share:.0} %</text>"#,
            ty = y + 15.0,
            l = esc(label),
            bh = row - 8.0,
            n = num(*v),
            tx = bar_x + w + 6.0,
        );
    }
    s.push_str("</svg>");
    s
}

/// Buckets of the timeline: hours, or days for ranges over two weeks.
fn timeline_buckets(hours: &[Hour]) -> (Vec<(String, u64, u64)>, &'static str) {
    if hours.len() <= 14 * 24 {
        let v = hours
            .iter()
            .map(|h| (h.hour.get(5..13).unwrap_or(&h.hour).replace('T', " ") + "h", h.requests, h.errors))
            .collect();
        return (v, "hour");
    }
    let mut out: Vec<(String, u64, u64)> = Vec::new();
    for h in hours {
        let day = h.hour.get(0..10).unwrap_or(&h.hour).to_string();
        match out.last_mut() {
            Some(last) if last.0 == day => {
                last.1 += h.requests;
                last.2 += h.errors;
            }
            _ => out.push((day, h.requests, h.errors)),
        }
    }
    (out, "day")
}

/// Requests over time: bars per hour (or day), errors stacked in red.
fn timeline(hours: &[Hour]) -> String {
    let (buckets, unit) = timeline_buckets(hours);
    let (width, height) = (940.0, 280.0);
    let (left, right, top, bottom) = (64.0, 16.0, 16.0, 48.0);
    let (pw, ph) = (width - left - right, height - top - bottom);
    let max = nice_max(buckets.iter().map(|b| b.1).max().unwrap_or(0));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" id="chart-requests" role="img" viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg"><title>Requests per {unit}</title>"#
    );
    for i in 0..=4 {
        let v = max * i / 4;
        let y = top + ph - ph * i as f64 / 4.0;
        let _ = write!(
            s,
            r#"<line x1="{left}" x2="{x2}" y1="{y}" y2="{y}" class="grid"/><text x="{lx}" y="{ty}" text-anchor="end" class="axis">{n}</text>"#,
            x2 = left + pw,
            lx = left - 8.0,
            ty = y + 4.0,
            n = num(v)
        );
    }
    let n = buckets.len().max(1);
    let slot = pw / n as f64;
    let bw = (slot * 0.8).max(1.0);
    let every = n.div_ceil(8).max(1);
    for (i, (label, req, err)) in buckets.iter().enumerate() {
        let x = left + i as f64 * slot + (slot - bw) / 2.0;
        let h = ph * *req as f64 / max as f64;
        let he = ph * *err as f64 / max as f64;
        if *req > 0 {
            let _ = write!(
                s,
                r##"<rect class="bar" x="{x:.2}" y="{y:.2}" width="{bw:.2}" height="{h:.2}" fill="#3b6ea8"><title>{l}: {r} requests, {e} errors</title></rect>"##,
                y = top + ph - h,
                l = esc(label),
                r = num(*req),
                e = num(*err)
            );
        }
        if *err > 0 {
            let _ = write!(
                s,
                r##"<rect x="{x:.2}" y="{y:.2}" width="{bw:.2}" height="{he:.2}" fill="#c0392b"/>"##,
                y = top + ph - he
            );
        }
        if i % every == 0 {
            let _ = write!(
                s,
                r#"<text x="{cx:.1}" y="{ty}" text-anchor="middle" class="axis">{l}</text>"#,
                cx = left + i as f64 * slot + slot / 2.0,
                ty = top + ph + 20.0,
                l = esc(label)
            );
        }
    }
    let _ =
        write!(s, r#"<line x1="{left}" x2="{x2}" y1="{y}" y2="{y}" class="axisline"/>"#, x2 = left + pw, y = top + ph);
    if buckets.iter().all(|b| b.1 == 0) {
        let _ = write!(
            s,
            r#"<text x="{cx}" y="{cy}" text-anchor="middle" class="muted">No requests in this range</text>"#,
            cx = left + pw / 2.0,
            cy = top + ph / 2.0
        );
    }
    s.push_str("</svg>");
    s
}

/// Originals vs served bytes.
fn savings(r: &Report) -> String {
    let items = [("Originals", r.original_bytes, "#8c6d46"), ("Served", r.image_bytes_served, "#4c9a6a")];
    let (width, row, bar_x) = (460.0, 34.0, 96.0);
    let bar_max = width - bar_x - 110.0;
    let max = items.iter().map(|i| i.1).max().unwrap_or(0).max(1);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" id="chart-savings" role="img" viewBox="0 0 {width} 84" width="{width}" height="84" xmlns="http://www.w3.org/2000/svg"><title>Bytes of the originals vs bytes served</title>"#
    );
    for (i, (label, v, color)) in items.iter().enumerate() {
        let y = 8.0 + i as f64 * row;
        let w = (*v as f64 / max as f64 * bar_max).max(if *v > 0 { 2.0 } else { 0.0 });
        let _ = write!(
            s,
            r#"<text x="{lx}" y="{ty}" text-anchor="end" class="lbl">{label}</text><rect class="bar" x="{bar_x}" y="{y}" width="{w:.1}" height="24" rx="3" fill="{color}"><title>{label}: {b}</title></rect><text x="{tx:.1}" y="{ty}" class="val">{b}</text>"#,
            lx = bar_x - 8.0,
            ty = y + 17.0,
            b = bytes(*v as i64),
            tx = bar_x + w + 6.0
        );
    }
    s.push_str("</svg>");
    s
}

fn map_items(m: &std::collections::BTreeMap<String, u64>, limit: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = m.iter().map(|(k, v)| (k.clone(), *v)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if v.len() > limit {
        let rest: u64 = v[limit..].iter().map(|x| x.1).sum();
        v.truncate(limit);
        v.push(("other".into(), rest));
    }
    v
}

fn top_table(title: &str, rows: &[Top], first: &str) -> String {
    let mut s = format!(
        "<table><caption>{}</caption><thead><tr><th>#</th><th>{}</th><th class=\"n\">Requests</th><th class=\"n\">Bytes</th></tr></thead><tbody>",
        esc(title),
        esc(first)
    );
    if rows.is_empty() {
        s.push_str("<tr><td colspan=\"4\" class=\"muted\">No data</td></tr>");
    }
    for (i, t) in rows.iter().enumerate() {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"key\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            i + 1,
            esc(&t.key),
            num(t.requests),
            bytes(t.bytes as i64)
        );
    }
    s.push_str("</tbody></table>");
    s
}

fn card(label: &str, value: &str, note: &str) -> String {
    format!(
        "<div class=\"card\"><div class=\"label\">{}</div><div class=\"value\">{}</div><div class=\"note\">{}</div></div>",
        esc(label),
        esc(value),
        esc(note)
    )
}

const STYLE: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1f2933; background: #f4f6f8; }
header { background: #1f2d3d; color: #fff; padding: 20px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header p { margin: 0; color: #c8d3de; }
main { padding: 24px 32px 40px; max-width: 1100px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px; margin-bottom: 20px; }
.card { background: #fff; border-radius: 8px; padding: 14px 16px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.card .label { color: #616e7c; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 24px; font-weight: 600; margin-top: 2px; }
.card .note { color: #7b8794; font-size: 12px; }
section { background: #fff; border-radius: 8px; padding: 16px 20px; margin-bottom: 16px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
section h2 { margin: 0 0 12px; font-size: 16px; font-weight: 600; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 16px; margin-bottom: 16px; }
.legend { color: #616e7c; font-size: 12px; font-weight: 400; margin-left: 12px; }
.sw { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 10px; vertical-align: -1px; }
.grid2 section { margin-bottom: 0; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg .grid { stroke: #e4e7eb; stroke-width: 1; }
svg .axisline { stroke: #9aa5b1; stroke-width: 1; }
svg .axis { fill: #616e7c; font-size: 11px; }
svg .lbl { fill: #323f4b; font-size: 12px; }
svg .val { fill: #52606d; font-size: 12px; }
svg .muted, .muted { fill: #9aa5b1; color: #9aa5b1; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
caption { text-align: left; font-weight: 600; padding-bottom: 8px; }
th, td { padding: 5px 8px; border-bottom: 1px solid #e4e7eb; text-align: left; }
th { color: #616e7c; font-weight: 500; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.key { word-break: break-all; font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
footer { color: #7b8794; font-size: 12px; padding: 0 32px 24px; }
"#;

/// Renders the report page.
pub fn render(r: &Report) -> String {
    let mut s = String::with_capacity(64 * 1024);
    let _ = write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta http-equiv=\"Content-Security-Policy\" content=\"{}\"><title>imago analytics · {} – {}</title><style>{STYLE}</style></head><body>",
        esc(CSP),
        esc(&r.from),
        esc(&r.to)
    );
    let _ = write!(
        s,
        "<header><h1>imago analytics</h1><p>{} → {} (UTC) · {} events from {} file(s) in {}</p></header><main>",
        esc(&r.from),
        esc(&r.to),
        num(r.requests),
        num(r.files),
        esc(&r.store)
    );
    s.push_str("<div class=\"cards\">");
    s.push_str(&card("Requests", &num(r.requests), &format!("{} errors", num(r.errors))));
    s.push_str(&card("Unique images", &num(r.unique_images), ""));
    s.push_str(&card(
        "Cache hit ratio",
        &pct(r.cache_hit_ratio),
        &format!("{} without a transform", pct(r.no_transform_ratio)),
    ));
    s.push_str(&card(
        "Bytes saved",
        &pct(r.savings_ratio),
        &format!("{} of {} originals", bytes(r.bytes_saved), bytes(r.original_bytes as i64)),
    ));
    s.push_str(&card("Latency p50 / p95", &format!("{} / {}", ms(r.latency_ms.p50), ms(r.latency_ms.p95)), ""));
    s.push_str(&card("Bytes served", &bytes(r.bytes_served as i64), ""));
    s.push_str("</div>");

    let _ = write!(
        s,
        "<section><h2>Requests over time<span class=\"legend\"><span class=\"sw\" style=\"background:#3b6ea8\"></span>requests<span class=\"sw\" style=\"background:#c0392b\"></span>errors (4xx/5xx)</span></h2>{}</section>",
        timeline(&r.per_hour)
    );
    s.push_str("<div class=\"grid2\">");
    let _ = write!(
        s,
        "<section><h2>Output formats</h2>{}</section>",
        hbars("chart-formats", "Output formats", &map_items(&r.formats, 7), 0)
    );
    let _ = write!(
        s,
        "<section><h2>Savings</h2>{}<p>{} saved: variants are {} of their originals.</p></section>",
        savings(r),
        bytes(r.bytes_saved),
        pct(r.savings_ratio.map(|x| 1.0 - x))
    );
    let _ = write!(
        s,
        "<section><h2>Device pixel ratio</h2>{}</section>",
        hbars("chart-dpr", "Device pixel ratio", &map_items(&r.dpr, 7), 2)
    );
    let _ = write!(
        s,
        "<section><h2>Device width (device pixels)</h2>{}</section>",
        hbars("chart-widths", "Target width buckets", &map_items(&r.widths, 7), 4)
    );
    let _ = write!(
        s,
        "<section><h2>Device classes</h2>{}</section>",
        hbars("chart-devices", "Device classes", &map_items(&r.devices, 9), 1)
    );
    let _ = write!(
        s,
        "<section><h2>Cache outcomes</h2>{}</section>",
        hbars("chart-cache", "Cache outcomes", &map_items(&r.cache, 7), 3)
    );
    let _ = write!(
        s,
        "<section><h2>Format choice</h2>{}</section>",
        hbars("chart-negotiation", "Negotiated vs explicit format", &map_items(&r.negotiation, 3), 5)
    );
    let _ = write!(
        s,
        "<section><h2>Status codes</h2>{}</section>",
        hbars("chart-status", "Status codes", &map_items(&r.status, 9), 6)
    );
    s.push_str("</div>");
    let _ = write!(
        s,
        "<section>{}</section><section>{}</section><section>{}</section>",
        top_table("Top images by requests", &r.top_images_by_requests, "Image"),
        top_table("Top images by bytes", &r.top_images_by_bytes, "Image"),
        top_table("Top referrers", &r.top_referrers, "Referrer host")
    );
    let _ = write!(
        s,
        "</main><footer>Generated {} by imago {}. Source formats: {}. Save-Data requests: {}. Skipped lines: {}.</footer></body></html>",
        esc(&r.generated_at),
        env!("CARGO_PKG_VERSION"),
        esc(&r.source_formats.iter().map(|(k, v)| format!("{k} {}", num(*v))).collect::<Vec<_>>().join(", ")),
        num(r.save_data),
        num(r.bad_lines)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        assert_eq!(num(1234567), "1,234,567");
        assert_eq!(num(12), "12");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(-2 * 1024 * 1024), "-2.0 MiB");
        assert_eq!(esc("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
        assert_eq!(nice_max(0), 4);
        assert_eq!(nice_max(37), 40);
        assert!(nice_max(1234) >= 1234);
    }

    #[test]
    fn page_is_self_contained_and_escaped() {
        let mut r = Report { requests: 3, ..Default::default() };
        r.top_images_by_requests.push(Top {
            key: "<script>alert(1)</script>.jpg".into(),
            requests: 3,
            bytes: 10,
            edge_hits: 0,
        });
        r.formats.insert("webp".into(), 3);
        r.per_hour.push(Hour { hour: "2025-03-01T10:00:00Z".into(), requests: 3, errors: 1, bytes: 10 });
        let html = render(&r);
        assert!(!html.contains("<script"), "no scripts, and keys are escaped");
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("http://") || !html.contains("src=\"http"), "no remote resources");
        assert!(html.matches("<svg").count() >= 8, "charts");
        assert!(html.contains("id=\"chart-requests\""));
    }
}
