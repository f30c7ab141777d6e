//! Logs, traces and request ids.
//!
//! * **Logs**: `tracing` events as JSON lines (one object per event, with the span list, so every
//!   line inside a request carries its `request_id`) or human-readable text on a terminal
//!   (`IMAGO_LOG_FORMAT`), on stderr, filtered by `RUST_LOG` (default `info`).
//! * **Traces**: when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set,
//!   every `tracing` span also becomes an OpenTelemetry span exported over OTLP by a batch
//!   processor on its own thread: HTTP with protobuf (the default) or JSON bodies, or gRPC, as
//!   `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL` say (`http/protobuf`,
//!   `http/json`, `grpc`; any other value is a configuration error: `imago serve` refuses to
//!   start). The gRPC client (tonic) needs a Tokio reactor: [`init`] gives it a small runtime of
//!   its own (one worker thread, `otlp-grpc`), independent of the server's, which lives until the
//!   exporter has been shut down, so the final flush at shutdown still reaches the collector.
//!   One `request` span per HTTP request (server kind, continuing an incoming W3C `traceparent`),
//!   with `image` → `fetch`, `transform` → `decode`, `encode` below it. Without those variables
//!   no OpenTelemetry layer is installed at all.
//! * **Request ids**: `X-Request-Id` is taken from the request when it is sane (1-128 visible
//!   ASCII characters out of `A-Za-z0-9._:-`), generated (a ULID) otherwise, and sent back on
//!   every response. It is a field of the `request` span and of analytics events.
//!
//! The HTTP middleware that sets the request id, opens the `request` span and continues an
//! incoming trace is `http::middleware`.

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::header::HeaderValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// The request id header.
pub const REQUEST_ID: &str = "x-request-id";

/// The request id of the current request (in the request's extensions): the client's
/// `X-Request-Id` when it is sane, else a new ULID, kept as its number (no allocation; the text
/// is made where it is written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestId {
    Made(ulid::Ulid),
    Given(Box<str>),
}

impl RequestId {
    /// The id as text (a ULID is written into `buf`).
    pub fn as_str<'a>(&'a self, buf: &'a mut [u8; ulid::ULID_LEN]) -> &'a str {
        match self {
            RequestId::Made(u) => u.array_to_str(buf),
            RequestId::Given(s) => s,
        }
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str(&mut [0; ulid::ULID_LEN]))
    }
}

/// Set once OpenTelemetry export is installed: only then is `traceparent` read.
static OTEL_ON: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (W3C trace context is only extracted then).
pub fn otel_enabled() -> bool {
    OTEL_ON.load(Ordering::Relaxed)
}

/// The OTLP transport of the trace exporter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC (collector port 4317); the endpoint is used as is.
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318; `/v1/traces` is appended to
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`). The default.
    HttpProtobuf,
    /// OTLP/HTTP with JSON bodies (same endpoints as `http/protobuf`).
    HttpJson,
}

impl Protocol {
    /// The values `OTEL_EXPORTER_OTLP_PROTOCOL` takes.
    pub const VALUES: &'static str = "grpc, http/protobuf, http/json";

    /// Parses an `OTEL_EXPORTER_OTLP_*PROTOCOL` value (case-insensitive, trimmed).
    pub fn parse(v: &str) -> Option<Protocol> {
        match v.trim().to_ascii_lowercase().as_str() {
            "grpc" => Some(Protocol::Grpc),
            "http/protobuf" => Some(Protocol::HttpProtobuf),
            "http/json" => Some(Protocol::HttpJson),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        }
    }
}

/// Where spans go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Otlp {
    /// No export (no OpenTelemetry layer).
    Off,
    /// OTLP with this protocol, configured by the standard `OTEL_EXPORTER_OTLP_*` variables.
    FromEnv(Protocol),
    /// OTLP with this protocol to this endpoint: the full traces URL for HTTP (e.g.
    /// `http://127.0.0.1:4318/v1/traces`), the collector's address for gRPC (e.g.
    /// `http://127.0.0.1:4317`).
    Endpoint(Protocol, String),
}

impl Otlp {
    /// Reads the standard variables through `var`: export is on when either endpoint variable is
    /// non-empty, unless `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`; the protocol
    /// is `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`, else
    /// `http/protobuf`. An unknown protocol is an error (naming the variable) when exporting.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Otlp, String> {
        let get = |n: &str| var(n).filter(|v| !v.trim().is_empty());
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
            || get("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"))
        {
            return Ok(Otlp::Off);
        }
        if get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none() && get("OTEL_EXPORTER_OTLP_ENDPOINT").is_none() {
            return Ok(Otlp::Off);
        }
        for name in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
            if let Some(v) = get(name) {
                return match Protocol::parse(&v) {
                    Some(p) => Ok(Otlp::FromEnv(p)),
                    None => {
                        Err(format!("{name}={}: unknown OTLP protocol (use one of {})", v.trim(), Protocol::VALUES))
                    }
                };
            }
        }
        Ok(Otlp::FromEnv(Protocol::HttpProtobuf))
    }

    /// [`Otlp::from_vars`] over the process environment.
    pub fn from_env() -> Result<Otlp, String> {
        Otlp::from_vars(|n| std::env::var(n).ok())
    }
}

