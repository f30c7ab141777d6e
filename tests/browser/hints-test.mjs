// Client Hints browser test driver (issue #16): Debian's chromium, headless, driven by
// playwright-core, at device pixel ratios 1, 2 and 3, loads pages from its own loopback origin
// that show imago images from another origin (imago's port), and reports which file each image
// got. Started by tests/delivery_browser.rs with a config file:
//
//   node tests/browser/hints-test.mjs config.json
//
// config: { chromium, js_sdk, key, salt, imago_url, source, timeout_ms? }
//
// Two pages, each under three hint opt-ins (the page's `Accept-CH`, delegated to the image
// origin with `Permissions-Policy`): all three size hints, `Sec-CH-DPR` only, none.
//   srcset: `<img srcset="{ImagoSigner.srcset(source, {format: jpg}), default ladder}" sizes="400px">`
//   fixed:  `<img width="400" src="{ImagoSigner.url(source, {width: 400, format: jpg})}">`
// Prints one JSON line per (page, hint set, DPR): the candidate the browser chose (`w:` of the
// URL it loaded), the width of the file imago sent (from `X-Imago-Variant`) and the hint headers
// the image request carried.

import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const timeout = config.timeout_ms ?? 60000;
const { ImagoSigner } = await import(pathToFileURL(`${config.js_sdk}/index.js`).href);
const signer = new ImagoSigner({ key: config.key, salt: config.salt, baseUrl: config.imago_url });

const srcset = await signer.srcset(config.source, { format: "jpg" });
const fixed = await signer.url(config.source, { width: 400, format: "jpg" });
const pages = {
  srcset: `<img id="img" srcset="${srcset}" sizes="400px" alt="">`,
  fixed: `<img id="img" width="400" src="${fixed}" alt="">`,
};
const HINTS = {
  all: ["Sec-CH-DPR", "Sec-CH-Width", "Sec-CH-Viewport-Width"],
  dpr: ["Sec-CH-DPR"],
  none: [],
};
const POLICY = { "Sec-CH-DPR": "ch-dpr", "Sec-CH-Width": "ch-width", "Sec-CH-Viewport-Width": "ch-viewport-width" };
const imagoOrigin = new URL(config.imago_url).origin;

// The page's own origin: /{page}/{hint set}, with the opt-in headers of that hint set.
const server = createServer((req, res) => {
  const [, page, set] = new URL(req.url, "http://127.0.0.1").pathname.split("/");
  if (!pages[page] || !HINTS[set]) return res.writeHead(404).end();
  const headers = { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" };
  if (HINTS[set].length) {
    headers["accept-ch"] = HINTS[set].join(", ");
    headers["permissions-policy"] = HINTS[set].map((h) => `${POLICY[h]}=(self "${imagoOrigin}")`).join(", ");
  }
  res.writeHead(200, headers).end(`<!doctype html><html><body style="margin:0">${pages[page]}</body></html>`);
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
  for (const page of Object.keys(pages)) {
    for (const set of Object.keys(HINTS)) {
      for (const dpr of [1, 2, 3]) {
        // A fresh context per run: no hint opt-in or cached image carries over.
        const context = await browser.newContext({ viewport: { width: 900, height: 700 }, deviceScaleFactor: dpr });
        const tab = await context.newPage();
        const out = { page, hints: set, dpr };
        try {
          const imageResponse = tab.waitForResponse((r) => r.url().startsWith(imagoOrigin), { timeout });
          await tab.goto(`${origin}/${page}/${set}`);
          const r = await imageResponse;
          await tab.waitForFunction(() => document.getElementById("img").complete, null, { timeout });
          const url = r.url();
          const sent = await r.request().allHeaders();
          out.status = r.status();
          out.candidate = Number(/\/w:(\d+)\//.exec(url)?.[1] ?? 0);
          out.current_src_matches = (await tab.evaluate(() => document.getElementById("img").currentSrc)) === url;
          // "jpeg 1656x1090 q80"
          out.variant = (await r.allHeaders())["x-imago-variant"] ?? "";
          out.file_width = Number(/ (\d+)x\d+ /.exec(out.variant)?.[1] ?? 0);
          out.sent_hints = Object.fromEntries(Object.entries(sent).filter(([k]) => /^(sec-ch-(dpr|width|viewport-width)|dpr|width|viewport-width)$/.test(k)));
          out.ok = true;
        } catch (e) {
          out.ok = false;
          out.error = String(e);
          failed++;
        }
        console.log(JSON.stringify(out));
        await context.close();
      }
    }
  }
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
