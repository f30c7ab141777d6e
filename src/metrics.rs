//! Prometheus metrics (text exposition at `/metrics`). Labels stay low-cardinality: no image
//! keys, only formats, buckets and outcomes.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Every metric imago exports.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub image_responses: IntCounterVec,
    pub bytes_served: IntCounter,
    pub source_bytes: IntCounter,
    pub bytes_saved: IntCounter,
    pub fetch_seconds: Histogram,
    pub transform_seconds: Histogram,
    pub encode_seconds: Histogram,
    pub request_seconds: HistogramVec,
    pub queue_depth: IntGauge,
    pub in_flight: IntGauge,
    pub workers: IntGauge,
    pub transforms: IntCounter,
    pub fetches: IntCounter,
    pub shed: IntCounterVec,
    pub upload_tickets: IntCounterVec,
    pub upload_bytes: IntCounter,
    pub upload_refusals: IntCounterVec,
    /// S3 chain credentials: fetches by source and outcome (`ok`, `error`), and seconds until
    /// the ones in use expire (set when `/metrics` is rendered; absent without the chain).
    pub s3_credential_refreshes: IntCounterVec,
    pub s3_credential_expiry: IntGaugeVec,
    /// Webhook attempts by outcome (`delivered`, `failed`, `dead`).
    pub webhook_deliveries: IntCounterVec,
    /// Edge purges (one per image and edge) by outcome (`ok`, `failed`).
    pub edge_purges: IntCounterVec,
}

fn must<T>(r: prometheus::Result<T>) -> T {
    match r {
        Ok(v) => v,
        // Metric definitions are static: a failure is a programming error caught by tests.
        Err(e) => panic!("metric definition: {e}"),
    }
}

const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = must(IntCounterVec::new(Opts::new(name, help), labels));
            must(registry.register(Box::new(c.clone())));
            c
        };
        let counter = |name: &str, help: &str| {
            let c = must(IntCounter::new(name, help));
            must(registry.register(Box::new(c.clone())));
            c
        };
        let hist = |name: &str, help: &str| {
            let h = must(Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec())));
            must(registry.register(Box::new(h.clone())));
            h
        };
        let gauge = |name: &str, help: &str| {
            let g = must(IntGauge::new(name, help));
            must(registry.register(Box::new(g.clone())));
            g
        };
        let request_seconds = must(HistogramVec::new(
            HistogramOpts::new("imago_request_seconds", "Total request latency").buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        ));
        must(registry.register(Box::new(request_seconds.clone())));
        Metrics {
            http_requests: counter_vec(
                "imago_http_requests_total",
                "HTTP requests by route and status",
                &["route", "status"],
            ),
            image_responses: counter_vec(
                "imago_image_responses_total",
                "Image responses by output format, source format, device class, negotiation and cache outcome",
                &["output_format", "source_format", "dpr", "width_bucket", "save_data", "negotiated", "cache"],
            ),
            bytes_served: counter("imago_bytes_served_total", "Image body bytes served"),
            source_bytes: counter("imago_source_bytes_total", "Source bytes read from storage or origins"),
            bytes_saved: counter(
                "imago_bytes_saved_total",
                "Original bytes minus served bytes, summed over image responses",
            ),
            fetch_seconds: hist("imago_fetch_seconds", "Source fetch latency"),
            transform_seconds: hist("imago_transform_seconds", "Decode and transform latency"),
            encode_seconds: hist("imago_encode_seconds", "Encode latency"),
            request_seconds,
            queue_depth: gauge("imago_worker_queue_depth", "Transforms waiting for a worker"),
            in_flight: gauge("imago_worker_in_flight", "Transforms running"),
            workers: gauge("imago_workers", "Transform workers"),
            transforms: counter("imago_transforms_total", "Transforms run (cache misses that reached libvips)"),
            fetches: counter("imago_fetches_total", "Source fetches"),
            shed: counter_vec("imago_shed_total", "Requests shed by reason", &["reason"]),
            upload_tickets: counter_vec(
                "imago_upload_tickets_total",
                "Upload tickets issued by store mode (embedded, s3) and method (PUT, POST)",
                &["mode", "method"],
            ),
            upload_bytes: counter("imago_upload_bytes_total", "Bytes stored by embedded-mode uploads"),
            upload_refusals: counter_vec(
                "imago_upload_refusals_total",
                "Upload, ticket, info and delete requests refused, by error code",
                &["reason"],
            ),
            s3_credential_refreshes: counter_vec(
                "imago_s3_credential_refreshes_total",
                "S3 chain credential fetches (the first included) by source and outcome (ok, error)",
                &["source", "outcome"],
            ),
            s3_credential_expiry: {
                let g = must(IntGaugeVec::new(
                    Opts::new(
                        "imago_s3_credential_expiry_seconds",
                        "Seconds until the S3 chain credentials in use expire (negative: expired)",
                    ),
                    &["source"],
                ));
                must(registry.register(Box::new(g.clone())));
                g
            },
            webhook_deliveries: counter_vec(
                "imago_webhook_deliveries_total",
                "Webhook delivery attempts, by result (delivered, failed, dead = given up)",
                &["result"],
            ),
            edge_purges: counter_vec(
                "imago_edge_purges_total",
                "Edge purges per image and edge, by result",
                &["result"],
            ),
            registry,
        }
    }

    /// Brings the S3 credential metrics up to the storage layer's counts of successful and
    /// failed fetches and the expiry of the credentials in use.
    pub fn s3_credentials(&self, source: &str, refreshes: u64, failures: u64, expires: Option<std::time::SystemTime>) {
        for (outcome, n) in [("ok", refreshes), ("error", failures)] {
            let c = self.s3_credential_refreshes.with_label_values(&[source, outcome]);
            c.inc_by(n.saturating_sub(c.get()));
        }
        if let Some(x) = expires {
            let left = match x.duration_since(std::time::SystemTime::now()) {
                Ok(d) => d.as_secs() as i64,
                Err(e) => -(e.duration().as_secs() as i64),
            };
            self.s3_credential_expiry.with_label_values(&[source]).set(left);
        }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        if enc.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// DPR bucket label: 1, 2, 3 (rounded, capped).
pub fn dpr_bucket(dpr: Option<f64>) -> &'static str {
    match dpr.unwrap_or(1.0) {
        d if d < 1.5 => "1",
        d if d < 2.5 => "2",
        _ => "3",
    }
}

/// Width bucket label for a device-pixel width.
pub fn width_bucket(w: u32) -> &'static str {
    match w {
        0 => "original",
        1..=320 => "le320",
        321..=640 => "le640",
        641..=1080 => "le1080",
        1081..=1920 => "le1920",
        _ => "gt1920",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_names() {
        let m = Metrics::new();
        m.http_requests.with_label_values(&["image", "200"]).inc();
        m.image_responses.with_label_values(&["webp", "jpeg", "2", "le1080", "false", "true", "miss"]).inc();
        let t = m.render();
        assert!(t.contains("imago_http_requests_total{route=\"image\",status=\"200\"} 1"), "{t}");
        assert!(t.contains("imago_worker_queue_depth"));
        assert_eq!(dpr_bucket(Some(2.6)), "3");
        assert_eq!(width_bucket(800), "le1080");
    }
}
