// The timbrescope page: upload or pick a library file, follow the job, draw the result.
// Everything it shows comes from the API (/api/v1); the waveform is decoded by the browser.
"use strict";
const API = "/api/v1";
const $ = (id) => document.getElementById(id);
let objectUrl = null;

function show(id, visible) { $(id).hidden = !visible; }
function fail(message) { show("status", false); $("error").textContent = message; show("error", true); }
function status(message, fraction) {
  show("error", false); show("status", true);
  $("message").textContent = message;
  if (fraction === null) $("progress").removeAttribute("value"); else $("progress").value = fraction;
}
async function errorOf(response) {
  try { return (await response.json()).error || response.statusText; } catch { return response.statusText; }
}
async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(await errorOf(response));
  return response.json();
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Upload with XMLHttpRequest for its upload progress; resolves to {status, body}.
function upload(file) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", `${API}/identify?wait=false`);
    request.upload.onprogress = (e) => { if (e.lengthComputable) status(`Uploading ${file.name}…`, e.loaded / e.total); };
    request.onload = () => {
      let body = {};
      try { body = JSON.parse(request.responseText); } catch { body = { error: request.statusText }; }
      resolve({ status: request.status, body, retry: request.getResponseHeader("Retry-After") });
    };
    request.onerror = () => reject(new Error("the upload failed: the server cannot be reached"));
    const form = new FormData();
    form.append("file", file, file.name);
    request.send(form);
  });
}

// Poll a job until it ends; returns the finished job.
async function follow(job) {
  while (job.status === "queued" || job.status === "running") {
    status(job.status === "queued" ? `${job.name}: waiting for a worker…` : `Analysing ${job.name}…`, job.progress);
    await sleep(400);
    job = await getJson(`${API}/jobs/${job.id}`);
  }
  if (job.status === "failed") throw new Error(job.error);
  return job;
}

async function analyseFile(file) {
  try {
    status(`Uploading ${file.name}…`, 0);
    const sent = await upload(file);
    if (sent.status === 503) throw new Error(`${sent.body.error} (Retry-After: ${sent.retry} s)`);
    if (sent.status >= 400) throw new Error(sent.body.error);
    const job = await follow(sent.body);
    setAudio(URL.createObjectURL(file), true);
    await render(job, file.arrayBuffer());
  } catch (e) { fail(e.message); }
}

