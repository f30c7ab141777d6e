import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { requestUpload, uploadFile, completeUpload, ImagoApiError, ImagoOptionError, ImagoUploadError } from "../dist/index.js";

const TICKET = {
  id: "upl_1", key: "avatars/cat.jpg", method: "PUT", url: "https://bucket.example/put?sig=1",
  fields: {}, headers: { "Content-Type": "image/jpeg", "x-amz-meta-a": "b" }, expires_at: "2030-01-01T00:00:00Z",
  max_bytes: 1000, source: "s3://bucket/avatars/cat.jpg", image_url: "https://img.example/sig/plain/s3://bucket/avatars/cat.jpg",
  info_url: "https://img.example/v1/uploads/upl_1", exists: false,
};

describe("requestUpload against a local server", () => {
  let server;
  let base;
  const seen = [];
  before(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, type: req.headers["content-type"], body });
        const json = JSON.parse(body || "{}");
        if (req.headers.authorization !== "Bearer good") {
          res.writeHead(401, { "content-type": "application/json" });
          return res.end(JSON.stringify({ code: "unauthorized", message: "bad api key" }));
        }
        if (json.content_type === "text/html") {
          res.writeHead(502, { "content-type": "text/plain" });
          return res.end("bad gateway");
        }
        if (json.content_type === "image/x-broken") {
          res.writeHead(201, { "content-type": "application/json" });
          return res.end(JSON.stringify({ id: "x" }));
        }
        res.writeHead(201, { "content-type": "application/json" });
        res.end(JSON.stringify({ ...TICKET, exists: json.sha256 !== undefined }));
      });
    });
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${server.address().port}/`;
  });
  after(() => new Promise((r) => server.close(r)));

  test("posts JSON with bearer auth and returns the ticket", async () => {
    const t = await requestUpload(base, "good", { content_type: "image/jpeg", content_length: 10, filename: "cat.jpg", prefix: "avatars/" });
    assert.deepEqual(t, TICKET);
    const last = seen.at(-1);
    assert.equal(last.method, "POST");
    assert.equal(last.url, "/v1/uploads");
    assert.equal(last.auth, "Bearer good");
    assert.equal(last.type, "application/json");
    assert.deepEqual(JSON.parse(last.body), { content_type: "image/jpeg", content_length: 10, filename: "cat.jpg", prefix: "avatars/" });
  });
  test("asks for a POST (form) ticket, and refuses other methods before any request", async () => {
    await requestUpload(base, "good", { content_type: "image/png", method: "POST" });
    assert.deepEqual(JSON.parse(seen.at(-1).body), { content_type: "image/png", method: "POST" });
    const before = seen.length;
    await assert.rejects(requestUpload(base, "good", { content_type: "image/png", method: "PATCH" }), (e) => e instanceof ImagoOptionError && e.option === "method");
    assert.equal(seen.length, before);
  });
  test("sha256 dedup ticket", async () => {
    const t = await requestUpload(base, "good", { content_type: "image/png", sha256: "a".repeat(64) });
    assert.equal(t.exists, true);
  });
  test("JSON error → ImagoApiError with code", async () => {
    await assert.rejects(requestUpload(base, "bad", { content_type: "image/png" }), (e) => {
      assert.ok(e instanceof ImagoApiError);
      assert.equal(e.status, 401);
      assert.equal(e.code, "unauthorized");
      assert.equal(e.message, "bad api key");
      return true;
    });
  });
  test("non-JSON error → http-{status}", async () => {
    await assert.rejects(requestUpload(base, "good", { content_type: "text/html" }), (e) => e instanceof ImagoApiError && e.status === 502 && e.code === "http-502");
  });
  test("malformed ticket → invalid-response", async () => {
    await assert.rejects(requestUpload(base, "good", { content_type: "image/x-broken" }), (e) => e instanceof ImagoApiError && e.code === "invalid-response");
  });
  test("client-side validation", async () => {
    const n = seen.length;
    await assert.rejects(requestUpload(base, "good", { content_type: "jpeg" }), (e) => e instanceof ImagoOptionError && e.option === "content_type");
    await assert.rejects(requestUpload(base, "good", { content_type: "image/png", sha256: "XYZ" }), (e) => e.option === "sha256");
    await assert.rejects(requestUpload(base, "good", { content_type: "image/png", content_length: -1 }), (e) => e.option === "content_length");
    await assert.rejects(requestUpload(base, "", { content_type: "image/png" }), (e) => e.option === "apiKey");
    await assert.rejects(requestUpload("ftp://x", "k", { content_type: "image/png" }), (e) => e.option === "baseUrl");
    assert.equal(seen.length, n, "nothing was sent");
  });
});

/** Scriptable fake XMLHttpRequest. `plan` is a list of outcomes, one per attempt. */
function fakeXhr(plan) {
  const log = [];
  class FakeXHR {
    constructor() {
      this.upload = {};
      this.headers = {};
      this.status = 0;
      this.entry = { headers: this.headers };
      log.push(this.entry);
    }
    open(method, url) { Object.assign(this.entry, { method, url }); }
    setRequestHeader(k, v) { this.headers[k] = v; }
    abort() { this.entry.aborted = true; queueMicrotask(() => this.onabort?.()); }
    send(body) {
      this.entry.body = body;
      const outcome = plan[log.length - 1];
      if (outcome === "hang") return;
      setTimeout(() => {
        this.upload.onprogress?.({ loaded: 5, total: 10, lengthComputable: true });
        this.upload.onprogress?.({ loaded: 10, total: 10, lengthComputable: true });
        if (outcome === "neterr") return this.onerror?.();
        this.status = outcome;
        this.onload?.();
      }, 1);
    }
  }
  return { FakeXHR, log };
}

describe("uploadFile", () => {
  const file = new Blob([new Uint8Array(10)], { type: "image/jpeg" });

  test("PUT sends headers and the blob, reports progress", async () => {
    const { FakeXHR, log } = fakeXhr([200]);
    const progress = [];
    const t = await uploadFile(TICKET, file, { XMLHttpRequest: FakeXHR, onProgress: (p) => progress.push(p) });
    assert.equal(t, TICKET);
    assert.equal(log.length, 1);
    assert.equal(log[0].method, "PUT");
    assert.equal(log[0].url, TICKET.url);
    assert.deepEqual(log[0].headers, TICKET.headers);
    assert.equal(log[0].body, file);
    assert.deepEqual(progress, [{ loaded: 5, total: 10, fraction: 0.5 }, { loaded: 10, total: 10, fraction: 1 }]);
  });

  test("POST sends form fields first, then the file last", async () => {
    const { FakeXHR, log } = fakeXhr([204]);
    const ticket = { ...TICKET, method: "POST", fields: { key: "avatars/cat.jpg", policy: "p", "x-amz-signature": "s" }, headers: {} };
    await uploadFile(ticket, new File([new Uint8Array(3)], "cat.jpg"), { XMLHttpRequest: FakeXHR });
    const form = log[0].body;
    assert.ok(form instanceof FormData);
    assert.deepEqual([...form.keys()], ["key", "policy", "x-amz-signature", "file"]);
    assert.equal(form.get("file").name, "cat.jpg");
    assert.deepEqual(log[0].headers, {});
  });

  test("retries network errors and 5xx, then succeeds", async () => {
    const { FakeXHR, log } = fakeXhr(["neterr", 503, 200]);
    await uploadFile(TICKET, file, { XMLHttpRequest: FakeXHR, retries: 2, retryDelayMs: 1 });
    assert.equal(log.length, 3);
  });

  test("gives up after the retries", async () => {
    const { FakeXHR, log } = fakeXhr([500, 500, 500, 200]);
    await assert.rejects(uploadFile(TICKET, file, { XMLHttpRequest: FakeXHR, retries: 2, retryDelayMs: 1 }), (e) => e instanceof ImagoUploadError && e.status === 500 && e.attempts === 3);
    assert.equal(log.length, 3);
  });

  test("does not retry 4xx", async () => {
    const { FakeXHR, log } = fakeXhr([403, 200]);
    await assert.rejects(uploadFile(TICKET, file, { XMLHttpRequest: FakeXHR, retryDelayMs: 1 }), (e) => e instanceof ImagoUploadError && e.status === 403);
    assert.equal(log.length, 1);
  });

  test("abort via AbortSignal", async () => {
    const { FakeXHR, log } = fakeXhr(["hang"]);
    const ac = new AbortController();
    const p = uploadFile(TICKET, file, { XMLHttpRequest: FakeXHR, signal: ac.signal });
    setTimeout(() => ac.abort(), 5);
    await assert.rejects(p, (e) => e.name === "AbortError");
    assert.equal(log[0].aborted, true);
  });

  test("already-aborted signal sends nothing", async () => {
    const { FakeXHR, log } = fakeXhr([200]);
    await assert.rejects(uploadFile(TICKET, file, { XMLHttpRequest: FakeXHR, signal: AbortSignal.abort() }), (e) => e.name === "AbortError");
    assert.equal(log.length, 0);
  });

  test("abort during retry back-off stops retrying", async () => {
    const { FakeXHR, log } = fakeXhr([503, 200]);
    const ac = new AbortController();
    const p = uploadFile(TICKET, file, { XMLHttpRequest: FakeXHR, signal: ac.signal, retryDelayMs: 200 });
    setTimeout(() => ac.abort(), 30);
    await assert.rejects(p, (e) => e.name === "AbortError");
    assert.equal(log.length, 1);
  });

  test("exists: true resolves without uploading", async () => {
    const { FakeXHR, log } = fakeXhr([200]);
    let last;
    await uploadFile({ ...TICKET, exists: true }, file, { XMLHttpRequest: FakeXHR, onProgress: (p) => (last = p) });
    assert.equal(log.length, 0);
    assert.deepEqual(last, { loaded: 10, total: 10, fraction: 1 });
  });

  test("file larger than max_bytes is refused before sending", async () => {
    const { FakeXHR, log } = fakeXhr([200]);
    await assert.rejects(uploadFile({ ...TICKET, max_bytes: 5 }, file, { XMLHttpRequest: FakeXHR }), (e) => e instanceof ImagoUploadError && e.status === 413);
    assert.equal(log.length, 0);
  });

  test("no XMLHttpRequest available", async () => {
    await assert.rejects(uploadFile(TICKET, file), (e) => e instanceof ImagoOptionError && e.option === "XMLHttpRequest");
  });
});

describe("completeUpload against a local server", () => {
  let server;
  let base;
  const seen = [];
  const DONE = { id: "upl_1", key: "avatars/cat.jpg", state: "ready", etag: "\"e\"", bytes: 10, format: "jpg", width: 3, height: 2, frames: 1, checked_at: "2030-01-01T00:00:00Z", image_url: "i", info_url: "n" };
  before(async () => {
    server = createServer((req, res) => {
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization });
      if (req.url === "/v1/uploads/upl_1/complete") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify(DONE));
      }
      res.writeHead(422, { "content-type": "application/json" });
      res.end(JSON.stringify({ code: "not-an-image", message: "the body is not a JPEG image" }));
    });
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${server.address().port}`;
  });
  after(() => new Promise((r) => server.close(r)));

  test("posts to complete_url without a key and returns the facts", async () => {
    const c = await completeUpload({ id: "upl_1", complete_url: `${base}/v1/uploads/upl_1/complete` });
    assert.deepEqual(c, DONE);
    assert.deepEqual(seen.at(-1), { method: "POST", url: "/v1/uploads/upl_1/complete", auth: undefined });
  });
  test("builds the URL from baseUrl and sends the API key when given", async () => {
    await completeUpload({ id: "upl_1" }, { baseUrl: `${base}/`, apiKey: "k" });
    assert.deepEqual(seen.at(-1), { method: "POST", url: "/v1/uploads/upl_1/complete", auth: "Bearer k" });
    await assert.rejects(completeUpload({ id: "upl_1" }), (e) => e instanceof ImagoOptionError && e.option === "baseUrl");
  });
  test("a rejection is an ImagoApiError with the check's code", async () => {
    await assert.rejects(completeUpload({ id: "upl_2", complete_url: `${base}/v1/uploads/upl_2/complete` }), (e) => e instanceof ImagoApiError && e.status === 422 && e.code === "not-an-image");
  });
});
