//! Issue #21: analytics of every view, behind a CDN edge. Real Varnish (docker/varnish/default.vcl)
//! in front of imago, real `varnishncsa` writing the documented format
//! (docker/varnish/varnishncsa.format) to a file, `imago analytics import` (the binary) reading it:
//! the report counts every view once (edge hits, and misses the origin also logged, joined by the
//! request id the edge forwards), with the edge's hit ratio. Importing the same log again counts
//! nothing twice. Rollups (made for closed hours) give the same report as the raw events, and
//! DuckDB answers the docs' queries from the same files.

mod analytics_support;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use analytics_support::month::generate;
use analytics_support::*;
use common::*;
use imago::analytics::report::{self, Range};
use imago::analytics::{rollup, store, Event, Store};
use imago::config::List;
use serde_json::Value;

const IMG: &str = "gps.jpg";

/// A child process killed (and reaped) on drop, with the directory it works in.
struct Proc(Child, #[allow(dead_code)] Option<tempfile::TempDir>);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn tool(names: &[&str]) -> Option<PathBuf> {
    names.iter().map(PathBuf::from).find(|p| p.exists())
}

/// varnishd with default.vcl on loopback in front of `origin_port`: (process, base URL, -n dir).
fn start_varnish(origin_port: u16) -> Option<(Proc, String, PathBuf)> {
    let Some(varnishd) = tool(&["/usr/sbin/varnishd", "/usr/bin/varnishd"]) else {
        missing("varnishd is not installed")?;
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let vcl = std::fs::read_to_string(root().join("docker/varnish/default.vcl")).unwrap();
    let vcl = vcl
        .replace(".host = \"imago\";", ".host = \"127.0.0.1\";")
        .replace(".port = \"8080\";", &format!(".port = \"{origin_port}\";"));
    let vcl_path = dir.path().join("test.vcl");
    std::fs::write(&vcl_path, vcl).unwrap();
    let work = dir.path().join("work");
    let port = free_port();
    let child = Command::new(varnishd)
        .env("IMAGO_PURGE_TOKEN", "edge-purge-token-0123456789")
        .args(["-F", "-a", &format!("127.0.0.1:{port}"), "-f"])
        .arg(&vcl_path)
        .arg("-n")
        .arg(&work)
        .args(["-s", "malloc,64m", "-p", "vcc_allow_inline_c=off"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Some((Proc(child, Some(dir)), format!("http://127.0.0.1:{port}"), work))
}

/// `imago` (the binary) with the test server's analytics directory.
fn imago(analytics: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_imago"))
        .args(args)
        .env("IMAGO_ANALYTICS_DIR", analytics)
        .env("IMAGO_LOCAL_ROOT", analytics.parent().unwrap().join("images"))
        .env_remove("IMAGO_CONFIG")
        .env_remove("IMAGO_S3_BUCKET")
        .env_remove("IMAGO_S3_ENDPOINT")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p).map(|t| t.lines().filter(|l| !l.trim().is_empty()).count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_hits_and_origin_misses_are_counted_once_through_real_varnish() {
    let s = start(&[IMG], |c| {
        c.auto_quality = false;
        c.analytics_flush_secs = 3600;
        c.analytics_flush_events = 1_000_000;
        c.api_keys = List::from_strs(&[API_KEY]);
    })
    .await;
    let analytics = s.state.cfg.raw.analytics_dir.clone();
    let origin_port: u16 = s.base.rsplit(':').next().unwrap().parse().unwrap();
    let Some((_varnish, edge, work)) = start_varnish(origin_port) else { return };
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{edge}/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "varnish did not come up");
    let Some(ncsa) = tool(&["/usr/bin/varnishncsa", "/usr/sbin/varnishncsa"]) else {
        missing("varnishncsa is not installed");
        return;
    };
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("edge.log");
    let _ncsa = Proc(
        Command::new(ncsa)
            .arg("-n")
            .arg(&work)
            .arg("-j")
            .arg("-f")
            .arg(root().join("docker/varnish/varnishncsa.format"))
            .arg("-w")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        None,
    );
    // varnishncsa attaches to the shared log asynchronously: wait until it logs a probe request.
    let mut attached = false;
    for _ in 0..100 {
        let _ = client.get(format!("{edge}/healthz")).send().await;
        if lines(&log) > 0 {
            attached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(attached, "varnishncsa wrote nothing");

    const N: usize = 25;
    let url = s.url("w:120", &format!("local:///{IMG}"), None);
    let path = url.trim_start_matches(&s.base).to_string();
    for i in 0..N {
        let r = client
            .get(format!("{edge}{path}"))
            .header("accept", "image/avif,image/webp,*/*")
            .header("x-request-id", "client-chosen")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "request {i}");
        let xc = r.headers()["x-cache"].to_str().unwrap().to_string();
        assert_eq!(xc, if i == 0 { "MISS" } else { "HIT" }, "request {i}");
        assert!(r.headers().get("x-request-id").is_none(), "the edge's ids are not shown to clients");
    }
    // One view straight at the origin (no edge): counted too.
    assert_eq!(s.get_with(&url, &[("accept", "image/webp"), ("x-request-id", "direct-1")]).await.status(), 200);
    let flushed = s.state.analytics.flush().await;
    assert_eq!(flushed.events, 2, "the origin saw the edge's one miss and the direct request");
    let mut logged = 0;
    for _ in 0..100 {
        logged = lines(&log);
        if logged >= N + 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let image_lines: Vec<Value> =
        text.lines().filter(|l| l.contains("/plain/")).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(image_lines.len(), N, "varnishncsa logged every image request ({logged} lines)");
    let mut ids: Vec<&str> = image_lines.iter().map(|l| l["request_id"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|id| id.starts_with("edge-")), "the edge replaces the client's id: {ids:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), N, "every request has its own id");
    // The origin's event of the miss carries the id the edge logged.
    let miss = image_lines.iter().find(|l| l["handling"] == "miss").expect("one miss");
    let origin_events = events_in(&analytics);
    let forwarded = origin_events.iter().find(|e| e.request_id.as_deref() == miss["request_id"].as_str());
    assert!(forwarded.is_some_and(|e| e.cache.as_deref() == Some("miss")), "{miss} vs {origin_events:?}");

    let log_s = log.to_str().unwrap();
    for round in 0..2 {
        let (ok, out, err) =
            imago(&analytics, &["analytics", "import", "--format", "varnish", "--edge", "varnish", log_s]);
        assert!(ok, "import: {out}{err}");
        assert!(out.contains(&format!("imported {N} event(s)")), "round {round}: {out}");
        let (ok, out, err) = imago(&analytics, &["analytics", "--json", "--from", "1h", "--to", "now"]);
        assert!(ok, "report: {err}");
        let rep: Value = serde_json::from_str(&out).unwrap();
        // N edge views (1 miss + N-1 hits) and the direct one; the origin's event of the miss is
        // not a second view.
        assert_eq!(rep["requests"], N as u64 + 1, "round {round}: {rep}");
        let top = &rep["top_images_by_requests"][0];
        assert_eq!((top["key"].as_str(), top["requests"].as_u64()), (Some(IMG), Some(N as u64 + 1)), "{top}");
        assert_eq!(top["edge_hits"], N as u64 - 1);
        assert_eq!(rep["edge"]["hit"], N as u64 - 1, "{rep}");
        assert_eq!(rep["edge"]["miss"], 1);
        let ratio = rep["edge_hit_ratio"].as_f64().unwrap();
        assert!((ratio - (N as f64 - 1.0) / N as f64).abs() < 1e-9, "{ratio}");
        assert_eq!(rep["origin_behind_edge"], 1);
        assert_eq!(rep["formats"]["avif"], N as u64, "edge views carry the format served: {rep}");
    }
    // The API gives the same numbers.
    let api: Value = s
        .client
        .get(format!("{}/v1/analytics?from=1h", s.base))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((api["requests"].as_u64(), api["edge"]["hit"].as_u64()), (Some(N as u64 + 1), Some(N as u64 - 1)));
}

/// The events of every raw file under `dir` (not the rollups).
fn events_in(dir: &Path) -> Vec<Event> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && p.file_name().is_some_and(|n| n != "rollups") {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".jsonl.zst") {
                let text = store::decode(&std::fs::read(&p).unwrap(), 1 << 30).unwrap();
                out.extend(text.lines().map(|l| serde_json::from_str::<Event>(l).unwrap()));
            }
        }
    }
    out
}

fn comparable(mut r: report::Report) -> report::Report {
    r.generated_at.clear();
    r.rollup_hours = 0;
    r.raw_hours = 0;
    // Sums of floats added in another order.
    r.latency_ms.mean = r.latency_ms.mean.map(|m| (m * 1e6).round() / 1e6);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_answer_as_the_raw_events_do_and_duckdb_reads_both() {
    let dir = tempfile::tempdir().unwrap();
    let end: jiff::Timestamp = "2026-03-03T00:00:00Z".parse().unwrap();
    let n = generate(dir.path(), end, 48, 400, 300);
    let store = Store::Local { dir: dir.path().to_path_buf() };
    let range = Range { from: end.checked_sub(jiff::SignedDuration::from_hours(48)).unwrap(), to: end };
    let now = end.checked_add(jiff::SignedDuration::from_hours(2)).unwrap();
    // Every event read one by one (a filter that keeps everything reads raw events only).
    let all: report::Filter = std::sync::Arc::new(|_: &Event| true);
    let raw = rollup::build_report(&store, range, Some(all), now).await.unwrap();
    assert_eq!(raw.raw_hours, 48);
    assert!(raw.requests > 48 * 400 && raw.origin_behind_edge > 48 * 30, "{} of {n} lines", raw.requests);
    // Every origin event of a miss (some in the next hour) is matched with its edge line.
    assert_eq!(raw.requests as usize + raw.origin_behind_edge as usize, n);
    // The first report makes the rollups, the second reads them only.
    let made = rollup::build_report(&store, range, None, now).await.unwrap();
    assert_eq!(made.rollup_hours, 48);
    let read = rollup::build_report(&store, range, None, now).await.unwrap();
    assert_eq!((read.rollup_hours, read.raw_hours), (48, 0));
    assert_eq!(comparable(made.clone()), comparable(raw.clone()));
    assert_eq!(comparable(read.clone()), comparable(raw.clone()));
    // New raw events in a rolled-up hour (an import) remove its rollup and the next hour's.
    let h = range.from.as_second() / 3600 + 5;
    rollup::invalidate(&store, &[h].into_iter().collect()).await.unwrap();
    let again = rollup::build_report(&store, range, None, now).await.unwrap();
    assert_eq!(comparable(again), comparable(raw.clone()));

    let Some(py) = python() else { return };
    let out = run_py(
        &py,
        "rollups.py",
        &[dir.path().to_str().unwrap(), &root().join("docs/analytics.md").to_string_lossy()],
        "",
    );
    assert_eq!(out["raw.requests"], raw.requests, "{out}");
    assert_eq!(out["rollup.requests"], raw.requests, "{out}");
    assert_eq!(out["rollup.unique_images"], raw.unique_images, "{out}");
    assert_eq!(out["raw.unique_images"], raw.unique_images, "{out}");
    assert_eq!(out["rollup.edge_hit_ratio"].as_f64().unwrap(), raw.edge_hit_ratio.unwrap(), "{out}");
    assert_eq!(out["raw.edge_hit_ratio"].as_f64().unwrap(), raw.edge_hit_ratio.unwrap(), "{out}");
    let top = &out["rollup.top_images"][0];
    assert_eq!(
        (top[0].as_str(), top[1].as_u64()),
        (Some(raw.top_images_by_requests[0].key.as_str()), Some(raw.top_images_by_requests[0].requests))
    );
    let top = &out["raw.top_images"][0];
    assert_eq!(top[1].as_u64(), Some(raw.top_images_by_requests[0].requests), "{out}");
    for side in ["raw", "rollup"] {
        let rows = out[format!("{side}.formats")].as_array().unwrap().clone();
        let got: std::collections::BTreeMap<String, u64> =
            rows.iter().map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_u64().unwrap())).collect();
        assert_eq!(got, raw.formats, "{side}");
    }
    assert_eq!(out["rollup.per_hour"].as_array().unwrap().len(), 48);
    let p95 = out["rollup.latency_p95"].as_f64().unwrap();
    assert!((p95 - raw.latency_ms.p95.unwrap()).abs() < 1e-6, "{p95} vs {:?}", raw.latency_ms);
}

/// Retention applies to rollups as to events: by age, then by total size, oldest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_expire_by_age_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let end: jiff::Timestamp = "2026-03-03T00:00:00Z".parse().unwrap();
    generate(dir.path(), end, 10, 50, 20);
    let store = Store::Local { dir: dir.path().to_path_buf() };
    let now = end.checked_add(jiff::SignedDuration::from_hours(1)).unwrap();
    assert_eq!(rollup::catch_up(&store, now, 12).await.unwrap(), 10);
    let range = Range { from: end.checked_sub(jiff::SignedDuration::from_hours(10)).unwrap(), to: end };
    let hours = |s: &Store| {
        let s = s.clone();
        async move { rollup::rolled_up(&s, range.from, range.to).await.unwrap().len() }
    };
    assert_eq!(hours(&store).await, 10);
    let rollups = store.rollups();
    let sizes = rollups.inventory(store::LIST_PAGE).await.unwrap();
    assert_eq!(sizes.len(), 10);
    // Older than 5 hours (the last 5 hours end within 6 hours of `now`).
    let by_age = store::Retention { max_age: Some(Duration::from_secs(6 * 3600)), max_bytes: None };
    let p = rollups.prune(&by_age, now, store::LIST_PAGE).await.unwrap();
    assert_eq!((p.files, hours(&store).await), (5, 5));
    // Then by size: what is left, capped at two files' worth.
    let left = rollups.inventory(store::LIST_PAGE).await.unwrap();
    let mut sizes: Vec<u64> = left.iter().map(|(_, s)| *s).collect();
    sizes.sort();
    let cap = sizes.iter().rev().take(2).sum::<u64>();
    let by_size = store::Retention { max_age: None, max_bytes: Some(cap) };
    rollups.prune(&by_size, now, store::LIST_PAGE).await.unwrap();
    let kept = rollups.inventory(store::LIST_PAGE).await.unwrap();
    assert!(kept.len() <= 2 && !kept.is_empty(), "{kept:?}");
    let newest = rollup::name_of(end.as_second() / 3600 - 1);
    assert!(kept.iter().any(|(n, _)| *n == newest), "the newest is kept: {kept:?}");
    // Raw events were not touched by the rollups' retention.
    assert!(!events_in(dir.path()).is_empty());
    // The report remakes what retention removed, from the raw events still there.
    let rep = rollup::build_report(&store, range, None, now).await.unwrap();
    assert_eq!(rep.rollup_hours, 10);
}

/// The settings exist, with their defaults, in the config and `--help`.
#[test]
fn rollup_retention_settings_are_configured() {
    let s = imago::analytics::Settings::from_raw(&imago::RawConfig {
        local_root: "/srv/imago/images".into(),
        analytics_dir: "/srv/imago/analytics".into(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.rollup_retention_age, Some(Duration::from_secs(400 * 86_400)));
    assert_eq!(s.rollup_max_bytes, Some(1024 << 20));
    let bad = imago::analytics::Settings::from_raw(&imago::RawConfig {
        local_root: "/srv/imago/images".into(),
        analytics_dir: "/srv/imago/analytics".into(),
        analytics_rollup_retention_days: 40_000,
        ..Default::default()
    });
    assert_eq!(bad.unwrap_err().0, "IMAGO_ANALYTICS_ROLLUP_RETENTION_DAYS");
    let help = Command::new(env!("CARGO_BIN_EXE_imago")).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).to_string() + &String::from_utf8_lossy(&help.stderr);
    for k in ["IMAGO_ANALYTICS_ROLLUP_RETENTION_DAYS", "IMAGO_ANALYTICS_ROLLUP_MAX_MB"] {
        assert!(help.contains(k), "{k} in --help");
        assert!(std::fs::read_to_string(root().join("README.md")).unwrap().contains(k), "{k} in README");
    }
}

/// `--follow` reads a log as it grows (a line written in two parts included), across a rotation
/// (rename and a new file), and writes what it read on SIGTERM.
#[test]
fn follow_mode_reads_a_growing_rotated_log_and_writes_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let analytics = dir.path().join("analytics");
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    let log = dir.path().join("edge.log");
    let now = jiff::Timestamp::now().as_millisecond();
    let line = |i: usize, handling: &str| {
        format!(
            r#"{{"ts_ms":{now},"method":"GET","url":"/sig/w:10/plain/local:///f{i}.jpg","status":200,"bytes":"10","duration_us":5,"handling":"{handling}","request_id":"edge-x-{i}"}}"#
        )
    };
    std::fs::write(&log, format!("{}\n{}\n", line(0, "hit"), line(1, "miss"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_imago"))
        .args(["analytics", "import", "--follow", "--from-start", "--flush-secs", "1", "--edge", "t"])
        .arg(&log)
        .env("IMAGO_ANALYTICS_DIR", &analytics)
        .env("IMAGO_LOCAL_ROOT", dir.path().join("images"))
        .env_remove("IMAGO_CONFIG")
        .env_remove("IMAGO_S3_BUCKET")
        .env_remove("IMAGO_S3_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let wait_events = |n: usize| {
        for _ in 0..100 {
            if events_in(&analytics).len() >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    assert!(wait_events(2), "the first lines were written within a flush");
    // A line written in two parts.
    let l2 = line(2, "hit");
    let (a, b) = l2.split_at(20);
    let append = |s: &str| {
        use std::io::Write;
        std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(s.as_bytes()).unwrap();
    };
    append(a);
    std::thread::sleep(Duration::from_millis(700));
    append(&format!("{b}\n"));
    // Rotation: the file is renamed and a new one started.
    std::thread::sleep(Duration::from_millis(700));
    std::fs::rename(&log, dir.path().join("edge.log.1")).unwrap();
    std::fs::write(&log, format!("{}\n{}\n", line(3, "pass"), line(4, "hit"))).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("imported 5 event(s) from 5 line(s)"), "{stdout}");
    let mut keys: Vec<String> = events_in(&analytics).into_iter().filter_map(|e| e.key).collect();
    keys.sort();
    assert_eq!(keys, ["f0.jpg", "f1.jpg", "f2.jpg", "f3.jpg", "f4.jpg"]);
}

/// A generated month (720 hours), measured, not asserted: speed is for benchmarks
/// (`cargo bench --bench analytics` prints the release figures). Run with `--ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn a_month_report_from_rollups_measured() {
    let dir = tempfile::tempdir().unwrap();
    let end: jiff::Timestamp = "2026-03-31T00:00:00Z".parse().unwrap();
    let t = std::time::Instant::now();
    let n = generate(dir.path(), end, 720, 400, 5000);
    println!("generated {n} events in {:.1} s", t.elapsed().as_secs_f64());
    let store = Store::Local { dir: dir.path().to_path_buf() };
    let range = Range { from: end.checked_sub(jiff::SignedDuration::from_hours(720)).unwrap(), to: end };
    let now = end.checked_add(jiff::SignedDuration::from_hours(1)).unwrap();
    let t = std::time::Instant::now();
    let made = rollup::build_report(&store, range, None, now).await.unwrap();
    println!("first report (making 720 rollups): {:.2} s", t.elapsed().as_secs_f64());
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let r = rollup::build_report(&store, range, None, now).await.unwrap();
        println!("report from rollups: {:.3} s (debug build)", t.elapsed().as_secs_f64());
        assert_eq!((r.requests, r.rollup_hours), (made.requests, 720));
    }
}
