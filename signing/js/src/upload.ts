import { ImagoApiError, ImagoOptionError, ImagoUploadError } from "./errors.js";

/** Body of `POST /v1/uploads` (SPEC §10). */
export interface UploadRequest {
  content_type: string;
  content_length?: number;
  filename?: string;
  prefix?: string;
  /** Lower-case hex SHA-256 of the file (enables dedup → `exists: true`). */
  sha256?: string;
  /** `PUT` (default: one request with the raw body) or `POST` (an HTML form / multipart upload). */
  method?: "PUT" | "POST";
}

/** Answer of `POST /v1/uploads`. */
export interface UploadTicket {
  id: string;
  key: string;
  method: "PUT" | "POST";
  url: string;
  /** Form fields for POST uploads (sent before the file). */
  fields: Record<string, string>;
  /** Headers for PUT uploads. */
  headers: Record<string, string>;
  /** RFC 3339 */
  expires_at: string;
  max_bytes: number;
  /** `local:///…` or `s3://bucket/key` */
  source: string;
  /** Signed read URL. */
  image_url: string;
  info_url: string;
  /** `POST` here once the bytes are sent (SPEC §10 Completion); absent from servers before it. */
  complete_url?: string;
  /** True when sha256 matched an existing object: nothing to upload. */
  exists: boolean;
}

/** Answer of `POST {complete_url}`: the facts imago checked (SPEC §10 Completion). */
export interface UploadCompletion {
  id: string;
  key: string;
  state: "ready";
  etag: string;
  bytes: number;
  format: string;
  /** Upright dimensions (0 for SVG). */
  width: number;
  height: number;
  frames: number;
  checked_at: string;
  image_url: string;
  info_url: string;
}

export interface CompleteUploadOptions extends RequestUploadOptions {
  /** The app's API key (optional: the ticket's id is the permission). */
  apiKey?: string;
  /** imago's base URL, for tickets without `complete_url` (servers before completion). */
  baseUrl?: string;
}

export interface RequestUploadOptions {
  /** Custom fetch (defaults to globalThis.fetch). */
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

function validateRequest(body: UploadRequest): void {
  if (body === null || typeof body !== "object") throw new ImagoOptionError("body", "upload request must be an object");
  if (typeof body.content_type !== "string" || !/^[\w.+-]+\/[\w.+-]+$/.test(body.content_type)) {
    throw new ImagoOptionError("content_type", "content_type must be a MIME type like image/jpeg");
  }
  if (body.content_length !== undefined && (!Number.isInteger(body.content_length) || body.content_length < 0)) {
    throw new ImagoOptionError("content_length", "content_length must be a non-negative integer");
  }
  if (body.sha256 !== undefined && (typeof body.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(body.sha256))) {
    throw new ImagoOptionError("sha256", "sha256 must be 64 lower-case hex digits");
  }
  for (const k of ["filename", "prefix"] as const) {
    if (body[k] !== undefined && typeof body[k] !== "string") throw new ImagoOptionError(k, `${k} must be a string`);
  }
  if (body.method !== undefined && body.method !== "PUT" && body.method !== "POST") {
    throw new ImagoOptionError("method", "method must be PUT or POST");
  }
}

function validateTicket(t: unknown): UploadTicket {
  const o = t as Record<string, unknown>;
  const ok =
    o !== null && typeof o === "object" &&
    typeof o.id === "string" && typeof o.key === "string" &&
    (o.method === "PUT" || o.method === "POST") && typeof o.url === "string" &&
    typeof o.source === "string" && typeof o.image_url === "string" && typeof o.exists === "boolean";
  if (!ok) throw new ImagoApiError(502, "invalid-response", "upload ticket response is missing required fields");
  return {
    ...(o as unknown as UploadTicket),
    fields: (o.fields as Record<string, string>) ?? {},
    headers: (o.headers as Record<string, string>) ?? {},
  };
}

/** The JSON of an API answer; a non-2xx one throws ImagoApiError with its code and message. */
async function apiAnswer(res: Response, notJson = "the response is not JSON"): Promise<unknown> {
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const e = (json ?? {}) as { code?: unknown; message?: unknown };
    throw new ImagoApiError(
      res.status,
      typeof e.code === "string" ? e.code : `http-${res.status}`,
      typeof e.message === "string" ? e.message : text || res.statusText || `HTTP ${res.status}`,
    );
  }
  if (json === undefined) throw new ImagoApiError(res.status, "invalid-response", notJson);
  return json;
}

/**
 * `POST {ticket.complete_url}` → the checked facts of the upload (idempotent, safe to retry).
 * A rejected upload throws ImagoApiError with its code (`not-an-image`, … then `upload-rejected`).
 */
export async function completeUpload(ticket: Pick<UploadTicket, "id" | "complete_url">, opts: CompleteUploadOptions = {}): Promise<UploadCompletion> {
  let url = ticket?.complete_url;
  if (typeof url !== "string") {
    if (typeof opts.baseUrl !== "string" || !/^https?:\/\//.test(opts.baseUrl)) {
      throw new ImagoOptionError("baseUrl", "the ticket has no complete_url: pass baseUrl");
    }
    url = `${opts.baseUrl.replace(/\/+$/, "")}/v1/uploads/${encodeURIComponent(ticket.id)}/complete`;
  }
  const f = opts.fetch ?? globalThis.fetch;
  const headers: Record<string, string> = { Accept: "application/json" };
  if (opts.apiKey) headers.Authorization = `Bearer ${opts.apiKey}`;
  const init: RequestInit = { method: "POST", headers };
  if (opts.signal) init.signal = opts.signal;
  const o = (await apiAnswer(await f(url, init))) as Record<string, unknown>;
  if (o === null || typeof o !== "object" || o.state !== "ready" || typeof o.key !== "string") {
    throw new ImagoApiError(502, "invalid-response", "completion response is missing required fields");
  }
  return o as unknown as UploadCompletion;
}

