//! `imago analytics`: the report from the command line (text, `--json`, `--html FILE`).

use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{List, RawConfig};

use super::html::{bytes, num};
use super::report::{self, Report};
use super::Store;

/// Arguments of `imago analytics`.
#[derive(clap::Args, Debug)]
pub struct AnalyticsArgs {
    /// Start: RFC 3339, YYYY-MM-DD, YYYY-MM-DDTHH (UTC), or an age like 24h, 7d [default: 24h before --to]
    #[arg(long)]
    pub from: Option<String>,
    /// End (exclusive), same forms [default: now]
    #[arg(long)]
    pub to: Option<String>,
    /// Print the report as JSON (the same document as GET /v1/analytics).
    #[arg(long)]
    pub json: bool,
    /// Also write the HTML report (charts, self-contained) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: Option<AnalyticsCmd>,
}

/// `imago analytics` subcommands (none: the report).
#[derive(clap::Subcommand, Debug)]
pub enum AnalyticsCmd {
    /// Import an edge's access log (Varnish, CloudFront, Cloudflare, Fastly) into the event store
    /// (docs/analytics.md: formats and mappings).
    Import(super::import::ImportArgs),
    /// Roll up the closed hours of the last --hours hours that have events and no rollup.
    Rollup {
        #[arg(long, default_value_t = 48, value_parser = clap::value_parser!(i64).range(1..=24 * 366))]
        hours: i64,
    },
}

/// A short text summary.
pub fn text(r: &Report) -> String {
    let mut s = String::new();
    let pct = |x: Option<f64>| x.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "-".into());
    let ms = |x: Option<f64>| x.map(|v| format!("{v:.1} ms")).unwrap_or_else(|| "-".into());
    let _ = writeln!(s, "imago analytics {} .. {} (UTC), {} file(s) in {}", r.from, r.to, r.files, r.store);
    let _ = writeln!(s, "  requests        {} ({} errors)", num(r.requests), num(r.errors));
    let _ = writeln!(s, "  unique images   {}", num(r.unique_images));
    let _ =
        writeln!(s, "  cache hit ratio {} ({} without a transform)", pct(r.cache_hit_ratio), pct(r.no_transform_ratio));
    let _ = writeln!(
        s,
        "  bytes           {} served; images {} from {} of originals: {} saved ({})",
        bytes(r.bytes_served as i64),
        bytes(r.image_bytes_served as i64),
        bytes(r.original_bytes as i64),
        bytes(r.bytes_saved),
        pct(r.savings_ratio)
    );
    let _ = writeln!(
        s,
        "  latency         p50 {}  p95 {}  p99 {}",
        ms(r.latency_ms.p50),
        ms(r.latency_ms.p95),
        ms(r.latency_ms.p99)
    );
    let mix = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter().map(|(k, v)| format!("{k} {}", num(*v))).collect::<Vec<_>>().join(", ")
    };
    let _ = writeln!(s, "  formats         {}", mix(&r.formats));
    let _ = writeln!(s, "  dpr             {}", mix(&r.dpr));
    let _ = writeln!(s, "  widths          {}", mix(&r.widths));
    let _ = writeln!(s, "  cache           {}", mix(&r.cache));
    if !r.edge.is_empty() {
        let _ = writeln!(
            s,
            "  edge            {} (hit ratio {}; {} origin events of forwarded requests)",
            mix(&r.edge),
            pct(r.edge_hit_ratio),
            num(r.origin_behind_edge)
        );
    }
    let _ = writeln!(s, "  status          {}", mix(&r.status));
    if !r.top_images_by_requests.is_empty() {
        let _ = writeln!(s, "  top images by requests:");
        for t in r.top_images_by_requests.iter().take(10) {
            let _ = writeln!(s, "    {:>8}  {:>10}  {}", num(t.requests), bytes(t.bytes as i64), t.key);
        }
    }
    s
}

/// Runs the command.
pub fn run(raw: RawConfig, a: AnalyticsArgs) -> ExitCode {
    let fail = |e: String| {
        eprintln!("imago: {e}");
        ExitCode::from(2)
    };
    // Reading events needs no signing key: validate with a placeholder when none is configured.
    let mut raw = raw;
    if raw.key.strings().is_empty() && raw.key_file.is_none() {
        raw.key = List::from_strs(&["00".repeat(32).as_str()]);
        raw.salt = List::from_strs(&["00".repeat(16).as_str()]);
        raw.salt_file = None;
    }
    let cfg = match raw.validate(false) {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    let store = match Store::from_config(&cfg) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    match &a.cmd {
        Some(AnalyticsCmd::Import(i)) => {
            let done = rt.block_on(async {
                if i.follow {
                    super::import::follow(&store, i).await
                } else {
                    super::import::batch(&store, i).await
                }
            });
            return match done {
                Ok(n) => {
                    println!(
                        "imported {} event(s) from {} line(s) ({} not views, {} unreadable) into {} file(s) in {}",
                        n.events,
                        n.lines,
                        n.skipped,
                        n.bad_lines,
                        n.files,
                        store.describe()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            };
        }
        Some(AnalyticsCmd::Rollup { hours }) => {
            return match rt.block_on(super::rollup::catch_up(&store, jiff::Timestamp::now(), *hours)) {
                Ok(n) => {
                    println!("rolled up {n} hour(s) in {}", store.describe());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            };
        }
        None => {}
    }
    let range = match report::range(a.from.as_deref(), a.to.as_deref(), jiff::Timestamp::now()) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let rep = match rt.block_on(report::build(&store, range, None)) {
        Ok(r) => r,
        Err(e) => return fail(format!("reading {}: {e}", store.describe())),
    };
    if let Some(path) = &a.html {
        if let Err(e) = std::fs::write(path, super::html::render(&rep)) {
            return fail(format!("{}: {e}", path.display()));
        }
    }
    // Written, not printed: a closed pipe (`| head`) ends the output quietly.
    let out = if a.json {
        match serde_json::to_string_pretty(&rep) {
            Ok(s) => s + "\n",
            Err(e) => return fail(e.to_string()),
        }
    } else {
        let mut t = text(&rep);
        if let Some(path) = &a.html {
            t.push_str(&format!("  HTML report: {}\n", path.display()));
        }
        t
    };
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
    ExitCode::SUCCESS
}
