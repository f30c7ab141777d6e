//! Criterion benchmarks for the per-request CPU work before any image work: splitting the
//! path, checking the signature, parsing options and negotiating.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use imago::negotiate::{negotiate, Hints, NegotiateSettings};
use imago::options::{parse, Presets};
use imago_signing::{KeyPair, Signer, UrlBuilder, Verifier};

fn benches(c: &mut Criterion) {
    let pair = KeyPair::from_hex(&"ab".repeat(32), &"cd".repeat(32)).unwrap();
    let signer = Signer::new(pair.clone());
    let verifier = Verifier::new(vec![pair]).unwrap();
    let builder = UrlBuilder::new().resize("fill", 800, 600).gravity("sm").quality(80).extension("webp");
    let source = "local:///uploads/2026/11/28/01JDXQ7Z8Y3N4M5K6J7H8G9F0E.jpg";
    let path = builder.sign(&signer, source).unwrap();
    let presets = Presets::default();
    let neg = NegotiateSettings {
        max_dpr: 3.0,
        ladder: vec![16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840],
        ect: true,
    };

    c.bench_function("sign_url", |b| b.iter(|| builder.sign(&signer, black_box(source)).unwrap()));
    c.bench_function("split_path", |b| b.iter(|| imago::url::split(black_box(&path)).unwrap()));
    c.bench_function("verify_signature", |b| {
        let s = imago::url::split(&path).unwrap();
        b.iter(|| assert!(verifier.verify(black_box(s.signature), black_box(s.signed))))
    });
    c.bench_function("parse_options", |b| {
        let s = imago::url::split(&path).unwrap();
        b.iter(|| parse(black_box(&s.options), s.extension.as_deref(), &presets).unwrap())
    });
    c.bench_function("full_url_to_negotiated", |b| {
        let hints =
            Hints { dpr: Some(2.0), width: Some(700), viewport_width: None, save_data: false, slow_network: false };
        b.iter(|| {
            let s = imago::url::split(black_box(&path)).unwrap();
            assert!(verifier.verify(s.signature, s.signed));
            let o = parse(&s.options, s.extension.as_deref(), &presets).unwrap();
            let n = negotiate(o, "image/avif,image/webp,*/*", &hints, &neg);
            imago::cache::key(&s.source, &n)
        })
    });
}

criterion_group!(signing, benches);
criterion_main!(signing);
