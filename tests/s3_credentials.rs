//! S3 workload identity (issue #17): the imago binary started with only the AWS chain's
//! variables (`IMAGO_S3_CREDENTIALS=chain`) against a real Garage (`scripts/garage.sh`, settings
//! from `IMAGO_TEST_S3_*`) and a local STS-compatible endpoint on 127.0.0.1 (an actix server in
//! this file implementing `AssumeRoleWithWebIdentity`: it checks the projected token and the role
//! ARN and hands out Garage's key with a session token that expires in 20 s).
//!
//! Garage ignores session tokens, so the token is asserted where it travels: in STS calls, in
//! presigned URLs (`X-Amz-Security-Token`) and POST policy fields; the refresh is asserted at the
//! STS (a second call before the first credentials' expiration) and by requests that keep
//! working across it. Like the other Garage tests, without the environment these print why and
//! pass, except under `CI=true`.

mod common;
mod uploads_common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actix_web::{web, App, HttpResponse, HttpServer};
use common::{decode, fixture, free_port, KEY, SALT};
use imago_signing::{KeyPair, Signer, UrlBuilder};
use serde_json::{json, Value};
use uploads_common::{send, unique_prefix, S3Env, API_KEY};

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/imago-test";
const LIFETIME: Duration = Duration::from_secs(20);

/// One `AssumeRoleWithWebIdentity` call the STS saw.
#[derive(Clone, Debug)]
struct Call {
    at: Instant,
    session_name: String,
    /// What it answered: the session token, or the refusal.
    answer: Result<String, u16>,
}

/// A local STS: answers `AssumeRoleWithWebIdentity` for one role and one projected token with
/// the Garage key, a fresh session token (`session-token-N`) and an expiration `LIFETIME` away.
#[derive(Clone)]
struct Sts {
    access_key: String,
    secret_key: String,
    web_token: String,
    calls: Arc<Mutex<Vec<Call>>>,
    issued: Arc<AtomicU64>,
    /// While set, every call is answered 503 (an STS outage).
    down: Arc<AtomicBool>,
}

impl Sts {
    fn new(env: &S3Env) -> Sts {
        Sts {
            access_key: env.access_key.clone(),
            secret_key: env.secret_key.clone(),
            web_token: format!("projected-sa-token-{}", unique_prefix("jwt")),
            calls: Arc::default(),
            issued: Arc::default(),
            down: Arc::default(),
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, session_name: &str, answer: Result<String, u16>) {
        self.calls.lock().unwrap().push(Call { at: Instant::now(), session_name: session_name.into(), answer });
    }

    /// Serves on `port` (0: any free one) until the handle is stopped.
    fn serve(&self, port: u16) -> (u16, actix_web::dev::ServerHandle) {
        let data = web::Data::new(self.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).route("/", web::post().to(assume)))
            .workers(1)
            .disable_signals()
            .bind(("127.0.0.1", port))
            .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        (port, handle)
    }
}

fn sts_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let xml = format!(
        r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r</RequestId></ErrorResponse>"#
    );
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).content_type("text/xml").body(xml)
}

