//! The JSON writer of event lines: [`Record::write`] appends one line's object without a
//! serialiser (the field order and number forms of [`super::Event`]), [`VariantSpec::write`] the
//! resolved options, [`Subject::json`] the per-URL fields (once per [`Subject`]),
//! [`rfc3339_bytes`] the timestamp; the writer task calls them once per event.

use super::record::{Record, Subject, VariantSpec};
use crate::metrics::{dpr_bucket, width_bucket};

impl VariantSpec {
    /// Appends the summary (only `[a-z0-9:/.-]`: nothing to escape).
    pub fn write(&self, out: &mut Vec<u8>) {
        use crate::options::Quality;
        out.extend_from_slice(b"rs:");
        // The option's own (kebab-case) name, as serde spells it, without its quotes.
        let mut name = [0u8; 24];
        let mut w = &mut name[..];
        if serde_json::to_writer(&mut w, &self.resizing).is_ok() {
            let len = 24 - w.len();
            out.extend(name[..len].iter().filter(|b| **b != b'"'));
        }
        out.extend_from_slice(b"/w:");
        uint(out, u64::from(self.width));
        out.extend_from_slice(b"/h:");
        uint(out, u64::from(self.height));
        out.extend_from_slice(b"/dpr:");
        uint(out, u64::from(self.dpr_centi / 100));
        if !self.dpr_centi.is_multiple_of(100) {
            let c = self.dpr_centi % 100;
            out.extend_from_slice(&[b'.', b'0' + (c / 10) as u8, b'0' + (c % 10) as u8]);
        }
        out.extend_from_slice(b"/f:");
        out.extend_from_slice(self.format.as_bytes());
        out.extend_from_slice(b"/q:");
        match self.quality {
            Quality::Default => out.extend_from_slice(b"default"),
            Quality::Auto => out.extend_from_slice(b"auto"),
            Quality::Fixed(q) => uint(out, u64::from(q)),
        }
    }
}

/// A JSON string (escaped as RFC 8259 requires).
#[inline]
pub(super) fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Keys, hosts and ids almost never need escaping: one scan, one copy.
    if !bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    escaped(out, bytes);
}

