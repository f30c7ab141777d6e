import { test, describe } from "node:test";
import assert from "node:assert/strict";
import {
  ImagoSigner, ImagoOptionError, ImagoError, ImagoParseError, buildPath, serializeOptions, encodeSource, formatNumber,
  percentEncode, parsePath, sizes, srcsetWidths, LADDER, OPTION_TABLE, OPTION_ALIASES,
} from "../dist/index.js";
import { ImagoSignerSync } from "../dist/node.js";

const KEY = "736563726574";
const SALT = "68656c6c6f";
const SRC = "local:///a.jpg";

describe("formatNumber", () => {
  const cases = [[0, "0"], [-0, "0"], [2, "2"], [2.0, "2"], [0.5, "0.5"], [-1.25, "-1.25"], [1e-7, "0.0000001"], [1.5e-10, "0.00000000015"],
    [1e21, "1000000000000000000000"], [1.5e22, "15000000000000000000000"], [0.1 + 0.2, "0.30000000000000004"], [123456789.125, "123456789.125"]];
  for (const [n, s] of cases) test(`${n} → ${s}`, () => assert.equal(formatNumber(n), s));
  test("rejects non-finite", () => {
    assert.throws(() => formatNumber(NaN), RangeError);
    assert.throws(() => formatNumber(Infinity), RangeError);
  });
});

describe("source encoding", () => {
  test("plain keeps unreserved, ':' and '/', encodes the rest upper-case", () => {
    assert.equal(percentEncode("http://a.b/c d?e=f&g@h%"), "http://a.b/c%20d%3Fe%3Df%26g%40h%25");
    assert.equal(percentEncode("local:///é"), "local:///%C3%A9");
  });
  test("base64 is url-safe and unpadded", () => {
    // "local:///??>" encodes to bytes that produce '-'/'_' in base64url
    const s = encodeSource("local:///a?>>.jpg");
    assert.doesNotMatch(s, /[+/=]/);
    assert.equal(Buffer.from(s, "base64url").toString(), "local:///a?>>.jpg");
  });
  test("chunking splits and keeps the extension at the end", () => {
    assert.equal(encodeSource("http://example.com/images/curiosity.jpg", { chunkSize: 16, extension: "png" }), "aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png");
  });
  test("rejects bad sources, extensions, chunk sizes", () => {
    for (const s of ["", "ftp://x/y", "local://a.jpg", "s3://bucket", "https://", "/etc/passwd"]) {
      assert.throws(() => encodeSource(s), (e) => e instanceof ImagoOptionError && e.option === "source", s);
    }
    assert.throws(() => encodeSource(SRC, { extension: "tiff" }), (e) => e.option === "extension");
    assert.throws(() => encodeSource(SRC, { chunkSize: 0 }), (e) => e.option === "chunkSize");
    assert.throws(() => encodeSource(SRC, { encoding: "plain", chunkSize: 4 }), (e) => e.option === "chunkSize");
    assert.throws(() => encodeSource(SRC, { encoding: "hex" }), (e) => e.option === "encoding");
  });
});

