// The signer refuses to hold an HMAC key in a browser: whoever loads the page could read the key
// and sign any URL. A browser is simulated here by defining `window` and `document` globals (the
// Next.js example test checks the same in Chromium).
import { test, describe, afterEach } from "node:test";
import assert from "node:assert/strict";
import { ImagoSigner, ImagoOptionError } from "../dist/index.js";
import { ImagoSignerSync } from "../dist/node.js";

const KEY = "736563726574";
const SALT = "68656c6c6f";

function asBrowser() {
  globalThis.window = globalThis;
  globalThis.document = { nodeType: 9 };
}
afterEach(() => {
  delete globalThis.window;
  delete globalThis.document;
});

describe("browser guard", () => {
  for (const [name, Signer] of [["ImagoSigner", ImagoSigner], ["ImagoSignerSync", ImagoSignerSync]]) {
    test(`${name} with a key refuses to run in a browser`, () => {
      asBrowser();
      assert.throws(() => new Signer({ key: KEY, salt: SALT }), (e) => {
        assert.ok(e instanceof ImagoOptionError, String(e));
        assert.equal(e.option, "insecureAllowBrowser");
        assert.match(e.message, /browser/);
        assert.match(e.message, /server/);
        assert.match(e.message, /insecureAllowBrowser: true/);
        return true;
      });
      assert.throws(() => new Signer({ pairs: [{ key: KEY, salt: SALT }] }), ImagoOptionError);
    });
    test(`${name} with a key runs in a browser when told the key is public`, async () => {
      asBrowser();
      const s = new Signer({ key: KEY, salt: SALT, insecureAllowBrowser: true });
      const url = await s.url("local:///a.jpg", { width: 100 });
      delete globalThis.window;
      delete globalThis.document;
      assert.equal(url, await new Signer({ key: KEY, salt: SALT }).url("local:///a.jpg", { width: 100 }));
    });
    test(`${name} without a key (insecure: true) runs in a browser`, async () => {
      asBrowser();
      assert.equal(await new Signer({ insecure: true }).path("local:///a.jpg", { width: 1 }), "/insecure/w:1/bG9jYWw6Ly8vYS5qcGc");
    });
    test(`${name} with a key runs outside a browser (window alone is not a browser)`, () => {
      globalThis.window = globalThis;
      assert.ok(new Signer({ key: KEY, salt: SALT }));
    });
  }
  test("insecureAllowBrowser must be a boolean", () => {
    assert.throws(() => new ImagoSigner({ key: KEY, salt: SALT, insecureAllowBrowser: "yes" }), ImagoOptionError);
  });
});
