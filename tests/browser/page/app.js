// The page under test: Uppy 6 (@uppy/core + @uppy/aws-s3 6.x) uploads the chosen file with the
// parameters of an imago upload ticket, handed to Uppy from its `signRequest` hook.
import Uppy from "@uppy/core";
import AwsS3 from "@uppy/aws-s3";

const params = new URLSearchParams(location.search);
const run = params.get("run");
const $ = (id) => document.getElementById(id);
$("run").textContent = params.get("name") || run;

const result = { ok: false, progress: [], events: [] };
window.__result = result;
const finish = (extra) => {
  Object.assign(result, extra);
  window.__done = true;
};

const uppy = new Uppy({ autoProceed: true, restrictions: { maxNumberOfFiles: 1 } });

// Asks the page's backend (which holds the API key) for an imago upload ticket.
async function ticketFor(file) {
  const r = await fetch(`/ticket?run=${run}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ content_type: file.type, content_length: file.size, filename: file.name }),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`ticket request failed: ${r.status} ${text}`);
  return JSON.parse(text);
}

// Uppy 6: `signRequest` replaced `getUploadParameters`. It is called per S3 request with
// `{method, key, contentType}` only, so the object key Uppy asks for is the Uppy file id (to
// find the file again); imago's ticket decides the real key, returned as `key` (PUT) or in
// `fields.key` (POST form).
uppy.use(AwsS3, {
  shouldUseMultipart: false, // a ticket is one request: no multipart
  generateObjectKey: (file) => file.id,
  async signRequest(request) {
    if (request.method !== "PUT" || "uploadId" in request) {
      throw new Error(`imago tickets sign single uploads only, not ${request.method} ${request.key}`);
    }
    const ticket = await ticketFor(uppy.getFile(request.key));
    result.ticket = ticket;
    $("meta").textContent = `${ticket.method} ${ticket.url.split("?")[0]}\nkey: ${ticket.key}`;
    return ticket.method === "POST"
      ? { url: ticket.url, key: ticket.key, fields: ticket.fields }
      : { url: ticket.url, key: ticket.key, headers: ticket.headers };
  },
});

uppy.on("upload-progress", (file, p) => {
  if (!p.bytesTotal) return;
  // A form body is a little larger than the file: clamp the overshoot.
  const pct = Math.min(100, Math.round((100 * p.bytesUploaded) / p.bytesTotal));
  result.progress.push(pct);
  $("progress").value = pct;
  $("percent").textContent = `${pct}%`;
  $("status").textContent = `uploading… ${pct}%`;
});
uppy.on("upload-success", async (file, response) => {
  result.events.push("upload-success");
  result.upload_url = response && response.uploadURL;
  // Completion: imago checks the stored bytes (no API key: the ticket's id is the permission).
  $("status").textContent = "uploaded 100% — completing";
  try {
    const c = await fetch(result.ticket.complete_url, { method: "POST" });
    result.completion = { status: c.status, body: await c.json() };
  } catch (e) {
    return finish({ ok: false, error: `complete: ${e}` });
  }
  $("status").textContent = `completed (${result.completion.body.state}) — loading the signed image URL`;
  const img = $("result");
  img.onload = () => {
    $("status").textContent = `done: ${img.naturalWidth}×${img.naturalHeight} from the signed URL`;
    finish({ ok: true, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight, final_percent: Number($("progress").value) });
  };
  img.onerror = () => finish({ ok: false, error: "the signed image URL did not load" });
  img.src = result.ticket.image_url;
});
uppy.on("upload-error", (file, error, response) => {
  result.events.push("upload-error");
  $("status").textContent = `upload failed: ${error && error.message}`;
  finish({ ok: false, error: String(error && (error.message || error)), status: response && response.status });
});
uppy.on("error", (error) => finish({ ok: false, error: String(error && (error.message || error)) }));

$("file").addEventListener("change", (e) => {
  const f = e.target.files[0];
  if (!f) return;
  try {
    uppy.addFile({ name: f.name, type: f.type, data: f, source: "file input" });
  } catch (err) {
    finish({ ok: false, error: `addFile: ${err.message}` });
  }
});
