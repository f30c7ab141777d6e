// Type-checked by test/module-formats.test.mjs: a CommonJS consumer gets the dist/cjs declarations.
import signing = require("@imago/signing");
import node = require("@imago/signing/node");
import next = require("@imago/signing/next");
import react = require("@imago/signing/react");

const signer = new node.ImagoSignerSync({ key: "aa", salt: "bb" });
const url: string = signer.url("local:///a.jpg", { width: 100 });
const loader: (p: { src: string; width: number; quality?: number }) => string = next.imagoLoader(signer);
const el = react.ImagoImage({ signer, src: "local:///a.jpg", alt: "", width: 100 });
const p: Promise<string> = new signing.ImagoSigner({ key: "aa", salt: "bb" }).url("local:///a.jpg");
export { url, loader, el, p };
