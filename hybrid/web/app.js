// hybrid serve: the page's logic. No libraries, no requests to any other host.
"use strict";

const chosen = { a: null, b: null, bass: null };  // an upload id or "example:NAME" (bass: optional)
let job = null;
let timer = null;

const $ = (id) => document.getElementById(id);

function say(slot, text, ok) {
  const el = $("msg-" + slot);
  el.textContent = text;
  el.className = "msg " + (ok ? "ok" : "error");
}

function ready() {
  $("start").disabled = !(chosen.a && chosen.b) || (job && ["queued", "running"].includes(job.status));
}

async function upload(slot, file) {
  chosen[slot] = null;
  ready();
  say(slot, "checking " + file.name + " ...", true);
  let reply;
  try {
    const r = await fetch("/api/uploads?slot=" + slot + "&name=" + encodeURIComponent(file.name), {
      method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" } });
    reply = await r.json();
    if (!r.ok) { say(slot, reply.error, false); $("player-" + slot).hidden = true; return; }
  } catch (e) {
    say(slot, file.name + ": the upload failed (" + e + ")", false);
    return;
  }
  chosen[slot] = reply.id;
  say(slot, reply.name + ": " + reply.duration_s.toFixed(1) + " s", true);
  const player = $("player-" + slot);
  player.src = "/api/uploads/" + reply.id;
  player.hidden = false;
  $("example-" + slot).value = "";
  ready();
}

function pickExample(slot, name) {
  if (!name) { chosen[slot] = null; ready(); return; }
  chosen[slot] = "example:" + name;
  say(slot, name + " (example)", true);
  const player = $("player-" + slot);
  player.src = "/api/examples/" + encodeURIComponent(name);
  player.hidden = false;
  $("file-" + slot).value = "";
  ready();
}

function options() {
  const tempo = document.querySelector("input[name=tempo]:checked").value;
  return {
    rate: tempo === "rate" ? $("rate").value : null,
    bpm: tempo === "bpm" ? $("bpm").value : null,
    bpm_from_timbre: tempo === "timbre",
    transpose: $("transpose").value,
    seed: $("seed").value,
    sample_rate_hz: $("sample-rate").value,
    calibrate: $("calibrate").checked,
    library: $("library").checked,
    acoustics: $("acoustics").checked,
    drums: $("drums").checked ? "keep" : "drop",
    timbre_drums: $("timbre-drums").checked ? "drop" : "keep",
    split_at: $("split-at").value.trim() || null,
  };
}

function show(status) {
  job = status;
  const s = $("status");
  if (status.status === "queued") s.textContent = "Waiting: place " + status.position + " in the queue";
  else if (status.status === "running") s.textContent = "Working: " + status.stage;
  else if (status.status === "done") s.textContent = "Done.";
  else if (status.status === "cancelled") s.textContent = "Cancelled.";
  else if (status.status === "failed") s.textContent = "Failed: " + status.error;
  s.className = status.status === "failed" ? "msg error" : "msg ok";
  $("cancel").hidden = !["queued", "running"].includes(status.status);
  ready();
  if (status.status === "done") results(status);
}

function results(status) {
  const f = status.files;
  $("out-a").src = $("player-a").src;
  $("out-b").src = $("player-b").src;
  $("out-audio").src = f["output.wav"];
  $("dl-audio").href = f["output.wav"] + "?download=1";
  $("dl-midi").href = f["notes.mid"] + "?download=1";
  $("dl-report").href = f["report.html"] + "?download=1";
  $("report").src = f["report.html"];
  const m = status.metrics;
  $("metrics").textContent = m.notes + " notes at " + m.tempo_bpm + " BPM, " + m.duration_s + " s; played from " +
    m.played_from + "; drums " + m.drums + (m.bass ? "; the bass line in the sound of " + m.bass : "") + "; note F1 against A " + (m.note_f1 === null ? "n/a" : m.note_f1.toFixed(3));
  $("results").hidden = false;
}

async function poll() {
  if (!job) return;
  const r = await fetch("/api/jobs/" + job.id);
  const status = await r.json();
  if (!r.ok) { $("status").textContent = status.error; clearInterval(timer); return; }
  show(status);
  if (!["queued", "running"].includes(status.status)) clearInterval(timer);
}

async function start() {
  $("results").hidden = true;
  $("msg-options").textContent = "";
  const r = await fetch("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ a: chosen.a, b: chosen.b, bass: chosen.bass, options: options() }) });
  const reply = await r.json();
  if (!r.ok) {
    const where = ["a", "b", "bass"].includes(reply.field) ? reply.field : "options";
    if (where === "options" || where === "bass") { $("options").open = true; }
    say(where, reply.error, false);
    return;
  }
  show(reply);
  clearInterval(timer);
  timer = setInterval(poll, 500);
}

async function cancel() {
  if (!job) return;
  const r = await fetch("/api/jobs/" + job.id + "/cancel", { method: "POST" });
  show(await r.json());
}

async function init() {
  const r = await fetch("/api/limits");
  const limits = await r.json();
  $("limits").textContent = "Files up to " + limits.max_upload_mb + " MB and " + limits.max_minutes +
    " minutes: wav, flac, ogg, mp3 and more.";
  for (const slot of ["a", "b", "bass"]) {
    const select = $("example-" + slot);
    for (const name of limits.examples) {
      const o = document.createElement("option");
      o.value = name; o.textContent = name;
      select.appendChild(o);
    }
    select.addEventListener("change", () => pickExample(slot, select.value));
    $("file-" + slot).addEventListener("change", (e) => { if (e.target.files[0]) upload(slot, e.target.files[0]); });
    const panel = $("panel-" + slot);
    panel.addEventListener("dragover", (e) => { e.preventDefault(); panel.classList.add("dragging"); });
    panel.addEventListener("dragleave", () => panel.classList.remove("dragging"));
    panel.addEventListener("drop", (e) => {
      e.preventDefault();
      panel.classList.remove("dragging");
      if (e.dataTransfer.files[0]) upload(slot, e.dataTransfer.files[0]);
    });
  }
  $("start").addEventListener("click", start);
  $("cancel").addEventListener("click", cancel);
}

init();
