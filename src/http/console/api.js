// The console's API helper and small DOM helpers (imported by console.js and views.js).

export const KEY_ITEM = "imago-console-key";
export const $ = (id) => document.getElementById(id);

export const state = { key: sessionStorage.getItem(KEY_ITEM) || "" };

/** An API error with imago's `{code, message}`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(`${message} (${status} ${code})`);
    this.status = status;
    this.code = code;
  }
}

/** Calls imago's API with the signed-in key; JSON in and out. */
export async function api(method, path, body) {
  const headers = { authorization: `Bearer ${state.key}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  // `no-cache`: revalidate (`/info` answers 304 to its ETag) so a delete or restore shows at once.
  const r = await fetch(path, { method, headers, cache: "no-cache", body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!r.ok) throw new ApiError(r.status, json?.code ?? `http-${r.status}`, json?.message ?? text);
  return json;
}

/** `/v1/images/{key}…` with each segment of the key escaped. */
export function keyPath(key) {
  return key.split("/").map(encodeURIComponent).join("/");
}

/** Signed URL, srcset and sizes for `key` (POST /v1/sign). */
export function sign(key, options, extra = {}) {
  return api("POST", "/v1/sign", { key, options, ...extra });
}

export function status(text) {
  $("status").textContent = text;
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}
