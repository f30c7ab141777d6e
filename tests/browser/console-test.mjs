// The console walk-through in Debian's chromium (playwright-core), started by
// tests/console_browser.rs with a config file:
//
//   node tests/browser/console-test.mjs config.json
//
// config: { chromium, base, api_key, photos: [path, path], screenshot_dir, secrets: [..], timeout_ms? }
// Signs in, uploads two photos and a file that is not an image (several at once, progress; the
// bad one fails and its Retry runs it again), opens the gallery (ThumbHash placeholders, then
// signed thumbnails), builds a URL on the first image's page (preview decoded at the asked size,
// at DPR 1 and 2; bytes and sizes served per format), deletes it, sees it deleted in the gallery,
// restores it, deletes it again, and draws the analytics charts. Every text response the page
// receives is checked for the URL-signing key and salt. Prints one JSON line; exit 0 when it ran.
import { mkdtempSync, readFileSync, rmSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const timeout = config.timeout_ms ?? 60000;
const profile = mkdtempSync(join(tmpdir(), "imago-console-chromium-"));
const bad = join(profile, "not-an-image.jpg");
writeFileSync(bad, "this is text, not a JPEG\n".repeat(40));
mkdirSync(config.screenshot_dir, { recursive: true });

const context = await chromium.launchPersistentContext(profile, {
  executablePath: config.chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic"],
  viewport: { width: 1200, height: 900 },
});

const out = { ok: false, steps: [], screenshots: [], responses: 0, secret_hits: [], csp_violations: [], console: [] };
const page = await context.newPage();
page.on("console", (m) => {
  out.console.push(`${m.type()}: ${m.text()}`);
  if (/Content Security Policy/i.test(m.text())) out.csp_violations.push(m.text());
});
page.on("pageerror", (e) => out.console.push(`pageerror: ${e.message}`));
const pending = [];
page.on("response", (r) => {
  const type = r.headers()["content-type"] ?? "";
  if (!/text|json|javascript|css/.test(type)) return;
  pending.push(
    r.text().then((t) => {
      out.responses++;
      const low = t.toLowerCase();
      for (const s of config.secrets) if (low.includes(s.toLowerCase())) out.secret_hits.push(r.url());
    }, () => {}),
  );
});

async function shot(name) {
  const path = join(config.screenshot_dir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  out.screenshots.push(path);
}
const step = (name) => out.steps.push(name);

try {
  step("open");
  page.setDefaultTimeout(timeout);
  const doc = await page.goto(`${config.base}/console`, { waitUntil: "domcontentloaded", timeout });
  out.status = doc.status();
  out.csp = doc.headers()["content-security-policy"] ?? null;
  await page.waitForSelector("#signin:not([hidden])", { timeout });

  step("sign-in");
  await page.fill("#api-key", config.api_key);
  await page.click("#signin-form button[type=submit]");
  await page.waitForSelector("#view-upload:not([hidden])", { timeout });

  step("upload");
  await page.setInputFiles("#file-input", [...config.photos, bad]);
  await page.waitForFunction(
    () => document.querySelectorAll("#uploads li.done").length === 2 && document.querySelectorAll("#uploads li.failed").length === 1,
    null,
    { timeout },
  );
  out.uploads = await page.$$eval("#uploads li", (lis) =>
    lis.map((li) => ({ name: li.querySelector(".name").textContent, state: li.className, percent: li.dataset.percent ?? null,
      key: li.dataset.key ?? null, text: li.querySelector(".state").textContent, retry_visible: !li.querySelector(".retry").hidden })),
  );
  step("retry");
  await page.click("#uploads li.failed .retry");
  await page.waitForFunction(() => {
    const li = document.querySelector("#uploads li.failed");
    return li && li.dataset.attempts === "2";
  }, null, { timeout });
  out.retry_attempts = await page.$eval("#uploads li.failed", (li) => Number(li.dataset.attempts));
  await shot("console-1-upload");

  step("gallery");
  await page.click('nav a[href="#/gallery"]');
  await page.waitForFunction(() => {
    const cards = [...document.querySelectorAll("#gallery .card")];
    return cards.length === 2 && cards.every((c) => c.dataset.thumbhash === "1" && c.querySelector("img.real.loaded"));
  }, null, { timeout });
  out.gallery = await page.$$eval("#gallery .card", (cards) =>
    cards.map((c) => {
      const ph = c.querySelector("img.placeholder");
      const real = c.querySelector("img.real");
      return { key: c.dataset.key, placeholder: ph.src.slice(0, 22), placeholder_width: ph.naturalWidth,
        thumb: real.currentSrc, thumb_width: real.naturalWidth, thumb_height: real.naturalHeight };
    }),
  );
  await page.waitForTimeout(500); // the thumbnails' fade-in over their placeholders
  await shot("console-2-gallery");

  step("image");
  const key = out.uploads.find((u) => u.key && u.name === config.photos[0].split("/").pop()).key;
  out.key = key;
  await page.click(`#gallery .card[data-key="${key}"]`);
  await page.waitForFunction(() => document.querySelectorAll("#facts dt").length >= 8, null, { timeout });
  out.facts = await page.$$eval("#facts dt", (dts) => Object.fromEntries(dts.map((dt) => [dt.textContent, dt.nextElementSibling.textContent])));

  step("builder");
  const built = async (dpr, height = "200") => {
    await page.fill("#builder [name=width]", "320");
    await page.fill("#builder [name=height]", height);
    await page.selectOption("#builder [name=fit]", "fill");
    await page.selectOption("#builder [name=format]", "webp");
    await page.check("#builder [name=smart]");
    await page.selectOption("#builder [name=dpr]", String(dpr));
    await page.$eval("#served", (t) => delete t.dataset.done);
    await page.click("#builder button[type=submit]");
    await page.waitForFunction((d) => {
      const img = document.getElementById("preview");
      return img.dataset.dpr === String(d) && img.dataset.loaded === img.src && img.complete && img.naturalWidth > 0 &&
        document.getElementById("served").dataset.done === "1";
    }, dpr, { timeout });
    return page.evaluate(() => {
      const img = document.getElementById("preview");
      return {
        natural_width: img.naturalWidth,
        natural_height: img.naturalHeight,
        src: img.src,
        caption: document.getElementById("preview-caption").textContent,
        signed_url: document.getElementById("signed-url").textContent,
        snippet: document.getElementById("snippet").textContent,
        served: [...document.querySelectorAll("#served tbody tr")].map((tr) => ({
          format: tr.dataset.format, dpr: Number(tr.dataset.dpr), width: Number(tr.dataset.width ?? 0),
          bytes: Number(tr.dataset.bytes ?? 0), text: tr.textContent })),
      };
    });
  };
  out.preview_dpr1 = await built(1);
  await shot("console-3-image");
  out.preview_dpr2 = await built(2);
  out.preview_fluid = await built(1, "");

  step("delete");
  await page.click("#image-delete");
  await page.waitForFunction(() => document.getElementById("image-state").textContent === "deleted", null, { timeout });
  await page.click('nav a[href="#/gallery"]');
  await page.waitForSelector(`#gallery .card.deleted[data-key="${key}"]`, { timeout });
  out.gallery_after_delete = await page.$$eval("#gallery .card", (cards) => cards.map((c) => ({ key: c.dataset.key, class: c.className })));
  await shot("console-4-deleted");

  step("restore");
  await page.click(`#gallery .card[data-key="${key}"]`);
  await page.waitForFunction(() => !document.getElementById("image-restore").hidden, null, { timeout });
  await page.click("#image-restore");
  await page.waitForFunction(() => document.getElementById("image-state").textContent === "ready" &&
    document.querySelectorAll("#facts dt").length >= 8, null, { timeout });
  out.restored = true;

  step("delete-again");
  await page.click("#image-delete");
  await page.waitForFunction(() => document.getElementById("image-state").textContent === "deleted", null, { timeout });

  step("analytics");
  await page.click('nav a[href="#/analytics"]');
  await page.waitForFunction(() => document.querySelectorAll("#charts svg").length === 4, null, { timeout });
  out.charts = await page.$$eval("#charts .chart", (cs) =>
    cs.map((c) => ({ title: c.querySelector("h3").textContent, kind: c.querySelector("svg").dataset.chart,
      bars: c.querySelectorAll("rect").length, text: c.textContent.slice(0, 200) })),
  );
  await shot("console-5-analytics");
  step("done");
  out.ok = true;
} catch (e) {
  out.error = String(e);
  await shot("console-failed").catch(() => {});
} finally {
  await Promise.all(pending);
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
process.exit(0);
