import { ImagoApiError, ImagoOptionError } from "./errors.js";

/** `GET /v1/images` query (SPEC §10, listing); every field optional. */
export interface ListImagesRequest {
  /** One of the server's upload prefixes (default: its first). */
  prefix?: string;
  /** `next_cursor` of the previous page. */
  cursor?: string;
  /** Items per page (server default 100). */
  limit?: number;
  /** Another tenant (keys with the `admin` scope only). */
  tenant?: string;
  /** `newest` (the server's default: completed uploads, newest first) or `key` (every object in key order, pending and rejected uploads too). */
  order?: "newest" | "key";
}

/** One listed image. */
export interface ListedImage {
  key: string;
  tenant: string;
  bytes: number;
  last_modified: string | null;
  image_url: string;
  info_url: string;
}

/** A page of images: pass `next_cursor` back as `cursor`; `null` ends the listing. */
export interface ImagePage {
  items: ListedImage[];
  next_cursor: string | null;
}

export interface ApiOptions {
  /** Custom fetch (defaults to globalThis.fetch). */
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

function check(baseUrl: string, apiKey: string): string {
  if (typeof baseUrl !== "string" || !/^https?:\/\//.test(baseUrl)) throw new ImagoOptionError("baseUrl", "baseUrl must be an http(s) URL");
  if (typeof apiKey !== "string" || apiKey === "") throw new ImagoOptionError("apiKey", "apiKey is required");
  return baseUrl.replace(/\/+$/, "");
}

async function refusal(res: Response): Promise<ImagoApiError> {
  const text = await res.text();
  let e: { code?: unknown; message?: unknown } = {};
  try {
    e = text ? JSON.parse(text) : {};
  } catch {
    e = {};
  }
  return new ImagoApiError(
    res.status,
    typeof e.code === "string" ? e.code : `http-${res.status}`,
    typeof e.message === "string" ? e.message : text || res.statusText || `HTTP ${res.status}`,
  );
}

/** `GET {baseUrl}/v1/images`: one page of the key's tenant's images. Throws ImagoApiError on a non-2xx answer. */
export async function listImages(baseUrl: string, apiKey: string, req: ListImagesRequest = {}, opts: ApiOptions = {}): Promise<ImagePage> {
  const base = check(baseUrl, apiKey);
  if (req.limit !== undefined && (!Number.isInteger(req.limit) || req.limit < 1)) {
    throw new ImagoOptionError("limit", "limit must be a positive integer");
  }
  const q = new URLSearchParams();
  if (req.prefix !== undefined) q.set("prefix", req.prefix);
  if (req.cursor !== undefined) q.set("cursor", req.cursor);
  if (req.limit !== undefined) q.set("limit", String(req.limit));
  if (req.tenant !== undefined) q.set("tenant", req.tenant);
  if (req.order !== undefined) {
    if (req.order !== "newest" && req.order !== "key") throw new ImagoOptionError("order", "order must be \"newest\" or \"key\"");
    q.set("order", req.order);
  }
  const qs = q.toString();
  const init: RequestInit = { headers: { Authorization: `Bearer ${apiKey}`, Accept: "application/json" } };
  if (opts.signal) init.signal = opts.signal;
  const res = await (opts.fetch ?? globalThis.fetch)(`${base}/v1/images${qs ? `?${qs}` : ""}`, init);
  if (!res.ok) throw await refusal(res);
  const json = (await res.json()) as { items?: unknown; next_cursor?: unknown };
  if (!json || !Array.isArray(json.items)) throw new ImagoApiError(502, "invalid-response", "listing response has no items");
  return {
    items: json.items as ListedImage[],
    next_cursor: typeof json.next_cursor === "string" ? json.next_cursor : null,
  };
}

/** The path of an image key under `/v1/images/` (each segment percent-encoded, slashes kept). */
function keyPath(key: string): string {
  if (typeof key !== "string" || key === "" || key.startsWith("/")) throw new ImagoOptionError("key", "key must be a non-empty relative key");
  return key.split("/").map(encodeURIComponent).join("/");
}

/**
 * `DELETE {baseUrl}/v1/images/{key}`: removes the original; imago drops its variants from its
 * memory, purges the configured edges and emits `image.deleted`. Resolves on 204; throws
 * ImagoApiError otherwise (`not-found`, `other-tenant`, `scope-missing`, …).
 */
export async function deleteImage(baseUrl: string, apiKey: string, key: string, opts: ApiOptions = {}): Promise<void> {
  const base = check(baseUrl, apiKey);
  const init: RequestInit = { method: "DELETE", headers: { Authorization: `Bearer ${apiKey}`, Accept: "application/json" } };
  if (opts.signal) init.signal = opts.signal;
  const res = await (opts.fetch ?? globalThis.fetch)(`${base}/v1/images/${keyPath(key)}`, init);
  if (!res.ok) throw await refusal(res);
}

/**
 * `POST {baseUrl}/v1/images/{key}/restore`: brings back an image deleted less than
 * `IMAGO_DELETE_GRACE_SECS` ago (DELETE is a soft delete). Resolves on 200; throws ImagoApiError
 * otherwise (`image-deleted` 410 after the grace period, `not-found` without a deletion, …).
 */
export async function restoreImage(baseUrl: string, apiKey: string, key: string, opts: ApiOptions = {}): Promise<void> {
  const base = check(baseUrl, apiKey);
  const init: RequestInit = { method: "POST", headers: { Authorization: `Bearer ${apiKey}`, Accept: "application/json" } };
  if (opts.signal) init.signal = opts.signal;
  const res = await (opts.fetch ?? globalThis.fetch)(`${base}/v1/images/${keyPath(key)}/restore`, init);
  if (!res.ok) throw await refusal(res);
}

/** `GET /v1/images/{key}/info` (SPEC §10): what an uploaded image is. */
export interface ImageInfo {
  key: string;
  source: string;
  format: string;
  /** Upright size (after EXIF orientation), as the proxy serves it. */
  width: number;
  height: number;
  bytes: number;
  has_alpha: boolean;
  frames: number;
  /** `#rrggbb` */
  dominant_colour: string;
  /** ThumbHash, standard base64: a blur placeholder (`thumbHashToDataURL`). */
  thumbhash: string;
  [field: string]: unknown;
}

/**
 * `GET {baseUrl}/v1/images/{key}/info` (API key with the `read-info` scope; server side): size,
 * format, dominant colour and the ThumbHash placeholder. Throws ImagoApiError on a non-2xx answer.
 */
export async function imageInfo(baseUrl: string, apiKey: string, key: string, opts: ApiOptions = {}): Promise<ImageInfo> {
  const base = check(baseUrl, apiKey);
  const init: RequestInit = { headers: { Authorization: `Bearer ${apiKey}`, Accept: "application/json" } };
  if (opts.signal) init.signal = opts.signal;
  const res = await (opts.fetch ?? globalThis.fetch)(`${base}/v1/images/${keyPath(key)}/info`, init);
  if (!res.ok) throw await refusal(res);
  const json = (await res.json()) as ImageInfo;
  if (!json || typeof json.thumbhash !== "string" || typeof json.width !== "number") {
    throw new ImagoApiError(502, "invalid-response", "image info response is missing required fields");
  }
  return json;
}
