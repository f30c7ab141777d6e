import { ImagoParseError } from "./errors.js";
import { base64UrlDecode, percentDecode, utf8Decode } from "./encoding.js";
import { CONCRETE_FORMATS, COMPASS_GRAVITY, FORMATS, RESIZING_ALGORITHMS, RESIZING_TYPES, SKIP_FORMATS, WATERMARK_POSITIONS } from "./options.js";
import { isValidSource } from "./source.js";
import type { Extend, Extension, Gravity, ImagoOptions, OptionKey, SourceEncoding } from "./types.js";

/** Every accepted option name (aliases included) → JSON key (SPEC §4). */
export const OPTION_ALIASES: Readonly<Record<string, OptionKey>> = {
  ar: "auto_rotate", auto_rotate: "auto_rotate",
  bg: "background", background: "background",
  bl: "blur", blur: "blur",
  cb: "cachebuster", cachebuster: "cachebuster",
  c: "crop", crop: "crop",
  dpr: "dpr",
  el: "enlarge", enlarge: "enlarge",
  exp: "expires", expires: "expires",
  ex: "extend", extend: "extend",
  fl: "flip", flip: "flip",
  f: "format", format: "format", ext: "format",
  fq: "format_quality", format_quality: "format_quality",
  g: "gravity", gravity: "gravity",
  h: "height", height: "height",
  kcr: "keep_copyright", keep_copyright: "keep_copyright",
  mb: "max_bytes", max_bytes: "max_bytes",
  mh: "min_height", "min-height": "min_height",
  mw: "min_width", "min-width": "min_width",
  pd: "padding", padding: "padding",
  pr: "preset", preset: "preset",
  q: "quality", quality: "quality",
  rs: "resize", resize: "resize",
  rt: "resizing_type", resizing_type: "resizing_type",
  rot: "rotate", rotate: "rotate",
  sh: "sharpen", sharpen: "sharpen",
  s: "size", size: "size",
  scp: "strip_color_profile", strip_color_profile: "strip_color_profile",
  sm: "strip_metadata", strip_metadata: "strip_metadata",
  t: "trim", trim: "trim",
  wm: "watermark", watermark: "watermark",
  w: "width", width: "width",
  eth: "enforce_thumbnail", enforce_thumbnail: "enforce_thumbnail",
  exar: "extend_aspect_ratio", extend_aspect_ratio: "extend_aspect_ratio", extend_ar: "extend_aspect_ratio",
  fn: "filename", filename: "filename",
  mafr: "max_animation_frame_resolution", max_animation_frame_resolution: "max_animation_frame_resolution",
  maf: "max_animation_frames", max_animation_frames: "max_animation_frames",
  mrd: "max_result_dimension", max_result_dimension: "max_result_dimension",
  msfs: "max_src_file_size", max_src_file_size: "max_src_file_size",
  msr: "max_src_resolution", max_src_resolution: "max_src_resolution",
  pix: "pixelate", pixelate: "pixelate",
  raw: "raw",
  ra: "resizing_algorithm", resizing_algorithm: "resizing_algorithm",
  att: "return_attachment", return_attachment: "return_attachment",
  skp: "skip_processing", skip_processing: "skip_processing", sp: "skip_processing",
  z: "zoom", zoom: "zoom",
};

export interface ParsedPath {
  options: ImagoOptions;
  source: string;
  encoding: SourceEncoding;
  extension?: Extension;
}

class ArgError extends Error {}

function bad(msg: string): never {
  throw new ArgError(msg);
}

const INT_RE = /^\d+$/;
const FLOAT_RE = /^-?(?:\d+(?:\.\d*)?|\.\d+)$/;
const TRUE = ["1", "t", "T", "true", "TRUE", "True"];
const FALSE = ["0", "f", "F", "false", "FALSE", "False"];

function pInt(s: string | undefined, what: string, min = 0, max = Infinity): number {
  if (s === undefined || !INT_RE.test(s)) bad(`${what} must be a non-negative integer`);
  const n = Number(s);
  if (n < min || n > max) bad(`${what} must be within ${min}..${max}`);
  return n;
}

function pFloat(s: string | undefined, what: string, check?: (n: number) => boolean): number {
  if (s === undefined || !FLOAT_RE.test(s)) bad(`${what} must be a decimal number`);
  const n = Number(s);
  if (check && !check(n)) bad(`${what} is out of range`);
  return n === 0 ? 0 : n;
}

