// Generates ../../test-vectors.json.
//
// The expected option paths below are written BY HAND from SPEC.md; this
// script only adds the source part (Buffer base64url / encodeURIComponent —
// independent of the SDK code) and the signatures (node:crypto HMAC —
// independent of the SDK's WebCrypto path). It then cross-checks every case
// against @imgproxy/imgproxy-node (cases flagged imgproxy_node) and against
// the SDK, and refuses to write the file on any mismatch.
import { createCipheriv, createHmac } from "node:crypto";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { generateImageUrl } from "@imgproxy/imgproxy-node";
import { buildPath, parsePath, ImagoParseError, ImagoSigner } from "../dist/index.js";

const OUT = fileURLToPath(new URL("../../test-vectors.json", import.meta.url));
const LADDER = [16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840];

// imgproxy-node README example pair, and two rotation pairs.
const K = "943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881";
const S = "520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5";
const K2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const S2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
const SECRET = "736563726574"; // "secret"
const HELLO = "68656c6c6f"; // "hello"

function sign(key, salt, path, size = 32) {
  const mac = createHmac("sha256", Buffer.from(key, "hex")).update(Buffer.from(salt, "hex")).update(Buffer.from(path, "utf8")).digest();
  return mac.subarray(0, size).toString("base64url");
}

