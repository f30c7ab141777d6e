import { fileURLToPath } from "node:url";

// @imago/signing is linked from ../../signing/js (a `file:` dependency), so the bundler's root is
// the repository (a published package needs none of this).
const repo = fileURLToPath(new URL("../..", import.meta.url));

/** @type {import('next').NextConfig} */
export default {
  turbopack: { root: repo },
  outputFileTracingRoot: repo,
};
