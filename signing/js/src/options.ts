import { ImagoOptionError } from "./errors.js";
import { formatBool, formatNumber } from "./encoding.js";
import type { ImagoOptions, OptionKey } from "./types.js";

export const COMPASS_GRAVITY = ["no", "so", "ea", "we", "noea", "nowe", "soea", "sowe", "ce"] as const;
export const RESIZING_TYPES = ["fit", "fill", "fill-down", "force", "auto"] as const;
export const FORMATS = ["jpg", "png", "webp", "avif", "gif", "auto", "jxl"] as const;
export const CONCRETE_FORMATS = ["jpg", "png", "webp", "avif", "gif", "jxl"] as const;
export const ROTATIONS = [0, 90, 180, 270] as const;
export const RESIZING_ALGORITHMS = ["nearest", "linear", "cubic", "lanczos2", "lanczos3"] as const;
export const SKIP_FORMATS = ["jpg", "jpeg", "png", "webp", "gif", "avif", "heic", "tiff", "jxl", "bmp", "ico", "svg"] as const;
const B64URL_RE = /^[A-Za-z0-9_-]+$/;
export const WATERMARK_POSITIONS = ["ce", "no", "so", "ea", "we", "noea", "nowe", "soea", "sowe", "re"] as const;
const NAME_RE = /^[A-Za-z0-9._~-]+$/;
const HEX_COLOR_RE = /^(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/;

type Ctx = { key: string; path: string };

function fail(ctx: Ctx, msg: string): never {
  throw new ImagoOptionError(ctx.key, `${ctx.path} ${msg}`);
}

function sub(ctx: Ctx, name: string): Ctx {
  return { key: ctx.key, path: `${ctx.path}.${name}` };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkKeys(ctx: Ctx, v: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) fail(ctx, `has unknown field "${k}" (allowed: ${allowed.join(", ")})`);
  }
}

function num(ctx: Ctx, v: unknown, opts: { min?: number; max?: number; gt?: number; int?: boolean } = {}): number {
  if (typeof v !== "number" || !Number.isFinite(v)) fail(ctx, "must be a finite number");
  if (opts.int && !Number.isInteger(v)) fail(ctx, "must be an integer");
  if (opts.gt !== undefined && !(v > opts.gt)) fail(ctx, `must be greater than ${opts.gt}`);
  if (opts.min !== undefined && v < opts.min) fail(ctx, `must be >= ${opts.min}`);
  if (opts.max !== undefined && v > opts.max) fail(ctx, `must be <= ${opts.max}`);
  return v;
}

function int(ctx: Ctx, v: unknown, min = 0, max?: number): string {
  return formatNumber(num(ctx, v, max === undefined ? { min, int: true } : { min, max, int: true }));
}

function bool(ctx: Ctx, v: unknown): string {
  if (typeof v !== "boolean") fail(ctx, "must be a boolean");
  return formatBool(v);
}

function oneOf<T extends string | number>(ctx: Ctx, v: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) fail(ctx, `must be one of ${allowed.join(", ")}`);
  return v as T;
}

function name(ctx: Ctx, v: unknown): string {
  if (typeof v !== "string" || !NAME_RE.test(v)) fail(ctx, "must be a non-empty string of [A-Za-z0-9._~-]");
  return v;
}

function hexColor(ctx: Ctx, v: unknown): string {
  if (typeof v !== "string" || !HEX_COLOR_RE.test(v)) fail(ctx, "must be 3 or 6 hex digits (no '#')");
  return v;
}

/** Join arguments with ':' and strip trailing empty ones (imgproxy-node's `.replace(/:+$/, "")`). */
function join(args: string[]): string {
  return args.join(":").replace(/:+$/, "");
}

function opt<T>(v: T | undefined | null, f: (v: T) => string): string {
  return v === undefined || v === null ? "" : f(v);
}