function plainEncode(s) {
  return encodeURIComponent(s)
    .replace(/[!*'()]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%3A/g, ":")
    .replace(/%2F/g, "/");
}

function sourcePart(source, encoding, extension, chunkSize) {
  if (encoding === "plain") return `plain/${plainEncode(source)}${extension ? "@" + extension : ""}`;
  let b = Buffer.from(source, "utf8").toString("base64url");
  if (chunkSize) b = b.match(new RegExp(`.{1,${chunkSize}}`, "g")).join("/");
  return b + (extension ? "." + extension : "");
}

const SRC = "local:///photos/2024/cat.jpg";
const HTTP = "https://example.com/images/cat.jpg";

// [name, options, hand-written canonical options path (no leading '/'), extra]
const BUILD = [
  ["watermark opacity only", { watermark: { opacity: 0.5 } }, "wm:0.5", { imgproxy_node: true }],
  ["watermark position and offsets", { watermark: { opacity: 1, position: "soea", x_offset: 10, y_offset: 20 } }, "wm:1:soea:10:20", { imgproxy_node: true }],
  ["watermark replicate with spacing and scale", { watermark: { opacity: 0.3, position: "re", x_offset: 0.1, y_offset: -5, scale: 0.25 }, width: 400 }, "wm:0.3:re:0.1:-5:0.25/w:400", { imgproxy_node: true }],
  ["watermark scale without position keeps inner empty args", { watermark: { opacity: 0.8, scale: 0.5 } }, "wm:0.8::::0.5", { encoding: "plain", imgproxy_node: true }],
  ["no options, plain", {}, "", { encoding: "plain", imgproxy_node: true }],
  ["no options, base64", {}, "", { source: HTTP, imgproxy_node: true }],
  ["width", { width: 300 }, "w:300", { imgproxy_node: true }],
  ["height, plain", { height: 200 }, "h:200", { encoding: "plain", imgproxy_node: true }],
  ["resize full", { resize: { resizing_type: "fill", width: 300, height: 400, enlarge: false } }, "rs:fill:300:400:f", { imgproxy_node: true }],
  ["resize with extend and gravity", { resize: { resizing_type: "fit", width: 100, height: 100, enlarge: true, extend: { extend: true, gravity: { type: "so", x_offset: 0, y_offset: 10 } } } }, "rs:fit:100:100:t:t:so:0:10", { imgproxy_node: true }],
  ["resize width only keeps inner empty args", { resize: { width: 300 } }, "rs::300", { imgproxy_node: true }],
  ["resize type and height", { resize: { resizing_type: "auto", height: 250 } }, "rs:auto::250", { imgproxy_node: true }],
  ["size", { size: { width: 640, height: 480, enlarge: true } }, "s:640:480:t", { imgproxy_node: true }],
  ["size with extend only", { size: { width: 10, extend: { extend: true } } }, "s:10:::t", { imgproxy_node: true }],
  ["resizing_type width height (canonical order h, rt, w)", { resizing_type: "fill-down", width: 320, height: 240 }, "h:240/rt:fill-down/w:320", { imgproxy_node: true }],
  ["resizing_type force", { resizing_type: "force", width: 50 }, "rt:force/w:50", { encoding: "plain", imgproxy_node: true }],
  ["min dimensions", { min_width: 100, min_height: 50 }, "mh:50/mw:100", { imgproxy_node: true }],
  ["dpr integer", { dpr: 2, width: 200 }, "dpr:2/w:200", { imgproxy_node: true }],
  ["dpr fraction", { dpr: 1.5 }, "dpr:1.5", { imgproxy_node: true }],
  ["dpr shortest round-trip", { dpr: 0.1 + 0.2 }, "dpr:0.30000000000000004", { imgproxy_node: true }],
  ["enlarge false is emitted", { enlarge: false }, "el:f", { imgproxy_node: true }],
  ["enlarge true", { enlarge: true, width: 2000 }, "el:t/w:2000", { encoding: "plain", imgproxy_node: true }],
  ["extend with focus point", { extend: { extend: true, gravity: { type: "fp", x: 0.25, y: 0.75 } } }, "ex:t:fp:0.25:0.75", { imgproxy_node: true }],
  ["extend false", { extend: { extend: false } }, "ex:f", { imgproxy_node: true }],
  ["gravity smart before resize (canonical order)", { resize: { resizing_type: "fill", width: 300, height: 400 }, gravity: { type: "sm" } }, "g:sm/rs:fill:300:400", { imgproxy_node: true }],
  ["gravity compass with offsets", { gravity: { type: "noea", x_offset: 10, y_offset: -5 } }, "g:noea:10:-5", { imgproxy_node: true }],
  ["gravity y offset only", { gravity: { type: "we", y_offset: 5 } }, "g:we::5", { imgproxy_node: true }],
  ["gravity fractional offsets", { gravity: { type: "so", x_offset: 0.5, y_offset: -1.25 } }, "g:so:0.5:-1.25", { imgproxy_node: true }],
  ["gravity focus point", { gravity: { type: "fp", x: 0.5, y: 0.333 } }, "g:fp:0.5:0.333", { encoding: "plain", imgproxy_node: true }],
  ["gravity centre", { gravity: { type: "ce" } }, "g:ce", { imgproxy_node: true }],
  ["crop with gravity", { crop: { width: 100, height: 50, gravity: { type: "ce", x_offset: 5 } } }, "c:100:50:ce:5", { imgproxy_node: true }],
  ["crop zero width keeps 0", { crop: { width: 0, height: 300 } }, "c:0:300", { imgproxy_node: true }],
  ["crop smart", { crop: { width: 400, height: 400, gravity: { type: "sm" } } }, "c:400:400:sm", { encoding: "plain", imgproxy_node: true }],
  ["trim full", { trim: { threshold: 10, color: "ffffff", equal_hor: true, equal_ver: false } }, "t:10:ffffff:t:f", { imgproxy_node: true }],
  ["trim threshold only", { trim: { threshold: 2.5 } }, "t:2.5", { imgproxy_node: true }],
  ["trim equal_ver only", { trim: { threshold: 1, equal_ver: true } }, "t:1:::t", { imgproxy_node: true }],
  ["padding number", { padding: 10 }, "pd:10", { imgproxy_node: true }],
  ["padding object", { padding: { top: 1, left: 3 } }, "pd:1:::3", { imgproxy_node: true }],
  ["padding all sides", { padding: { top: 1, right: 2, bottom: 3, left: 4 } }, "pd:1:2:3:4", { encoding: "plain", imgproxy_node: true }],
  ["rotate and auto_rotate", { rotate: 270, auto_rotate: false }, "ar:f/rot:270", { imgproxy_node: true }],
  ["flip vertical only emits both", { flip: { vertical: true } }, "fl:f:t", { imgproxy_node: true }],
  ["flip empty object", { flip: {} }, "fl:f:f", { imgproxy_node: true }],
  ["background hex", { background: "ff8800" }, "bg:ff8800", { imgproxy_node: true }],
  ["background short hex", { background: "fff" }, "bg:fff", { encoding: "plain", imgproxy_node: true }],
  ["background rgb", { background: { r: 255, g: 0, b: 128 } }, "bg:255:0:128", { imgproxy_node: true }],
  ["blur and sharpen", { blur: 0.5, sharpen: 1.25 }, "bl:0.5/sh:1.25", { imgproxy_node: true }],
  ["quality and format", { quality: 80, format: "webp" }, "f:webp/q:80", { imgproxy_node: true }],
  ["quality auto and format auto (imago extensions)", { quality: "auto", format: "auto", width: 640 }, "f:auto/q:auto/w:640", {}],
  ["format_quality keeps array order", { format_quality: [{ format: "webp", quality: 70 }, { format: "avif", quality: 50 }, { format: "jpg", quality: 85 }] }, "fq:webp:70:avif:50:jpg:85", { imgproxy_node: true }],
  ["metadata booleans", { strip_metadata: true, keep_copyright: false, strip_color_profile: true }, "kcr:f/scp:t/sm:t", { imgproxy_node: true }],
  ["max_bytes", { max_bytes: 102400 }, "mb:102400", { imgproxy_node: true }],
  ["max_bytes 2^53-1", { max_bytes: 9007199254740991 }, "mb:9007199254740991", { imgproxy_node: true }],
  ["cachebuster", { cachebuster: "v2.1" }, "cb:v2.1", { imgproxy_node: true }],
  ["expires", { expires: 4102444800 }, "exp:4102444800", { imgproxy_node: true }],
  ["preset list", { preset: ["thumb", "sharp"] }, "pr:thumb:sharp", { imgproxy_node: true }],
  ["zero scalars are omitted", { width: 0, height: 0, quality: 0, rotate: 0, blur: 0, sharpen: 0, max_bytes: 0, padding: 0, min_width: 0, min_height: 0, expires: 0, enlarge: false }, "el:f", { imgproxy_node: true }],
  ["tiny float never uses exponent", { blur: 0.0000001 }, "bl:0.0000001", {}],
  ["base64 with extension", { width: 100 }, "w:100", { extension: "webp" }],
  ["plain with extension", { width: 100 }, "w:100", { encoding: "plain", extension: "avif" }],
  ["plain percent-encoding of reserved and non-ASCII", { width: 64 }, "w:64", { encoding: "plain", source: "https://example.com/path with spaces/ü.jpg?x=1&y=@2#frag!*'()", extension: "png" }],
  ["base64 non-ASCII source", {}, "", { source: "local:///фото/кот.jpg" }],
  ["s3 source", { width: 512, format: "avif" }, "f:avif/w:512", { source: "s3://my-bucket/uploads/2024/cat.png", imgproxy_node: true }],
  ["s3 source plain", { height: 90 }, "h:90", { source: "s3://my-bucket/uploads/2024/cat.png", encoding: "plain", imgproxy_node: true }],
  ["imgproxy example source, chunked base64, canonical order", { resize: { resizing_type: "fill", width: 300, height: 400, enlarge: false }, gravity: { type: "sm" } }, "g:sm/rs:fill:300:400:f", { key: SECRET, salt: HELLO, source: "http://example.com/images/curiosity.jpg", chunk_size: 16, extension: "png" }],
  ["truncated signature (8 bytes)", { width: 300 }, "w:300", { signature_size: 8 }],
  ["truncated signature (1 byte)", { width: 300 }, "w:300", { signature_size: 1 }],
  ["rotation signs with first pair", { width: 300 }, "w:300", { pairs: [{ key: K2, salt: S2 }, { key: K, salt: S }] }],
  [
    "every option at once, base64",
    {
      auto_rotate: true, background: { r: 1, g: 2, b: 3 }, blur: 1.5, cachebuster: "v1",
      crop: { width: 100, height: 50, gravity: { type: "sm" } }, dpr: 2, enlarge: true, expires: 1700000000,
      extend: { extend: false }, flip: { horizontal: true }, format: "webp", format_quality: [{ format: "webp", quality: 70 }],
      gravity: { type: "fp", x: 0.5, y: 0.25 }, height: 200, keep_copyright: true, max_bytes: 1000, min_height: 6, min_width: 5,
      padding: { top: 1, left: 3 }, preset: ["a", "b"], quality: 80, resize: { resizing_type: "fit", width: 100, enlarge: false },
      resizing_type: "fill", rotate: 90, sharpen: 0.5,
      size: { width: 10, height: 20, enlarge: true, extend: { extend: true, gravity: { type: "no", x_offset: 1, y_offset: 2 } } },
      strip_color_profile: true, strip_metadata: false, trim: { threshold: 10, color: "fff", equal_hor: true }, width: 300,
    },
    "ar:t/bg:1:2:3/bl:1.5/cb:v1/c:100:50:sm/dpr:2/el:t/exp:1700000000/ex:f/fl:t:f/f:webp/fq:webp:70/g:fp:0.5:0.25/h:200/kcr:t/mb:1000/mh:6/mw:5/pd:1:::3/pr:a:b/q:80/rs:fit:100::f/rt:fill/rot:90/sh:0.5/s:10:20:t:t:no:1:2/scp:t/sm:f/t:10:fff:t/w:300",
    { source: HTTP, imgproxy_node: true },
  ],
  [
    "every option at once, plain, imago extensions",
    {
      width: 300, trim: { threshold: 0 }, strip_metadata: true, strip_color_profile: false, size: { height: 5 }, sharpen: 2, rotate: 180,
      resizing_type: "auto", resize: { resizing_type: "fill-down", width: 1, height: 2, enlarge: true, extend: { extend: true, gravity: { type: "ce" } } },
      quality: "auto", preset: ["p"], padding: 4, min_width: 1, min_height: 2, max_bytes: 3, keep_copyright: false, height: 400,
      gravity: { type: "sowe", x_offset: -3 }, format_quality: [{ format: "avif", quality: 40 }, { format: "gif", quality: 100 }], format: "auto",
      flip: { horizontal: false, vertical: true }, extend: { extend: true, gravity: { type: "nowe", x_offset: 1, y_offset: 1 } },
      expires: 2000000000, enlarge: false, dpr: 3, crop: { width: 10, height: 20 }, cachebuster: "x-1_2~3", blur: 3,
      background: "AbCdEf", auto_rotate: false,
    },
    "ar:f/bg:AbCdEf/bl:3/cb:x-1_2~3/c:10:20/dpr:3/el:f/exp:2000000000/ex:t:nowe:1:1/fl:f:t/f:auto/fq:avif:40:gif:100/g:sowe:-3/h:400/kcr:f/mb:3/mh:2/mw:1/pd:4/pr:p/q:auto/rs:fill-down:1:2:t:t:ce/rt:auto/rot:180/sh:2/s::5/scp:f/sm:t/t:0/w:300",
    { encoding: "plain", extension: "jpg" },
  ],
  // imgproxy's further options (issue #20).
  ["zoom", { zoom: 1.5, width: 200 }, "w:200/z:1.5", { imgproxy_node: true }],
  ["zoom per side", { zoom: { zoom_x: 2, zoom_y: 0.5 } }, "z:2:0.5", { imgproxy_node: true }],
  ["extend_aspect_ratio with gravity", { extend_aspect_ratio: { extend: true, gravity: { type: "so", x_offset: 0, y_offset: 5 } } }, "exar:t:so:0:5", { imgproxy_node: true }],
  ["extend_aspect_ratio after extend (canonical order)", { extend_aspect_ratio: { extend: true }, extend: { extend: false } }, "ex:f/exar:t", { imgproxy_node: true }],
  ["resizing_algorithm before resizing_type", { resizing_algorithm: "lanczos2", resizing_type: "fit" }, "ra:lanczos2/rt:fit", { imgproxy_node: true }],
  ["enforce_thumbnail false is emitted", { enforce_thumbnail: false }, "eth:f", { imgproxy_node: true }],
  ["pixelate", { pixelate: 8 }, "pix:8", { imgproxy_node: true }],
  ["pixelate 0 is omitted", { pixelate: 0, width: 5 }, "w:5", { imgproxy_node: true }],
  ["skip_processing (imgproxy-node emits sp:, imgproxy's name is skp)", { skip_processing: ["jpg", "png"] }, "skp:jpg:png", {}],
  ["raw", { raw: true }, "raw:t", { imgproxy_node: true }],
  ["filename", { filename: { name: "holiday" } }, "fn:holiday", { imgproxy_node: true }],
  ["filename base64", { filename: { name: "w6l0w6kgMQ", encoded: true } }, "fn:w6l0w6kgMQ:t", { encoding: "plain", imgproxy_node: true }],
  ["filename and return_attachment", { return_attachment: true, filename: { name: "cat", encoded: false } }, "fn:cat:f/att:t", { imgproxy_node: true }],
  ["security options", { max_src_resolution: 62.5, max_src_file_size: 52428800, max_animation_frames: 10, max_animation_frame_resolution: 0.5, max_result_dimension: 8000 }, "mafr:0.5/maf:10/mrd:8000/msfs:52428800/msr:62.5", { imgproxy_node: true }],
  ["security zeros are emitted", { max_src_file_size: 0, max_result_dimension: 0, max_animation_frame_resolution: 0 }, "mafr:0/mrd:0/msfs:0", { imgproxy_node: true }],
  [
    "issue 20 options with core options, canonical order",
    {
      zoom: 2, width: 100, skip_processing: ["webp"], return_attachment: false, resizing_algorithm: "cubic", raw: false,
      pixelate: 4, max_result_dimension: 4000, filename: { name: "a.b" }, extend_aspect_ratio: { extend: false },
      enforce_thumbnail: true, dpr: 2, quality: 70,
    },
    "dpr:2/eth:t/exar:f/fn:a.b/mrd:4000/pix:4/q:70/raw:f/ra:cubic/att:f/skp:webp/w:100/z:2",
    { encoding: "plain" },
  ],
  // JPEG XL output (issue #20).
  ["format jxl with its own quality", { width: 300, format: "jxl", format_quality: [{ format: "jxl", quality: 70 }] }, "f:jxl/fq:jxl:70/w:300", {}],
  ["plain with extension jxl", { width: 100 }, "w:100", { encoding: "plain", extension: "jxl" }],
];

const errors = [];
const build = BUILD.map(([name, options, optPath, extra]) => {
  const source = extra.source ?? SRC;
  const encoding = extra.encoding ?? "base64";
  const c = { name };
  const pairs = extra.pairs;
  if (pairs) c.pairs = pairs;
  else {
    c.key = extra.key ?? K;
    c.salt = extra.salt ?? S;
  }
  if (extra.signature_size) c.signature_size = extra.signature_size;
  c.source = source;
  c.encoding = encoding;
  if (extra.chunk_size) c.chunk_size = extra.chunk_size;
  if (extra.extension) c.extension = extra.extension;
  c.options = options;
  if (extra.imgproxy_node) c.imgproxy_node = true;
  c.expected_path = (optPath ? `/${optPath}` : "") + "/" + sourcePart(source, encoding, extra.extension, extra.chunk_size);
  const p0 = pairs ? pairs[0] : { key: c.key, salt: c.salt };
  c.expected_url_path = `/${sign(p0.key, p0.salt, c.expected_path, c.signature_size)}${c.expected_path}`;

  // Cross-checks.
  const sdk = buildPath(source, options, { encoding, extension: extra.extension, chunkSize: extra.chunk_size });
  if (sdk !== c.expected_path) errors.push(`SDK mismatch in "${name}":\n  spec ${c.expected_path}\n  sdk  ${sdk}`);
  if (extra.imgproxy_node) {
    const ipn = generateImageUrl({ endpoint: "https://h", url: { value: source, displayAs: encoding }, options, key: p0.key, salt: p0.salt });
    if (ipn !== `https://h${c.expected_url_path}`) errors.push(`imgproxy-node mismatch in "${name}":\n  spec https://h${c.expected_url_path}\n  ipn  ${ipn}`);
  }
  return c;
});

const sign_ = [
  { name: "imgproxy published example", key: SECRET, salt: HELLO, path: "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png", signature: "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8" },
  { name: "plain path", key: K, salt: S, path: "/w:300/plain/local:///photos/cat.jpg" },
  { name: "upper-case hex key and salt sign like lower-case", key: K.toUpperCase(), salt: S.toUpperCase(), path: "/w:300/plain/local:///photos/cat.jpg" },
  { name: "short key and salt", key: "00", salt: "ff", path: "/plain/s3://b/k" },
  { name: "non-ASCII path bytes", key: K, salt: S, path: "/plain/local:///фото.jpg" },
  { name: "truncated to 8 bytes", key: SECRET, salt: HELLO, path: "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png", signature_size: 8 },
  { name: "truncated to 16 bytes", key: K, salt: S, path: "/w:300/plain/local:///photos/cat.jpg", signature_size: 16 },
  { name: "truncated to 1 byte", key: K, salt: S, path: "/w:300/plain/local:///photos/cat.jpg", signature_size: 1 },
  { name: "rotation: first pair signs", pairs: [{ key: K2, salt: S2 }, { key: K, salt: S }], path: "/w:300/plain/local:///photos/cat.jpg" },
  { name: "rotation with truncation", pairs: [{ key: SECRET, salt: HELLO }, { key: K2, salt: S2 }], path: "/g:sm/plain/local:///a.jpg", signature_size: 10 },
].map((v) => {
  const p0 = v.pairs ? v.pairs[0] : v;
  const sig = sign(p0.key, p0.salt, v.path, v.signature_size ?? 32);
  if (v.signature && v.signature !== sig) errors.push(`published vector mismatch: ${sig}`);
  const out = { ...v };
  out.signature = sig;
  return out;
});

const VP = "/w:300/plain/local:///photos/cat.jpg";
const verify = [
  { name: "signed with the only pair", pairs: [{ key: K, salt: S }], url_path: `/${sign(K, S, VP)}${VP}`, valid: true },
  { name: "rotation: old (second) pair still accepted", pairs: [{ key: K2, salt: S2 }, { key: K, salt: S }], url_path: `/${sign(K, S, VP)}${VP}`, valid: true },
  { name: "rotation: new (first) pair accepted", pairs: [{ key: K2, salt: S2 }, { key: K, salt: S }], url_path: `/${sign(K2, S2, VP)}${VP}`, valid: true },
  { name: "unknown pair rejected", pairs: [{ key: K2, salt: S2 }], url_path: `/${sign(K, S, VP)}${VP}`, valid: false },
  { name: "key and salt swapped rejected", pairs: [{ key: S, salt: K }], url_path: `/${sign(K, S, VP)}${VP}`, valid: false },
  { name: "tampered path rejected", pairs: [{ key: K, salt: S }], url_path: `/${sign(K, S, VP)}/w:301/plain/local:///photos/cat.jpg`, valid: false },
  { name: "truncated signature accepted at configured size", pairs: [{ key: K, salt: S }], signature_size: 8, url_path: `/${sign(K, S, VP, 8)}${VP}`, valid: true },
  { name: "full signature rejected when size 8 is configured", pairs: [{ key: K, salt: S }], signature_size: 8, url_path: `/${sign(K, S, VP)}${VP}`, valid: false },
  { name: "truncated signature rejected when size 32 is configured", pairs: [{ key: K, salt: S }], url_path: `/${sign(K, S, VP, 8)}${VP}`, valid: false },
  { name: "padded signature rejected", pairs: [{ key: K, salt: S }], url_path: `/${sign(K, S, VP)}=${VP}`, valid: false },
  { name: "standard base64 alphabet rejected", pairs: [{ key: SECRET, salt: HELLO }], url_path: "/oKfUtW34Dvo2BGQehJFR4Nr0/rIjOtdtzJ3QFsUcXH8/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png", valid: false },
  { name: "imgproxy published URL accepted", pairs: [{ key: SECRET, salt: HELLO }], url_path: "/oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png", valid: true },
  { name: "empty signature rejected", pairs: [{ key: K, salt: S }], url_path: `/${VP}`, valid: false },
  { name: "insecure rejected by default", pairs: [{ key: K, salt: S }], url_path: `/insecure${VP}`, valid: false },
  { name: "insecure accepted when allowed", pairs: [{ key: K, salt: S }], allow_insecure: true, url_path: `/insecure${VP}`, valid: true },
];

const I = (name, path, error_code, option, status = 400) => {
  const v = { name, path, status, error_code };
  if (option !== undefined) v.option = option;
  return v;
};
const P = "plain/local:///a.jpg";
const invalid = [
  I("unknown option", `/foo:1/${P}`, "unknown-option", "foo"),
  I("unknown option that looks like an alias", `/wd:100/${P}`, "unknown-option", "wd"),
  I("option names are case-sensitive", `/W:100/${P}`, "unknown-option", "W"),
  I("width not a number", `/w:abc/${P}`, "invalid-option", "w"),
  I("negative width", `/w:-10/${P}`, "invalid-option", "w"),
  I("fractional height", `/h:1.5/${P}`, "invalid-option", "h"),
  I("width with exponent", `/width:1e3/${P}`, "invalid-option", "width"),
  I("width with two arguments", `/w:1:2/${P}`, "invalid-option", "w"),
  I("empty width", `/w:/${P}`, "invalid-option", "w"),
  I("negative min-width", `/mw:-5/${P}`, "invalid-option", "mw"),
  I("resize with bad width", `/rs:fill:abc/${P}`, "invalid-option", "rs"),
  I("resize with too many arguments", `/rs:fit:1:1:t:t:no:1:1:9/${P}`, "invalid-option", "rs"),
  I("bad resizing type", `/rt:stretch/${P}`, "invalid-option", "rt"),
  I("size with bad enlarge", `/s:10:10:maybe/${P}`, "invalid-option", "s"),
  I("bad gravity type", `/g:up/${P}`, "invalid-option", "g"),
  I("focus point out of range", `/g:fp:1.5:0.5/${P}`, "invalid-option", "g"),
  I("focus point missing y", `/g:fp:0.5/${P}`, "invalid-option", "g"),
  I("smart gravity takes no offsets", `/g:sm:1:2/${P}`, "invalid-option", "g"),
  I("gravity offset not a number", `/gravity:no:x:1/${P}`, "invalid-option", "gravity"),
  I("extend with smart gravity", `/ex:t:sm/${P}`, "invalid-option", "ex"),
  I("bad boolean", `/el:yes/${P}`, "invalid-option", "el"),
  I("bad boolean 2", `/sm:2/${P}`, "invalid-option", "sm"),
  I("bad flip boolean", `/fl:t:maybe/${P}`, "invalid-option", "fl"),
  I("quality above 100", `/q:101/${P}`, "invalid-option", "q"),
  I("negative quality", `/q:-1/${P}`, "invalid-option", "q"),
  I("quality keyword", `/quality:high/${P}`, "invalid-option", "quality"),
  I("rotation not a right angle", `/rot:45/${P}`, "invalid-option", "rot"),
  I("rotation 360", `/rot:360/${P}`, "invalid-option", "rot"),
  I("unknown format", `/f:xyz/${P}`, "invalid-option", "f"),
  I("format_quality odd argument count", `/fq:webp/${P}`, "invalid-option", "fq"),
  I("format_quality unknown format", `/fq:tiff:80/${P}`, "invalid-option", "fq"),
  I("format_quality out of range", `/fq:webp:101/${P}`, "invalid-option", "fq"),
  I("background not hex", `/bg:zzz/${P}`, "invalid-option", "bg"),
  I("background channel above 255", `/bg:256:0:0/${P}`, "invalid-option", "bg"),
  I("background with two channels", `/bg:1:2/${P}`, "invalid-option", "bg"),
  I("dpr zero", `/dpr:0/${P}`, "invalid-option", "dpr"),
  I("dpr not a number", `/dpr:NaN/${P}`, "invalid-option", "dpr"),
  I("negative blur", `/bl:-1/${P}`, "invalid-option", "bl"),
  I("infinite sharpen", `/sh:inf/${P}`, "invalid-option", "sh"),
  I("crop missing height", `/c:100/${P}`, "invalid-option", "c"),
  I("trim threshold not a number", `/t:abc/${P}`, "invalid-option", "t"),
  I("trim bad colour", `/t:10:fffff/${P}`, "invalid-option", "t"),
  I("padding too many arguments", `/pd:1:2:3:4:5/${P}`, "invalid-option", "pd"),
  I("padding negative", `/pd:-1/${P}`, "invalid-option", "pd"),
  I("max_bytes fractional", `/mb:1.5/${P}`, "invalid-option", "mb"),
  I("expires not a number", `/exp:soon/${P}`, "invalid-option", "exp"),
  I("empty preset name", `/pr:a::b/${P}`, "invalid-option", "pr"),
  I("empty cachebuster", `/cb:/${P}`, "invalid-option", "cb"),
  I("malformed base64 source", `/w:100/aHR0c$$.jpg`, "invalid-source"),
  I("impossible base64 length", `/w:100/aHR0cDovL2V4YW1wbGUuY29tL2EuanBnX`, "invalid-source"),
  I("bad percent-encoding", `/plain/http://example.com/%zz.jpg`, "invalid-source"),
  I("unknown extension", `/plain/local:///a.jpg@tiff`, "invalid-source"),
  I("unsupported scheme", `/plain/ftp://example.com/a.jpg`, "invalid-source"),
  I("unsupported scheme in base64", `/${Buffer.from("file:///etc/passwd").toString("base64url")}`, "invalid-source"),
  I("missing source", `/w:100`, "invalid-source"),
  I("empty plain source", `/w:100/plain/`, "invalid-source"),
  I("zoom zero", `/z:0/${P}`, "invalid-option", "z"),
  I("zoom with three arguments", `/zoom:1:2:3/${P}`, "invalid-option", "zoom"),
  I("zoom with empty first argument", `/z::2/${P}`, "invalid-option", "z"),
  I("extend_aspect_ratio with smart gravity", `/exar:t:sm/${P}`, "invalid-option", "exar"),
  I("unknown resizing algorithm", `/ra:bicubic/${P}`, "invalid-option", "ra"),
  I("enforce_thumbnail bad boolean", `/eth:yes/${P}`, "invalid-option", "eth"),
  I("negative pixelate", `/pix:-2/${P}`, "invalid-option", "pix"),
  I("fractional pixelate", `/pixelate:1.5/${P}`, "invalid-option", "pixelate"),
  I("skip_processing unknown format", `/skp:exe/${P}`, "invalid-option", "skp"),
  I("skip_processing upper-case format", `/skip_processing:JPG/${P}`, "invalid-option", "skip_processing"),
  I("raw bad boolean", `/raw:2/${P}`, "invalid-option", "raw"),
  I("filename with three arguments", `/fn:a:t:x/${P}`, "invalid-option", "fn"),
  I("filename encoded but not base64url", `/fn:a+b:t/${P}`, "invalid-option", "fn"),
  I("return_attachment bad boolean", `/att:x/${P}`, "invalid-option", "att"),
  I("max_animation_frames zero", `/maf:0/${P}`, "invalid-option", "maf"),
  I("negative max_src_resolution", `/msr:-1/${P}`, "invalid-option", "msr"),
  I("fractional max_src_file_size", `/msfs:1.5/${P}`, "invalid-option", "msfs"),
  I("max_result_dimension too large", `/mrd:70000/${P}`, "invalid-option", "mrd"),
  I("max_animation_frame_resolution not a number", `/mafr:x/${P}`, "invalid-option", "mafr"),
  I("expired URL", `/exp:1/${P}`, "url-expired", undefined, 410),
  I("watermark opacity above 1", `/wm:1.5/${P}`, "invalid-option", "wm"),
  I("watermark without opacity", `/wm::ce/${P}`, "invalid-option", "wm"),
  I("watermark unknown position", `/watermark:1:up/${P}`, "invalid-option", "watermark"),
  I("watermark chessboard is imgproxy Pro", `/wm:1:ch/${P}`, "invalid-option", "wm"),
  I("watermark offset not a number", `/wm:1:ce:x/${P}`, "invalid-option", "wm"),
  I("watermark negative scale", `/wm:1:ce:0:0:-1/${P}`, "invalid-option", "wm"),
  I("watermark too many arguments", `/wm:1:ce:0:0:1:9/${P}`, "invalid-option", "wm"),
  I("format_quality jxl quality above 100", `/fq:jxl:101/${P}`, "invalid-option", "fq"),
];

// Cross-check invalid vectors against the SDK reference parser.
const now = Math.floor(Date.now() / 1000);
for (const v of invalid) {
  try {
    parsePath(v.path, { now });
    errors.push(`invalid vector "${v.name}" parsed fine`);
  } catch (e) {
    if (!(e instanceof ImagoParseError)) throw e;
    if (e.code !== v.error_code || (v.option !== undefined && e.option !== v.option) || e.status !== v.status) {
      errors.push(`invalid vector "${v.name}": parser says ${e.code}/${e.option}/${e.status}: ${e.message}`);
    }
  }
}

const BASE = "https://img.example.com";
const SS = [
  { name: "default ladder capped at 1200, f:auto q:auto", source: HTTP, encoding: "base64", options: { format: "auto", quality: "auto" }, max_width: 1200 },
  { name: "whole ladder, plain", source: SRC, encoding: "plain", options: { resize: { resizing_type: "fit" } } },
  { name: "max_width below the ladder keeps the smallest", source: SRC, encoding: "base64", options: {}, max_width: 10 },
  { name: "max_width between rungs", source: SRC, encoding: "base64", options: { format: "webp" }, max_width: 700 },
  { name: "custom widths sorted and deduplicated; width option replaced", source: SRC, encoding: "base64", options: { width: 999, height: 100 }, widths: [300, 100, 200, 100] },
  { name: "dpr option replaced by dpr:1 (w descriptors are device pixels)", source: SRC, encoding: "base64", options: { dpr: 2, format: "webp" }, widths: [100, 200] },
];
const srcset = SS.map((v) => {
  let widths = [...new Set(v.widths ?? LADDER)].sort((a, b) => a - b);
  if (v.max_width !== undefined) {
    const kept = widths.filter((w) => w <= v.max_width);
    widths = kept.length ? kept : [widths[0]];
  }
  const cands = widths.map((w) => {
    const opts = { ...v.options, width: w, dpr: 1 };
    const sdk = buildPath(v.source, opts, { encoding: v.encoding });
    const path = sdk; // option paths themselves are pinned by the build vectors
    return `${BASE}/${sign(K, S, path)}${path} ${w}w`;
  });
  return { name: v.name, key: K, salt: S, base_url: BASE, source: v.source, encoding: v.encoding, options: v.options, ...(v.max_width !== undefined ? { max_width: v.max_width } : {}), ...(v.widths ? { widths: v.widths } : {}), expected_widths: widths, expected: cands.join(", ") };
});
// Hand-check one candidate of the first srcset vector.
{
  const p = `/dpr:1/f:auto/q:auto/w:16/${Buffer.from(HTTP).toString("base64url")}`;
  if (!srcset[0].expected.startsWith(`${BASE}/${sign(K, S, p)}${p} 16w, `)) errors.push("srcset hand check failed");
}

// Encrypted sources (SPEC §3.4): node:crypto, independent of the SDK's WebCrypto path.
const ENC_KEY = "1eb5b0e971ad7f45324c1bb15c947cb207c43152fa5c6c7f35c4f36e0c18e0f1"; // imgproxy docs' key
function ivFor(keyHex, source) {
  const kIv = createHmac("sha256", Buffer.from(keyHex, "hex")).update("imago source-url IV").digest();
  return createHmac("sha256", kIv).update(Buffer.from(source, "utf8")).digest().subarray(0, 16);
}
function encrypt(keyHex, source, iv) {
  const c = createCipheriv(`aes-${keyHex.length * 4}-cbc`, Buffer.from(keyHex, "hex"), iv);
  return Buffer.concat([iv, c.update(Buffer.from(source, "utf8")), c.final()]).toString("base64url");
}
const ENC = [
  { name: "imgproxy documented example (given IV)", encryption_key: ENC_KEY, source: "http://example.com/images/curiosity.jpg", options: { resize: { resizing_type: "fit", width: 300, height: 300 } }, iv: "a79563a2b35d86cee6451c3c800f535a", published: "p5VjorNdhs7mRRw8gA9TWoRlGci3l1kuzqN43UQlRaRIQ0qtBKW3qFABIsx-ZRz_cVc8iVTYbhsNsxNBL1BHaQ" },
  { name: "derived IV, AES-256, watermark, extension", encryption_key: ENC_KEY, source: SRC, options: { width: 300, watermark: { opacity: 0.5, position: "soea" } }, extension: "png" },
  { name: "derived IV, AES-128, chunked", encryption_key: "000102030405060708090a0b0c0d0e0f", source: "s3://bucket/private/key.jpg", options: { height: 100 }, chunk_size: 16 },
  { name: "derived IV, AES-192, no options", encryption_key: "000102030405060708090a0b0c0d0e0f1011121314151617", source: HTTP, options: {} },
  { name: "non-ASCII source", encryption_key: ENC_KEY, source: "local:///фото/кот.jpg", options: { width: 64 } },
];
const encrypted = [];
for (const v of ENC) {
  const iv = v.iv ? Buffer.from(v.iv, "hex") : ivFor(v.encryption_key, v.source);
  let b = encrypt(v.encryption_key, v.source, iv);
  if (v.published && b !== v.published) errors.push(`imgproxy published encryption mismatch: ${b}`);
  if (v.chunk_size) b = b.match(new RegExp(`.{1,${v.chunk_size}}`, "g")).join("/");
  const optPath = buildPath(SRC, v.options, {}).split("/").slice(1, -1).join("/");
  const expected_path = (optPath ? `/${optPath}` : "") + `/enc/${b}${v.extension ? "." + v.extension : ""}`;
  const c = { name: v.name, key: K, salt: S, encryption_key: v.encryption_key, source: v.source, options: v.options };
  if (v.iv) c.iv = v.iv;
  if (v.extension) c.extension = v.extension;
  if (v.chunk_size) c.chunk_size = v.chunk_size;
  c.expected_iv = iv.toString("hex");
  c.expected_path = expected_path;
  c.expected_url_path = `/${sign(K, S, expected_path)}${expected_path}`;
  // imgproxy-node knows AES-256 only, never chunks nor adds an extension to an encrypted source,
  // and encrypts non-ASCII sources wrongly (it re-encodes the UTF-8 bytes as Latin-1 first).
  c.imgproxy_node = !v.chunk_size && !v.extension && v.encryption_key.length === 64 && /^[\x00-\x7f]*$/.test(v.source);
  if (!v.iv) {
    const sdk = await new ImagoSigner({ key: K, salt: S, sourceEncryptionKey: v.encryption_key }).path(v.source, v.options, { encoding: "encrypted", extension: v.extension, chunkSize: v.chunk_size });
    if (sdk !== c.expected_url_path) errors.push(`SDK encryption mismatch in "${v.name}":\n  spec ${c.expected_url_path}\n  sdk  ${sdk}`);
  }
  if (c.imgproxy_node) {
    const ipn = generateImageUrl({ endpoint: "https://h", url: { value: v.source, displayAs: "encrypted" }, options: v.options, key: K, salt: S, encryptKey: v.encryption_key, encryptIV: c.expected_iv });
    const want = `https://h${c.expected_url_path}`;
    if (ipn !== want) errors.push(`imgproxy-node encryption mismatch in "${v.name}":\n  spec ${want}\n  ipn  ${ipn}`);
  }
  encrypted.push(c);
}

const sizes = [
  { name: "breakpoints sorted ascending, default last", breakpoints: [{ max_width: 1024, size: "50vw" }, { max_width: 640, size: "100vw" }], default: "33vw", expected: "(max-width: 640px) 100vw, (max-width: 1024px) 50vw, 33vw" },
  { name: "numeric sizes are px", breakpoints: [{ max_width: 480, size: 320 }], default: 800, expected: "(max-width: 480px) 320px, 800px" },
  { name: "no breakpoints, default default", breakpoints: [], expected: "100vw" },
  { name: "calc() passes through", breakpoints: [{ max_width: 768, size: "calc(100vw - 2rem)" }], default: "720px", expected: "(max-width: 768px) calc(100vw - 2rem), 720px" },
];

if (errors.length) {
  console.error(errors.join("\n"));
  process.exit(1);
}
const doc = { version: 1, ladder: LADDER, sign: sign_, verify, build, invalid, srcset, sizes, encrypted };
writeFileSync(OUT, JSON.stringify(doc, null, 2) + "\n");
console.log(`wrote ${OUT}: sign=${sign_.length} verify=${verify.length} build=${build.length} invalid=${invalid.length} srcset=${srcset.length} sizes=${sizes.length}`);