function pBool(s: string | undefined, what: string): boolean {
  if (s !== undefined && TRUE.includes(s)) return true;
  if (s !== undefined && FALSE.includes(s)) return false;
  bad(`${what} must be a boolean (1/t/true or 0/f/false)`);
}

function pHex(s: string, what: string): string {
  if (!/^(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/.test(s)) bad(`${what} must be 3 or 6 hex digits`);
  return s;
}

function oneOf<T extends string>(s: string | undefined, allowed: readonly T[], what: string): T {
  if (s === undefined || !(allowed as readonly string[]).includes(s)) bad(`${what} must be one of ${allowed.join(", ")}`);
  return s as T;
}

function maxArgs(args: string[], n: number): void {
  if (args.length > n) bad(`takes at most ${n} arguments`);
}

function exactly(args: string[], n: number): void {
  if (args.length !== n) bad(`takes exactly ${n} argument${n === 1 ? "" : "s"}`);
}

const present = (s: string | undefined): s is string => s !== undefined && s !== "";

function parseGravity(args: string[], allowSmart: boolean): Gravity {
  const type = args[0];
  if (!present(type)) bad("gravity type is required");
  if (type === "sm" && allowSmart) {
    exactly(args, 1);
    return { type: "sm" };
  }
  if (type === "fp") {
    exactly(args, 3);
    return {
      type: "fp",
      x: pFloat(args[1], "fp x", (n) => n >= 0 && n <= 1),
      y: pFloat(args[2], "fp y", (n) => n >= 0 && n <= 1),
    };
  }
  const t = oneOf(type, COMPASS_GRAVITY, "gravity type");
  maxArgs(args, 3);
  const g: Gravity = { type: t };
  if (present(args[1])) g.x_offset = pFloat(args[1], "x_offset");
  if (present(args[2])) g.y_offset = pFloat(args[2], "y_offset");
  return g;
}

function parseExtend(args: string[]): Extend {
  maxArgs(args, 4);
  const e: Extend = { extend: pBool(args[0], "extend") };
  if (args.length > 1) e.gravity = parseGravity(args.slice(1), false) as Extend["gravity"];
  return e;
}

function single(args: string[]): string {
  exactly(args, 1);
  return args[0]!;
}

type ArgParser = (args: string[]) => unknown;

const PARSERS: Record<OptionKey, ArgParser> = {
  auto_rotate: (a) => pBool(single(a), "value"),
  background: (a) => {
    if (a.length === 1) return pHex(a[0]!, "colour");
    exactly(a, 3);
    return { r: pInt(a[0], "r", 0, 255), g: pInt(a[1], "g", 0, 255), b: pInt(a[2], "b", 0, 255) };
  },
  blur: (a) => pFloat(single(a), "sigma", (n) => n >= 0),
  cachebuster: (a) => single(a),
  crop: (a) => {
    if (a.length < 2) bad("width and height are required");
    maxArgs(a, 5);
    const c: { width: number; height: number; gravity?: Gravity } = { width: pInt(a[0], "width"), height: pInt(a[1], "height") };
    if (a.length > 2) c.gravity = parseGravity(a.slice(2), true);
    return c;
  },
  dpr: (a) => pFloat(single(a), "dpr", (n) => n > 0),
  enlarge: (a) => pBool(single(a), "value"),
  expires: (a) => pInt(single(a), "expires"),
  extend: (a) => parseExtend(a),
  flip: (a) => {
    maxArgs(a, 2);
    const f: { horizontal?: boolean; vertical?: boolean } = {};
    if (present(a[0])) f.horizontal = pBool(a[0], "horizontal");
    if (present(a[1])) f.vertical = pBool(a[1], "vertical");
    return f;
  },
  format: (a) => oneOf(single(a), FORMATS, "format"),
  format_quality: (a) => {
    if (a.length < 2 || a.length % 2 !== 0) bad("takes format:quality pairs");
    const out = [];
    for (let i = 0; i < a.length; i += 2) {
      out.push({ format: oneOf(a[i], CONCRETE_FORMATS, "format"), quality: pInt(a[i + 1], "quality", 0, 100) });
    }
    return out;
  },
  gravity: (a) => parseGravity(a, true),
  height: (a) => pInt(single(a), "height"),
  keep_copyright: (a) => pBool(single(a), "value"),
  max_bytes: (a) => pInt(single(a), "max_bytes"),
  min_height: (a) => pInt(single(a), "min_height"),
  min_width: (a) => pInt(single(a), "min_width"),
  padding: (a) => {
    maxArgs(a, 4);
    if (a.length === 1) return pInt(a[0], "padding");
    const sides = ["top", "right", "bottom", "left"] as const;
    const p: Record<string, number> = {};
    a.forEach((s, i) => {
      if (present(s)) p[sides[i]!] = pInt(s, sides[i]!);
    });
    return p;
  },
  preset: (a) => {
    if (a.some((s) => s === "")) bad("preset names must be non-empty");
    return a;
  },
  quality: (a) => {
    const s = single(a);
    return s === "auto" ? "auto" : pInt(s, "quality", 0, 100);
  },
  resize: (a) => {
    maxArgs(a, 8);
    const r: Record<string, unknown> = {};
    if (present(a[0])) r.resizing_type = oneOf(a[0], RESIZING_TYPES, "resizing type");
    if (present(a[1])) r.width = pInt(a[1], "width");
    if (present(a[2])) r.height = pInt(a[2], "height");
    if (present(a[3])) r.enlarge = pBool(a[3], "enlarge");
    if (a.length > 4) r.extend = parseExtend(a.slice(4));
    return r;
  },
  resizing_type: (a) => oneOf(single(a), RESIZING_TYPES, "resizing type"),
  rotate: (a) => {
    const n = pInt(single(a), "angle");
    if (![0, 90, 180, 270].includes(n)) bad("angle must be 0, 90, 180 or 270");
    return n;
  },
  sharpen: (a) => pFloat(single(a), "sigma", (n) => n >= 0),
  size: (a) => {
    maxArgs(a, 7);
    const r: Record<string, unknown> = {};
    if (present(a[0])) r.width = pInt(a[0], "width");
    if (present(a[1])) r.height = pInt(a[1], "height");
    if (present(a[2])) r.enlarge = pBool(a[2], "enlarge");
    if (a.length > 3) r.extend = parseExtend(a.slice(3));
    return r;
  },
  strip_color_profile: (a) => pBool(single(a), "value"),
  strip_metadata: (a) => pBool(single(a), "value"),
  trim: (a) => {
    maxArgs(a, 4);
    const t: Record<string, unknown> = { threshold: pFloat(a[0], "threshold", (n) => n >= 0) };
    if (present(a[1])) t.color = pHex(a[1], "colour");
    if (present(a[2])) t.equal_hor = pBool(a[2], "equal_hor");
    if (present(a[3])) t.equal_ver = pBool(a[3], "equal_ver");
    return t;
  },
  watermark: (a) => {
    maxArgs(a, 5);
    const w: Record<string, unknown> = { opacity: pFloat(a[0], "opacity", (n) => n >= 0 && n <= 1) };
    if (present(a[1])) {
      if (!(WATERMARK_POSITIONS as readonly string[]).includes(a[1]!)) bad(`position must be one of ${WATERMARK_POSITIONS.join(", ")}`);
      w.position = a[1];
    }
    if (present(a[2])) w.x_offset = pFloat(a[2], "x_offset");
    if (present(a[3])) w.y_offset = pFloat(a[3], "y_offset");
    if (present(a[4])) w.scale = pFloat(a[4], "scale", (n) => n >= 0);
    return w;
  },
  width: (a) => pInt(single(a), "width"),
  enforce_thumbnail: (a) => pBool(single(a), "value"),
  extend_aspect_ratio: (a) => parseExtend(a),
  filename: (a) => {
    maxArgs(a, 2);
    const f: { name: string; encoded?: boolean } = { name: a[0]! };
    if (present(a[1])) f.encoded = pBool(a[1], "encoded");
    if (f.encoded === true && !/^[A-Za-z0-9_-]*=*$/.test(f.name)) bad("name must be URL-safe base64");
    return f;
  },
  max_animation_frame_resolution: (a) => pFloat(single(a), "megapixels", (n) => n >= 0),
  max_animation_frames: (a) => pInt(single(a), "frames", 1),
  max_result_dimension: (a) => pInt(single(a), "dimension", 0, 65535),
  max_src_file_size: (a) => pInt(single(a), "bytes"),
  max_src_resolution: (a) => pFloat(single(a), "megapixels", (n) => n >= 0),
  pixelate: (a) => pInt(single(a), "pixelate", 0, 65535),
  raw: (a) => pBool(single(a), "value"),
  resizing_algorithm: (a) => oneOf(single(a), RESIZING_ALGORITHMS, "resizing algorithm"),
  return_attachment: (a) => pBool(single(a), "value"),
  skip_processing: (a) => a.map((f) => oneOf(f, SKIP_FORMATS, "format")),
  zoom: (a) => {
    if (a.length > 2) bad("takes at most 2 arguments");
    const x = pFloat(a[0], "zoom", (n) => n > 0);
    return a.length === 1 ? x : { zoom_x: x, zoom_y: pFloat(a[1], "zoom", (n) => n > 0) };
  },
};

/** Parse one option segment `name:arg:…` into [JSON key, value]. */
export function parseOptionSegment(segment: string): [OptionKey, unknown] {
  const parts = segment.split(":");
  const name = parts[0]!;
  const key = OPTION_ALIASES[name];
  if (key === undefined || !Object.prototype.hasOwnProperty.call(OPTION_ALIASES, name)) {
    throw new ImagoParseError("unknown-option", `unknown option "${name}"`, name);
  }
  const args = parts.slice(1);
  while (args.length > 0 && args[args.length - 1] === "") args.pop();
  try {
    if (args.length === 0) bad("needs at least one non-empty argument");
    return [key, PARSERS[key](args)];
  } catch (e) {
    if (e instanceof ArgError) throw new ImagoParseError("invalid-option", `invalid option "${name}": ${e.message}`, name);
    throw e;
  }
}

export interface ParseOptions {
  /** When given (unix seconds), an `exp` in the past raises `url-expired`. */
  now?: number;
}

/**
 * Reference parser for the unsigned part of a URL path (everything after the
 * signature, leading '/'). Throws ImagoParseError with the server's error code.
 */
export function parsePath(path: string, opts: ParseOptions = {}): ParsedPath {
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw new ImagoParseError("invalid-source", "path must start with '/'");
  }
  const segs = path.slice(1).split("/");
  const options: Record<string, unknown> = {};
  let i = 0;
  for (; i < segs.length && segs[i]!.includes(":"); i++) {
    const [key, value] = parseOptionSegment(segs[i]!);
    options[key] = value;
  }
  const rest = segs.slice(i);
  if (rest.length === 0 || (rest.length === 1 && rest[0] === "")) {
    throw new ImagoParseError("invalid-source", "missing source");
  }
  let encoding: SourceEncoding;
  let raw: string;
  let ext: string | undefined;
  let source: string | null;
  if (rest[0] === "plain") {
    encoding = "plain";
    raw = rest.slice(1).join("/");
    const at = raw.lastIndexOf("@");
    if (at >= 0) {
      ext = raw.slice(at + 1);
      raw = raw.slice(0, at);
    }
    source = percentDecode(raw);
    if (source === null) throw new ImagoParseError("invalid-source", "malformed percent-encoding in plain source");
  } else {
    encoding = "base64";
    raw = rest.join("");
    const dot = raw.lastIndexOf(".");
    if (dot >= 0) {
      ext = raw.slice(dot + 1);
      raw = raw.slice(0, dot);
    }
    const bytes = base64UrlDecode(raw);
    source = bytes === null ? null : utf8Decode(bytes);
    if (source === null) throw new ImagoParseError("invalid-source", "malformed base64url source");
  }
  if (ext !== undefined && !(CONCRETE_FORMATS as readonly string[]).includes(ext)) {
    throw new ImagoParseError("invalid-source", `unknown extension "${ext}"`);
  }
  if (!isValidSource(source)) {
    throw new ImagoParseError("invalid-source", "source must be local:///…, s3://bucket/key or http(s)://host/…");
  }
  if (opts.now !== undefined && typeof options.expires === "number" && options.expires > 0 && opts.now > options.expires) {
    throw new ImagoParseError("url-expired", "URL has expired", "exp");
  }
  const parsed: ParsedPath = { options: options as ImagoOptions, source, encoding };
  if (ext !== undefined) parsed.extension = ext as Extension;
  return parsed;
}