describe("option validation names the option", () => {
  const bad = [
    [{ width: -1 }, "width"], [{ width: 1.5 }, "width"], [{ width: "300" }, "width"], [{ height: NaN }, "height"],
    [{ quality: 101 }, "quality"], [{ quality: "best" }, "quality"], [{ rotate: 45 }, "rotate"], [{ dpr: 0 }, "dpr"], [{ dpr: -1 }, "dpr"],
    [{ format: "tiff" }, "format"], [{ resizing_type: "stretch" }, "resizing_type"], [{ gravity: { type: "up" } }, "gravity"],
    [{ gravity: { type: "fp", x: 2, y: 0 } }, "gravity"], [{ gravity: { type: "sm", x_offset: 1 } }, "gravity"],
    [{ extend: { extend: true, gravity: { type: "sm" } } }, "extend"], [{ enlarge: 1 }, "enlarge"], [{ background: "#fff" }, "background"],
    [{ background: { r: 256, g: 0, b: 0 } }, "background"], [{ cachebuster: "a/b" }, "cachebuster"], [{ cachebuster: "" }, "cachebuster"],
    [{ preset: [] }, "preset"], [{ preset: ["a:b"] }, "preset"], [{ resize: {} }, "resize"], [{ size: {} }, "size"], [{ padding: {} }, "padding"],
    [{ padding: -2 }, "padding"], [{ trim: { color: "fff" } }, "trim"], [{ trim: { threshold: 1, color: "ffff" } }, "trim"],
    [{ crop: { width: 10 } }, "crop"], [{ format_quality: [] }, "format_quality"], [{ format_quality: [{ format: "auto", quality: 1 }] }, "format_quality"],
    [{ flip: { horizontal: "yes" } }, "flip"], [{ resize: { width: 10, bogus: 1 } }, "resize"], [{ blur: -0.5 }, "blur"], [{ expires: 1.5 }, "expires"],
    [{ wat: 1 }, "wat"], [{ w: 100 }, "w"],
  ];
  for (const [opts, key] of bad) {
    test(JSON.stringify(opts), () => {
      assert.throws(() => serializeOptions(opts), (e) => {
        assert.ok(e instanceof ImagoOptionError && e instanceof ImagoError);
        assert.equal(e.option, key);
        assert.equal(e.name, "ImagoOptionError");
        return true;
      });
    });
  }
  test("message carries the sub-path", () => {
    assert.throws(() => serializeOptions({ resize: { width: -3 } }), /resize\.width/);
    assert.throws(() => serializeOptions({ format_quality: [{ format: "webp", quality: 1 }, { format: "webp", quality: 200 }] }), /format_quality\.1\.quality/);
  });
  test("undefined and null values are skipped", () => {
    assert.equal(serializeOptions({ width: undefined, height: null, quality: 50 }), "q:50");
  });
});

test("option table and alias table agree", () => {
  const shorts = OPTION_TABLE.map(([, s]) => s);
  assert.deepEqual(shorts, [
    "ar", "bg", "bl", "cb", "c", "dpr", "eth", "el", "exp", "ex", "exar", "fn", "fl", "f", "fq", "g", "h", "kcr", "mafr", "maf",
    "mb", "mrd", "msfs", "msr", "mh", "mw", "pd", "pix", "pr", "q", "raw", "rs", "ra", "rt", "att", "rot", "sh", "s", "skp", "scp",
    "sm", "t", "wm", "w", "z",
  ]);
  for (const [key, short] of OPTION_TABLE) assert.equal(OPTION_ALIASES[short], key);
  assert.equal(OPTION_ALIASES["min-width"], "min_width");
  assert.equal(OPTION_ALIASES.ext, "format");
  // imgproxy-node writes `sp:` for skip_processing; imgproxy's own names are skp / skip_processing.
  assert.equal(OPTION_ALIASES.sp, "skip_processing");
});

describe("parser", () => {
  test("aliases and loose booleans parse to the canonical form", () => {
    const p = parsePath("/resize:fill:300:400:0/gravity:sm/quality:80/min-width:5/ext:webp/el:True/plain/local:///a.jpg@png");
    assert.deepEqual(p.options, { resize: { resizing_type: "fill", width: 300, height: 400, enlarge: false }, gravity: { type: "sm" }, quality: 80, min_width: 5, format: "webp", enlarge: true });
    assert.equal(p.extension, "png");
    assert.equal(buildPath(p.source, p.options, { encoding: p.encoding, extension: p.extension }), "/el:t/f:webp/g:sm/mw:5/q:80/rs:fill:300:400:f/plain/local:///a.jpg@png");
  });
  test("later duplicate wins", () => {
    assert.equal(parsePath("/w:1/width:2/plain/local:///a.jpg").options.width, 2);
  });
  test("trailing empty args are tolerated, trailing '=' padding on base64 too", () => {
    assert.deepEqual(parsePath("/rs:fit:10::/plain/local:///a.jpg").options.resize, { resizing_type: "fit", width: 10 });
    assert.equal(parsePath("/" + Buffer.from("local:///ab").toString("base64") + "").source, "local:///ab");
  });
  test("imgproxy published path parses", () => {
    const p = parsePath("/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png");
    assert.equal(p.source, "http://example.com/images/curiosity.jpg");
    assert.equal(p.extension, "png");
  });
  test("exp in the future is fine, in the past expires only when now is given", () => {
    assert.doesNotThrow(() => parsePath("/exp:1/plain/local:///a.jpg"));
    assert.doesNotThrow(() => parsePath("/exp:99999999999/plain/local:///a.jpg", { now: 1700000000 }));
    assert.throws(() => parsePath("/exp:1699999999/plain/local:///a.jpg", { now: 1700000000 }), (e) => e instanceof ImagoParseError && e.code === "url-expired" && e.status === 410);
  });
});

