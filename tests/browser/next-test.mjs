// Next.js example test driver: installs examples/next (npm ci, when missing or stale), builds it
// (`next build`), starts it (`next start` on 127.0.0.1) against a running imago, and loads its
// page in Debian's chromium (playwright-core) at several device pixel ratios. Prints one JSON
// line per ratio and one for the build. Started by tests/next_example.rs with a config file:
//
//   node tests/browser/next-test.mjs config.json
//
// config: { chromium, example_dir, imago_url, key, salt, api_key, image_key, dprs: [1, 2],
//           screenshot_dir, timeout_ms? }
// Every byte the browser receives from the Next.js server (HTML, RSC payload, scripts, styles)
// is searched for the key, the salt and the API key.

import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { chromium } from "playwright-core";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const timeout = config.timeout_ms ?? 60000;
const dir = config.example_dir;
const log = (...a) => console.error("[next-test]", ...a);
const secrets = { key: config.key, salt: config.salt, api_key: config.api_key };

// 1. Dependencies: npm ci when node_modules is missing or older than the lockfile.
const lock = join(dir, "package-lock.json");
const installed = join(dir, "node_modules/.package-lock.json");
let t = Date.now();
let npmCiMs = 0;
if (!existsSync(installed) || statSync(lock).mtimeMs > statSync(installed).mtimeMs) {
  log("npm ci in", dir);
  execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: dir, stdio: ["ignore", "inherit", "inherit"] });
  npmCiMs = Date.now() - t;
}

// 2. next build (the example page is dynamic: nothing secret is read at build time).
const env = { ...process.env, NEXT_TELEMETRY_DISABLED: "1" };
for (const k of ["IMAGO_KEY", "IMAGO_SALT", "IMAGO_API_KEY", "IMAGO_URL", "IMAGO_IMAGE_KEY"]) delete env[k];
t = Date.now();
execFileSync(process.execPath, [join(dir, "node_modules/next/dist/bin/next"), "build"], { cwd: dir, env, stdio: ["ignore", 2, "inherit"] });
const buildMs = Date.now() - t;

// 3. next start on a free loopback port, with the signing key in its (server) environment only.
const port = await new Promise((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const origin = `http://127.0.0.1:${port}`;
const server = spawn(process.execPath, [join(dir, "node_modules/next/dist/bin/next"), "start", "-H", "127.0.0.1", "-p", String(port)], {
  cwd: dir,
  env: {
    ...env,
    IMAGO_URL: config.imago_url,
    IMAGO_KEY: config.key,
    IMAGO_SALT: config.salt,
    IMAGO_API_KEY: config.api_key,
    IMAGO_IMAGE_KEY: config.image_key,
  },
  stdio: ["ignore", "pipe", "pipe"],
});
let serverLog = "";
server.stdout.on("data", (d) => (serverLog += d));
server.stderr.on("data", (d) => (serverLog += d));
const stopServer = () => {
  if (server.exitCode === null) server.kill("SIGTERM");
};
process.on("exit", stopServer);
t = Date.now();
for (;;) {
  try {
    const r = await fetch(`${origin}/_not-found`);
    await r.arrayBuffer();
    break;
  } catch {
    if (Date.now() - t > timeout || server.exitCode !== null) {
      console.log(JSON.stringify({ kind: "start", ok: false, error: "next start did not answer", log: serverLog }));
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
const startMs = Date.now() - t;
console.log(JSON.stringify({ kind: "build", npm_ci_ms: npmCiMs, build_ms: buildMs, start_ms: startMs, origin }));

// 4. Chromium, one context per device pixel ratio (separate caches).
mkdirSync(config.screenshot_dir, { recursive: true });
const browser = await chromium.launch({
  executablePath: config.chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"],
});
let failed = 0;
try {
  for (const dpr of config.dprs) {
    const context = await browser.newContext({ deviceScaleFactor: dpr, viewport: { width: 800, height: 900 } });
    const page = await context.newPage();
    const consoleLines = [];
    page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
    // Every response body from the Next.js server, and every image response from imago.
    const fromNext = [];
    const fromImago = [];
    page.on("response", (r) => {
      if (r.url().startsWith(origin)) fromNext.push(r.body().then((b) => ({ url: r.url(), status: r.status(), body: b })).catch(() => null));
      else if (r.url().startsWith(config.imago_url)) fromImago.push({ url: r.url(), status: r.status(), type: r.headers()["content-type"] });
    });
    let out;
    try {
      const resp = await page.goto(origin, { waitUntil: "load", timeout });
      const html = await resp.text();
      await page.waitForFunction(
        () => ["imago-image", "next-image"].every((id) => { const i = document.getElementById(id); return i && i.complete && i.naturalWidth > 0; })
          && document.getElementById("browser-guard")?.textContent !== "",
        null,
        { timeout },
      );
      // An <img> chosen from a `w` srcset reports a density-corrected naturalWidth (CSS px); the
      // chosen candidate's own pixel size is read by decoding currentSrc alone (from the cache).
      const imgs = await page.evaluate(async () =>
        Object.fromEntries(await Promise.all(["imago-image", "next-image"].map(async (id) => {
          const i = document.getElementById(id);
          const alone = new Image();
          alone.src = i.currentSrc;
          await alone.decode();
          return [id, {
            decoded_width: alone.naturalWidth,
            decoded_height: alone.naturalHeight,
            natural_width: i.naturalWidth,
            natural_height: i.naturalHeight,
            layout_width: i.getBoundingClientRect().width,
            current_src: i.currentSrc,
            srcset: i.getAttribute("srcset"),
            sizes: i.getAttribute("sizes"),
            style: i.getAttribute("style"),
          }];
        }))));
      const guard = await page.evaluate(() => document.getElementById("browser-guard").textContent);
      const device_pixel_ratio = await page.evaluate(() => window.devicePixelRatio);
      const bodies = (await Promise.all(fromNext)).filter(Boolean);
      const leaks = [];
      let scanned = 0;
      for (const b of bodies) {
        scanned += b.body.length;
        const text = b.body.toString("latin1");
        for (const [name, s] of Object.entries(secrets)) {
          if (s && text.toLowerCase().includes(s.toLowerCase())) leaks.push(`${name} in ${b.url}`);
        }
      }
      const screenshot = join(config.screenshot_dir, `next-example-dpr${dpr}.png`);
      await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
      out = {
        kind: "page", dpr, ok: true, device_pixel_ratio, images: imgs, guard,
        html_has_srcset: html.includes("srcSet=") || html.includes("srcset="),
        html_bytes: html.length, html_has_placeholder: html.includes("data:image/png;base64,"),
        next_responses: bodies.length, next_bytes_scanned: scanned, leaks,
        imago_responses: fromImago, screenshot, console: consoleLines,
      };
    } catch (e) {
      out = { kind: "page", dpr, ok: false, error: String(e), console: consoleLines, log: serverLog.slice(-4000) };
    }
    if (!out.ok) failed++;
    console.log(JSON.stringify(out));
    await context.close();
  }
} finally {
  await browser.close();
  stopServer();
}
process.exit(failed ? 1 : 0);
