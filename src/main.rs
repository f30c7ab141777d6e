//! The `imago` command: `serve`, `sign`, `presign`, `analytics`, `healthcheck`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use imago::config::{settings_help, RawConfig};
use imago_signing::builder::SourceEncoding;
use imago_signing::UrlBuilder;

#[derive(Parser)]
#[command(
    name = "imago",
    version,
    about = "Signed, device-aware image proxy and upload service (imgproxy-compatible URLs, libvips)"
)]
struct Cli {
    /// TOML configuration file (settings below; environment variables override it).
    #[arg(long, global = true, env = "IMAGO_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the HTTP server.
    #[command(after_long_help = settings_help())]
    Serve,
    /// Print a signed path (or URL with --base-url) for a source, using the configured key.
    Sign(SignArgs),
    /// Print an upload ticket (JSON) computed locally from the configuration: the same code
    /// path as `POST /v1/uploads`, without an API key.
    Presign(PresignArgs),
    /// Report on the request events in the analytics store (IMAGO_ANALYTICS_DIR, or the bucket's
    /// analytics/ in S3 mode): requests, images, formats, devices, cache, savings, latency.
    Analytics(imago::analytics::cli::AnalyticsArgs),
    /// Exit 0 when the server at --url answers /healthz (for container health checks).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
    },
}

#[derive(clap::Args)]
struct SignArgs {
    /// Source: local:///key, s3://bucket/key or http(s)://…
    source: String,
    #[arg(long, short = 'w')]
    width: Option<u32>,
    #[arg(long, short = 'H')]
    height: Option<u32>,
    /// Resizing type: fit, fill, fill-down, force, auto.
    #[arg(long)]
    resize: Option<String>,
    #[arg(long, short = 'q')]
    quality: Option<String>,
    /// Output format (jpg, png, webp, avif, gif, jxl, auto); put in the path as the extension.
    #[arg(long, short = 'f')]
    format: Option<String>,
    #[arg(long)]
    dpr: Option<f64>,
    /// Gravity (ce, no, so, ea, we, noea, nowe, soea, sowe, sm, fp:x:y).
    #[arg(long, short = 'g')]
    gravity: Option<String>,
    /// Expire the URL this many seconds from now.
    #[arg(long)]
    expires_in: Option<i64>,
    /// Extra raw options, e.g. --option bl:2 --option sh:1.
    #[arg(long = "option", short = 'o')]
    options: Vec<String>,
    /// Use the `plain/` source form instead of base64.
    #[arg(long)]
    plain: bool,
    /// Print a full URL with this base (e.g. http://127.0.0.1:8080).
    #[arg(long)]
    base_url: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let raw = match RawConfig::load(cli.config.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("imago: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.cmd {
        Cmd::Serve => serve(raw),
        Cmd::Sign(a) => sign(raw, a),
        Cmd::Presign(a) => presign(raw, a),
        Cmd::Analytics(a) => imago::analytics::cli::run(raw, a),
        Cmd::Healthcheck { url } => healthcheck(&url),
    }
}

/// A licensed sample photo for the embedded store's first run (MIT, see tests/fixtures/README.md).
const SAMPLE: &[u8] = include_bytes!("../tests/fixtures/orientation/Landscape_1.jpg");

fn serve(raw: RawConfig) -> ExitCode {
    // Logs and (with OTEL_EXPORTER_OTLP_*) trace export; flushed when `telemetry` is shut down.
    // An unknown OTEL_EXPORTER_OTLP_*PROTOCOL is a configuration error like any other setting's.
    let otlp = match imago::telemetry::Otlp::from_env() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("imago: {e}");
            return ExitCode::from(2);
        }
    };
    let telemetry = imago::telemetry::init(&raw.log_format, otlp);
    let code = serve_with(raw);
    telemetry.shutdown();
    code
}

