// The console's views: the gallery (GET /v1/images, ThumbHash placeholders from /info), an
// image's page (/info facts, the URL builder over POST /v1/sign, the srcset snippet, the live
// preview and what is served per format and DPR, delete/restore) and the analytics charts.
import { $, api, el, keyPath, sign, status } from "./api.js";
import { thumbHashToDataURL } from "./thumbhash.js";
import { columnChart, barChart, pairChart } from "./charts.js";

const PAGE = 24;
let cursor = null;

function fmtBytes(n) {
  if (n == null) return "–";
  if (Math.abs(n) < 1024) return `${n} B`;
  if (Math.abs(n) < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

function b64ToBytes(b64) {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/** The `/info` of a key (cached by the browser: `private, max-age` + ETag). */
function info(key) {
  return api("GET", `/v1/images/${keyPath(key)}/info`);
}

function card(item) {
  const placeholder = el("img", { class: "placeholder", alt: "" });
  const real = el("img", { class: "real", alt: item.key, loading: "lazy" });
  const badge = item.state === "ready" ? "" : item.state;
  const a = el(
    "a",
    { class: `card ${item.state}`, href: `#/image/${encodeURIComponent(item.key)}`, "data-key": item.key },
    el("div", { class: "thumb" }, placeholder, real),
    el("div", { class: "meta", text: `${item.key.split("/").pop()} · ${fmtBytes(item.bytes)}${badge ? " · " + badge : ""}` }),
  );
  if (item.state === "deleted") return a;
  // The placeholder first (ThumbHash from /info, a data: URL), then the signed thumbnail.
  info(item.key)
    .then((i) => {
      placeholder.src = thumbHashToDataURL(b64ToBytes(i.thumbhash));
      a.dataset.thumbhash = "1";
    })
    .catch(() => {});
  sign(item.key, { resizing_type: "fill", width: 360, height: 360, format: "auto" })
    .then((s) => {
      real.addEventListener("load", () => real.classList.add("loaded"), { once: true });
      real.src = s.url;
    })
    .catch(() => {});
  return a;
}

export async function showGallery(more = false) {
  if (!more) {
    cursor = null;
    $("gallery").replaceChildren();
  }
  const q = new URLSearchParams({ limit: String(PAGE) });
  if (cursor) q.set("cursor", cursor);
  const page = await api("GET", `/v1/images?${q}`);
  for (const item of page.items) $("gallery").append(card(item));
  cursor = page.next_cursor;
  $("gallery-more").hidden = !cursor;
  $("gallery-count").textContent = `${$("gallery").children.length} image(s)`;
}
$("gallery-more").addEventListener("click", () => showGallery(true).catch((e) => status(e.message)));

// --- The image page.

let current = null;

function fact(dl, name, value) {
  dl.append(el("dt", { text: name }), typeof value === "string" ? el("dd", { text: value }) : el("dd", {}, value));
}

function setState(s) {
  const b = $("image-state");
  b.textContent = s;
  b.className = `badge ${s}`;
  $("image-delete").hidden = s === "deleted";
  $("image-restore").hidden = s !== "deleted";
}

export async function showImage(key) {
  current = { key, info: null };
  $("image-key").textContent = key;
  $("facts").replaceChildren();
  $("served").tBodies[0].replaceChildren();
  $("preview").removeAttribute("src");
  for (const id of ["signed-url", "snippet", "preview-caption", "builder-error"]) $(id).textContent = "";
  let i;
  try {
    i = await info(key);
  } catch (e) {
    if (e.code === "image-deleted") {
      setState("deleted");
      return;
    }
    throw e;
  }
  current.info = i;
  setState("ready");
  const dl = $("facts");
  fact(dl, "format", i.format);
  fact(dl, "size", `${i.width} × ${i.height}${i.orientation > 1 ? ` (stored ${i.stored_width} × ${i.stored_height}, orientation ${i.orientation})` : ""}`);
  fact(dl, "bytes", `${fmtBytes(i.bytes)} (${i.bytes})`);
  fact(dl, "frames", String(i.frames));
  fact(dl, "alpha", i.has_alpha ? "yes" : "no");
  fact(dl, "colour", `${i.colour_space}, ${i.sample_format}, ${i.bands} bands`);
  fact(dl, "ICC profile", i.icc_profile ?? "none");
  const sw = el("span", { class: "swatch" });
  sw.style.background = i.dominant_colour;
  fact(dl, "dominant colour", el("span", {}, sw, i.dominant_colour));
  const th = el("img", { alt: "ThumbHash", class: "thumbhash", src: thumbHashToDataURL(b64ToBytes(i.thumbhash)) });
  fact(dl, "ThumbHash", el("span", {}, th, ` ${i.thumbhash}`));
  fact(dl, "source", i.source);
  await build();
}

/** The builder's options as the canonical JSON option object (SPEC §4). */
function builderOptions(form, format) {
  const f = new FormData(form);
  const o = { resizing_type: f.get("fit") };
  const w = Number(f.get("width"));
  const h = Number(f.get("height"));
  if (w > 0) o.width = w;
  if (h > 0) o.height = h;
  o.gravity = f.get("smart") ? { type: "sm" } : { type: f.get("gravity") };
  const fmt = format ?? f.get("format");
  if (fmt) o.format = fmt;
  const q = String(f.get("quality") || "").trim();
  if (q === "auto") o.quality = "auto";
  else if (q) o.quality = Number(q);
  return o;
}

/** `"(max-width: 640px) 100vw, 600px"` → `{breakpoints: [{max_width: 640, size: "100vw"}], default: "600px"}`
 * (the sign request's `sizes`, SPEC §9); other media conditions are refused by the server. */
function parseSizes(text) {
  const out = { breakpoints: [] };
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const m = /^\(max-width:\s*(\d+)px\)\s*(.+)$/.exec(part);
    if (m) out.breakpoints.push({ max_width: Number(m[1]), size: m[2].trim() });
    else out.default = part;
  }
  return out;
}

function escapeAttr(s) {
  return s.replaceAll("&", "&amp;").replaceAll('"', "&quot;").replaceAll("<", "&lt;");
}

/** Fetches one variant: what the server actually sends (bytes, type, decoded size). */
async function measure(url) {
  const r = await fetch(url, { credentials: "omit" });
  const blob = await r.blob();
  const bmp = await createImageBitmap(blob);
  const out = { status: r.status, type: r.headers.get("content-type"), bytes: blob.size, width: bmp.width, height: bmp.height };
  bmp.close();
  return out;
}

/** Each build's number: a slower earlier build must not fill the page after a later one. */
let generation = 0;

async function build(ev) {
  ev?.preventDefault();
  if (!current) return;
  const gen = ++generation;
  const form = $("builder");
  const f = new FormData(form);
  const dpr = Number(f.get("dpr")) || 1;
  $("builder-error").textContent = "";
  let s;
  try {
    const opts = builderOptions(form);
    const w = opts.width;
    // Width only: `w` descriptors over the width ladder and `sizes` (SPEC §9). Width and height:
    // a fixed box, so `x` descriptors (DPR 1-3) keep its aspect ratio in every candidate.
    const fixed = Boolean(w && opts.height);
    s = await sign(current.key, opts, fixed ? {} : {
      srcset: w ? { max_width: w * 3 } : undefined,
      sizes: parseSizes(String(f.get("sizes") || "100vw")),
    });
    let srcset = s.srcset;
    let sizes = ` sizes="${escapeAttr(s.sizes)}"`;
    if (fixed) {
      const xs = await Promise.all([1, 2, 3].map((d) => sign(current.key, { ...opts, dpr: d })));
      srcset = xs.map((x, i) => `${x.url} ${i + 1}x`).join(", ");
      sizes = "";
    }
    const p = await sign(current.key, { ...opts, dpr });
    if (gen !== generation) return;
    $("signed-url").textContent = s.url;
    const dims = fixed ? ` width="${w}" height="${opts.height}"` : w ? ` width="${w}"` : "";
    $("snippet").textContent =
      `<img src="${escapeAttr(s.url)}"\n     srcset="${escapeAttr(srcset)}"\n    ${sizes}${dims}\n     loading="lazy" decoding="async" alt="">`;
    const img = $("preview");
    img.dataset.dpr = String(dpr);
    img.addEventListener(
      "load",
      () => {
        $("preview-caption").textContent = `decoded ${img.naturalWidth} × ${img.naturalHeight} px at DPR ${dpr}`;
        img.dataset.loaded = p.url;
      },
      { once: true },
    );
    img.src = p.url;
  } catch (e) {
    $("builder-error").textContent = e.message;
    return;
  }
  if (gen === generation) await served(form, gen);
}

/** One row per format × DPR: the bytes and dimensions actually served. */
async function served(form, gen) {
  const tbody = $("served").tBodies[0];
  tbody.replaceChildren();
  const rows = [];
  for (const format of ["avif", "webp", "jpg", "png"]) {
    for (const dpr of [1, 2]) {
      const tr = el("tr", { "data-format": format, "data-dpr": String(dpr) });
      tbody.append(tr);
      rows.push(
        sign(current.key, { ...builderOptions(form, format), dpr })
          .then((s) => measure(s.url))
          .then((m) => {
            tr.dataset.width = String(m.width);
            tr.dataset.bytes = String(m.bytes);
            tr.append(el("td", { text: format }), el("td", { text: String(dpr) }), el("td", { text: m.type ?? "" }),
              el("td", { text: `${m.width} × ${m.height}` }), el("td", { text: `${fmtBytes(m.bytes)} (${m.bytes})` }));
          })
          .catch((e) => tr.append(el("td", { text: format }), el("td", { text: String(dpr) }), el("td", { colspan: "3", text: e.message }))),
      );
    }
  }
  await Promise.all(rows);
  if (gen === generation) $("served").dataset.done = "1";
}

$("builder").addEventListener("submit", (e) => build(e).catch((x) => status(x.message)));
$("copy-snippet").addEventListener("click", () => navigator.clipboard?.writeText($("snippet").textContent));
$("image-delete").addEventListener("click", async () => {
  try {
    await api("DELETE", `/v1/images/${keyPath(current.key)}`);
    setState("deleted");
    status(`Deleted ${current.key}: restorable until it is purged.`);
  } catch (e) {
    status(e.message);
  }
});
$("image-restore").addEventListener("click", async () => {
  try {
    await api("POST", `/v1/images/${keyPath(current.key)}/restore`);
    status(`Restored ${current.key}.`);
    await showImage(current.key);
  } catch (e) {
    status(e.message);
  }
});

// --- Analytics.

export async function showAnalytics() {
  const r = await api("GET", "/v1/analytics");
  $("analytics-range").textContent = `${r.from} – ${r.to} · ${r.requests} requests`;
  const charts = $("charts");
  charts.replaceChildren();
  const hours = r.per_hour.map((h) => ({ label: h.hour.slice(11, 16), value: h.requests }));
  charts.append(columnChart("Requests per hour", hours));
  charts.append(
    pairChart("Bytes saved", [
      { label: "originals", value: r.original_bytes, alt: true },
      { label: "served", value: r.image_bytes_served },
    ], fmtBytes, r.savings_ratio == null ? "" : `saved ${fmtBytes(r.bytes_saved)} (${(r.savings_ratio * 100).toFixed(1)} %)`),
  );
  charts.append(barChart("Formats served", Object.entries(r.formats).map(([label, value]) => ({ label, value }))));
  charts.append(
    barChart("Top images (requests)", r.top_images_by_requests.slice(0, 10).map((t) => ({ label: t.key.split("/").pop(), value: t.requests }))),
  );
}
