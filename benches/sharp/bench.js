// sharp's CPU per image for the load benchmark (benches/load.rs runs this).
// Usage: node bench.js PHOTO N jpeg|webp [WIDTH] [QUALITY]
// The job is ipx's: auto-rotate, resize to WIDTH (Lanczos3, shrink-on-load), convert to sRGB,
// strip metadata, encode with sharp's defaults at QUALITY (JPEG: baseline, optimised Huffman,
// 4:2:0; WebP: effort 4). One libvips thread, no operation cache, one image at a time, like the
// in-process libvips reference. Prints one JSON line.
'use strict';
const fs = require('fs');
const sharp = require('sharp');

const [photo, n, format, width, quality] = [
  process.argv[2],
  Number(process.argv[3] || 20),
  process.argv[4] || 'jpeg',
  Number(process.argv[5] || 800),
  Number(process.argv[6] || 80),
];
sharp.concurrency(1);
sharp.cache(false);
const input = fs.readFileSync(photo);

function one() {
  const p = sharp(input, { failOn: 'truncated' }).rotate().resize({ width });
  return (format === 'webp' ? p.webp({ quality }) : p.jpeg({ quality })).toBuffer({ resolveWithObject: true });
}

(async () => {
  const first = await one();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await one();
  const cpu = process.cpuUsage(cpu0);
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(
    JSON.stringify({
      sharp: sharp.versions.sharp,
      libvips: sharp.versions.vips,
      cpu_ms: (cpu.user + cpu.system) / 1000 / n,
      wall_ms: wallMs / n,
      bytes: first.data.length,
      width: first.info.width,
      height: first.info.height,
      peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    }),
  );
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
