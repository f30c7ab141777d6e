import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { verifyWebhook, signWebhook, ImagoWebhookError, listImages, deleteImage, restoreImage, ImagoApiError } from "../dist/index.js";

const webhooks = JSON.parse(readFileSync(new URL("../../vectors/webhooks.json", import.meta.url), "utf8"));

describe("webhook vectors (signing/vectors/webhooks.json)", () => {
  test("has sign and verify cases", () => {
    assert.ok(webhooks.sign.length >= 3 && webhooks.verify.length >= 10);
  });
  for (const c of webhooks.sign) {
    test(`sign: ${c.name}`, async () => {
      assert.equal(await signWebhook(c.secrets, c.timestamp, c.body), c.header);
    });
  }
  for (const c of webhooks.verify) {
    test(`verify: ${c.name}`, async () => {
      const run = () => verifyWebhook(c.header, c.body, c.secrets, { toleranceSecs: c.tolerance, now: c.now });
      if (c.valid) {
        assert.equal(await run(), c.timestamp);
      } else {
        await assert.rejects(run, (e) => e instanceof ImagoWebhookError && e.code === c.error);
      }
    });
  }
});

describe("listImages / deleteImage against a local server", () => {
  let server;
  let base;
  const seen = [];
  before(async () => {
    server = createServer((req, res) => {
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization });
      if (req.headers.authorization !== "Bearer good") {
        res.writeHead(401, { "content-type": "application/json" });
        return res.end(JSON.stringify({ code: "unauthorized", message: "bad api key" }));
      }
      if (req.method === "GET" && req.url.startsWith("/v1/images?")) {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify({
          items: [{ key: "uploads/a.jpg", tenant: "default", bytes: 3, last_modified: null, image_url: "http://x/s/plain/local:///uploads/a.jpg", info_url: "http://x/v1/images/uploads/a.jpg/info" }],
          next_cursor: "c2",
        }));
      }
      if (req.method === "DELETE" && req.url === "/v1/images/uploads/a%20b.jpg") {
        res.writeHead(204);
        return res.end();
      }
      if (req.method === "POST" && req.url === "/v1/images/uploads/a%20b.jpg/restore") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify({ key: "uploads/a b.jpg", state: "ready" }));
      }
      if (req.method === "POST" && req.url === "/v1/images/uploads/old.jpg/restore") {
        res.writeHead(410, { "content-type": "application/json" });
        return res.end(JSON.stringify({ code: "image-deleted", message: "this image was deleted: its grace period ended" }));
      }
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ code: "not-found", message: "no such image" }));
    });
    await new Promise((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${server.address().port}/`;
  });
  after(() => server.close());

  test("listImages sends the query and returns the page", async () => {
    const page = await listImages(base, "good", { prefix: "uploads", limit: 1, cursor: "c1" });
    assert.equal(page.next_cursor, "c2");
    assert.equal(page.items[0].key, "uploads/a.jpg");
    const q = new URL(seen.at(-1).url, "http://x").searchParams;
    assert.deepEqual([q.get("prefix"), q.get("limit"), q.get("cursor"), q.get("tenant"), q.get("order")], ["uploads", "1", "c1", null, null]);
    assert.equal(seen.at(-1).auth, "Bearer good");
    await listImages(base, "good", { order: "key" });
    assert.equal(new URL(seen.at(-1).url, "http://x").searchParams.get("order"), "key");
    const n = seen.length;
    await assert.rejects(listImages(base, "good", { order: "oldest" }), (e) => e.name === "ImagoOptionError" || /order/.test(e.message));
    assert.equal(seen.length, n, "a bad order is refused before any request");
  });

  test("deleteImage encodes the key and resolves on 204; refusals are ImagoApiError", async () => {
    await deleteImage(base, "good", "uploads/a b.jpg");
    assert.equal(seen.at(-1).method, "DELETE");
    await assert.rejects(deleteImage(base, "good", "uploads/missing.jpg"), (e) => e instanceof ImagoApiError && e.status === 404 && e.code === "not-found");
    await assert.rejects(listImages(base, "bad"), (e) => e instanceof ImagoApiError && e.code === "unauthorized");
  });

  test("restoreImage posts to …/restore and resolves on 200; 410 image-deleted is ImagoApiError", async () => {
    await restoreImage(base, "good", "uploads/a b.jpg");
    assert.deepEqual([seen.at(-1).method, seen.at(-1).url], ["POST", "/v1/images/uploads/a%20b.jpg/restore"]);
    await assert.rejects(restoreImage(base, "good", "uploads/old.jpg"), (e) => e instanceof ImagoApiError && e.status === 410 && e.code === "image-deleted");
  });
});
