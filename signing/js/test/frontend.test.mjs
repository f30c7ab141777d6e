// @imago/signing/next (next/image loader) and @imago/signing/react (<ImagoImage>), rendered with
// the real react-dom/server; the vendored ThumbHash decoder against the thumbhash package.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import * as thumbhash from "thumbhash";
import { ImagoSignerSync } from "../dist/node.js";
import { imagoLoader } from "../dist/next.js";
import { ImagoImage, imagoImageProps, thumbHashToDataURL } from "../dist/react.js";
import { LADDER, ImagoOptionError, parsePath } from "../dist/index.js";

const KEY = "736563726574";
const SALT = "68656c6c6f";
const signer = new ImagoSignerSync({ key: KEY, salt: SALT, baseUrl: "https://img.example.com" });
const BASE = "https://img.example.com";
const optionsOf = (url) => parsePath(url.slice(BASE.length).replace(/^\/[^/]+/, "")).options;

describe("next/image loader", () => {
  test("signs w:{width} with dpr:1, and q when next/image passes a quality", () => {
    const load = imagoLoader(signer, { options: { format: "auto" } });
    const u = load({ src: "s3://photos/cat.jpg", width: 640 });
    assert.ok(signer.verify(u.slice(BASE.length)), u);
    assert.equal(u, signer.url("s3://photos/cat.jpg", { format: "auto", width: 640, dpr: 1 }));
    const q = load({ src: "s3://photos/cat.jpg", width: 828, quality: 60 });
    assert.equal(q, signer.url("s3://photos/cat.jpg", { format: "auto", width: 828, dpr: 1, quality: 60 }));
    assert.match(q, /\/dpr:1\//);
  });
  test("maps next/image src to an imago source", () => {
    const load = imagoLoader(signer, { source: (src) => `local:///${src.replace(/^\//, "")}` });
    assert.equal(load({ src: "/a/b.jpg", width: 16 }), signer.url("local:///a/b.jpg", { width: 16, dpr: 1 }));
  });
  test("needs a synchronous signer", () => {
    assert.throws(() => imagoLoader({}), ImagoOptionError);
    const asyncLike = { url: async () => "x" };
    assert.throws(() => imagoLoader(asyncLike)({ src: "local:///a.jpg", width: 16 }), ImagoOptionError);
  });
});

describe("<ImagoImage>", () => {
  test("renders signed src/srcset/sizes, every candidate dpr:1, up to 3× the layout width", () => {
    const html = renderToStaticMarkup(createElement(ImagoImage, { signer, src: "s3://photos/cat.jpg", alt: "A cat", width: 375, height: 250, options: { format: "auto" } }));
    const attr = (n) => html.match(new RegExp(` ${n}="([^"]*)"`))?.[1]?.replace(/&amp;/g, "&");
    assert.equal(attr("alt"), "A cat");
    assert.equal(attr("width"), "375");
    assert.equal(attr("height"), "250");
    assert.equal(attr("sizes"), "375px");
    assert.equal(attr("loading"), "lazy");
    const cands = attr("srcSet").split(", ").map((c) => c.split(" "));
    // 3 × 375 = 1125 → the ladder up to 1200.
    assert.deepEqual(cands.map(([, w]) => w), LADDER.filter((w) => w <= 1200).map((w) => `${w}w`));
    for (const [url, w] of cands) {
      assert.ok(signer.verify(url.slice(BASE.length)), url);
      const o = optionsOf(url);
      assert.equal(o.width, Number(w.slice(0, -1)));
      assert.equal(o.dpr, 1);
      assert.equal(o.format, "auto");
    }
    // src: the 1× candidate (first ladder width ≥ 375).
    assert.equal(optionsOf(attr("src")).width, 384);
    assert.ok(!html.includes(KEY) && !html.includes(SALT));
  });
  test("sizes given: every ladder width unless maxWidth; widths override the ladder", () => {
    const p = imagoImageProps({ signer, src: "local:///a.jpg", alt: "", width: 600, sizes: "(max-width: 600px) 100vw, 600px" });
    assert.equal(p.srcSet.split(", ").length, LADDER.length);
    assert.equal(p.sizes, "(max-width: 600px) 100vw, 600px");
    const q = imagoImageProps({ signer, src: "local:///a.jpg", alt: "", width: 100, widths: [100, 200, 300, 400], maxWidth: 250 });
    assert.deepEqual(q.srcSet.split(", ").map((c) => c.split(" ")[1]), ["100w", "200w", "300w"]);
  });
  test("a ThumbHash becomes a blurred PNG placeholder behind the image", () => {
    const hash = "1QcSHQRnh493V4dIh4eXh1h4kJUI"; // a landscape photo's ThumbHash (standard base64)
    const p = imagoImageProps({ signer, src: "local:///a.jpg", alt: "", width: 100, thumbhash: hash, style: { borderRadius: 4 } });
    assert.match(p.style.backgroundImage, /^url\("data:image\/png;base64,[A-Za-z0-9+/=]+"\)$/);
    assert.equal(p.style.backgroundSize, "cover");
    assert.equal(p.style.borderRadius, 4);
    const html = renderToStaticMarkup(createElement(ImagoImage, { signer, src: "local:///a.jpg", alt: "", width: 100, thumbhash: hash }));
    assert.match(html, /background-image:url\(&quot;data:image\/png;base64,/);
  });
  test("refuses bad props", () => {
    assert.throws(() => imagoImageProps({ signer, src: "local:///a.jpg", alt: "", width: 0 }), ImagoOptionError);
    assert.throws(() => imagoImageProps({ signer, src: "local:///a.jpg", width: 10 }), ImagoOptionError);
    assert.throws(() => imagoImageProps({ src: "local:///a.jpg", alt: "", width: 10 }), ImagoOptionError);
    assert.throws(() => imagoImageProps({ signer, src: "local:///a.jpg", alt: "", width: 10, thumbhash: "not base64!" }), ImagoOptionError);
  });
});

describe("ThumbHash decoding (port of thumbhash 0.1.1)", () => {
  // Deterministic pseudo-random images, opaque and with alpha, portrait and landscape.
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (const [w, h, alpha] of [[100, 75, false], [60, 100, false], [100, 100, true], [33, 90, true], [1, 1, false]]) {
    test(`${w}×${h}${alpha ? " with alpha" : ""}: same data URL as the thumbhash package`, () => {
      const rgba = new Uint8Array(w * h * 4);
      for (let i = 0; i < rgba.length; i++) rgba[i] = (i % 4 === 3 && !alpha) ? 255 : Math.floor(rnd() * 256);
      const hash = thumbhash.rgbaToThumbHash(w, h, rgba);
      const b64 = Buffer.from(hash).toString("base64");
      assert.equal(thumbHashToDataURL(b64), thumbhash.thumbHashToDataURL(hash));
      assert.equal(thumbHashToDataURL(hash), thumbhash.thumbHashToDataURL(hash));
    });
  }
});
