//! OpenTelemetry export against real OTLP receivers on loopback, one per protocol:
//!
//! * OTLP/HTTP: the test accepts `POST /v1/traces` (protobuf, or JSON) and decodes it with
//!   `opentelemetry-proto`;
//! * OTLP/gRPC: a tonic server implementing the generated `TraceService`.
//!
//! Each checks the span tree of an image request, the service name, and that an incoming W3C
//! `traceparent` is continued. The HTTP/protobuf case runs the server in this process (it installs
//! the process-wide tracing subscriber, hence its own test binary); the gRPC and HTTP/JSON cases
//! run the real `imago serve` binary configured only by the standard `OTEL_EXPORTER_OTLP_*`
//! variables, and stop it with SIGTERM: every span must have reached the receiver by the time it
//! has exited (the exporter's final flush).

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

const SERVER_SPAN: &str = "GET /{signature}/{options}/{source}";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// What a receiver got: spans, the `service.name` of every resource, and how many exports
/// (and in which encoding).
#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    services: Arc<Mutex<Vec<String>>>,
    exports: Arc<Mutex<Vec<&'static str>>>,
}

impl Received {
    fn record(&self, how: &'static str, req: ExportTraceServiceRequest) {
        self.exports.lock().unwrap().push(how);
        let mut all = self.spans.lock().unwrap();
        for rs in req.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                .and_then(|a| a.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            self.services.lock().unwrap().push(service);
            for ss in rs.scope_spans {
                all.extend(ss.spans);
            }
        }
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits (up to 20 s) for the two image request spans.
    async fn wait_for_requests(&self) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let n = self.spans().iter().filter(|s| s.name == SERVER_SPAN).count();
            if n >= 2 {
                return self.spans();
            }
            assert!(
                Instant::now() < deadline,
                "no request spans received ({:?} exports): {:?}",
                self.exports.lock().unwrap(),
                self.spans().iter().map(|s| s.name.clone()).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every export's resource was named `service`.
    fn assert_service(&self, service: &str) {
        let services = self.services.lock().unwrap();
        assert!(!services.is_empty());
        for s in services.iter() {
            assert_eq!(s, &format!("Some(StringValue({service:?}))"), "service.name");
        }
    }
}

/// `POST /v1/traces`: protobuf or JSON, as the `Content-Type` says.
async fn receive_http(req: HttpRequest, body: web::Bytes, received: web::Data<Received>) -> HttpResponse {
    let ct = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (how, decoded) = if ct.starts_with("application/json") {
        ("http/json", serde_json::from_slice::<ExportTraceServiceRequest>(&body).map_err(|e| e.to_string()))
    } else if ct.starts_with("application/x-protobuf") {
        ("http/protobuf", ExportTraceServiceRequest::decode(body.as_ref()).map_err(|e| e.to_string()))
    } else {
        return HttpResponse::UnsupportedMediaType().body(format!("content-type {ct}"));
    };
    match decoded {
        Ok(r) => {
            received.record(how, r);
            HttpResponse::Ok().content_type(ct).body(if how == "http/json" { b"{}".to_vec() } else { Vec::new() })
        }
        Err(e) => HttpResponse::BadRequest().body(format!("not an OTLP {how} export: {e}")),
    }
}

/// An OTLP/HTTP receiver on loopback.
fn http_receiver(received: &Received) -> (SocketAddr, actix_web::dev::ServerHandle) {
    let data = web::Data::new(received.clone());
    let receiver = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(16 << 20))
            .route("/v1/traces", web::post().to(receive_http))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = receiver.addrs()[0];
    let receiver = receiver.run();
    let handle = receiver.handle();
    tokio::spawn(receiver);
    (addr, handle)
}

/// The collector's gRPC trace service.
struct Collector(Received);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.record("grpc", request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// An OTLP/gRPC receiver on loopback; stops when the sender is dropped or used.
async fn grpc_receiver(received: &Received) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(Collector(received.clone())))
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), async {
            let _ = stopped.await;
        });
    tokio::spawn(async move { server.await.expect("the gRPC receiver failed") });
    (addr, stop)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn one<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one `{name}` span in {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    found[0]
}

