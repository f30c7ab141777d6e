// Type-checked by test/module-formats.test.mjs: an ES module consumer gets the dist declarations.
import { ImagoSigner, thumbHashToDataURL } from "@imago/signing";
import { ImagoSignerSync } from "@imago/signing/node";
import { imagoLoader, type ImageLoader } from "@imago/signing/next";
import { ImagoImage, imagoImageProps } from "@imago/signing/react";

const signer = new ImagoSignerSync({ key: "aa", salt: "bb" });
const loader: ImageLoader = imagoLoader(signer, { options: { format: "auto" } });
const el = ImagoImage({ signer, src: "local:///a.jpg", alt: "", width: 100, thumbhash: "AAAA" });
const props = imagoImageProps({ signer, src: "local:///a.jpg", alt: "", width: 100 });
const p: Promise<string> = new ImagoSigner({ key: "aa", salt: "bb" }).url("local:///a.jpg");
// @ts-expect-error: the async signer is not a synchronous loader signer
imagoLoader(new ImagoSigner({ key: "aa", salt: "bb" }));
export { loader, el, props, p, thumbHashToDataURL };
