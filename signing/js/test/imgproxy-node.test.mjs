// The SDK must produce byte-identical URLs to the official @imgproxy/imgproxy-node
// for every option both support (SPEC §5).
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateImageUrl } from "@imgproxy/imgproxy-node";
import { ImagoSigner } from "../dist/index.js";
import { ImagoSignerSync } from "../dist/node.js";
import { vectors } from "./helpers.mjs";

const KEY = "943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881";
const SALT = "520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5";
const ENDPOINT = "https://imgproxy.example.com";

function ipn(source, encoding, options) {
  return generateImageUrl({ endpoint: ENDPOINT + "/", url: { value: source, displayAs: encoding }, options, key: KEY, salt: SALT });
}

test("build vectors flagged imgproxy_node equal imgproxy-node's output", async () => {
  const cases = vectors.build.filter((c) => c.imgproxy_node);
  assert.ok(cases.length >= 40, `only ${cases.length} flagged cases`);
  for (const c of cases) {
    const p0 = c.pairs ? c.pairs[0] : c;
    const signer = new ImagoSigner({ key: p0.key, salt: p0.salt, baseUrl: ENDPOINT });
    const ours = await signer.url(c.source, c.options, { encoding: c.encoding });
    const theirs = generateImageUrl({ endpoint: ENDPOINT, url: { value: c.source, displayAs: c.encoding }, options: c.options, key: p0.key, salt: p0.salt });
    assert.equal(ours, theirs, c.name);
  }
});

// Seeded generator of random option objects within the shared subset.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomOptions(r) {
  const pick = (a) => a[Math.floor(r() * a.length)];
  const int = (max) => Math.floor(r() * (max + 1));
  const maybe = (p = 0.5) => r() < p;
  const float = () => pick([0.5, 1.25, 2, 0.1, 3.75, 10, 0.333]);
  const compass = ["no", "so", "ea", "we", "noea", "nowe", "soea", "sowe", "ce"];
  const gravity = (smart = true) => {
    const t = pick(smart ? [...compass, "sm", "fp"] : [...compass, "fp"]);
    if (t === "sm") return { type: "sm" };
    if (t === "fp") return { type: "fp", x: pick([0, 0.25, 0.5, 1]), y: pick([0, 0.75, 0.1, 1]) };
    const g = { type: t };
    if (maybe()) g.x_offset = pick([0, 5, -3, 1.5]);
    if (maybe()) g.y_offset = pick([0, 7, -2, 0.25]);
    return g;
  };
  const extend = () => (maybe() ? { extend: maybe() } : { extend: maybe(), gravity: gravity(false) });
  const gens = {
    auto_rotate: () => maybe(),
    background: () => (maybe() ? pick(["fff", "000000", "ff8800", "AbC"]) : { r: int(255), g: int(255), b: int(255) }),
    blur: () => pick([0, float()]),
    cachebuster: () => pick(["v1", "abc-123", "x_y.z~"]),
    crop: () => (maybe() ? { width: int(1000), height: int(1000) } : { width: int(1000), height: int(1000), gravity: gravity() }),
    dpr: () => pick([1, 2, 1.5, 3]),
    enlarge: () => maybe(),
    expires: () => pick([0, 1700000000, 4102444800]),
    extend,
    flip: () => {
      const f = {};
      if (maybe()) f.horizontal = maybe();
      if (maybe()) f.vertical = maybe();
      return f;
    },
    format: () => pick(["jpg", "png", "webp", "avif", "gif"]),
    format_quality: () => Array.from({ length: 1 + int(2) }, () => ({ format: pick(["jpg", "png", "webp", "avif", "gif"]), quality: int(100) })),
    gravity: () => gravity(),
    height: () => int(4000),
    keep_copyright: () => maybe(),
    max_bytes: () => int(1000000),
    min_height: () => int(500),
    min_width: () => int(500),
    padding: () => {
      if (maybe()) return int(50);
      const p = {};
      for (const s of ["top", "right", "bottom", "left"]) if (maybe()) p[s] = int(50);
      if (Object.keys(p).length === 0) p.left = 1;
      return p;
    },
    preset: () => Array.from({ length: 1 + int(2) }, () => pick(["thumb", "sharp", "a", "b-2"])),
    quality: () => int(100),
    resize: () => {
      const o = {};
      if (maybe()) o.resizing_type = pick(["fit", "fill", "fill-down", "force", "auto"]);
      if (maybe()) o.width = int(2000);
      if (maybe()) o.height = int(2000);
      if (maybe()) o.enlarge = maybe();
      if (maybe(0.3)) o.extend = extend();
      if (Object.keys(o).length === 0) o.width = 10;
      return o;
    },
    resizing_type: () => pick(["fit", "fill", "fill-down", "force", "auto"]),
    rotate: () => pick([0, 90, 180, 270]),
    sharpen: () => pick([0, float()]),
    size: () => {
      const o = {};
      if (maybe()) o.width = int(2000);
      if (maybe()) o.height = int(2000);
      if (maybe()) o.enlarge = maybe();
      if (maybe(0.3)) o.extend = extend();
      if (Object.keys(o).length === 0) o.height = 10;
      return o;
    },
    strip_color_profile: () => maybe(),
    strip_metadata: () => maybe(),
    trim: () => {
      const t = { threshold: pick([0, 10, 2.5]) };
      if (maybe()) t.color = pick(["fff", "00ff00"]);
      if (maybe()) t.equal_hor = maybe();
      if (maybe()) t.equal_ver = maybe();
      return t;
    },
    width: () => int(4000),
  };
  const o = {};
  for (const [k, g] of Object.entries(gens)) if (maybe(0.35)) o[k] = g();
  return o;
}

test("500 random option objects: byte-identical to imgproxy-node (async, sync, both encodings)", async () => {
  const r = rng(20240601);
  const signer = new ImagoSigner({ key: KEY, salt: SALT, baseUrl: ENDPOINT });
  const sync = new ImagoSignerSync({ key: KEY, salt: SALT, baseUrl: ENDPOINT });
  const sources = ["local:///photos/cat.jpg", "https://example.com/a/b.png", "s3://bucket/key/x.webp"];
  let nonTrivial = 0;
  for (let i = 0; i < 500; i++) {
    const opts = randomOptions(r);
    const src = sources[i % sources.length];
    const enc = i % 2 ? "plain" : "base64";
    const theirs = ipn(src, enc, opts);
    assert.equal(await signer.url(src, opts, { encoding: enc }), theirs, JSON.stringify(opts));
    assert.equal(sync.url(src, opts, { encoding: enc }), theirs, JSON.stringify(opts));
    if (Object.keys(opts).length >= 3) nonTrivial++;
  }
  assert.ok(nonTrivial > 100, "the generator produced mostly trivial option sets");
});

test("the imgproxy README example matches", async () => {
  const options = { resizing_type: "fit", width: 300, gravity: { type: "no" }, enlarge: true };
  const signer = new ImagoSigner({ key: KEY, salt: SALT, baseUrl: "https://imgproxy.example.com/" });
  assert.equal(await signer.url("https://example.com/image.jpg", options), ipn("https://example.com/image.jpg", "base64", options));
});
