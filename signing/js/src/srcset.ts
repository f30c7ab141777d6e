import { ImagoOptionError } from "./errors.js";
import { formatNumber } from "./encoding.js";

/** Server default width ladder (SPEC §9). */
export const LADDER: readonly number[] = Object.freeze([16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840]);

export interface SrcsetOptions {
  /** Keep only ladder widths <= maxWidth (the smallest is kept if none fit). */
  maxWidth?: number;
  /** Override the ladder (e.g. a server configured with another ladder). */
  widths?: readonly number[];
}

/** Widths used by srcset (SPEC §9 steps 1–2). */
export function srcsetWidths(opts: SrcsetOptions = {}): number[] {
  const base = opts.widths ?? LADDER;
  if (!Array.isArray(base) || base.length === 0) throw new ImagoOptionError("widths", "widths must be a non-empty array");
  for (const w of base) {
    if (!Number.isInteger(w) || w < 1) throw new ImagoOptionError("widths", "widths must be positive integers");
  }
  const sorted = [...new Set(base)].sort((a, b) => a - b);
  if (opts.maxWidth === undefined) return sorted;
  if (typeof opts.maxWidth !== "number" || !(opts.maxWidth > 0)) throw new ImagoOptionError("maxWidth", "maxWidth must be a positive number");
  const kept = sorted.filter((w) => w <= opts.maxWidth!);
  return kept.length > 0 ? kept : [sorted[0]!];
}

export function assembleSrcset(entries: ReadonlyArray<{ width: number; url: string }>): string {
  return entries.map((e) => `${e.url} ${e.width}w`).join(", ");
}

export interface SizesBreakpoint {
  /** Viewport max-width in CSS px (positive integer). */
  maxWidth: number;
  /** CSS length (`"100vw"`, `"calc(50vw - 2rem)"`) or a number of px. */
  size: string | number;
}

function sizeValue(v: string | number, what: string): string {
  if (typeof v === "number") {
    if (!Number.isFinite(v) || v <= 0) throw new ImagoOptionError(what, `${what} must be a positive number of px`);
    return `${formatNumber(v)}px`;
  }
  if (typeof v !== "string" || v.trim() === "" || v.includes(",")) throw new ImagoOptionError(what, `${what} must be a non-empty CSS length without ','`);
  return v.trim();
}

/** `sizes` attribute value (SPEC §9): `(max-width: 640px) 100vw, …, default`. */
export function sizes(breakpoints: readonly SizesBreakpoint[], defaultSize: string | number = "100vw"): string {
  if (!Array.isArray(breakpoints)) throw new ImagoOptionError("breakpoints", "breakpoints must be an array");
  const seen = new Set<number>();
  const parts = [...breakpoints]
    .map((b, i) => {
      if (!Number.isInteger(b.maxWidth) || b.maxWidth < 1) throw new ImagoOptionError("breakpoints", `breakpoints[${i}].maxWidth must be a positive integer`);
      if (seen.has(b.maxWidth)) throw new ImagoOptionError("breakpoints", `duplicate maxWidth ${b.maxWidth}`);
      seen.add(b.maxWidth);
      return { w: b.maxWidth, s: sizeValue(b.size, `breakpoints[${i}].size`) };
    })
    .sort((a, b) => a.w - b.w)
    .map((b) => `(max-width: ${b.w}px) ${b.s}`);
  parts.push(sizeValue(defaultSize, "default"));
  return parts.join(", ");
}