/// Flushes and stops the exporter when shut down (or dropped).
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    /// The gRPC exporter's runtime (its connection tasks run there); stopped after the provider.
    grpc_runtime: Option<tokio::runtime::Runtime>,
}

impl Telemetry {
    /// Whether spans are being exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports what is buffered now (blocks: call from a blocking context).
    pub fn flush(&self) {
        if let Some(p) = &self.provider {
            if let Err(e) = p.force_flush() {
                eprintln!("imago: trace export flush: {e}");
            }
        }
    }

    /// Exports what is buffered and stops the exporter (blocks: call outside async code, e.g.
    /// after the runtime returned, or in `spawn_blocking`).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(p) = self.provider.take() {
            OTEL_ON.store(false, Ordering::Relaxed);
            if let Err(e) = p.shutdown() {
                eprintln!("imago: trace export shutdown: {e}");
            }
        }
        // Everything is exported: the gRPC connection tasks can go (without blocking, so this is
        // safe even where blocking is not allowed).
        if let Some(rt) = self.grpc_runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn use_json(format: &str) -> bool {
    match format {
        "json" => true,
        "pretty" => false,
        _ => !std::io::IsTerminal::is_terminal(&std::io::stderr()),
    }
}

/// The gRPC endpoint the exporter will use (explicit, else the standard variables, else the
/// default), to decide on TLS.
fn grpc_endpoint(explicit: Option<&str>) -> String {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.trim().is_empty());
    explicit
        .map(str::to_string)
        .or_else(|| var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .unwrap_or_else(|| "http://localhost:4317".into())
}

/// The exporter and, for gRPC, the runtime its client runs on.
fn exporter(
    protocol: Protocol,
    endpoint: Option<String>,
) -> Result<(opentelemetry_otlp::SpanExporter, Option<tokio::runtime::Runtime>), String> {
    use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
    let err = |e: opentelemetry_otlp::ExporterBuildError| format!("OTLP exporter ({}): {e}", protocol.as_str());
    match protocol {
        Protocol::HttpProtobuf | Protocol::HttpJson => {
            let p = if protocol == Protocol::HttpJson {
                opentelemetry_otlp::Protocol::HttpJson
            } else {
                opentelemetry_otlp::Protocol::HttpBinary
            };
            let mut b = opentelemetry_otlp::SpanExporter::builder().with_http().with_protocol(p);
            if let Some(u) = endpoint {
                b = b.with_endpoint(u);
            }
            Ok((b.build().map_err(err)?, None))
        }
        Protocol::Grpc => {
            // tonic connects lazily from tasks spawned where the client is built, and the batch
            // processor's thread only polls futures that wait on them: build it on a runtime
            // that stays up until the provider is shut down.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("otlp-grpc")
                .enable_all()
                .build()
                .map_err(|e| format!("OTLP exporter (grpc): runtime: {e}"))?;
            let https = grpc_endpoint(endpoint.as_deref()).trim().to_ascii_lowercase().starts_with("https://");
            let mut b = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_protocol(opentelemetry_otlp::Protocol::Grpc);
            if let Some(u) = endpoint {
                b = b.with_endpoint(u);
            }
            if https {
                b = b.with_tls_config(
                    opentelemetry_otlp::tonic_types::transport::ClientTlsConfig::new().with_enabled_roots(),
                );
            }
            let exporter = {
                let _guard = rt.enter();
                b.build().map_err(err)?
            };
            Ok((exporter, Some(rt)))
        }
    }
}

fn provider(otlp: &Otlp) -> Result<Option<(SdkTracerProvider, Option<tokio::runtime::Runtime>)>, String> {
    let (protocol, endpoint) = match otlp {
        Otlp::Off => return Ok(None),
        Otlp::FromEnv(p) => (*p, None),
        Otlp::Endpoint(p, u) => (*p, Some(u.clone())),
    };
    let (exporter, rt) = exporter(protocol, endpoint)?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    if !named {
        resource = resource.with_service_name("imago");
    }
    let resource =
        resource.with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))).build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    Ok(Some((provider, rt)))
}