describe("signer", () => {
  test("async and sync signers agree, and differ from another key", async () => {
    const a = await new ImagoSigner({ key: KEY, salt: SALT }).path(SRC, { width: 10 });
    const b = new ImagoSignerSync({ key: KEY, salt: SALT }).path(SRC, { width: 10 });
    const c = await new ImagoSigner({ key: SALT, salt: KEY }).path(SRC, { width: 10 });
    assert.equal(a, b);
    assert.notEqual(a, c);
  });
  test("truncation shortens the signature", async () => {
    const full = await new ImagoSigner({ key: KEY, salt: SALT }).sign("/x");
    const short = await new ImagoSigner({ key: KEY, salt: SALT, signatureSize: 8 }).sign("/x");
    assert.equal(full.length, 43);
    assert.equal(short.length, 11);
    assert.equal(Buffer.from(short, "base64url").toString("hex"), Buffer.from(full, "base64url").subarray(0, 8).toString("hex"));
  });
  test("insecure signer", async () => {
    const s = new ImagoSigner({ insecure: true, baseUrl: "http://localhost:8080" });
    assert.equal(await s.url(SRC, { width: 5 }, { encoding: "plain" }), "http://localhost:8080/insecure/w:5/plain/local:///a.jpg");
  });
  test("config errors", () => {
    assert.throws(() => new ImagoSigner({}), (e) => e.option === "key");
    assert.throws(() => new ImagoSigner({ key: "zz", salt: SALT }), (e) => e instanceof ImagoOptionError && /pairs\[0\]\.key/.test(e.option));
    assert.throws(() => new ImagoSigner({ key: KEY, salt: "abc" }), ImagoOptionError);
    assert.throws(() => new ImagoSigner({ key: KEY, salt: "" }), ImagoOptionError);
    assert.throws(() => new ImagoSigner({ key: KEY, salt: SALT, signatureSize: 33 }), (e) => e.option === "signatureSize");
    assert.throws(() => new ImagoSigner({ key: KEY, salt: SALT, signatureSize: 0 }), (e) => e.option === "signatureSize");
    assert.throws(() => new ImagoSigner({ pairs: [] }), (e) => e.option === "pairs");
    assert.throws(() => new ImagoSigner({ key: KEY, salt: SALT, insecure: true }), (e) => e.option === "insecure");
  });
  test("sign rejects paths without a leading slash", async () => {
    await assert.rejects(new ImagoSigner({ key: KEY, salt: SALT }).sign("w:1/x"), ImagoOptionError);
  });
  test("expires / expiresIn / Date", async () => {
    const s = new ImagoSigner({ key: KEY, salt: SALT });
    assert.match(await s.path(SRC, {}, { expires: new Date(1700000000500), encoding: "plain" }), /\/exp:1700000000\/plain\//);
    const before = Math.floor(Date.now() / 1000);
    const p = await s.path(SRC, {}, { expiresIn: 3600, encoding: "plain" });
    const exp = Number(/exp:(\d+)/.exec(p)[1]);
    assert.ok(exp >= before + 3600 && exp <= before + 3601, `${exp}`);
    await assert.rejects(s.path(SRC, {}, { expires: 1, expiresIn: 1 }), ImagoOptionError);
    await assert.rejects(s.path(SRC, {}, { expiresIn: -5 }), ImagoOptionError);
  });
  test("verify rejects garbage", async () => {
    const s = new ImagoSigner({ key: KEY, salt: SALT });
    assert.equal(await s.verify("nope"), false);
    assert.equal(await s.verify("/"), false);
    const good = await s.path(SRC, { width: 1 });
    assert.equal(await s.verify(good), true);
    assert.equal(await s.verify(good.replace("w:1", "w:2")), false);
  });
});

describe("builder", () => {
  const signer = new ImagoSigner({ key: KEY, salt: SALT, baseUrl: "https://img.example.com" });
  test("fluent calls produce the canonical options", async () => {
    const b = signer.image("s3://bucket/cat.jpg").resize("fill", 300, 200).gravity("sm").format("auto").quality("auto").extension("webp");
    assert.deepEqual(b.toOptions(), { resize: { resizing_type: "fill", width: 300, height: 200 }, gravity: { type: "sm" }, format: "auto", quality: "auto" });
    assert.equal(b.unsignedPath(), `/f:auto/g:sm/q:auto/rs:fill:300:200/${Buffer.from("s3://bucket/cat.jpg").toString("base64url")}.webp`);
    assert.equal(await b.url(), await signer.url("s3://bucket/cat.jpg", b.toOptions(), { extension: "webp" }));
  });
  test("builder is immutable", () => {
    const a = signer.image(SRC).width(100);
    const b = a.height(50);
    assert.deepEqual(a.toOptions(), { width: 100 });
    assert.deepEqual(b.toOptions(), { width: 100, height: 50 });
  });
  test("every option method", () => {
    const b = signer.image(SRC, { encoding: "plain" })
      .autoRotate().background(1, 2, 3).blur(1).cachebuster("c").crop(10, 20, { type: "ce" }).dpr(2).enlarge(false)
      .expires(4102444800).extend(true, { type: "no", x_offset: 1 }).flip(true).format("png").formatQuality({ webp: 70, avif: 50 })
      .gravity("no", 10, 5).height(5).keepCopyright().maxBytes(9).minHeight(3).minWidth(4).padding(1, 2).preset("a", "b")
      .quality(70).resizingType("fit").rotate(90).sharpen(0.5).size(7, 8, true).stripColorProfile().stripMetadata(false)
      .trim(5, { color: "fff" }).width(6);
    assert.equal(b.unsignedPath(), "/ar:t/bg:1:2:3/bl:1/cb:c/c:10:20:ce/dpr:2/el:f/exp:4102444800/ex:t:no:1/fl:t:f/f:png/fq:webp:70:avif:50/g:no:10:5/h:5/kcr:t/mb:9/mh:3/mw:4/pd:1:2/pr:a:b/q:70/rt:fit/rot:90/sh:0.5/s:7:8:t/scp:t/sm:f/t:5:fff/w:6/plain/local:///a.jpg");
    assert.equal(signer.image(SRC).gravity("fp", 0.5, 0.25).padding(7).unsignedPath().split("/").slice(1, 3).join("/"), "g:fp:0.5:0.25/pd:7");
  });
  test("builder srcset and the sync builder", async () => {
    const s = await signer.image(SRC).format("auto").srcset({ maxWidth: 64 });
    assert.equal(s.split(", ").length, 4);
    assert.match(s, /\/f:auto\/w:16\/[^ ]+ 16w, /);
    const sync = new ImagoSignerSync({ key: KEY, salt: SALT, baseUrl: "https://img.example.com" });
    assert.equal(sync.image(SRC).format("auto").srcset({ maxWidth: 64 }), s);
  });
});

describe("srcset / sizes helpers", () => {
  test("ladder is the server default", () => {
    assert.deepEqual([...LADDER], [16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840]);
    assert.throws(() => LADDER.push(1));
  });
  test("widths filtering", () => {
    assert.deepEqual(srcsetWidths({ maxWidth: 100 }), [16, 32, 48, 64, 96]);
    assert.deepEqual(srcsetWidths({ maxWidth: 3840 }), [...LADDER]);
    assert.throws(() => srcsetWidths({ widths: [] }), ImagoOptionError);
    assert.throws(() => srcsetWidths({ widths: [10.5] }), ImagoOptionError);
    assert.throws(() => srcsetWidths({ maxWidth: 0 }), ImagoOptionError);
  });
  test("srcset shares one expiry across candidates", async () => {
    const s = await new ImagoSigner({ key: KEY, salt: SALT }).srcset(SRC, {}, { expiresIn: 60, maxWidth: 1200 });
    const exps = new Set([...s.matchAll(/exp:(\d+)/g)].map((m) => m[1]));
    assert.equal(exps.size, 1);
  });
  test("sizes validation", () => {
    assert.throws(() => sizes([{ maxWidth: 0, size: "1px" }]), ImagoOptionError);
    assert.throws(() => sizes([{ maxWidth: 10, size: "1px" }, { maxWidth: 10, size: "2px" }]), /duplicate/);
    assert.throws(() => sizes([{ maxWidth: 10, size: "a, b" }]), ImagoOptionError);
    assert.throws(() => sizes([], -1), ImagoOptionError);
  });
});
