//! Ticket issuing cost (criterion): plan + sign + JSON, the work behind one `POST /v1/uploads`
//! (no I/O: tickets without `sha256` never look at the store). Embedded and S3 mode, PUT and POST.
//! The throughput column is tickets per second on one core. `make bench` runs it.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use imago::config::{List, RawConfig};
use imago::upload::{TicketRequest, Uploads};
use jiff::Timestamp;

fn uploads(s3: bool, root: &std::path::Path) -> Uploads {
    let mut raw = RawConfig {
        key: List::from_strs(&["943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881"]),
        salt: List::from_strs(&["520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5"]),
        api_keys: List::from_strs(&["bench-api-key-0123456789"]),
        local_root: root.to_path_buf(),
        public_url: Some("https://img.example.com".into()),
        ..RawConfig::default()
    };
    if s3 {
        // Presigning is local computation: the endpoint is never contacted here.
        raw.s3_endpoint = Some("http://127.0.0.1:9".into());
        raw.s3_region = "garage".into();
        raw.s3_bucket = Some("images".into());
        raw.s3_access_key_id = Some("GK0123456789abcdef01234567".into());
        raw.s3_secret_access_key = Some("ab".repeat(32));
    }
    Uploads::new(&raw.validate(false).expect("config")).expect("uploads")
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = c.benchmark_group("upload_ticket");
    g.throughput(Throughput::Elements(1));
    for (mode, s3) in [("embedded", false), ("s3", true)] {
        let up = uploads(s3, dir.path());
        for method in ["PUT", "POST"] {
            let req = TicketRequest {
                content_type: "image/jpeg".into(),
                content_length: Some(204_800),
                filename: Some("holiday.jpg".into()),
                method: Some(method.into()),
                ..Default::default()
            };
            g.bench_function(format!("{mode}_{method}"), |b| {
                b.iter(|| {
                    let now = Timestamp::now();
                    let plan = up.plan(&req, &now).expect("plan");
                    let t = up.ticket(&plan, false, &now).expect("ticket");
                    serde_json::to_vec(&t).expect("json")
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