/// Installs the global subscriber: logs in `log_format` (`json`, `pretty`, `auto`) and, when
/// `otlp` says so, OpenTelemetry export. Call once, before any runtime starts (the HTTP
/// exporter's client is a blocking one, which cannot be built inside a runtime; the gRPC
/// exporter brings its own runtime); a second call leaves the first subscriber in place.
pub fn init(log_format: &str, otlp: Otlp) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = use_json(log_format);
    let json_layer =
        json.then(|| tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(std::io::stderr));
    let text_layer = (!json).then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    let (provider, grpc_runtime) = match provider(&otlp) {
        Ok(Some((p, rt))) => (Some(p), rt),
        Ok(None) => (None, None),
        Err(e) => {
            eprintln!("imago: traces are not exported: {e}");
            (None, None)
        }
    };
    let otel_layer = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("imago")).with_tracked_inactivity(false));
    let installed =
        tracing_subscriber::registry().with(filter).with(json_layer).with(text_layer).with(otel_layer).try_init();
    if installed.is_err() {
        // A subscriber was installed earlier (tests): spans would not reach this exporter.
        return Telemetry { provider: None, grpc_runtime };
    }
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        OTEL_ON.store(true, Ordering::Relaxed);
        let protocol = match &otlp {
            Otlp::FromEnv(p) | Otlp::Endpoint(p, _) => p.as_str(),
            Otlp::Off => "",
        };
        tracing::info!(protocol, "exporting traces over OTLP");
    }
    Telemetry { provider, grpc_runtime }
}

/// A new ULID (time-ordered, 80 random bits).
pub fn ulid_now() -> ulid::Ulid {
    let ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    ulid::Ulid::from_parts(ms, rand::random::<u128>())
}

/// A request id from the client when it is sane, else a new ULID.
pub fn request_id(given: Option<&HeaderValue>) -> RequestId {
    if let Some(v) = given.and_then(|v| v.to_str().ok()) {
        let ok = (1..=128).contains(&v.len())
            && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if ok {
            return RequestId::Given(v.into());
        }
    }
    RequestId::Made(ulid_now())
}

/// Runs a background loop (`run` never returns) on the current Tokio runtime, or, outside one
/// (the CLI, some tests), on a thread `thread` of its own with a current-thread runtime.
pub fn spawn_background<F>(thread: &str, run: F) -> Result<(), String>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    if let Ok(h) = tokio::runtime::Handle::try_current() {
        h.spawn(run);
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("{thread} runtime: {e}"))?;
    std::thread::Builder::new()
        .name(thread.to_string())
        .spawn(move || rt.block_on(run))
        .map_err(|e| format!("{thread} thread: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_from_vars() {
        let vars = |pairs: &[(&'static str, &'static str)]| {
            let pairs = pairs.to_vec();
            move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
        };
        let http = Ok(Otlp::FromEnv(Protocol::HttpProtobuf));
        assert_eq!(Otlp::from_vars(vars(&[])), Ok(Otlp::Off));
        assert_eq!(Otlp::from_vars(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "")])), Ok(Otlp::Off));
        assert_eq!(Otlp::from_vars(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])), http);
        assert_eq!(Otlp::from_vars(vars(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c/v1/traces")])), http);
        assert_eq!(
            Otlp::from_vars(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), ("OTEL_SDK_DISABLED", "true")])),
            Ok(Otlp::Off)
        );
        assert_eq!(
            Otlp::from_vars(vars(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_TRACES_EXPORTER", "none")
            ])),
            Ok(Otlp::Off)
        );
        // The protocol: the traces variable wins; values are case-insensitive; empty is unset.
        let ep = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317");
        assert_eq!(
            Otlp::from_vars(vars(&[ep, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])),
            Ok(Otlp::FromEnv(Protocol::Grpc))
        );
        assert_eq!(
            Otlp::from_vars(vars(&[
                ep,
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "HTTP/JSON")
            ])),
            Ok(Otlp::FromEnv(Protocol::HttpJson))
        );
        assert_eq!(
            Otlp::from_vars(vars(&[
                ep,
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", " "),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            ])),
            Ok(Otlp::FromEnv(Protocol::Grpc))
        );
        assert_eq!(Otlp::from_vars(vars(&[ep, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")])), http);
        // Unknown values are refused, naming the variable (only when exporting).
        let e = Otlp::from_vars(vars(&[ep, ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift")])).unwrap_err();
        assert!(e.starts_with("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=thrift: unknown OTLP protocol"), "{e}");
        assert_eq!(Otlp::from_vars(vars(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift")])), Ok(Otlp::Off));
    }

    #[test]
    fn request_ids_are_kept_or_made() {
        let kept = request_id(Some(&HeaderValue::from_static("abc-123_x.y:z")));
        assert_eq!(kept.to_string(), "abc-123_x.y:z");
        let made = request_id(Some(&HeaderValue::from_static("has space")));
        assert!(matches!(made, RequestId::Made(_)));
        let text = made.to_string();
        assert_eq!(text.len(), 26, "{text}");
        assert_eq!(
            text.parse::<ulid::Ulid>().ok(),
            Some(match made {
                RequestId::Made(u) => u,
                RequestId::Given(_) => unreachable!(),
            })
        );
        assert_ne!(request_id(None), request_id(None));
        let long = "a".repeat(129);
        assert_eq!(request_id(Some(&HeaderValue::from_str(&long).unwrap())).to_string().len(), 26);
    }
}