fn attr(s: &Span, key: &str) -> Option<String> {
    s.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.as_ref()).map(|v| format!("{:?}", v.value))
}

/// The spans of one traced image request (with `traceparent: 00-TRACE_ID-PARENT-01`), one
/// untraced image request and one health check.
fn check_spans(all: &[Span]) {
    // The traced request: one tree under the caller's span, all in the caller's trace.
    let mine: Vec<Span> = all.iter().filter(|s| hex(&s.trace_id) == TRACE_ID).cloned().collect();
    // The `request` span, named after the OpenTelemetry HTTP conventions: method and route.
    let request = one(&mine, SERVER_SPAN);
    assert_eq!(hex(&request.parent_span_id), PARENT, "the request span's parent is the incoming span");
    assert_eq!(request.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(attr(request, "http.response.status_code").as_deref(), Some("Some(IntValue(200))"));
    assert!(attr(request, "request_id").is_some_and(|v| v.len() > 20), "request id on the span");
    let image = one(&mine, "image");
    assert_eq!(image.parent_span_id, request.span_id, "image under request");
    let fetch = one(&mine, "fetch");
    assert_eq!(fetch.parent_span_id, image.span_id, "fetch under image");
    let transform = one(&mine, "transform");
    assert_eq!(transform.parent_span_id, image.span_id, "transform under image");
    for step in ["decode", "encode"] {
        let s = one(&mine, step);
        assert_eq!(s.parent_span_id, transform.span_id, "{step} under transform");
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano);
    }
    assert!(transform.start_time_unix_nano >= fetch.end_time_unix_nano, "fetch, then transform");

    // The other request started a trace of its own; health checks make no spans.
    let others: Vec<&Span> = all.iter().filter(|s| s.name == SERVER_SPAN && hex(&s.trace_id) != TRACE_ID).collect();
    assert_eq!(others.len(), 1, "{others:?}");
    assert!(others[0].parent_span_id.is_empty(), "a root span");
    assert!(all.iter().all(|s| attr(s, "http.route").is_none_or(|r| !r.contains("healthz"))), "no span for /healthz");
    assert!(attr(request, "http.route").is_some_and(|r| r.contains("{signature}")), "low-cardinality route");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_and_continue_the_incoming_trace() {
    let received = Received::default();
    let (addr, receiver) = http_receiver(&received);

    // The exporter's blocking HTTP client must be built outside the runtime.
    let endpoint = format!("http://{addr}/v1/traces");
    let telemetry = std::thread::spawn(move || {
        imago::telemetry::init(
            "json",
            imago::telemetry::Otlp::Endpoint(imago::telemetry::Protocol::HttpProtobuf, endpoint),
        )
    })
    .join()
    .unwrap();
    assert!(telemetry.exporting());
    assert!(imago::telemetry::otel_enabled());

    let s = common::start(&["gps.jpg"], |c| c.auto_quality = false).await;
    let traced = s.url("w:100", "local:///gps.jpg", None);
    let r = s.get_with(&traced, &[("traceparent", &format!("00-{TRACE_ID}-{PARENT}-01"))]).await;
    assert_eq!(r.status(), 200);
    let untraced = s.url("w:60", "local:///gps.jpg", None);
    assert_eq!(s.get(&untraced).await.status(), 200);
    assert_eq!(s.get(&format!("{}/healthz", s.base)).await.status(), 200);

    let telemetry = tokio::task::spawn_blocking(move || {
        telemetry.flush();
        telemetry
    })
    .await
    .unwrap();
    let all = received.wait_for_requests().await;
    check_spans(&all);
    received.assert_service("imago");
    assert!(received.exports.lock().unwrap().iter().all(|h| *h == "http/protobuf"));

    tokio::task::spawn_blocking(move || telemetry.shutdown()).await.unwrap();
    assert!(!imago::telemetry::otel_enabled());
    receiver.stop(true).await;
}

/// Runs `imago serve` with `otel` (the standard variables) added to its environment, makes the
/// three requests of [`check_spans`], stops it with SIGTERM and returns its stderr.
async fn serve_traced_and_stop(otel: &[(&str, String)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::copy(common::fixture_path("gps.jpg"), root.join("gps.jpg")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = dir.path().join("stderr.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imago"));
    cmd.arg("serve")
        .env("IMAGO_BIND", format!("127.0.0.1:{port}"))
        .env("IMAGO_KEY", common::KEY)
        .env("IMAGO_SALT", common::SALT)
        .env("IMAGO_LOCAL_ROOT", &root)
        .env("IMAGO_DEV_KEYS_FILE", dir.path().join("dev-keys.toml"))
        .env("IMAGO_ANALYTICS_DIR", dir.path().join("analytics"))
        .env("IMAGO_WORKERS", "2")
        .env("IMAGO_AUTO_QUALITY", "false")
        .env("IMAGO_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("IMAGO_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for k in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in otel {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = || std::fs::read_to_string(&log).unwrap_or_default();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("imago exited ({st}):\n{}", stderr());
        }
        assert!(Instant::now() < deadline, "imago did not start:\n{}", stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let signer = imago_signing::Signer::new(imago_signing::KeyPair::from_hex(common::KEY, common::SALT).unwrap());
    let url = |w: u32| {
        let path = imago_signing::UrlBuilder::new().width(w).sign(&signer, "local:///gps.jpg").unwrap();
        format!("{base}{path}")
    };
    let r = client.get(url(100)).header("traceparent", format!("00-{TRACE_ID}-{PARENT}-01")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(client.get(url(60)).send().await.unwrap().status(), 200);
    assert_eq!(client.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    // Graceful stop: the exporter is flushed and shut down before the process exits.
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "imago did not exit after SIGTERM:\n{}", stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(st.success(), "exit status {st}:\n{}", stderr());
    stderr()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imago_serve_exports_over_otlp_grpc() {
    let received = Received::default();
    let (addr, stop) = grpc_receiver(&received).await;
    let log = serve_traced_and_stop(&[
        // The collector's address; gRPC appends nothing.
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
        ("OTEL_SERVICE_NAME", "imago-grpc-test".into()),
        // Batches every 5 s by default: everything below arrives only by the final flush.
    ])
    .await;
    assert!(log.contains("\"protocol\":\"grpc\""), "{log}");
    // The process has exited: the spans are there already.
    let all = tokio::time::timeout(Duration::from_secs(1), received.wait_for_requests())
        .await
        .unwrap_or_else(|_| panic!("spans were not flushed before exit:\n{log}"));
    check_spans(&all);
    received.assert_service("imago-grpc-test");
    assert!(received.exports.lock().unwrap().iter().all(|h| *h == "grpc"));
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imago_serve_exports_over_otlp_http_json() {
    let received = Received::default();
    let (addr, receiver) = http_receiver(&received);
    let log = serve_traced_and_stop(&[
        // The traces endpoint is used as is; the traces protocol variable wins over the general one.
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", format!("http://{addr}/v1/traces")),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json".into()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200".into()),
    ])
    .await;
    assert!(log.contains("\"protocol\":\"http/json\""), "{log}");
    let all = received.wait_for_requests().await;
    check_spans(&all);
    received.assert_service("imago");
    assert!(received.exports.lock().unwrap().iter().all(|h| *h == "http/json"));
    receiver.stop(true).await;
}

#[test]
fn an_unknown_otlp_protocol_stops_imago_serve_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_imago"))
        .arg("serve")
        .env("IMAGO_BIND", "127.0.0.1:0")
        .env("IMAGO_KEY", common::KEY)
        .env("IMAGO_SALT", common::SALT)
        .env("IMAGO_LOCAL_ROOT", dir.path().join("images"))
        .env("IMAGO_ANALYTICS_DIR", dir.path().join("analytics"))
        .env_remove("IMAGO_CONFIG")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_TRACES_EXPORTER")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
        .env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=thrift: unknown OTLP protocol (use one of grpc, http/protobuf, http/json)"),
        "{err}"
    );
}