/** `POST {baseUrl}/v1/uploads` → upload ticket. Throws ImagoApiError on a non-2xx answer. */
export async function requestUpload(baseUrl: string, apiKey: string, body: UploadRequest, opts: RequestUploadOptions = {}): Promise<UploadTicket> {
  if (typeof baseUrl !== "string" || !/^https?:\/\//.test(baseUrl)) throw new ImagoOptionError("baseUrl", "baseUrl must be an http(s) URL");
  if (typeof apiKey !== "string" || apiKey === "") throw new ImagoOptionError("apiKey", "apiKey is required");
  validateRequest(body);
  const f = opts.fetch ?? globalThis.fetch;
  const init: RequestInit = {
    method: "POST",
    headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  };
  if (opts.signal) init.signal = opts.signal;
  const res = await f(`${baseUrl.replace(/\/+$/, "")}/v1/uploads`, init);
  return validateTicket(await apiAnswer(res, "upload ticket response is not JSON"));
}

export interface UploadProgress {
  loaded: number;
  total: number;
  /** 0–1 */
  fraction: number;
}

/** The part of XMLHttpRequest that uploadFile uses (structural, so no DOM lib is needed for the types). */
export interface XhrLike {
  readonly status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly upload: { onprogress: any };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onload: any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onerror: any;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  onabort: any;
  open(method: string, url: string): void;
  setRequestHeader(name: string, value: string): void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  send(body?: any): void;
  abort(): void;
}

export type XhrConstructor = new () => XhrLike;

export interface UploadFileOptions {
  onProgress?: (p: UploadProgress) => void;
  signal?: AbortSignal;
  /** Retries after a network error or 5xx (default 2). */
  retries?: number;
  /** First retry delay in ms, doubled each retry (default 500). */
  retryDelayMs?: number;
  /** XMLHttpRequest constructor (defaults to globalThis.XMLHttpRequest). */
  XMLHttpRequest?: XhrConstructor;
}

function abortError(): Error {
  if (typeof DOMException === "function") return new DOMException("upload aborted", "AbortError");
  const e = new Error("upload aborted");
  e.name = "AbortError";
  return e;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError());
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function sendOnce(ticket: UploadTicket, file: Blob, opts: UploadFileOptions, XHR: XhrConstructor, attempt: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const signal = opts.signal;
    if (signal?.aborted) return reject(abortError());
    const xhr = new XHR();
    const onAbort = () => xhr.abort();
    const done = () => signal?.removeEventListener("abort", onAbort);
    xhr.open(ticket.method, ticket.url);
    let body: Blob | FormData = file;
    if (ticket.method === "PUT") {
      for (const [k, v] of Object.entries(ticket.headers ?? {})) xhr.setRequestHeader(k, v);
    } else {
      const form = new FormData();
      for (const [k, v] of Object.entries(ticket.fields ?? {})) form.append(k, v);
      const name = (file as { name?: unknown }).name;
      if (typeof name === "string") form.append("file", file, name);
      else form.append("file", file);
      body = form;
    }
    xhr.upload.onprogress = (e: { loaded: number; total: number; lengthComputable: boolean }) => {
      const total = e.lengthComputable && e.total > 0 ? e.total : file.size;
      opts.onProgress?.({ loaded: e.loaded, total, fraction: total > 0 ? Math.min(1, e.loaded / total) : 0 });
    };
    xhr.onload = () => {
      done();
      if (xhr.status >= 200 && xhr.status < 300) resolve();
      else reject(new ImagoUploadError(`upload failed with HTTP ${xhr.status}`, xhr.status, attempt));
    };
    xhr.onerror = () => {
      done();
      reject(new ImagoUploadError("network error during upload", 0, attempt));
    };
    xhr.onabort = () => {
      done();
      reject(abortError());
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    xhr.send(body);
  });
}

/**
 * Browser upload of `file` using a ticket from `requestUpload` (XMLHttpRequest,
 * so progress events work). Resolves with the ticket once stored.
 */
export async function uploadFile(ticket: UploadTicket, file: Blob, opts: UploadFileOptions = {}): Promise<UploadTicket> {
  if (ticket.exists) {
    opts.onProgress?.({ loaded: file.size, total: file.size, fraction: 1 });
    return ticket;
  }
  if (ticket.max_bytes && file.size > ticket.max_bytes) {
    throw new ImagoUploadError(`file is ${file.size} bytes, ticket allows ${ticket.max_bytes}`, 413, 0);
  }
  const XHR = opts.XMLHttpRequest ?? (globalThis as { XMLHttpRequest?: XhrConstructor }).XMLHttpRequest;
  if (!XHR) throw new ImagoOptionError("XMLHttpRequest", "uploadFile needs XMLHttpRequest (a browser), or pass opts.XMLHttpRequest");
  const retries = opts.retries ?? 2;
  const delay = opts.retryDelayMs ?? 500;
  for (let attempt = 1; ; attempt++) {
    try {
      await sendOnce(ticket, file, opts, XHR, attempt);
      return ticket;
    } catch (e) {
      const retryable = e instanceof ImagoUploadError && (e.status === 0 || e.status >= 500);
      if (!retryable || attempt > retries) throw e;
      await sleep(delay * 2 ** (attempt - 1), opts.signal);
    }
  }
}
