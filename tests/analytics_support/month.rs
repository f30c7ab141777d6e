//! A generated stretch of edge and origin traffic in the event store's layout, for the rollup
//! tests (tests/analytics_edge.rs) and the report bench (benches/analytics.rs).

use std::path::Path;

use imago::analytics::{store, Event};

/// `hours` hours of generated traffic ending at `end`: per hour `per_hour` edge lines (90 %
/// hits) over `images` images, the origin's events of the misses (same request ids, some in the
/// next hour), and some direct requests.
pub fn generate(dir: &Path, end: jiff::Timestamp, hours: i64, per_hour: usize, images: usize) -> usize {
    let codec = store::Codec::Zstd;
    let mut total = 0;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let first = end.as_second() / 3600 - hours;
    for h in first..first + hours {
        let (mut own, mut fwd, mut origin) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..per_hour {
            let r = next();
            let at = h * 3600 + (i as i64 * 3600 / per_hour as i64);
            let ts = jiff::Timestamp::from_second(at).unwrap().strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string();
            let key = format!("img/{}.jpg", (r >> 8) as usize % images);
            let fmt = ["avif", "webp", "jpeg"][(r >> 20) as usize % 3];
            let id = format!("edge-t-{h}-{i}");
            let e = Event {
                ts: ts.clone(),
                instance: "edge:gen".into(),
                request_id: Some(id.clone()),
                method: "GET".into(),
                status: if r % 97 == 0 { 404 } else { 200 },
                bytes: 1000 + r % 5000,
                latency_ms: (r % 1000) as f64 / 10.0,
                key: Some(key.clone()),
                source: Some("local".into()),
                format: Some(fmt.into()),
                variant: Some(format!("w:{}", 100 * (1 + (r >> 30) % 5))),
                dpr_bucket: Some(["1", "2", "3"][(r >> 33) as usize % 3].into()),
                width_bucket: Some("le640".into()),
                device: Some("dpr2/le640".into()),
                requests: Some(1),
                referrer_host: Some(format!("site{}.example", r % 7)),
                edge: Some(if r % 10 == 0 { "miss" } else { "hit" }.into()),
                ..Event::default()
            };
            if r % 10 == 0 {
                // The origin's event of the miss, 30 s later (across the hour for the last ones).
                let oat = (at + 30).min((first + hours) * 3600 - 1);
                let ots = jiff::Timestamp::from_second(oat).unwrap().strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string();
                let o = Event {
                    ts: ots,
                    instance: "pod-1".into(),
                    edge: None,
                    cache: Some("miss".into()),
                    source_bytes: Some(50_000),
                    requests: None,
                    ..e.clone()
                };
                origin.push(o);
                fwd.push(e);
            } else {
                own.push(e);
            }
            if r % 50 == 0 {
                let d = Event {
                    ts: ts.clone(),
                    instance: "pod-1".into(),
                    request_id: Some(format!("direct-{h}-{i}")),
                    method: "GET".into(),
                    status: 200,
                    bytes: 777,
                    latency_ms: 3.0,
                    key: Some(key),
                    cache: Some("hit".into()),
                    format: Some("webp".into()),
                    ..Event::default()
                };
                origin.push(d);
            }
        }
        let part = store::partition_of(
            &jiff::Timestamp::from_second(h * 3600).unwrap().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
        .unwrap();
        total += own.len() + fwd.len() + origin.len();
        let mut by_part: std::collections::BTreeMap<String, Vec<Event>> = Default::default();
        for o in origin {
            by_part.entry(store::partition_of(&o.ts).unwrap()).or_default().push(o);
        }
        let write = |name: String, evs: &[Event]| {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, store::encode(evs, codec).unwrap()).unwrap();
        };
        write(format!("{part}/~edge-gen-own-{h}.jsonl.zst"), &own);
        write(format!("{part}/~edge-gen-fwd-{h}.jsonl.zst"), &fwd);
        for (p, evs) in by_part {
            write(format!("{p}/pod-1-{h}.jsonl.zst"), &evs);
        }
    }
    total
}