fn serve_with(raw: RawConfig) -> ExitCode {
    tracing::info!(config = ?raw.redacted(), "starting imago {}", env!("CARGO_PKG_VERSION"));
    let cfg = match raw.validate(true) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("imago: {e}");
            return ExitCode::from(2);
        }
    };
    if cfg.dev_keys {
        let sample = cfg.raw.local_root.join("samples/photo.jpg");
        if !sample.exists() {
            let _ = std::fs::create_dir_all(cfg.raw.local_root.join("samples"));
            if let Err(e) = std::fs::write(&sample, SAMPLE) {
                tracing::warn!("could not write the sample photo: {e}");
            }
        }
        let path =
            UrlBuilder::new().width(800).extension("webp").sign(&cfg.verifier.signer(), "local:///samples/photo.jpg");
        tracing::warn!(keys = %cfg.raw.dev_keys_file.display(), "no IMAGO_KEY set: using development keys (not for production)");
        if let Ok(p) = path {
            eprintln!("\n  Development mode. Try:\n    curl -o out.webp http://{}{}\n    imago sign --width 800 --format webp local:///samples/photo.jpg\n", cfg.bind, p);
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("imago: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let running = match imago::http::start(cfg) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("imago: {e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(addr = %running.addr, metrics = ?running.metrics_addr, libvips = %imago::transform::libvips_version(), "listening");
        tracing::info!(memory_limit = %running.state.cfg.memory_limit, "memory limit: new transforms are shed while RSS is above it");
        if running.state.cfg.console {
            let url = format!("http://{}/console", running.addr);
            tracing::info!(url = %url, "web console (IMAGO_CONSOLE)");
            let keys = if running.state.cfg.uploads.api_keys.is_empty() {
                "no IMAGO_API_KEYS set: restart with e.g. IMAGO_API_KEYS=dev-console-key-0123 make run, then sign in with it"
            } else {
                "sign in with a key of IMAGO_API_KEYS"
            };
            eprintln!("\n  Console: {url}\n    ({keys})\n");
        }
        let state = running.state.clone();
        let handle = running.server.handle();
        tokio::spawn(async move {
            shutdown_signal().await;
            state.shutting_down.store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::info!("shutting down: draining in-flight requests");
            handle.stop(true).await;
        });
        let served = running.server.await;
        // The drain is over: every request has queued its event. Write them, then stop the
        // metrics listener.
        let flushed = running.state.shutdown().await;
        tracing::info!(events = flushed.events, files = flushed.files, failed = flushed.failed, "analytics flushed");
        match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("imago: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn sign(raw: RawConfig, a: SignArgs) -> ExitCode {
    let cfg = match raw.validate(false) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("imago: {e}");
            return ExitCode::from(2);
        }
    };
    let mut b = UrlBuilder::new().encoding(if a.plain { SourceEncoding::Plain } else { SourceEncoding::Base64 });
    if let Some(r) = &a.resize {
        b = b.resize(r, a.width.unwrap_or(0), a.height.unwrap_or(0));
    } else {
        if let Some(w) = a.width {
            b = b.width(w);
        }
        if let Some(h) = a.height {
            b = b.height(h);
        }
    }
    if let Some(d) = a.dpr {
        b = b.dpr(d);
    }
    if let Some(g) = &a.gravity {
        b = b.gravity(g);
    }
    if let Some(q) = &a.quality {
        b = match b.option("q", [q]) {
            Ok(b) => b,
            Err(e) => return fail(e),
        };
    }
    if let Some(s) = a.expires_in {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        b = b.expires(now + s);
    }
    for o in &a.options {
        let mut parts = o.split(':');
        let name = parts.next().unwrap_or_default();
        b = match b.option(name, parts) {
            Ok(b) => b,
            Err(e) => return fail(e),
        };
    }
    if let Some(f) = &a.format {
        b = b.extension(f);
    }
    // Refuse what the server would refuse.
    let path = match b.path(&a.source) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if let Err(e) = check_path(&path, &cfg) {
        eprintln!("imago: {e}");
        return ExitCode::from(2);
    }
    let signed = cfg.verifier.signer().signed_path(&path);
    match a.base_url {
        Some(base) => println!("{}{}", base.trim_end_matches('/'), signed),
        None => println!("{signed}"),
    }
    ExitCode::SUCCESS
}

fn check_path(path: &str, cfg: &imago::Config) -> Result<(), String> {
    let full = format!("/x{path}");
    let split = imago::url::split(&full).map_err(|e| e.to_string())?;
    let presets = imago::options::Presets { map: cfg.raw.presets.clone(), only: cfg.raw.presets_only };
    imago::options::parse(&split.options, split.extension.as_deref(), &presets).map_err(|e| e.to_string())?;
    imago::source::parse(&split.source).map_err(|e| e.to_string())?;
    Ok(())
}

#[derive(clap::Args)]
struct PresignArgs {
    /// MIME type of the file (image/jpeg, image/png, image/webp, image/avif, image/heic, …).
    #[arg(long)]
    content_type: String,
    /// PUT (default) or POST (form upload).
    #[arg(long, value_parser = ["put", "post", "PUT", "POST"])]
    method: Option<String>,
    /// Lower-case hex SHA-256 of the file: dedup key and checksum-verified upload.
    #[arg(long)]
    sha256: Option<String>,
    /// Key prefix (one of IMAGO_UPLOAD_PREFIXES).
    #[arg(long)]
    prefix: Option<String>,
    /// Exact size in bytes (signed into the upload).
    #[arg(long)]
    content_length: Option<u64>,
    /// Original file name (extension and Content-Disposition only).
    #[arg(long)]
    filename: Option<String>,
}

fn presign(raw: RawConfig, a: PresignArgs) -> ExitCode {
    let cfg = match raw.validate(false) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let uploads = match imago::upload::Uploads::new(&cfg) {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    let req = imago::upload::TicketRequest {
        content_type: a.content_type,
        content_length: a.content_length,
        filename: a.filename,
        prefix: a.prefix,
        sha256: a.sha256,
        method: a.method,
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    match rt.block_on(uploads.issue(&req, &jiff::Timestamp::now())) {
        Ok(t) => match serde_json::to_string_pretty(&t) {
            Ok(s) => {
                println!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        Err(e) => {
            eprintln!("imago: {} ({})", e, e.code());
            ExitCode::from(2)
        }
    }
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("imago: {e}");
    ExitCode::from(2)
}

fn healthcheck(url: &str) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(_) => return ExitCode::FAILURE,
    };
    rt.block_on(async {
        let client = match reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_secs(3)).build() {
            Ok(c) => c,
            Err(_) => return ExitCode::FAILURE,
        };
        match client.get(url).send().await {
            Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        }
    })
}
