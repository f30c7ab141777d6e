//! imgproxy's options beyond the core set over real HTTP (issue #20): `fn`/`att` headers, `raw`,
//! `skp`, zoom/pixelate variants in the cache key, bad arguments, and the per-URL security
//! options (403 unless allowed; only lowering, with the server limit's own error code).

mod common;

use common::*;

const PHOTO: &str = "local:///orientation/Landscape_1.jpg";

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filename_and_attachment_set_content_disposition() {
    let s = start(&["orientation/Landscape_1.jpg"], |_| {}).await;
    let r = s.get(&s.url("w:50", PHOTO, Some("png"))).await;
    assert_eq!(header(&r, "content-disposition"), "inline; filename=\"image.png\"");
    let r = s.get(&s.url("w:50/fn:holiday/att:1", PHOTO, Some("webp"))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-disposition"), "attachment; filename=\"holiday.webp\"");
    let r = s.get(&s.url("w:50/return_attachment:t", PHOTO, Some("jpg"))).await;
    assert_eq!(header(&r, "content-disposition"), "attachment; filename=\"image.jpg\"");
    // base64url UTF-8 name (`fn:{b64}:t`): ASCII fallback plus RFC 5987 `filename*`.
    let r = s.get(&s.url("w:50/fn:w6l0w6kgMQ:t", PHOTO, Some("png"))).await;
    assert_eq!(
        header(&r, "content-disposition"),
        "inline; filename=\"_t_ 1.png\"; filename*=UTF-8''%C3%A9t%C3%A9%201.png"
    );
    // A second request (a cache hit) answers the same header; another name is another variant.
    let r = s.get(&s.url("w:50/fn:w6l0w6kgMQ:t", PHOTO, Some("png"))).await;
    assert_eq!(header(&r, "x-imago-cache"), "hit");
    assert!(header(&r, "content-disposition").contains("filename*=UTF-8''%C3%A9t%C3%A9%201.png"));
    let a = s.get(&s.url("w:50/fn:a", PHOTO, Some("png"))).await;
    let b = s.get(&s.url("w:50/fn:b", PHOTO, Some("png"))).await;
    assert_ne!(header(&a, "etag"), header(&b, "etag"));
    assert_eq!(header(&b, "content-disposition"), "inline; filename=\"b.png\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_streams_the_source_without_a_worker() {
    let s = start(&["orientation/Landscape_1.jpg"], |_| {}).await;
    s.put("notes.txt", b"just some text, not an image");
    let before = s.transforms();
    let r = s.get(&s.url("raw:1/w:10", PHOTO, Some("png"))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "image/jpeg");
    assert_eq!(r.bytes().await.unwrap().as_ref(), fixture("orientation/Landscape_1.jpg").as_slice());
    assert_eq!(s.transforms(), before, "raw used a worker");
    // Its admission place is given back.
    assert_eq!(s.state.workers.stats.admitted.load(std::sync::atomic::Ordering::SeqCst), 0);
    // It takes an admission place like any miss: with every place held, raw is refused too.
    let held: Vec<_> = std::iter::from_fn(|| s.state.workers.admit().ok()).collect();
    assert!(!held.is_empty());
    assert_error(s.get(&s.url("raw:1/cb:full", PHOTO, None)).await, 429, "busy").await;
    drop(held);
    assert_eq!(s.get(&s.url("raw:1/cb:free", PHOTO, None)).await.status(), 200);
    // Still signed; not-an-image is refused.
    let url = s.url("raw:1", PHOTO, None);
    let tampered = url.replacen("/raw:1/", "/raw:t/", 1);
    assert_error(s.get(&tampered).await, 403, "invalid-signature").await;
    assert_error(s.get(&s.url("raw:1", "local:///notes.txt", None)).await, 415, "unsupported-format").await;
    // Still limited by the server's source size.
    let small = start(&["orientation/Landscape_1.jpg"], |c| c.max_src_bytes = 1000).await;
    assert_error(small.get(&small.url("raw:1", PHOTO, None)).await, 413, "source-too-large").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_options_reach_the_output() {
    let s = start(&["orientation/Landscape_1.jpg"], |_| {}).await;
    let dims = |b: &[u8]| {
        let i = decode(b);
        (i.width(), i.height())
    };
    let r = s.get(&s.url("w:100/z:2", PHOTO, Some("png"))).await;
    assert_eq!(dims(&r.bytes().await.unwrap()), (200, 133));
    let r = s.get(&s.url("rs:fit:100:100/exar:1", PHOTO, Some("png"))).await;
    assert_eq!(dims(&r.bytes().await.unwrap()), (100, 100));
    let plain = s.get(&s.url("w:100", PHOTO, Some("png"))).await;
    let (etag, plain) = (header(&plain, "etag"), plain.bytes().await.unwrap());
    for o in ["w:100/pix:5", "w:100/ra:nearest", "w:100/eth:1", "w:100/skp:png"] {
        let r = s.get(&s.url(o, PHOTO, Some("png"))).await;
        assert_eq!(r.status(), 200, "{o}");
        assert_ne!(header(&r, "etag"), etag, "{o}: the option is not in the variant key");
        let b = r.bytes().await.unwrap();
        assert_eq!(dims(&b), (100, 67), "{o}");
        if o.contains("pix") || o.contains("ra:") {
            assert_ne!(b, plain, "{o}");
        }
    }
    let r = s.get(&s.url("w:100/skp:jpg", PHOTO, None)).await;
    assert_eq!(header(&r, "content-type"), "image/jpeg");
    assert_eq!(r.bytes().await.unwrap().len(), fixture("orientation/Landscape_1.jpg").len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_get_invalid_option() {
    let s = start(&["orientation/Landscape_1.jpg"], |_| {}).await;
    for o in [
        "z:0",
        "z:x",
        "exar:2",
        "ra:bicubic",
        "eth:yes",
        "pix:-3",
        "skp:exe",
        "raw:maybe",
        "fn:@@:t",
        "att:2",
        "fn:AA:t",
    ] {
        let b = assert_error(s.get(&s.url(o, PHOTO, None)).await, 400, "invalid-option").await;
        let name = o.split(':').next().unwrap();
        assert!(b["message"].as_str().unwrap().contains(&format!("`{name}`")), "{o}: {b}");
    }
    assert_eq!(s.transforms(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_options_are_refused_unless_allowed() {
    let s = start(&["orientation/Landscape_1.jpg"], |c| {
        c.presets.insert("safe".into(), "msr:1".into());
    })
    .await;
    for o in ["msr:1", "max_src_file_size:10", "maf:1", "mafr:1", "mrd:10", "pr:safe", "msfs:0"] {
        let b = assert_error(s.get(&s.url(o, PHOTO, None)).await, 403, "security-options-disabled").await;
        assert!(b["message"].as_str().unwrap().contains("IMAGO_ALLOW_SECURITY_OPTIONS"), "{b}");
    }
    assert_eq!(s.get(&s.url("w:10", PHOTO, None)).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_options_lower_but_never_raise_limits() {
    let size = fixture("orientation/Landscape_1.jpg").len() as u64;
    let open = start(&["orientation/Landscape_1.jpg"], |c| c.allow_security_options = true).await;
    let tight = start(&["orientation/Landscape_1.jpg"], |c| {
        c.allow_security_options = true;
        c.max_src_megapixels = 2.0;
    })
    .await;
    let small = start(&["orientation/Landscape_1.jpg"], |c| {
        c.allow_security_options = true;
        c.max_src_bytes = size - 1;
    })
    .await;
    // Source resolution (1800×1200 = 2.16 MP).
    assert_error(tight.get(&tight.url("w:10", PHOTO, None)).await, 422, "image-too-large").await;
    assert_error(open.get(&open.url("w:10/msr:2", PHOTO, None)).await, 422, "image-too-large").await;
    assert_error(tight.get(&tight.url("w:10/msr:100", PHOTO, None)).await, 422, "image-too-large").await;
    assert_eq!(open.get(&open.url("w:10/msr:3", PHOTO, None)).await.status(), 200);
    // Source file size.
    let url = format!("w:10/msfs:{}", size - 1);
    assert_error(open.get(&open.url(&url, PHOTO, None)).await, 413, "source-too-large").await;
    assert_error(small.get(&small.url("w:10", PHOTO, None)).await, 413, "source-too-large").await;
    let url = format!("w:10/msfs:{}", size * 100);
    assert_error(small.get(&small.url(&url, PHOTO, None)).await, 413, "source-too-large").await;
    assert_eq!(open.get(&open.url(&format!("w:10/msfs:{size}"), PHOTO, None)).await.status(), 200);
    // The same source, cached by a looser URL first, is still refused under a lower msfs.
    let url = format!("w:11/msfs:{}", size - 1);
    assert_error(open.get(&open.url(&url, PHOTO, None)).await, 413, "source-too-large").await;
    // Result dimension.
    let loose = start(&["orientation/Landscape_1.jpg"], |c| {
        c.allow_security_options = true;
        c.max_output_dimension = 300;
        c.width_ladder = imago::config::NumList::from_strs(&["64", "256"]);
    })
    .await;
    assert_error(loose.get(&loose.url("w:400", PHOTO, None)).await, 422, "output-too-large").await;
    assert_error(open.get(&open.url("w:400/mrd:300", PHOTO, None)).await, 422, "output-too-large").await;
    assert_error(loose.get(&loose.url("w:400/mrd:60000", PHOTO, None)).await, 422, "output-too-large").await;
    assert_eq!(open.get(&open.url("w:300/mrd:300", PHOTO, None)).await.status(), 200);
    assert_eq!(open.get(&open.url("w:300/mrd:0/msfs:0", PHOTO, None)).await.status(), 200);
    // raw is limited by msfs too.
    let url = format!("raw:1/msfs:{}", size - 1);
    assert_error(open.get(&open.url(&url, PHOTO, None)).await, 413, "source-too-large").await;
}
