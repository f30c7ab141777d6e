// imago console: sign-in, routing, the API helper and uploads. Plain ES modules, served by
// imago from the binary (src/http/console.rs); the upload client is the TypeScript SDK's
// (sdk-upload.js, built from signing/js/src/upload.ts by scripts/console-sdk.sh). Images are
// signed by the server (POST /v1/sign): no URL-signing key is ever in this page.
import { requestUpload, uploadFile, completeUpload } from "./sdk-upload.js";
import { showGallery, showImage, showAnalytics } from "./views.js";
import { $, KEY_ITEM, state, api, ApiError, el, status } from "./api.js";

function showOnly(id) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== id;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", location.hash.startsWith(a.getAttribute("href")));
}

async function route() {
  if (!state.key) {
    $("nav").hidden = true;
    showOnly("signin");
    return;
  }
  $("nav").hidden = false;
  const hash = location.hash || "#/gallery";
  status("");
  try {
    if (hash.startsWith("#/upload")) {
      showOnly("view-upload");
    } else if (hash.startsWith("#/image/")) {
      showOnly("view-image");
      await showImage(decodeURIComponent(hash.slice("#/image/".length)));
    } else if (hash.startsWith("#/analytics")) {
      showOnly("view-analytics");
      await showAnalytics();
    } else {
      showOnly("view-gallery");
      await showGallery();
    }
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return signOut(e.message);
    status(`Error: ${e.message}`);
  }
}

function signOut(why = "") {
  state.key = "";
  sessionStorage.removeItem(KEY_ITEM);
  $("signin-error").textContent = why;
  route();
}

async function signIn(ev) {
  ev.preventDefault();
  state.key = $("api-key").value.trim();
  try {
    await api("GET", "/v1/images?limit=1");
  } catch (e) {
    state.key = "";
    $("signin-error").textContent = e.message;
    return;
  }
  sessionStorage.setItem(KEY_ITEM, state.key);
  $("api-key").value = "";
  $("signin-error").textContent = "";
  if (!location.hash) location.hash = "#/upload";
  route();
}

// --- Uploads: one row per file, progress from the SDK's uploadFile, a Retry button on failure.

function uploadRow(file) {
  const bar = el("progress", { max: "100", value: "0" });
  const stateText = el("span", { class: "state", text: "waiting" });
  const retry = el("button", { type: "button", class: "retry", text: "Retry", hidden: "" });
  const li = el("li", { class: "upload" }, el("span", { class: "name", text: file.name }), bar, stateText, retry);
  let attempts = 0;
  const run = async () => {
    li.dataset.attempts = String(++attempts);
    retry.hidden = true;
    li.className = "upload running";
    stateText.textContent = "requesting ticket";
    bar.value = 0;
    try {
      const ticket = await requestUpload(location.origin, state.key, {
        content_type: file.type || "application/octet-stream",
        content_length: file.size,
        filename: file.name,
      });
      stateText.textContent = "uploading";
      await uploadFile(ticket, file, {
        retries: 2,
        onProgress: (p) => {
          bar.value = Math.round(p.fraction * 100);
          li.dataset.percent = String(bar.value);
        },
      });
      if (ticket.complete_url) {
        stateText.textContent = "completing";
        await completeUpload(ticket, { apiKey: state.key });
      }
      bar.value = 100;
      li.dataset.percent = "100";
      li.dataset.key = ticket.key;
      li.className = "upload done";
      stateText.textContent = "";
      stateText.append(el("a", { href: `#/image/${encodeURIComponent(ticket.key)}`, text: "done: open" }));
    } catch (e) {
      li.className = "upload failed";
      stateText.textContent = `failed: ${e.message}`;
      retry.hidden = false;
    }
  };
  retry.addEventListener("click", run);
  return { li, run };
}

async function uploadFiles(files) {
  const rows = [...files].map(uploadRow);
  for (const r of rows) $("uploads").prepend(r.li);
  // Two at a time: progress stays readable and the server's body slots are not hogged.
  const queue = [...rows];
  const worker = async () => {
    while (queue.length) await queue.shift().run();
  };
  await Promise.all([worker(), worker()]);
}

function setUpDrop() {
  const drop = $("drop");
  $("file-input").addEventListener("change", (e) => {
    uploadFiles(e.target.files);
    e.target.value = "";
  });
  for (const t of ["dragenter", "dragover"]) {
    drop.addEventListener(t, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const t of ["dragleave", "drop"]) drop.addEventListener(t, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer?.files?.length) uploadFiles(e.dataTransfer.files);
  });
}

$("signin-form").addEventListener("submit", signIn);
$("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
setUpDrop();
route();
