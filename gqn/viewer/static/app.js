// gqn view: the page's state (scene, context views, camera, seed) and its requests to the API.
// One render request is in flight at a time; moves made meanwhile are sent as one request
// when it returns, so dragging never queues stale frames.
"use strict";

const $ = (id) => document.getElementById(id);
const DEG = Math.PI / 180;
const state = {
  info: null, scene: 0, views: [], context: new Set(),
  camera: { yaw: 0, pitch: 0, distance: 3 }, atView: null, seed: 0,
  busy: false, pending: false,
};

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, opts);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function setSliders() {
  const c = state.camera;
  $("yaw").value = c.yaw / DEG; $("yaw-out").textContent = (c.yaw / DEG).toFixed(0);
  $("pitch").value = c.pitch / DEG; $("pitch-out").textContent = (c.pitch / DEG).toFixed(0);
  $("distance").value = c.distance; $("distance-out").textContent = c.distance.toFixed(2);
}

function markThumbs(truth) {
  document.querySelectorAll(".thumb").forEach((el) => {
    const j = Number(el.dataset.view);
    el.classList.toggle("context", state.context.has(j));
    el.classList.toggle("here", j === truth);
  });
}

async function loadScene(index) {
  try {
    const data = await api(`/api/scenes/${index}`);
    state.scene = index; state.views = data.views;
    $("scene").value = index;
    const [lo, hi] = data.distance_range;
    $("distance").min = lo; $("distance").max = hi;
    const thumbs = $("thumbs");
    thumbs.replaceChildren();
    data.views.forEach((view, j) => {
      const el = document.createElement("div");
      el.className = "thumb"; el.dataset.view = j;
      const img = document.createElement("img");
      img.src = view.image; img.title = `view ${j}: click to add to / remove from the context`;
      img.addEventListener("click", () => toggleContext(j));
      const snap = document.createElement("button");
      snap.type = "button"; snap.textContent = `◎ ${j}`; snap.className = "snap";
      snap.title = `camera to view ${j}'s pose`;
      snap.addEventListener("click", () => snapTo(j));
      el.append(img, snap);
      thumbs.append(el);
    });
    state.context = new Set([0]);
    snapTo(Math.min(1, data.views.length - 1));
  } catch (e) {
    showError(e.message);
  }
}

function toggleContext(j) {
  if (state.context.has(j)) state.context.delete(j); else state.context.add(j);
  render();
}

function snapTo(j) {
  const v = state.views[j];
  state.camera = { yaw: v.yaw, pitch: v.pitch, distance: v.distance };
  state.atView = j;
  setSliders();
  render();
}

function moveCamera(change) {
  const c = state.camera;
  const distance = Math.min(Math.max(c.distance * (change.zoom || 1),
    Number($("distance").min)), Number($("distance").max));
  let yaw = c.yaw + (change.yaw || 0);
  yaw = Math.atan2(Math.sin(yaw), Math.cos(yaw));
  const pitch = Math.min(Math.max(c.pitch + (change.pitch || 0), -90 * DEG), 90 * DEG);
  state.camera = { yaw, pitch, distance };
  state.atView = null;
  setSliders();
  render();
}

function fromSliders() {
  state.camera = {
    yaw: Number($("yaw").value) * DEG, pitch: Number($("pitch").value) * DEG,
    distance: Number($("distance").value),
  };
  state.atView = null;
  setSliders();
  render();
}

async function render() {
  if (state.busy) { state.pending = true; return; }
  state.busy = true; state.pending = false;
  const camera = state.atView === null ? { ...state.camera } : { view: state.atView };
  const body = {
    scene: state.scene, context: [...state.context].sort((a, b) => a - b),
    cameras: [camera], seed: state.seed,
  };
  const img = $("render");
  img.dataset.state = "busy";
  try {
    const out = await api("/api/render", body);
    img.src = out.images[0];
    img.dataset.request = JSON.stringify(body);
    const truth = out.truth[0];
    $("truth").hidden = truth === null;
    $("no-truth").hidden = truth !== null;
    if (truth !== null) $("truth").src = state.views[truth].image;
    $("timing").textContent = `${out.ms.toFixed(0)} ms`;
    markThumbs(truth);
    showError("");
  } catch (e) {
    showError(e.message);
  } finally {
    state.busy = false;
    if (state.pending) render(); else img.dataset.state = "ready";
  }
}

function setUp() {
  ["yaw", "pitch", "distance"].forEach((id) => $(id).addEventListener("input", fromSliders));
  $("scene").addEventListener("change", () => loadScene(Number($("scene").value)));
  $("prev").addEventListener("click", () => loadScene(state.scene - 1));
  $("next").addEventListener("click", () => loadScene(state.scene + 1));
  $("new-sample").addEventListener("click", () => {
    state.seed += 1; $("seed").textContent = state.seed; render();
  });
  const view = $("render");
  view.addEventListener("pointerdown", (e) => { view.setPointerCapture(e.pointerId); });
  view.addEventListener("pointermove", (e) => {
    if (view.hasPointerCapture(e.pointerId)) {
      moveCamera({ yaw: -e.movementX * 0.5 * DEG, pitch: e.movementY * 0.5 * DEG });
    }
  });
  view.addEventListener("wheel", (e) => {
    e.preventDefault(); moveCamera({ zoom: Math.exp(e.deltaY * 0.001) });
  }, { passive: false });
  view.addEventListener("dragstart", (e) => e.preventDefault());
}

async function start() {
  setUp();
  try {
    state.info = await api("/api/info");
    const i = state.info;
    $("info").textContent = `${i.model}${i.consistent ? " (consistent: one scene latent per sample)" : ""}`
      + ` · ${i.image_size}×${i.image_size} · ${i.num_scenes} scene(s) from ${i.source}`;
    $("scene").max = i.num_scenes - 1;
    await loadScene(0);
  } catch (e) {
    showError(e.message);
  }
}

start();
