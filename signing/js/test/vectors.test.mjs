import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { ImagoSigner, ImagoParseError, encryptSource, encryptedSourcePart, buildPath, parsePath, sizes, srcsetWidths, LADDER } from "../dist/index.js";
import { ImagoSignerSync } from "../dist/node.js";
import { vectors, cfgOf, poOf } from "./helpers.mjs";

test("vector file has the promised shape and counts", () => {
  assert.equal(vectors.version, 1);
  assert.deepEqual(vectors.ladder, [...LADDER]);
  assert.ok(vectors.build.length >= 25, "at least 25 build cases");
  assert.ok(vectors.invalid.length >= 20, "at least 20 invalid cases");
  assert.ok(vectors.build.some((c) => c.encoding === "plain") && vectors.build.some((c) => c.encoding === "base64"));
  assert.ok(vectors.build.some((c) => c.signature_size) && vectors.build.some((c) => c.pairs));
  assert.ok(vectors.sign.some((v) => v.signature === "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8"));
  // Every option key is exercised by some build case.
  const keys = new Set(vectors.build.flatMap((c) => Object.keys(c.options)));
  for (const k of ["auto_rotate", "background", "blur", "cachebuster", "crop", "dpr", "enlarge", "expires", "extend", "flip", "format", "format_quality", "gravity", "height", "keep_copyright", "max_bytes", "min_height", "min_width", "padding", "preset", "quality", "resize", "resizing_type", "rotate", "sharpen", "size", "strip_color_profile", "strip_metadata", "trim", "watermark", "width"]) {
    assert.ok(keys.has(k), `build vectors cover ${k}`);
  }
});

describe("sign vectors", () => {
  for (const v of vectors.sign) {
    test(`async: ${v.name}`, async () => {
      assert.equal(await new ImagoSigner(cfgOf(v)).sign(v.path), v.signature);
    });
    test(`sync: ${v.name}`, () => {
      assert.equal(new ImagoSignerSync(cfgOf(v)).sign(v.path), v.signature);
    });
  }
});

describe("verify vectors", () => {
  for (const v of vectors.verify) {
    const cfg = { pairs: v.pairs, ...(v.signature_size ? { signatureSize: v.signature_size } : {}) };
    const vo = { allowInsecure: v.allow_insecure === true };
    test(`async: ${v.name}`, async () => {
      assert.equal(await new ImagoSigner(cfg).verify(v.url_path, vo), v.valid);
    });
    test(`sync: ${v.name}`, () => {
      assert.equal(new ImagoSignerSync(cfg).verify(v.url_path, vo), v.valid);
    });
  }
});

describe("encrypted vectors (SPEC §3.4, WebCrypto AES-CBC)", () => {
  assert.ok(vectors.encrypted.length >= 4);
  for (const v of vectors.encrypted) {
    test(v.name, async () => {
      const iv = v.iv ? Uint8Array.from(Buffer.from(v.iv, "hex")) : undefined;
      const data = await encryptSource(v.source, v.encryption_key, iv);
      assert.equal(Buffer.from(data.subarray(0, 16)).toString("hex"), v.expected_iv);
      const part = await encryptedSourcePart(v.source, v.encryption_key, { extension: v.extension, chunkSize: v.chunk_size, iv });
      assert.ok(v.expected_path.endsWith("/" + part), part);
      if (!v.iv) {
        const signer = new ImagoSigner({ key: v.key, salt: v.salt, sourceEncryptionKey: v.encryption_key });
        assert.equal(await signer.path(v.source, v.options, { encoding: "encrypted", extension: v.extension, chunkSize: v.chunk_size }), v.expected_url_path);
      }
    });
  }
});

describe("build vectors", () => {
  for (const v of vectors.build) {
    test(v.name, async () => {
      assert.equal(buildPath(v.source, v.options, poOf(v)), v.expected_path);
      const signer = new ImagoSigner(cfgOf(v, { baseUrl: "https://img.example.com/" }));
      assert.equal(await signer.path(v.source, v.options, poOf(v)), v.expected_url_path);
      assert.equal(await signer.url(v.source, v.options, poOf(v)), "https://img.example.com" + v.expected_url_path);
      assert.equal(new ImagoSignerSync(cfgOf(v)).path(v.source, v.options, poOf(v)), v.expected_url_path);
      assert.equal(await signer.verify(v.expected_url_path), true);
      // Reference parser round-trip: parse → canonical serialise gives the same path.
      const p = parsePath(v.expected_path);
      assert.equal(p.source, v.source);
      assert.equal(p.encoding, v.encoding);
      assert.equal(p.extension, v.extension);
      assert.equal(buildPath(p.source, p.options, { encoding: p.encoding, extension: p.extension, chunkSize: v.chunk_size }), v.expected_path);
    });
  }
});

describe("invalid vectors", () => {
  const now = Math.floor(Date.now() / 1000);
  for (const v of vectors.invalid) {
    test(v.name, () => {
      assert.throws(
        () => parsePath(v.path, { now }),
        (e) => {
          assert.ok(e instanceof ImagoParseError, `got ${e}`);
          assert.equal(e.code, v.error_code, e.message);
          assert.equal(e.status, v.status);
          if (v.option !== undefined) assert.equal(e.option, v.option);
          return true;
        },
      );
    });
  }
});

describe("srcset vectors", () => {
  for (const v of vectors.srcset) {
    const opts = { encoding: v.encoding };
    if (v.max_width !== undefined) opts.maxWidth = v.max_width;
    if (v.widths !== undefined) opts.widths = v.widths;
    test(v.name, async () => {
      assert.deepEqual(srcsetWidths(opts), v.expected_widths);
      const cfg = { key: v.key, salt: v.salt, baseUrl: v.base_url };
      assert.equal(await new ImagoSigner(cfg).srcset(v.source, v.options, opts), v.expected);
      assert.equal(new ImagoSignerSync(cfg).srcset(v.source, v.options, opts), v.expected);
    });
  }
});

describe("sizes vectors", () => {
  for (const v of vectors.sizes) {
    test(v.name, () => {
      const bps = v.breakpoints.map((b) => ({ maxWidth: b.max_width, size: b.size }));
      assert.equal(v.default === undefined ? sizes(bps) : sizes(bps, v.default), v.expected);
    });
  }
});