async fn assume(sts: web::Data<Sts>, body: web::Bytes) -> HttpResponse {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let session_name = get("RoleSessionName");
    if get("Action") != "AssumeRoleWithWebIdentity" || get("Version") != "2011-06-15" {
        sts.record(&session_name, Err(400));
        return sts_error(400, "InvalidAction", "not AssumeRoleWithWebIdentity");
    }
    if get("RoleArn") != ROLE_ARN || get("WebIdentityToken") != sts.web_token {
        sts.record(&session_name, Err(403));
        return sts_error(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity");
    }
    if sts.down.load(Ordering::SeqCst) {
        sts.record(&session_name, Err(503));
        return sts_error(503, "ServiceUnavailable", "try again");
    }
    let n = sts.issued.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("session-token-{n}");
    let expiration = jiff::Timestamp::try_from(SystemTime::now() + LIFETIME).unwrap();
    let xml = format!(
        r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:imago:imago</SubjectFromWebIdentityToken>
    <AssumedRoleUser><Arn>{ROLE_ARN}/{session_name}</Arn><AssumedRoleId>AROA:{session_name}</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{}</AccessKeyId>
      <SecretAccessKey>{}</SecretAccessKey>
      <SessionToken>{token}</SessionToken>
      <Expiration>{}</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r-{n}</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#,
        sts.access_key,
        sts.secret_key,
        expiration.strftime("%Y-%m-%dT%H:%M:%SZ")
    );
    sts.record(&session_name, Ok(token));
    HttpResponse::Ok().content_type("text/xml").body(xml)
}

/// The imago binary, killed on drop; its log (stderr) goes to a file.
struct Imago {
    child: Child,
    base: String,
    log: std::path::PathBuf,
    signer: Signer,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Imago {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `imago serve` with a clean environment: the S3 settings of `env` without any key,
/// `IMAGO_S3_CREDENTIALS=chain`, and `vars` (the chain's variables).
fn spawn(env: &S3Env, prefix: &str, vars: &[(&str, String)]) -> Imago {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    std::fs::create_dir_all(&root).unwrap();
    let port = free_port();
    let log = dir.path().join("imago.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imago"));
    cmd.arg("serve")
        .env_clear()
        .env("IMAGO_BIND", format!("127.0.0.1:{port}"))
        .env("IMAGO_KEY", KEY)
        .env("IMAGO_SALT", SALT)
        .env("IMAGO_LOCAL_ROOT", &root)
        .env("IMAGO_ANALYTICS_DIR", dir.path().join("analytics"))
        .env("IMAGO_WORKERS", "2")
        .env("IMAGO_AUTO_QUALITY", "false")
        // Every image request reads the store (no cached variant or source).
        .env("IMAGO_CACHE_SIZE_MB", "0")
        .env("IMAGO_SOURCE_CACHE_MB", "0")
        .env("IMAGO_READYZ_CACHE_MS", "0")
        .env("IMAGO_PUBLIC_METRICS", "true")
        .env("IMAGO_API_KEYS", API_KEY)
        .env("IMAGO_UPLOAD_PREFIXES", prefix)
        .env("IMAGO_S3_ENDPOINT", &env.endpoint)
        .env("IMAGO_S3_REGION", &env.region)
        .env("IMAGO_S3_BUCKET", &env.bucket)
        .env("IMAGO_S3_PATH_STYLE", "true")
        .env("IMAGO_S3_CREDENTIALS", "chain")
        .env("IMAGO_S3_CREDENTIALS_RETRY_MS", "500")
        // Never reach for a metadata endpoint off this machine.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    Imago {
        child: cmd.spawn().unwrap(),
        base: format!("http://127.0.0.1:{port}"),
        log,
        signer: Signer::new(KeyPair::from_hex(KEY, SALT).unwrap()),
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Imago {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for `/readyz` to answer 200.
    async fn ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("imago exited ({status}):\n{}", self.log());
            }
            if let Ok(r) = self.client.get(format!("{}/readyz", self.base)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("imago not ready in 30 s:\n{}", self.log());
    }

    async fn readyz(&self) -> (u16, Value) {
        let r = self.client.get(format!("{}/readyz", self.base)).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn metrics(&self) -> String {
        self.client.get(format!("{}/metrics", self.base)).send().await.unwrap().text().await.unwrap()
    }

    async fn ticket(&self, body: Value) -> Value {
        let r = self
            .client
            .post(format!("{}/v1/uploads", self.base))
            .bearer_auth(API_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    }

    /// Uploads `photo` with a presigned PUT, reads it back through imago (an `s3://` source,
    /// resized to `width`) and returns the ticket.
    async fn upload_and_read(&self, photo: &[u8], width: u32) -> Value {
        let t = self.ticket(json!({"content_type": "image/jpeg", "content_length": photo.len()})).await;
        let r = send(&self.client, &t, photo.to_vec(), None).await;
        assert!(r.status().is_success(), "PUT: {}: {}", r.status(), r.text().await.unwrap());
        self.read(t["source"].as_str().unwrap(), width).await;
        t
    }

    /// GETs `source` resized to `width` through imago (a store read each time).
    async fn read(&self, source: &str, width: u32) {
        let path = UrlBuilder::new().width(width).extension("png").sign(&self.signer, source).unwrap();
        let r = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{source}: {}", r.text().await.unwrap());
        assert_eq!(decode(&r.bytes().await.unwrap()).width(), width);
    }
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

/// The value of a metric line (`name{labels} value`).
fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

async fn eventually<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn write_token(dir: &Path, token: &str) -> String {
    let p = dir.join("token");
    std::fs::write(&p, format!("{token}\n")).unwrap();
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_identity_credentials_are_refreshed_before_they_expire() {
    let Some(env) = S3Env::get() else { return };
    let sts = Sts::new(&env);
    let (sts_port, _sts) = sts.serve(0);
    let tokens = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("wi");
    let mut imago = spawn(
        &env,
        &prefix,
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", write_token(tokens.path(), &sts.web_token)),
            ("AWS_ROLE_ARN", ROLE_ARN.into()),
            ("AWS_ROLE_SESSION_NAME", "imago-test".into()),
            ("AWS_ENDPOINT_URL_STS", format!("http://127.0.0.1:{sts_port}/")),
        ],
    );
    imago.ready().await;
    let first = sts.calls();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!((first[0].session_name.as_str(), first[0].answer.clone()), ("imago-test", Ok("session-token-1".into())));

    // Signed with the STS credentials: the session token is in the presigned URL.
    let photo = fixture("orientation/Landscape_1.jpg");
    let t = imago.upload_and_read(&photo, 120).await;
    let q = query(t["url"].as_str().unwrap());
    assert_eq!(q.get("X-Amz-Security-Token").map(String::as_str), Some("session-token-1"), "{q:?}");
    assert_eq!(env.object(t["key"].as_str().unwrap()).await.unwrap(), photo);
    // A POST form carries it as a field the policy covers, and Garage takes the form.
    let post = imago.ticket(json!({"content_type": "image/jpeg"})).await;
    assert_eq!(post["fields"]["x-amz-security-token"], "session-token-1");
    let policy = common_b64_json(post["fields"]["policy"].as_str().unwrap());
    assert!(policy["conditions"].to_string().contains(r#"{"x-amz-security-token":"session-token-1"}"#), "{policy}");
    let r = send(&imago.client, &post, photo.clone(), None).await;
    assert!(r.status().is_success(), "POST: {}: {}", r.status(), r.text().await.unwrap());

    // Refreshed ahead of the expiration (20 s credentials: at half their life), and requests
    // keep working across it, with the new token.
    let calls = eventually("a refresh", Duration::from_secs(25), || {
        let c = sts.calls();
        (c.len() >= 2).then_some(c)
    })
    .await;
    let ahead = calls[1].at.duration_since(calls[0].at);
    eprintln!("refreshed {ahead:?} after the first fetch ({LIFETIME:?} credentials)");
    assert!(ahead < LIFETIME - Duration::from_secs(5), "refreshed {ahead:?} after the first fetch, for {LIFETIME:?}");
    assert_eq!(calls[1].answer, Ok("session-token-2".into()));
    let source = t["source"].as_str().unwrap().to_string();
    imago.read(&source, 140).await;
    let t2 = imago.upload_and_read(&photo, 160).await;
    assert_eq!(
        query(t2["url"].as_str().unwrap()).get("X-Amz-Security-Token").map(String::as_str),
        Some("session-token-2")
    );
    let m = imago.metrics().await;
    assert!(
        metric(&m, r#"imago_s3_credential_refreshes_total{outcome="ok",source="web-identity"}"#) >= Some(2.0),
        "{m}"
    );
    let left = metric(&m, r#"imago_s3_credential_expiry_seconds{source="web-identity"}"#).unwrap();
    assert!(left > 0.0 && left <= 20.0, "{m}");

    // STS down: the refresh fails, the current credentials stay (requests work), /readyz
    // stays ready with a warning naming the dependency, the metric counts the failures.
    sts.down.store(true, Ordering::SeqCst);
    eventually("a failed refresh", Duration::from_secs(25), || {
        sts.calls().iter().any(|c| c.answer == Err(503)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = imago.readyz().await;
    assert_eq!(status, 200, "{body}");
    let warning = body["warning"].as_str().unwrap_or_default().to_string();
    assert!(warning.starts_with("s3 credentials (web-identity) expire in"), "{body}");
    assert!(warning.contains("refresh failed"), "{body}");
    imago.read(&source, 180).await;
    let m = imago.metrics().await;
    assert!(
        metric(&m, r#"imago_s3_credential_refreshes_total{outcome="error",source="web-identity"}"#) >= Some(1.0),
        "{m}"
    );
    // Past their expiration: not ready, and why.
    let (status, body) = eventually_async(&imago, Duration::from_secs(25)).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["reason"].as_str().unwrap().starts_with("s3 credentials (web-identity) expired"), "{body}");

    // STS back: the next retry (IMAGO_S3_CREDENTIALS_RETRY_MS=500) recovers.
    sts.down.store(false, Ordering::SeqCst);
    imago.ready().await;
    let (_, body) = imago.readyz().await;
    assert!(body.get("warning").is_none(), "{body}");
    let t3 = imago.upload_and_read(&photo, 200).await;
    let n = sts.issued.load(Ordering::SeqCst);
    assert_eq!(query(t3["url"].as_str().unwrap()).get("X-Amz-Security-Token"), Some(&format!("session-token-{n}")));

    // No secret reached the log: not the projected token, the secret key, nor a session token.
    let log = imago.log();
    assert!(log.contains("s3 credentials refreshed"), "{log}");
    for secret in [sts.web_token.as_str(), env.secret_key.as_str(), "session-token-"] {
        assert!(!log.contains(secret), "the log holds a secret ({secret}):\n{log}");
    }
}

/// Waits (up to `limit`) for `/readyz` to stop answering 200, and returns that answer.
async fn eventually_async(imago: &Imago, limit: Duration) -> (u16, Value) {
    let deadline = Instant::now() + limit;
    loop {
        let (status, body) = imago.readyz().await;
        if status != 200 || Instant::now() > deadline {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn common_b64_json(s: &str) -> Value {
    use base64::Engine;
    serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
}

/// STS unreachable at start (or refusing the token): imago does not start, and says which
/// source failed without quoting the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_at_start_refuses_to_start() {
    let Some(env) = S3Env::get() else { return };
    let sts = Sts::new(&env);
    let tokens = tempfile::tempdir().unwrap();
    let token_file = write_token(tokens.path(), &sts.web_token);
    // Nothing listens on this port; then an STS that refuses the token (a wrong role ARN).
    let down = free_port();
    let (refusing, _h) = sts.serve(0);
    for (sts_url, role, why) in [
        (format!("http://127.0.0.1:{down}/"), ROLE_ARN, "no answer"),
        (format!("http://127.0.0.1:{refusing}/"), "arn:aws:iam::123456789012:role/other", "AccessDenied"),
    ] {
        let mut imago = spawn(
            &env,
            "refused",
            &[
                ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.clone()),
                ("AWS_ROLE_ARN", role.into()),
                ("AWS_ENDPOINT_URL_STS", sts_url),
            ],
        );
        let started = Instant::now();
        let status = loop {
            if let Some(s) = imago.child.try_wait().unwrap() {
                break s;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "imago kept running:\n{}", imago.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(!status.success());
        let log = imago.log();
        assert!(log.contains("no s3 credentials from web-identity"), "{log}");
        assert!(log.contains(why), "{log}");
        assert!(!log.contains(&sts.web_token), "{log}");
    }
    assert_eq!(sts.calls().iter().map(|c| c.answer.clone()).collect::<Vec<_>>(), vec![Err(403)]);
}

/// The env source with a session token (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`): signed into PUT URLs and POST forms, and the store takes both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_credentials_with_a_session_token() {
    let Some(env) = S3Env::get() else { return };
    let prefix = unique_prefix("envtok");
    let mut imago = spawn(
        &env,
        &prefix,
        &[
            ("AWS_ACCESS_KEY_ID", env.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY", env.secret_key.clone()),
            ("AWS_SESSION_TOKEN", "env-session-token".into()),
        ],
    );
    imago.ready().await;
    let photo = fixture("orientation/Portrait_1.jpg");
    let t = imago.upload_and_read(&photo, 100).await;
    assert_eq!(
        query(t["url"].as_str().unwrap()).get("X-Amz-Security-Token").map(String::as_str),
        Some("env-session-token")
    );
    let post = imago.ticket(json!({"content_type": "image/jpeg"})).await;
    assert_eq!(post["fields"]["x-amz-security-token"], "env-session-token");
    let r = send(&imago.client, &post, photo.clone(), None).await;
    assert!(r.status().is_success(), "POST: {}: {}", r.status(), r.text().await.unwrap());
    assert_eq!(env.object(post["key"].as_str().unwrap()).await.unwrap(), photo);
    let (status, body) = imago.readyz().await;
    assert_eq!((status, body), (200, json!({"ready": true})));
    let m = imago.metrics().await;
    assert_eq!(metric(&m, r#"imago_s3_credential_refreshes_total{outcome="ok",source="env"}"#), Some(1.0), "{m}");
    assert_eq!(metric(&m, r#"imago_s3_credential_refreshes_total{outcome="error",source="env"}"#), Some(0.0), "{m}");
    assert!(!m.contains("imago_s3_credential_expiry_seconds{"), "env credentials do not expire: {m}");
    let log = imago.log();
    assert!(!log.contains(&env.secret_key) && !log.contains("env-session-token"), "{log}");
}

/// A local container-credentials (ECS, EKS Pod Identity) and instance-metadata (IMDSv2) endpoint:
/// it checks the authorization each protocol requires and hands out the Garage key with a
/// session token for an hour, counting what it served.
#[derive(Clone)]
struct Metadata {
    access_key: String,
    secret_key: String,
    auth: String,
    served: Arc<Mutex<Vec<String>>>,
}

fn creds_json(m: &Metadata, token: &str) -> Value {
    let expiration = jiff::Timestamp::try_from(SystemTime::now() + Duration::from_secs(3600)).unwrap();
    json!({
        "Code": "Success", "Message": "", "Type": "AWS-HMAC",
        "LastUpdated": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "AccessKeyId": m.access_key, "SecretAccessKey": m.secret_key, "Token": token,
        "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    })
}

async fn metadata(m: web::Data<Metadata>, req: actix_web::HttpRequest) -> HttpResponse {
    let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let path = req.path().to_string();
    m.served.lock().unwrap().push(format!("{} {path}", req.method()));
    match (req.method().as_str(), path.as_str()) {
        // ECS / Pod Identity: the token from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE.
        ("GET", "/v2/credentials/task") if header("authorization") == m.auth => {
            HttpResponse::Ok().json(creds_json(&m, "ecs-session-token"))
        }
        // IMDSv2: a session token first, then the role, then its credentials.
        ("PUT", "/latest/api/token") if !header("x-aws-ec2-metadata-token-ttl-seconds").is_empty() => {
            HttpResponse::Ok().body(m.auth.clone())
        }
        ("GET", "/latest/meta-data/iam/security-credentials/") if header("x-aws-ec2-metadata-token") == m.auth => {
            HttpResponse::Ok().body("imago-role")
        }
        ("GET", "/latest/meta-data/iam/security-credentials/imago-role")
            if header("x-aws-ec2-metadata-token") == m.auth =>
        {
            HttpResponse::Ok().json(creds_json(&m, "imds-session-token"))
        }
        _ => HttpResponse::Unauthorized().finish(),
    }
}

/// ECS container credentials (`AWS_CONTAINER_CREDENTIALS_FULL_URI` + the authorization token
/// file, as EKS Pod Identity sets them) and EC2 IMDSv2 (its endpoint moved to 127.0.0.1 with
/// `AWS_EC2_METADATA_SERVICE_ENDPOINT`): each gives working credentials with its session token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_and_instance_metadata_credentials() {
    let Some(env) = S3Env::get() else { return };
    let m = Metadata {
        access_key: env.access_key.clone(),
        secret_key: env.secret_key.clone(),
        auth: format!("metadata-auth-{}", unique_prefix("t")),
        served: Arc::default(),
    };
    let data = web::Data::new(m.clone());
    let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(metadata)))
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
    let port = server.addrs()[0].port();
    let server = server.run();
    let _h = server.handle();
    tokio::spawn(server);
    let dir = tempfile::tempdir().unwrap();
    let auth_file = dir.path().join("eks-pod-identity-token");
    std::fs::write(&auth_file, &m.auth).unwrap();
    let photo = fixture("orientation/Landscape_3.jpg");
    type Vars = Vec<(&'static str, String)>;
    let cases: [(&str, Vars, &str); 2] = [
        (
            "ecs",
            vec![
                ("AWS_CONTAINER_CREDENTIALS_FULL_URI", format!("http://127.0.0.1:{port}/v2/credentials/task")),
                ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", auth_file.display().to_string()),
            ],
            "ecs-session-token",
        ),
        (
            "imds",
            vec![
                ("AWS_EC2_METADATA_DISABLED", "false".into()),
                ("AWS_EC2_METADATA_SERVICE_ENDPOINT", format!("http://127.0.0.1:{port}")),
            ],
            "imds-session-token",
        ),
    ];
    for (source, vars, token) in cases {
        m.served.lock().unwrap().clear();
        let prefix = unique_prefix(source);
        let mut imago = spawn(&env, &prefix, &vars);
        imago.ready().await;
        let t = imago.upload_and_read(&photo, 90).await;
        assert_eq!(query(t["url"].as_str().unwrap()).get("X-Amz-Security-Token").map(String::as_str), Some(token));
        let served = m.served.lock().unwrap().clone();
        assert!(!served.is_empty(), "{source}: the metadata endpoint was not asked");
        let log = imago.log();
        assert!(log.contains(&format!(r#""source":"{source}""#)) || log.contains(&format!("source={source}")), "{log}");
        assert!(!log.contains(token) && !log.contains(&m.auth) && !log.contains(&env.secret_key), "{log}");
    }
}
