// One item, its raters side by side: each panel draws the image with that rater's points
// (implausible red, misaligned blue; the disk radius is the campaign's radius fraction of the
// height) and the prompt words they marked. Above them, the aggregate and predicted heatmaps
// laid over the image, with an opacity slider and a toggle for each rater's disks.
import { h } from "./charts.js";

const config = JSON.parse(document.getElementById("dashboard-config").textContent);
const SCORES = config.score_names; // modeling.protocol.SCORE_NAMES, in its order
const root = document.getElementById("item-compare");
const PANEL_W = 360;

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

function drawPanel(canvas, img, rater, data) {
  const scale = PANEL_W / data.width;
  canvas.width = PANEL_W;
  canvas.height = Math.round(data.height * scale);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  const r = data.radius_fraction * canvas.height; // the campaign's true disk radius
  for (const [points, colour] of [[rater.implausible_points, "rgba(220,40,40,"], [rater.misaligned_points, "rgba(40,90,230,"]]) {
    for (const [x, y] of points) {
      ctx.beginPath();
      ctx.arc(x * canvas.width, y * canvas.height, r, 0, 2 * Math.PI);
      ctx.fillStyle = `${colour}0.35)`;
      ctx.fill();
      ctx.lineWidth = 2;
      ctx.strokeStyle = `${colour}0.95)`;
      ctx.stroke();
    }
  }
}

// --- heatmaps over the image ------------------------------------------------------------
const KIND_RGB = { implausibility: [220, 40, 40], misalignment: [40, 90, 230] };
const RATER_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"];
const OVERLAY_W = 560;

async function loadGrey(url) {
  // The stored map (grey, 0..255) as a Uint8ClampedArray of its own size.
  if (!url) return null;
  const img = new Image();
  img.src = url;
  try { await img.decode(); } catch { return null; }
  const c = document.createElement("canvas");
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0);
  return { width: c.width, height: c.height, data: ctx.getImageData(0, 0, c.width, c.height).data };
}

function heatLayer(grey, rgb, opacity) {
  // A colour layer whose alpha is the map's value times the slider's opacity.
  const layer = document.createElement("canvas");
  layer.width = grey.width;
  layer.height = grey.height;
  const ctx = layer.getContext("2d");
  const out = ctx.createImageData(grey.width, grey.height);
  for (let i = 0; i < grey.data.length; i += 4) {
    out.data[i] = rgb[0];
    out.data[i + 1] = rgb[1];
    out.data[i + 2] = rgb[2];
    out.data[i + 3] = Math.round(grey.data[i] * opacity);
  }
  ctx.putImageData(out, 0, 0);
  return layer;
}

function drawOverlay(canvas, img, data, grey, state, raters) {
  canvas.width = OVERLAY_W;
  canvas.height = Math.round((data.height / data.width) * OVERLAY_W);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  if (grey) ctx.drawImage(heatLayer(grey, KIND_RGB[state.kind], state.opacity), 0, 0, canvas.width, canvas.height);
  if (!raters) return;
  // True disk size: radius = radius_fraction x the image height (here, the canvas height).
  const r = data.radius_fraction * canvas.height;
  const field = state.kind === "implausibility" ? "implausible_points" : "misaligned_points";
  raters.forEach((rater, i) => {
    if (!state.shown.has(rater.username)) return;
    ctx.strokeStyle = RATER_COLOURS[i % RATER_COLOURS.length];
    ctx.lineWidth = 2;
    for (const [x, y] of rater[field]) {
      ctx.beginPath();
      ctx.arc(x * canvas.width, y * canvas.height, r, 0, 2 * Math.PI);
      ctx.stroke();
    }
  });
}