/** Headless gravity: `type:x:y` | `sm` | `fp:x:y`. */
function gravity(ctx: Ctx, v: unknown, allowSmart: boolean): string {
  if (!isObject(v)) fail(ctx, "must be an object {type, …}");
  const types: string[] = [...COMPASS_GRAVITY, "fp"];
  if (allowSmart) types.push("sm");
  const type = oneOf(sub(ctx, "type"), v.type, types);
  if (type === "sm") {
    checkKeys(ctx, v, ["type"]);
    return "sm";
  }
  if (type === "fp") {
    checkKeys(ctx, v, ["type", "x", "y"]);
    const x = num(sub(ctx, "x"), v.x, { min: 0, max: 1 });
    const y = num(sub(ctx, "y"), v.y, { min: 0, max: 1 });
    return `fp:${formatNumber(x)}:${formatNumber(y)}`;
  }
  checkKeys(ctx, v, ["type", "x_offset", "y_offset"]);
  const xo = opt(v.x_offset, (x) => formatNumber(num(sub(ctx, "x_offset"), x)));
  const yo = opt(v.y_offset, (y) => formatNumber(num(sub(ctx, "y_offset"), y)));
  return join([type, xo, yo]);
}

/** Headless extend: `bool[:gravity]`. */
function extend(ctx: Ctx, v: unknown): string {
  if (!isObject(v)) fail(ctx, "must be an object {extend, gravity?}");
  checkKeys(ctx, v, ["extend", "gravity"]);
  const e = bool(sub(ctx, "extend"), v.extend);
  const g = opt(v.gravity, (g) => gravity(sub(ctx, "gravity"), g, false));
  return join([e, g]);
}

function nonEmptyObject(ctx: Ctx, v: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (!isObject(v)) fail(ctx, "must be an object");
  checkKeys(ctx, v, allowed);
  if (!allowed.some((k) => v[k] !== undefined && v[k] !== null)) fail(ctx, `must set at least one of ${allowed.join(", ")}`);
  return v;
}

/** A scalar whose value 0 is omitted (imgproxy-node treats 0 as falsy; 0 is the default). */
function scalar(short: string, f: (ctx: Ctx, v: unknown) => string) {
  return (ctx: Ctx, v: unknown): string | null => {
    const s = f(ctx, v);
    return v === 0 ? null : `${short}:${s}`;
  };
}

type Serializer = (ctx: Ctx, v: unknown) => string | null;

/**
 * Canonical order (SPEC §5.1) = imgproxy-js-core's alphabetical module order.
 * [JSON key, short name, serializer]
 */
