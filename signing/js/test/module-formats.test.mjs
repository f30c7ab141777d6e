// The package is ESM and CommonJS: every subpath of the `exports` map resolves for `import` and
// for `require()` (by the package's own name, as a consumer would), with its type declarations,
// and both builds sign identically.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { execFileSync } from "node:child_process";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const require = createRequire(import.meta.url);
const KEY = "736563726574";
const SALT = "68656c6c6f";
const subpaths = Object.keys(pkg.exports).filter((p) => p !== "./package.json");

describe("exports map", () => {
  test("has the front-end subpaths", () => {
    for (const p of [".", "./node", "./next", "./react"]) assert.ok(subpaths.includes(p), p);
  });
  for (const sub of subpaths) {
    const spec = sub === "." ? pkg.name : `${pkg.name}/${sub.slice(2)}`;
    test(`${spec}: import and require conditions, each with types`, () => {
      const e = pkg.exports[sub];
      for (const cond of ["import", "require"]) {
        assert.equal(typeof e[cond], "object", `${sub} ${cond}`);
        for (const f of [e[cond].types, e[cond].default]) assert.ok(f && existsSync(join(root, f)), `${sub} ${cond}: ${f}`);
      }
    });
    test(`${spec}: require() and import() give the same API`, async () => {
      const cjs = require(spec);
      const esm = await import(spec);
      assert.deepEqual(Object.keys(cjs).filter((k) => k !== "default").sort(), Object.keys(esm).filter((k) => k !== "default").sort());
      assert.ok(Object.keys(esm).length > 0);
    });
  }
  test("require('@imago/signing') signs like import", async () => {
    const cjs = require("@imago/signing");
    const esm = await import("@imago/signing");
    const opts = { resize: { resizing_type: "fill", width: 300, height: 200 }, format: "webp" };
    const a = await new cjs.ImagoSigner({ key: KEY, salt: SALT }).path("s3://b/k.jpg", opts);
    const b = await new esm.ImagoSigner({ key: KEY, salt: SALT }).path("s3://b/k.jpg", opts);
    assert.equal(a, b);
    assert.equal(require("@imago/signing/node").ImagoSignerSync.name, "ImagoSignerSync");
    assert.equal(new (require("@imago/signing/node").ImagoSignerSync)({ key: KEY, salt: SALT }).path("s3://b/k.jpg", opts), a);
  });
  test("a plain CommonJS script can require it (a separate node process)", () => {
    const out = execFileSync(process.execPath, ["-e",
      "const { ImagoSignerSync } = require('@imago/signing/node');" +
      `process.stdout.write(new ImagoSignerSync({ key: '${KEY}', salt: '${SALT}' }).path('local:///a.jpg', { width: 10 }))`,
    ], { cwd: root, encoding: "utf8" });
    assert.match(out, /^\/[A-Za-z0-9_-]{43}\/w:10\/bG9jYWw6Ly8vYS5qcGc$/);
  });
});

test("TypeScript consumers (CommonJS .cts and ESM .mts, moduleResolution node16) type-check against the exports map", () => {
  const tsc = join(root, "node_modules/typescript/bin/tsc");
  try {
    execFileSync(process.execPath, [tsc, "-p", join(root, "test/types/tsconfig.json")], { cwd: root, encoding: "utf8" });
  } catch (e) {
    assert.fail(`tsc: ${e.stdout}${e.stderr}`);
  }
});
