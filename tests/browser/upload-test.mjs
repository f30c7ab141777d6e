// Browser upload test driver: serves the test page from its own loopback origin (so CORS
// against imago / the object store is really exercised), bundles the page's Uppy code with
// esbuild, drives Debian's chromium headless with playwright-core, and prints one JSON result
// per run. Started by tests/uploads_browser.rs with a config file:
//
//   node tests/browser/upload-test.mjs config.json
//
// config: { chromium, photo, screenshot_dir, timeout_ms?, runs: [{ name, imago_url, api_key, method }] }
// Exit status 0 when every run uploaded, reached 100 % progress and displayed the image.

import { createServer } from "node:http";
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const timeout = config.timeout_ms ?? 60000;

const bundle = await esbuild.build({
  entryPoints: [join(here, "page/app.js")],
  bundle: true,
  write: false,
  format: "iife",
  platform: "browser",
  target: "es2022",
  logLevel: "error",
});
const appJs = bundle.outputFiles[0].text;
const indexHtml = readFileSync(join(here, "page/index.html"));

// The page's backend: the page itself, its script, and /ticket, which asks imago for an upload
// ticket with the run's API key (the key never reaches the browser) and returns it unchanged.
const server = createServer(async (req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  try {
    if (req.method === "GET" && url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(indexHtml);
    } else if (req.method === "GET" && url.pathname === "/app.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(appJs);
    } else if (req.method === "POST" && url.pathname === "/ticket") {
      const run = config.runs[Number(url.searchParams.get("run"))];
      let body = "";
      for await (const chunk of req) body += chunk;
      const request = { ...JSON.parse(body), method: run.method };
      const r = await fetch(`${run.imago_url}/v1/uploads`, {
        method: "POST",
        headers: { authorization: `Bearer ${run.api_key}`, "content-type": "application/json" },
        body: JSON.stringify(request),
      });
      res.writeHead(r.status, { "content-type": "application/json" }).end(await r.text());
    } else {
      res.writeHead(404).end();
    }
  } catch (e) {
    res.writeHead(500, { "content-type": "text/plain" }).end(String(e));
  }
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

const profile = mkdtempSync(join(tmpdir(), "imago-chromium-"));
mkdirSync(config.screenshot_dir, { recursive: true });
const context = await chromium.launchPersistentContext(profile, {
  executablePath: config.chromium,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
  ],
  viewport: { width: 900, height: 760 },
});

let failed = 0;
try {
  for (const [i, run] of config.runs.entries()) {
    const page = await context.newPage();
    const consoleLines = [];
    page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
    let result;
    try {
      await page.goto(`${origin}/?run=${i}&name=${encodeURIComponent(run.name)}`);
      await page.setInputFiles("#file", config.photo);
      await page.waitForFunction(() => window.__done === true, null, { timeout });
      result = await page.evaluate(() => window.__result);
    } catch (e) {
      result = { ok: false, error: String(e), partial: await page.evaluate(() => window.__result).catch(() => null) };
    }
    const screenshot = join(config.screenshot_dir, `browser-upload-${run.name}.png`);
    await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
    const out = {
      name: run.name,
      page_origin: origin,
      ok: result.ok === true,
      final_percent: result.final_percent ?? null,
      progress: result.progress ?? [],
      natural_width: result.naturalWidth ?? 0,
      natural_height: result.naturalHeight ?? 0,
      key: result.ticket?.key ?? result.partial?.ticket?.key ?? null,
      method: result.ticket?.method ?? null,
      image_url: result.ticket?.image_url ?? null,
      completion: result.completion ?? null,
      error: result.error ?? null,
      screenshot,
      console: consoleLines,
    };
    if (!out.ok) failed++;
    console.log(JSON.stringify(out));
    await page.close();
  }
} finally {
  await context.close();
  server.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