#[cold]
pub(super) fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[inline]
pub(super) fn uint(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A non-negative number with exactly three decimals (always a JSON float, so readers type the
/// column as DOUBLE); `null` when not finite.
#[inline]
pub(super) fn millis(out: &mut Vec<u8>, v: f64) {
    if !v.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let m = (v.abs() * 1000.0).round().min(9.0e18) as u64;
    if v < 0.0 && m > 0 {
        out.push(b'-');
    }
    uint(out, m / 1000);
    out.push(b'.');
    let f = m % 1000;
    out.extend_from_slice(&[b'0' + (f / 100) as u8, b'0' + (f / 10 % 10) as u8, b'0' + (f % 10) as u8]);
}

#[inline]
pub(super) fn field(out: &mut Vec<u8>, name: &str) {
    out.push(b',');
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

#[inline]
pub(super) fn opt_str(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

#[inline]
pub(super) fn opt_uint(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(n) => uint(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

#[inline]
pub(super) fn opt_bool(out: &mut Vec<u8>, v: Option<bool>) {
    out.extend_from_slice(match v {
        Some(true) => b"true",
        Some(false) => b"false",
        None => b"null",
    });
}

#[inline]
pub(super) fn opt_millis(out: &mut Vec<u8>, v: Option<f64>) {
    match v {
        Some(x) => millis(out, x),
        None => out.extend_from_slice(b"null"),
    }
}

/// The per-URL fields of a line (`null`s without a subject).
pub(super) fn subject_fields(out: &mut Vec<u8>, s: Option<&Subject>) {
    field(out, "key");
    opt_str(out, s.map(|s| &*s.key));
    field(out, "source");
    opt_str(out, s.map(|s| s.source));
    let n = s.and_then(|s| s.neg.as_ref());
    field(out, "variant");
    match n {
        Some(n) => {
            out.push(b'"');
            n.variant.write(out);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    field(out, "negotiated");
    opt_bool(out, n.map(|n| n.negotiated));
    field(out, "accept");
    opt_str(out, n.map(|n| n.accept));
    field(out, "target_width");
    opt_uint(out, n.map(|n| u64::from(n.target_width)));
    field(out, "dpr");
    opt_millis(out, n.map(|n| n.dpr));
    let (dpr_b, width_b) = match n {
        Some(n) => (Some(dpr_bucket(Some(n.dpr))), Some(width_bucket(n.target_width))),
        None => (None, None),
    };
    field(out, "dpr_bucket");
    opt_str(out, dpr_b);
    field(out, "width_bucket");
    opt_str(out, width_b);
    field(out, "save_data");
    opt_bool(out, n.map(|n| n.save_data));
    field(out, "device");
    match (n, dpr_b, width_b) {
        (Some(n), Some(d), Some(w)) => {
            out.extend_from_slice(b"\"dpr");
            out.extend_from_slice(d.as_bytes());
            out.push(b'/');
            out.extend_from_slice(w.as_bytes());
            if n.save_data {
                out.extend_from_slice(b"/save-data");
            }
            out.push(b'"');
        }
        _ => out.extend_from_slice(b"null"),
    }
}

impl Subject {
    /// `,"key":…,"device":…` (the per-URL fields of a line), made on first use.
    pub(super) fn json(&self) -> &[u8] {
        self.json.get_or_init(|| {
            let mut out = Vec::with_capacity(256);
            subject_fields(&mut out, Some(self));
            out.into_boxed_slice()
        })
    }
}

impl Record {
    /// Appends the JSON object (no newline): the fields of [`Event`], in the same order.
    pub fn write(&self, out: &mut Vec<u8>, instance: &str, ts: &[u8; 24]) {
        out.extend_from_slice(b"{\"ts\":\"");
        out.extend_from_slice(ts);
        out.push(b'"');
        field(out, "instance");
        string(out, instance);
        field(out, "request_id");
        let mut buf = [0; ulid::ULID_LEN];
        opt_str(out, self.request_id.as_ref().map(|r| r.as_str(&mut buf)));
        field(out, "method");
        string(out, self.method.as_str());
        field(out, "status");
        uint(out, u64::from(self.status));
        field(out, "error");
        opt_str(out, self.error);
        field(out, "cache");
        opt_str(out, self.cache);
        field(out, "bytes");
        uint(out, self.bytes);
        field(out, "latency_ms");
        millis(out, self.latency_ms);
        let t = self.timings;
        field(out, "fetch_ms");
        opt_millis(out, t.map(|t| t[0]));
        field(out, "transform_ms");
        opt_millis(out, t.map(|t| t[1]));
        field(out, "encode_ms");
        opt_millis(out, t.map(|t| t[2]));
        field(out, "referrer_host");
        opt_str(out, self.referrer_host.as_deref());
        let o = self.out;
        field(out, "format");
        opt_str(out, o.map(|o| o.format));
        field(out, "source_format");
        opt_str(out, o.map(|o| o.source_format));
        field(out, "width");
        opt_uint(out, o.map(|o| u64::from(o.width)));
        field(out, "height");
        opt_uint(out, o.map(|o| u64::from(o.height)));
        field(out, "source_bytes");
        opt_uint(out, o.map(|o| o.source_bytes));
        match &self.subject {
            Some(s) => out.extend_from_slice(s.subject().json()),
            None => subject_fields(out, None),
        }
        out.extend_from_slice(b",\"requests\":1}");
    }
}

/// A time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC), without allocating or a calendar library (it
/// runs once per request). Days to civil date after Howard Hinnant's `civil_from_days`; years
/// 0-9999.
pub fn rfc3339_bytes(t: std::time::SystemTime) -> [u8; 24] {
    let ms = match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    };
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, v: i64| {
        let mut v = v.clamp(0, 10i64.pow(width as u32) - 1);
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, h);
    put(14, 2, m);
    put(17, 2, s);
    put(20, 3, milli);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::record::fixtures::full;
    use crate::analytics::record::Event;
    use std::sync::Arc;
    use std::time::Duration;

    fn line(r: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        r.write(&mut out, "host-1", &rfc3339_bytes(r.at));
        out
    }

    /// The top-level keys of a JSON object, in order.
    fn top_keys(json: &str) -> Vec<String> {
        let (mut depth, mut in_str, mut esc) = (0, false, false);
        let (mut cur, mut last, mut out) = (String::new(), None::<String>, Vec::new());
        for c in json.chars() {
            if in_str {
                if esc {
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else if c == '"' {
                    in_str = false;
                    last = Some(std::mem::take(&mut cur));
                    continue;
                }
                cur.push(c);
                continue;
            }
            match c {
                '"' => in_str = true,
                '{' | '[' => depth += 1,
                '}' | ']' => depth -= 1,
                ':' if depth == 1 => out.extend(last.take()),
                _ => {}
            }
            if c != '"' && !c.is_whitespace() && c != ':' {
                last = None;
            }
        }
        out
    }

    fn keys(v: &serde_json::Value) -> Vec<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn lines_are_events_with_the_same_fields_in_order() {
        let out = line(&full());
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        let ev: Event = serde_json::from_slice(&out).unwrap();
        assert_eq!(ev.ts, "2025-03-01T22:30:00.123Z");
        assert_eq!(ev.instance, "host-1");
        assert_eq!(ev.key.as_deref(), Some("a/\u{e9}t\u{e9} \"x\"\n.jpg"));
        assert_eq!(ev.request_id.as_deref(), Some("r\"1\\\u{1}"));
        assert_eq!(ev.device.as_deref(), Some("dpr2/le320/save-data"));
        assert_eq!((ev.dpr_bucket.as_deref(), ev.width_bucket.as_deref()), (Some("2"), Some("le320")));
        assert_eq!(ev.variant.as_deref(), Some("rs:fill-down/w:100/h:0/dpr:2.25/f:auto/q:70"));
        assert_eq!((ev.dpr, ev.latency_ms, ev.transform_ms), (Some(2.0), 12.346, Some(0.0)));
        assert_eq!((ev.width, ev.height, ev.source_bytes, ev.bytes), (Some(100), Some(66), Some(99_999), 1234));
        assert_eq!((ev.format.as_deref(), ev.cache.as_deref()), (Some("webp"), Some("miss")));
        assert_eq!(ev.referrer_host.as_deref(), Some("example.com"));
        assert_eq!(v["dpr"].to_string(), "2.0", "floats stay floats");
        assert_eq!(top_keys(std::str::from_utf8(&out).unwrap()), top_keys(&serde_json::to_string(&ev).unwrap()));
        let mut sorted = keys(&v);
        sorted.sort();
        let mut want = keys(&serde_json::to_value(&ev).unwrap());
        want.sort();
        assert_eq!(sorted, want, "same field set");
        // The subject's fields are serialised once and reused.
        let r = full();
        let (a, b) = (line(&r), line(&r));
        assert_eq!(a, b);
        assert!(r.subject.as_ref().unwrap().subject().json.get().is_some());

        let empty = Record {
            request_id: None,
            subject: None,
            out: None,
            timings: None,
            error: Some("invalid-signature"),
            cache: None,
            referrer_host: None,
            ..full()
        };
        let ev: Event = serde_json::from_slice(&line(&empty)).unwrap();
        assert_eq!((ev.key, ev.error.as_deref(), ev.dpr, ev.fetch_ms), (None, Some("invalid-signature"), None, None));
        let source_only = Record { subject: Some(Arc::new(Subject::new("k.jpg".into(), "http", None))), ..empty };
        let ev: Event = serde_json::from_slice(&line(&source_only)).unwrap();
        assert_eq!(
            (ev.key.as_deref(), ev.source.as_deref(), ev.variant.clone()),
            (Some("k.jpg"), Some("http"), None::<String>)
        );
        assert_eq!(
            top_keys(std::str::from_utf8(&line(&source_only)).unwrap()),
            top_keys(&serde_json::to_string(&ev).unwrap())
        );
    }

    #[test]
    fn numbers() {
        let mut o = Vec::new();
        uint(&mut o, 0);
        o.push(b' ');
        uint(&mut o, u64::MAX);
        o.push(b' ');
        millis(&mut o, 0.0);
        o.push(b' ');
        millis(&mut o, 1234.5678);
        o.push(b' ');
        millis(&mut o, f64::NAN);
        assert_eq!(String::from_utf8(o).unwrap(), "0 18446744073709551615 0.000 1234.568 null");
    }

    #[test]
    fn timestamps_match_jiff() {
        let mut ms = 0i64;
        while ms < 5_000_000_000_000 {
            let st = std::time::UNIX_EPOCH + Duration::from_millis(ms as u64);
            let want = jiff::Timestamp::from_millisecond(ms).unwrap().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            assert_eq!(std::str::from_utf8(&rfc3339_bytes(st)).unwrap(), want, "{ms}");
            ms += 7_777_777_777;
        }
        for ms in [0i64, 951_782_400_123, 1_709_164_799_999, 4_107_542_400_000, 86_399_999] {
            let st = std::time::UNIX_EPOCH + Duration::from_millis(ms as u64);
            let want = jiff::Timestamp::from_millisecond(ms).unwrap().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            assert_eq!(std::str::from_utf8(&rfc3339_bytes(st)).unwrap(), want, "{ms}");
        }
    }
}
