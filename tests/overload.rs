//! Overload: bursts of requests for a 12 MP photo at 8× the worker count. imago sheds with
//! 429/503 + Retry-After instead of queueing without bound, admitted requests finish in bounded
//! time, and peak RSS stays below the ceiling. (Its own test binary: RSS is this process's.)

mod common;

use std::time::{Duration, Instant};

use common::*;

fn peak_rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 =
        s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).unwrap().parse().unwrap();
    kb / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bursts_at_eight_times_capacity_are_shed_not_queued() {
    const CEILING_MB: u64 = 1024;
    let workers = 2;
    let s = start(&["phone12mp.jpg"], |c| {
        c.workers = workers;
        c.queue_size = 4;
        c.queue_timeout_ms = 3000;
        c.cache_size_mb = 0;
        c.source_cache_mb = 16;
        c.memory_limit_mb = Some(CEILING_MB * 3 / 4);
        c.auto_quality = false;
    })
    .await;
    let mut statuses = Vec::new();
    let mut admitted = Vec::new();
    for burst in 0..3 {
        let mut tasks = Vec::new();
        for i in 0..workers * 8 {
            let url = s.url(&format!("w:{}/cb:{burst}-{i}", 600 + i * 10), "local:///phone12mp.jpg", Some("webp"));
            let c = s.client.clone();
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let r = c.get(&url).send().await.unwrap();
                let status = r.status().as_u16();
                let retry = r.headers().get("retry-after").is_some();
                let _ = r.bytes().await.unwrap();
                (status, retry, t.elapsed())
            }));
        }
        for t in tasks {
            let (status, retry, took) = t.await.unwrap();
            statuses.push(status);
            match status {
                200 => admitted.push(took),
                429 | 503 => assert!(retry, "{status} without Retry-After"),
                other => panic!("unexpected status {other}"),
            }
        }
    }
    let shed = statuses.iter().filter(|s| **s != 200).count();
    assert!(shed > 0, "nothing was shed: {statuses:?}");
    assert!(!admitted.is_empty());
    admitted.sort();
    let p99 = admitted[(admitted.len() - 1) * 99 / 100];
    assert!(p99 < Duration::from_secs(15), "admitted p99 {p99:?}");
    let peak = peak_rss_mb();
    println!(
        "overload: {} requests, {} shed, admitted p99 {:?}, peak RSS {peak:.0} MB (ceiling {CEILING_MB} MB)",
        statuses.len(),
        shed,
        p99
    );
    assert!(peak < CEILING_MB as f64, "peak RSS {peak:.0} MB");
    // Still healthy afterwards.
    assert_eq!(s.get(&format!("{}/healthz", s.base)).await.status(), 200);
    assert_eq!(s.get(&s.url("w:100", "local:///phone12mp.jpg", Some("jpg"))).await.status(), 200);
}
