//! OpenTelemetry export against a real OTLP/HTTP receiver on loopback: the test accepts
//! `POST /v1/traces` (protobuf), decodes it with `opentelemetry-proto`, and checks the span tree
//! of an image request and that an incoming W3C `traceparent` is continued.
//!
//! Its own test binary: it installs the process-wide tracing subscriber.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

type Spans = Arc<Mutex<Vec<Span>>>;

const SERVER_SPAN: &str = "GET /{signature}/{options}/{source}";

async fn receive(body: web::Bytes, spans: web::Data<Spans>, posts: web::Data<Arc<Mutex<usize>>>) -> HttpResponse {
    let req = match ExportTraceServiceRequest::decode(body.as_ref()) {
        Ok(r) => r,
        Err(e) => return HttpResponse::BadRequest().body(format!("not an OTLP protobuf export: {e}")),
    };
    *posts.lock().unwrap() += 1;
    let mut all = spans.lock().unwrap();
    for rs in req.resource_spans {
        let service = rs
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
            .and_then(|a| a.value.as_ref())
            .map(|v| format!("{:?}", v.value))
            .unwrap_or_default();
        assert!(service.contains("imago"), "service.name: {service}");
        for ss in rs.scope_spans {
            all.extend(ss.spans);
        }
    }
    HttpResponse::Ok().content_type("application/x-protobuf").body(Vec::new())
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_and_continue_the_incoming_trace() {
    let spans: Spans = Arc::default();
    let posts: Arc<Mutex<usize>> = Arc::default();
    let (sd, pd) = (web::Data::new(spans.clone()), web::Data::new(posts.clone()));
    let receiver = HttpServer::new(move || {
        App::new()
            .app_data(sd.clone())
            .app_data(pd.clone())
            .app_data(web::PayloadConfig::new(16 << 20))
            .route("/v1/traces", web::post().to(receive))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = receiver.addrs()[0];
    let receiver = receiver.run();
    let receiver_handle = receiver.handle();
    tokio::spawn(receiver);

    // The exporter's blocking HTTP client must be built outside the runtime.
    let endpoint = format!("http://{addr}/v1/traces");
    let telemetry =
        std::thread::spawn(move || imago::telemetry::init("json", imago::telemetry::Otlp::Endpoint(endpoint)))
            .join()
            .unwrap();
    assert!(telemetry.exporting());
    assert!(imago::telemetry::otel_enabled());

    let s = common::start(&["gps.jpg"], |c| c.auto_quality = false).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let traced = s.url("w:100", "local:///gps.jpg", None);
    let r = s.get_with(&traced, &[("traceparent", &format!("00-{trace_id}-{parent}-01"))]).await;
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
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = spans.lock().unwrap().iter().filter(|s| s.name == SERVER_SPAN).count();
        if n >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no request spans received ({} posts): {:?}",
            posts.lock().unwrap(),
            spans.lock().unwrap().iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = spans.lock().unwrap().clone();

    // The traced request: one tree under the caller's span, all in the caller's trace.
    let mine: Vec<Span> = all.iter().filter(|s| hex(&s.trace_id) == trace_id).cloned().collect();
    // The `request` span, named after the OpenTelemetry HTTP conventions: method and route.
    let request = one(&mine, SERVER_SPAN);
    assert_eq!(hex(&request.parent_span_id), parent, "the request span's parent is the incoming span");
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
    let others: Vec<&Span> = all.iter().filter(|s| s.name == SERVER_SPAN && hex(&s.trace_id) != trace_id).collect();
    assert_eq!(others.len(), 1, "{others:?}");
    assert!(others[0].parent_span_id.is_empty(), "a root span");
    assert!(all.iter().all(|s| attr(s, "http.route").is_none_or(|r| !r.contains("healthz"))), "no span for /healthz");
    assert!(attr(request, "http.route").is_some_and(|r| r.contains("{signature}")), "low-cardinality route");

    tokio::task::spawn_blocking(move || telemetry.shutdown()).await.unwrap();
    assert!(!imago::telemetry::otel_enabled());
    receiver_handle.stop(true).await;
}
