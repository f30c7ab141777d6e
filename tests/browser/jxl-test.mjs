// JPEG XL delivery in a real browser (issue #20): Debian's chromium, headless, driven by
// playwright-core, shows imago images on a page of its own loopback origin and reports, per case,
// the Accept header the image request carried, the Content-Type imago answered, and the
// decoded image's naturalWidth (0 when the browser could not decode it). Started by
// tests/delivery_browser.rs with a config file:
//
//   node tests/browser/jxl-test.mjs config.json
//
// config: { chromium, auto_url, jxl_url, timeout_ms? }
//   auto_url: a signed `f:auto` URL (negotiated from Accept); jxl_url: a signed `f:jxl` URL.
//
// Cases (one JSON line each):
//   real:       auto_url with the Accept chromium sends itself;
//   with_jxl:   auto_url with chromium's own Accept, `image/jxl` put first if it lacks it;
//   without:    auto_url with chromium's own Accept, every `image/jxl` element removed;
//   explicit:   jxl_url with chromium's own Accept (decodes JPEG XL whatever was negotiated).

import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const timeout = config.timeout_ms ?? 60000;
const imagoOrigin = new URL(config.auto_url).origin;

const withoutJxl = (a) => a.split(",").filter((p) => p.split(";")[0].trim().toLowerCase() !== "image/jxl").join(",");
const withJxl = (a) => (withoutJxl(a) === a ? `image/jxl,${a}` : a);
const CASES = {
  real: { url: config.auto_url, accept: null },
  with_jxl: { url: config.auto_url, accept: withJxl },
  without: { url: config.auto_url, accept: withoutJxl },
  explicit: { url: config.jxl_url, accept: null },
};

const server = createServer((req, res) => {
  const name = new URL(req.url, "http://127.0.0.1").pathname.slice(1);
  const c = CASES[name];
  if (!c) return res.writeHead(404).end();
  res
    .writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" })
    .end(`<!doctype html><html><body style="margin:0"><img id="img" src="${c.url}" alt=""></body></html>`);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: config.chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"],
});
let failed = 0;
try {
  for (const [name, c] of Object.entries(CASES)) {
    // A fresh context per case: nothing cached carries over.
    const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
    const tab = await context.newPage();
    const out = { case: name };
    try {
      if (c.accept) {
        await tab.route(`${imagoOrigin}/**`, (route) => {
          const headers = { ...route.request().headers() };
          headers["accept"] = c.accept(headers["accept"] ?? "");
          return route.continue({ headers });
        });
      }
      const imageResponse = tab.waitForResponse((r) => r.url().startsWith(imagoOrigin), { timeout });
      await tab.goto(`${origin}/${name}`);
      const r = await imageResponse;
      await tab.waitForFunction(() => document.getElementById("img").complete, null, { timeout });
      out.status = r.status();
      out.accept = (await r.request().allHeaders())["accept"] ?? "";
      out.content_type = (await r.allHeaders())["content-type"] ?? "";
      out.vary = (await r.allHeaders())["vary"] ?? "";
      out.natural_width = await tab.evaluate(() => document.getElementById("img").naturalWidth);
      out.ok = true;
    } catch (e) {
      out.ok = false;
      out.error = String(e);
      failed++;
    }
    console.log(JSON.stringify(out));
    await context.close();
  }
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