async function analyseLibrary(path) {
  try {
    status(`Queuing ${path}…`, null);
    const response = await fetch(`${API}/library/identify?wait=false&path=${encodeURIComponent(path)}`, { method: "POST" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error);
    const job = await follow(body);
    const url = `${API}/library/audio?path=${encodeURIComponent(path)}`;
    setAudio(url, false);
    await render(job, fetch(url).then((r) => r.arrayBuffer()));
  } catch (e) { fail(e.message); }
}

function setAudio(url, owned) {
  if (objectUrl) URL.revokeObjectURL(objectUrl);
  objectUrl = owned ? url : null;
  $("player").src = url;
}

function bars(list, items, threshold) {
  list.replaceChildren(...items.map((item) => {
    const li = document.createElement("li");
    li.dataset.label = item.label;
    if (threshold && !item.detected) li.className = "off";
    const name = document.createElement("span");
    name.textContent = item.label.replaceAll("_", " ");
    if (item.family) {
      const family = document.createElement("span");
      family.className = "family";
      family.textContent = ` ${item.family.replaceAll("_", " ")}`;
      name.append(family);
    }
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = `${Math.round(item.score * 100)}%`;
    bar.append(fill);
    const score = document.createElement("span");
    score.textContent = item.score.toFixed(2);
    li.append(name, bar, score);
    return li;
  }));
}

function lanes(result) {
  const labels = [];
  for (const item of result.instruments) if (item.detected) labels.push(item.label);
  for (const seg of result.segments) if (!labels.includes(seg.label)) labels.push(seg.label);
  const span = Math.max(result.duration, 1e-6);
  $("lanes").replaceChildren(...labels.map((label) => {
    const lane = document.createElement("div");
    lane.className = "lane instrument";
    lane.dataset.label = label;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = label.replaceAll("_", " ");
    const track = document.createElement("div");
    track.className = "track";
    for (const seg of result.segments.filter((s) => s.label === label)) {
      const block = document.createElement("span");
      block.className = "segment";
      block.style.left = `${(100 * seg.start) / span}%`;
      block.style.width = `${(100 * (seg.end - seg.start)) / span}%`;
      block.style.opacity = 0.45 + 0.55 * Math.min(1, seg.score * 2);
      block.title = `${label}: ${seg.start.toFixed(1)}–${seg.end.toFixed(1)} s (score ${seg.score.toFixed(2)})`;
      track.append(block);
    }
    lane.append(name, track);
    return lane;
  }));
}

async function waveform(bytes) {
  const canvas = $("wave");
  const context = canvas.getContext("2d");
  canvas.width = canvas.clientWidth * devicePixelRatio;
  canvas.height = canvas.clientHeight * devicePixelRatio;
  context.clearRect(0, 0, canvas.width, canvas.height);
  try {
    const audio = await new OfflineAudioContext(1, 1, 44100).decodeAudioData(await bytes);
    const samples = audio.getChannelData(0);
    const step = Math.max(1, Math.floor(samples.length / canvas.width));
    let peak = 1e-9;
    for (let i = 0; i < samples.length; i += 7) peak = Math.max(peak, Math.abs(samples[i]));
    context.fillStyle = "#4a5568";
    const middle = canvas.height / 2;
    for (let x = 0; x < canvas.width; x++) {
      let high = 0;
      for (let i = x * step; i < Math.min(samples.length, (x + 1) * step); i++) high = Math.max(high, Math.abs(samples[i]));
      const h = Math.max(1, (high / peak) * middle);
      context.fillRect(x, middle - h, 1, 2 * h);
    }
  } catch {
    context.fillStyle = "#718096";
    context.font = `${12 * devicePixelRatio}px sans-serif`;
    context.fillText("this browser cannot draw this format", 8, canvas.height / 2);
  }
}

async function render(job, bytes) {
  const result = job.result;
  show("status", false);
  show("result", true);
  $("title").textContent = result.path;
  const detected = result.instruments.filter((i) => i.detected);
  $("summary").textContent = `${result.duration.toFixed(1)} s · ${detected.length} instrument${detected.length === 1 ? "" : "s"} detected · model ${result.model}`;
  bars($("instruments"), detected.length ? detected : [], false);
  if (!detected.length) $("instruments").textContent = "no instrument detected";
  bars($("families"), result.families.filter((f) => detected.some((i) => i.family === f.label)), false);
  bars($("sources"), (result.sources || []).filter((s) => detected.some((i) => model.sources[i.label] === s.label)), false);
  bars($("scores"), result.instruments, true);
  lanes(result);
  $("end").textContent = `${result.duration.toFixed(1)} s`;
  $("warnings").replaceChildren(...result.warnings.map((w) => Object.assign(document.createElement("li"), { textContent: `warning: ${w}` })));
  $("json").href = URL.createObjectURL(new Blob([JSON.stringify(result, null, 1)], { type: "application/json" }));
  const stem = result.path.replace(/\.[^.]*$/, "") || "result";
  $("json").download = `${stem}.json`;
  $("csv").href = `${API}/jobs/${job.id}/result.csv`;
  $("csv").download = `${stem}.csv`;
  timeline.duration = result.duration;
  movePlayhead();
  await waveform(bytes);
}

const timeline = { duration: 0 };
let model = { sources: {} };
function trackBox() {
  const track = document.querySelector("#timeline .lane.wave .track");
  return { left: track.offsetLeft, width: track.clientWidth, rect: track.getBoundingClientRect() };
}
function movePlayhead() {
  const box = trackBox();
  const fraction = timeline.duration ? Math.min(1, $("player").currentTime / timeline.duration) : 0;
  $("playhead").style.left = `${box.left + fraction * box.width}px`;
}
$("player").addEventListener("timeupdate", movePlayhead);
$("player").addEventListener("seeked", movePlayhead);
window.addEventListener("resize", movePlayhead);
(function animate() { if (!$("player").paused) movePlayhead(); requestAnimationFrame(animate); })();
$("timeline").addEventListener("click", (e) => {
  const box = trackBox();
  const fraction = (e.clientX - box.rect.left) / box.rect.width;
  if (fraction < 0 || fraction > 1 || !timeline.duration) return;
  $("player").currentTime = fraction * timeline.duration;
  movePlayhead();
});

// Drag and drop, and the file picker.
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files.length) analyseFile(e.dataTransfer.files[0]);
});
$("picker").addEventListener("change", (e) => { if (e.target.files.length) analyseFile(e.target.files[0]); });

// The library: folders to open, files to analyse, a search over every path.
function entry(text, action, label) {
  const li = document.createElement("li");
  const name = document.createElement("span");
  name.textContent = text;
  const link = document.createElement("a");
  link.textContent = label;
  link.addEventListener("click", action);
  li.append(name, link);
  return li;
}
async function browse(path) {
  try {
    const listing = await getJson(`${API}/library?path=${encodeURIComponent(path)}`);
    $("where").textContent = `/${listing.path}`;
    const items = [];
    if (listing.path) items.push(entry("..", () => browse(listing.path.split("/").slice(0, -1).join("/")), "up"));
    for (const folder of listing.folders) items.push(entry(`${folder.split("/").pop()}/`, () => browse(folder), "open"));
    for (const file of listing.files) items.push(entry(file.path.split("/").pop(), () => analyseLibrary(file.path), "analyse"));
    $("entries").replaceChildren(...items);
  } catch (e) { fail(e.message); }
}
$("search").addEventListener("submit", async (e) => {
  e.preventDefault();
  const query = $("query").value.trim();
  if (!query) return browse("");
  try {
    const found = await getJson(`${API}/library?q=${encodeURIComponent(query)}`);
    $("where").textContent = `${found.files.length}${found.truncated ? "+" : ""} files match “${query}”`;
    $("entries").replaceChildren(...found.files.map((f) => entry(f.path, () => analyseLibrary(f.path), "analyse")));
  } catch (err) { fail(err.message); }
});

(async function start() {
  try {
    const [served, health] = await Promise.all([getJson(`${API}/model`), getJson(`${API}/health`)]);
    model = served;
    $("model").textContent = `model ${model.name} · timbrescope ${model.version} · ${model.labels.length} instruments`;
    if (health.library) { show("library", true); browse(""); }
  } catch (e) { fail(e.message); }
})();
