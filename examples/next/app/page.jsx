// A server component: it signs at render time. `<ImagoImage>` (from @imago/signing/react) and
// next/image's `getImageProps()` with the `imagoLoader` (from @imago/signing/next) both emit
// `src`/`srcset`/`sizes` whose candidates are `w:{W}/dpr:1` (a `w` descriptor is already device
// pixels), and a blurred ThumbHash placeholder from `/v1/images/{key}/info`.
import { getImageProps } from "next/image";
import { ImagoImage, imageInfo } from "@imago/signing/react";
import { imagoLoader, thumbHashToDataURL } from "@imago/signing/next";
import { imagoSigner, imagoUrl } from "./imago";
import BrowserGuard from "./guard";

// Signed per request (the env and the image are read at run time, not at build time).
export const dynamic = "force-dynamic";

export default async function Page() {
  const signer = imagoSigner();
  // The API key (scope read-info) stays on the server too.
  const info = await imageInfo(imagoUrl(), process.env.IMAGO_API_KEY, process.env.IMAGO_IMAGE_KEY);
  const height = Math.round((375 * info.height) / info.width);
  const { props } = getImageProps({
    loader: imagoLoader(signer, { options: { format: "auto" } }),
    src: info.source,
    alt: "the same photo through next/image getImageProps",
    width: 375,
    height,
    sizes: "375px",
    placeholder: "blur",
    blurDataURL: thumbHashToDataURL(info.thumbhash),
  });
  return (
    <main style={{ padding: 16 }}>
      <h1 style={{ fontSize: 18 }}>imago + Next.js (server components)</h1>
      <ImagoImage
        id="imago-image"
        signer={signer}
        src={info.source}
        alt="A photo, signed at render time"
        width={375}
        height={height}
        sizes="375px"
        options={{ format: "auto" }}
        thumbhash={info.thumbhash}
        loading="eager"
      />
      <img id="next-image" {...props} />
      <BrowserGuard />
    </main>
  );
}