async function setUpOverlay(data, img) {
  const maps = data.maps;
  const state = { kind: "implausibility", opacity: 0.6, shown: new Set() };
  const greys = { human: {}, model: {} };
  for (const kind of Object.keys(KIND_RGB)) {
    greys.human[kind] = maps.human ? await loadGrey(maps.human[kind]) : null;
    greys.model[kind] = maps.model ? await loadGrey(maps.model[kind]) : null;
  }
  const human = document.getElementById("human-overlay");
  document.getElementById("human-caption").textContent = maps.human
    ? `Human aggregate (${maps.human_n_annotations} raters)`
    : "Human aggregate: not computed yet (the item has no aggregate); only the raters' disks are shown.";
  const slot = document.getElementById("model-slot");
  let model = null;
  if (maps.model) {
    model = h("canvas", { id: "model-overlay", "aria-label": "the model's predicted map over the image" });
    slot.replaceChildren(model);
    document.getElementById("model-caption").textContent = `Model prediction (version v${maps.model_version})`;
  } else {
    slot.replaceChildren(h("p", { class: "no-model", id: "no-model", text: maps.active_version
      ? `The active model (v${maps.active_version}) has no stored prediction for this item: predictions are kept for items still waiting for raters.`
      : "No active model for this campaign yet: train one on the learning page to see its predicted maps here." }));
  }
  const toggles = document.getElementById("rater-toggles");
  toggles.replaceChildren(...data.raters.map((rater, i) => {
    state.shown.add(rater.username);
    const box = h("input", { type: "checkbox", checked: true, "data-rater": rater.username });
    box.addEventListener("change", () => {
      if (box.checked) state.shown.add(rater.username);
      else state.shown.delete(rater.username);
      redraw();
    });
    const swatch = h("span", { class: "swatch" });
    swatch.style.background = RATER_COLOURS[i % RATER_COLOURS.length]; // CSSOM: allowed by the CSP
    return h("label", { title: `${rater.username}'s disks` }, box, swatch, rater.username);
  }));
  const redraw = () => {
    drawOverlay(human, img, data, greys.human[state.kind], state, data.raters);
    if (model) drawOverlay(model, img, data, greys.model[state.kind], state, null);
    human.dataset.kind = state.kind;
    human.dataset.opacity = String(state.opacity);
  };
  const slider = document.getElementById("overlay-opacity");
  slider.addEventListener("input", () => {
    state.opacity = Number(slider.value) / 100;
    document.getElementById("opacity-value").textContent = `${slider.value}%`;
    redraw();
  });
  for (const radio of document.querySelectorAll("input[name=map-kind]")) {
    radio.addEventListener("change", () => { state.kind = radio.value; redraw(); });
  }
  redraw();
}

async function main() {
  const res = await fetch(config.urls.item, { credentials: "same-origin" });
  if (!res.ok) {
    document.getElementById("panels").textContent = `Could not load the item (${res.status}).`;
    root.dataset.state = "error";
    return;
  }
  const data = await res.json();
  const img = new Image();
  img.src = data.image_url;
  await img.decode().catch(() => null);
  const votes = data.words.map((_, i) => data.raters.filter((r) => r.misaligned_words.includes(i)).length);
  const panels = data.raters.map((rater) => {
    const canvas = h("canvas", { class: "compare-canvas", "aria-label": `${rater.username}'s points` });
    drawPanel(canvas, img, rater, data);
    return h("article", { class: "panel compare", "data-rater": rater.username },
      h("h2", { text: rater.username }),
      canvas,
      h("p", { class: "counts", text: `${rater.implausible_points.length} implausible · ${rater.misaligned_points.length} misaligned points · ${(rater.time_spent_ms / 1000).toFixed(1)} s` }),
      h("p", { class: "words" }, data.words.map((w, i) => h("span", {
        class: `word ${rater.misaligned_words.includes(i) ? "marked" : ""} ${votes[i] * 2 > data.raters.length ? "majority" : ""}`,
        title: `${votes[i]} of ${data.raters.length} raters marked “${w}”`, text: w }))),
      h("dl", { class: "scores" }, SCORES.flatMap((s) => [h("dt", { text: s }), h("dd", { text: String(rater.scores[s]) })])));
  });
  document.getElementById("panels").replaceChildren(...panels);
  await setUpOverlay(data, img);
  const button = document.getElementById("extra-rater");
  const status = document.getElementById("extra-status");
  if (data.extra_rater_requested) {
    button.disabled = true;
    button.textContent = "Extra rater requested";
  }
  button.addEventListener("click", async () => {
    button.disabled = true;
    const r = await fetch(config.urls.extra_rater, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Content-Type": "application/json" },
      body: JSON.stringify({ reason: "low agreement (dashboard)" }),
    });
    const body = await r.json().catch(() => ({}));
    if (r.ok) {
      button.textContent = "Extra rater requested";
      status.textContent = "Requested: the item is back in the queue, first in line, for one more rater who has not seen it.";
    } else {
      button.disabled = r.status === 409;
      status.textContent = body.detail || `Request failed (${r.status}).`;
    }
  });
  root.dataset.state = "ready";
}

main();