export const OPTION_TABLE: ReadonlyArray<readonly [OptionKey, string, Serializer]> = [
  ["auto_rotate", "ar", (c, v) => `ar:${bool(c, v)}`],
  ["background", "bg", (c, v) => {
    if (typeof v === "string") return `bg:${hexColor(c, v)}`;
    if (!isObject(v)) fail(c, 'must be a hex string or {r, g, b}');
    checkKeys(c, v, ["r", "g", "b"]);
    return `bg:${int(sub(c, "r"), v.r, 0, 255)}:${int(sub(c, "g"), v.g, 0, 255)}:${int(sub(c, "b"), v.b, 0, 255)}`;
  }],
  ["blur", "bl", scalar("bl", (c, v) => formatNumber(num(c, v, { min: 0 })))],
  ["cachebuster", "cb", (c, v) => `cb:${name(c, v)}`],
  ["crop", "c", (c, v) => {
    if (!isObject(v)) fail(c, "must be an object {width, height, gravity?}");
    checkKeys(c, v, ["width", "height", "gravity"]);
    const w = int(sub(c, "width"), v.width);
    const h = int(sub(c, "height"), v.height);
    const g = opt(v.gravity, (g) => gravity(sub(c, "gravity"), g, true));
    return join(["c", w, h, g]);
  }],
  ["dpr", "dpr", (c, v) => `dpr:${formatNumber(num(c, v, { gt: 0 }))}`],
  ["enforce_thumbnail", "eth", (c, v) => `eth:${bool(c, v)}`],
  ["enlarge", "el", (c, v) => `el:${bool(c, v)}`],
  ["expires", "exp", scalar("exp", (c, v) => int(c, v))],
  ["extend", "ex", (c, v) => `ex:${extend(c, v)}`],
  ["extend_aspect_ratio", "exar", (c, v) => `exar:${extend(c, v)}`],
  ["filename", "fn", (c, v) => {
    if (!isObject(v)) fail(c, "must be an object {name, encoded?}");
    checkKeys(c, v, ["name", "encoded"]);
    const enc = opt(v.encoded, (x) => bool(sub(c, "encoded"), x));
    const ok = typeof v.name === "string" && (v.encoded === true ? B64URL_RE : NAME_RE).test(v.name);
    if (!ok) fail(sub(c, "name"), "must be [A-Za-z0-9._~-]+ (or base64url with encoded: true)");
    return join([`fn:${v.name as string}`, enc]);
  }],
  ["flip", "fl", (c, v) => {
    if (!isObject(v)) fail(c, "must be an object {horizontal?, vertical?}");
    checkKeys(c, v, ["horizontal", "vertical"]);
    return `fl:${bool(sub(c, "horizontal"), v.horizontal ?? false)}:${bool(sub(c, "vertical"), v.vertical ?? false)}`;
  }],
  ["format", "f", (c, v) => `f:${oneOf(c, v, FORMATS)}`],
  ["format_quality", "fq", (c, v) => {
    if (!Array.isArray(v) || v.length === 0) fail(c, "must be a non-empty array of {format, quality}");
    const parts = v.map((e: unknown, i) => {
      const ec = sub(c, String(i));
      if (!isObject(e)) fail(ec, "must be an object {format, quality}");
      checkKeys(ec, e, ["format", "quality"]);
      return `${oneOf(sub(ec, "format"), e.format, CONCRETE_FORMATS)}:${int(sub(ec, "quality"), e.quality, 0, 100)}`;
    });
    return `fq:${parts.join(":")}`;
  }],
  ["gravity", "g", (c, v) => `g:${gravity(c, v, true)}`],
  ["height", "h", scalar("h", (c, v) => int(c, v))],
  ["keep_copyright", "kcr", (c, v) => `kcr:${bool(c, v)}`],
  ["max_animation_frame_resolution", "mafr", (c, v) => `mafr:${formatNumber(num(c, v, { min: 0 }))}`],
  ["max_animation_frames", "maf", (c, v) => `maf:${int(c, v, 1)}`],
  ["max_bytes", "mb", scalar("mb", (c, v) => int(c, v))],
  ["max_result_dimension", "mrd", (c, v) => `mrd:${int(c, v, 0, 65535)}`],
  ["max_src_file_size", "msfs", (c, v) => `msfs:${int(c, v)}`],
  ["max_src_resolution", "msr", (c, v) => `msr:${formatNumber(num(c, v, { gt: 0 }))}`],
  ["min_height", "mh", scalar("mh", (c, v) => int(c, v))],
  ["min_width", "mw", scalar("mw", (c, v) => int(c, v))],
  ["padding", "pd", (c, v) => {
    if (typeof v === "number") return v === 0 ? (int(c, v), null) : `pd:${int(c, v)}`;
    const o = nonEmptyObject(c, v, ["top", "right", "bottom", "left"]);
    const side = (k: string) => opt(o[k], (x) => int(sub(c, k), x));
    return join(["pd", side("top"), side("right"), side("bottom"), side("left")]);
  }],
  ["pixelate", "pix", scalar("pix", (c, v) => int(c, v, 0, 65535))],
  ["preset", "pr", (c, v) => {
    if (!Array.isArray(v) || v.length === 0) fail(c, "must be a non-empty array of names");
    return `pr:${v.map((n: unknown, i) => name(sub(c, String(i)), n)).join(":")}`;
  }],
  ["quality", "q", (c, v) => {
    if (v === "auto") return "q:auto";
    const s = int(c, v, 0, 100);
    return v === 0 ? null : `q:${s}`;
  }],
  ["raw", "raw", (c, v) => `raw:${bool(c, v)}`],
  ["resize", "rs", (c, v) => {
    const o = nonEmptyObject(c, v, ["resizing_type", "width", "height", "enlarge", "extend"]);
    return join([
      "rs",
      opt(o.resizing_type, (t) => oneOf(sub(c, "resizing_type"), t, RESIZING_TYPES)),
      opt(o.width, (x) => int(sub(c, "width"), x)),
      opt(o.height, (x) => int(sub(c, "height"), x)),
      opt(o.enlarge, (x) => bool(sub(c, "enlarge"), x)),
      opt(o.extend, (x) => extend(sub(c, "extend"), x)),
    ]);
  }],
  ["resizing_algorithm", "ra", (c, v) => `ra:${oneOf(c, v, RESIZING_ALGORITHMS)}`],
  ["resizing_type", "rt", (c, v) => `rt:${oneOf(c, v, RESIZING_TYPES)}`],
  ["return_attachment", "att", (c, v) => `att:${bool(c, v)}`],
  ["rotate", "rot", (c, v) => {
    oneOf(c, v, ROTATIONS);
    return v === 0 ? null : `rot:${v}`;
  }],
  ["sharpen", "sh", scalar("sh", (c, v) => formatNumber(num(c, v, { min: 0 })))],
  ["size", "s", (c, v) => {
    const o = nonEmptyObject(c, v, ["width", "height", "enlarge", "extend"]);
    return join([
      "s",
      opt(o.width, (x) => int(sub(c, "width"), x)),
      opt(o.height, (x) => int(sub(c, "height"), x)),
      opt(o.enlarge, (x) => bool(sub(c, "enlarge"), x)),
      opt(o.extend, (x) => extend(sub(c, "extend"), x)),
    ]);
  }],
  ["skip_processing", "skp", (c, v) => {
    if (!Array.isArray(v) || v.length === 0) fail(c, "must be a non-empty array of formats");
    return `skp:${v.map((f: unknown, i) => oneOf(sub(c, String(i)), f, SKIP_FORMATS)).join(":")}`;
  }],
  ["strip_color_profile", "scp", (c, v) => `scp:${bool(c, v)}`],
  ["strip_metadata", "sm", (c, v) => `sm:${bool(c, v)}`],
  ["trim", "t", (c, v) => {
    if (!isObject(v)) fail(c, "must be an object {threshold, color?, equal_hor?, equal_ver?}");
    checkKeys(c, v, ["threshold", "color", "equal_hor", "equal_ver"]);
    return join([
      "t",
      formatNumber(num(sub(c, "threshold"), v.threshold, { min: 0 })),
      opt(v.color, (x) => hexColor(sub(c, "color"), x)),
      opt(v.equal_hor, (x) => bool(sub(c, "equal_hor"), x)),
      opt(v.equal_ver, (x) => bool(sub(c, "equal_ver"), x)),
    ]);
  }],
  ["watermark", "wm", (c, v) => {
    if (!isObject(v)) fail(c, "must be an object {opacity, position?, x_offset?, y_offset?, scale?}");
    checkKeys(c, v, ["opacity", "position", "x_offset", "y_offset", "scale"]);
    return join([
      "wm",
      formatNumber(num(sub(c, "opacity"), v.opacity, { min: 0, max: 1 })),
      opt(v.position, (x) => oneOf(sub(c, "position"), x, WATERMARK_POSITIONS)),
      opt(v.x_offset, (x) => formatNumber(num(sub(c, "x_offset"), x))),
      opt(v.y_offset, (x) => formatNumber(num(sub(c, "y_offset"), x))),
      opt(v.scale, (x) => formatNumber(num(sub(c, "scale"), x, { min: 0 }))),
    ]);
  }],
  ["width", "w", scalar("w", (c, v) => int(c, v))],
  ["zoom", "z", (c, v) => {
    if (typeof v === "number") return `z:${formatNumber(num(c, v, { gt: 0 }))}`;
    if (!isObject(v)) fail(c, "must be a number or {zoom_x, zoom_y}");
    checkKeys(c, v, ["zoom_x", "zoom_y"]);
    return `z:${formatNumber(num(sub(c, "zoom_x"), v.zoom_x, { gt: 0 }))}:${formatNumber(num(sub(c, "zoom_y"), v.zoom_y, { gt: 0 }))}`;
  }],
];

const KNOWN = new Set<string>(OPTION_TABLE.map(([k]) => k));

/** Canonical option segments, in canonical order (no leading '/'). */
export function serializeOptionSegments(options: ImagoOptions | undefined | null): string[] {
  if (options === undefined || options === null) return [];
  if (!isObject(options)) throw new ImagoOptionError("options", "options must be an object");
  for (const k of Object.keys(options)) {
    if (!KNOWN.has(k)) throw new ImagoOptionError(k, `unknown option "${k}"`);
  }
  const out: string[] = [];
  const rec = options as Record<string, unknown>;
  for (const [key, , ser] of OPTION_TABLE) {
    const v = rec[key];
    if (v === undefined || v === null) continue;
    const s = ser({ key, path: key }, v);
    if (s !== null) out.push(s);
  }
  return out;
}

/** Canonical option string, e.g. `"g:sm/rs:fill:300:400/w:300"` (no leading '/'). */
export function serializeOptions(options: ImagoOptions | undefined | null): string {
  return serializeOptionSegments(options).join("/");
}
