// The learning page: the Retrain button (and the run's progress, polled from the versions API
// while a run is queued or running), the learning settings form (admins save it; leads see it
// read-only), and two charts with axes: the combined dev metric per version and the active
// version's score correlations.
import { h, num, s } from "../dashboard/charts.js";

const config = JSON.parse(document.getElementById("learning-config").textContent);
const root = document.getElementById("learning");
const SCORES = config.score_names;
const POLL_MS = 1500;

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

// --- settings form ----------------------------------------------------------------------
const FIELDS = [
  { name: "enabled", label: "Scheduled retraining", type: "checkbox" },
  { name: "schedule_hours", label: "Schedule (hours)", type: "number", step: "0.5", min: "0", nullable: true },
  { name: "min_new_aggregates", label: "New aggregates threshold", type: "number", step: "1", min: "0", nullable: true, integer: true },
  { name: "strategy", label: "Acquisition strategy", type: "select" },
  { name: "random_share", label: "Random share", type: "number", step: "0.05", min: "0", max: "1" },
];

function buildForm() {
  const form = document.getElementById("settings-form");
  const disabled = !config.can_edit;
  const rows = FIELDS.flatMap((f) => {
    const id = `setting-${f.name}`;
    const value = config.settings[f.name];
    let input;
    if (f.type === "select") {
      input = h("select", { id, name: f.name, disabled }, config.strategies.map((o) => h("option", { value: o.value, selected: o.value === value, text: o.label })));
    } else if (f.type === "checkbox") {
      input = h("input", { id, name: f.name, type: "checkbox", checked: Boolean(value), disabled });
    } else {
      input = h("input", { id, name: f.name, type: "number", step: f.step, min: f.min, max: f.max, value: value ?? "", disabled, placeholder: f.nullable ? "off" : null });
    }
    return [
      h("label", { for: id, text: f.label }),
      h("div", { class: "field" }, input, h("p", { class: "help", text: config.help[f.name] }), h("p", { class: "error", id: `${id}-error` })),
    ];
  });
  const suggestions = h("div", { class: "field" },
    h("input", { id: "setting-show_suggestions", type: "checkbox", checked: config.show_suggestions, disabled: true }),
    h("p", { class: "help" }, "Raters see the active model's predicted maps as a hint. A campaign setting: ",
      config.can_edit ? h("a", { href: config.urls.campaign_edit, text: "change it on the campaign" }) : "admins change it on the campaign",
      "."));
  const save = config.can_edit ? [h("div", { class: "actions" }, h("button", { class: "btn", type: "submit", id: "settings-save", text: "Save settings" }))] : [];
  form.replaceChildren(...rows, h("label", { for: "setting-show_suggestions", text: "Suggestions" }), suggestions, ...save);
  if (config.can_edit) form.addEventListener("submit", saveSettings);
}

async function saveSettings(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const body = {};
  for (const f of FIELDS) {
    const el = form.elements[f.name];
    document.getElementById(`setting-${f.name}-error`).textContent = "";
    if (f.type === "checkbox") body[f.name] = el.checked;
    else if (f.type === "select") body[f.name] = el.value;
    else if (el.value === "") body[f.name] = f.nullable ? null : el.value;
    else body[f.name] = Number(el.value);
  }
  const message = document.getElementById("settings-message");
  const res = await fetch(config.urls.settings, {
    method: "PUT", credentials: "same-origin",
    headers: { "X-CSRFToken": csrfToken(), "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (res.ok) {
    config.settings = data;
    message.textContent = "Saved.";
    message.dataset.result = "saved";
    return;
  }
  message.dataset.result = "error";
  message.textContent = data.detail || `Not saved (${res.status}).`;
  for (const [field, errors] of Object.entries(data.errors || {})) {
    const slot = document.getElementById(`setting-${field}-error`);
    if (slot) slot.textContent = errors.join(" ");
  }
}

// --- versions, progress, retrain --------------------------------------------------------
const inFlight = (v) => v.status === "queued" || v.status === "running";

function renderVersions(versions) {
  const table = document.getElementById("versions");
  const rows = [...versions].reverse(); // newest first
  table.replaceChildren(
    h("thead", {}, h("tr", {}, ["version", "created", "status", "progress", "train / dev items", "dev combined", "active then (same dev)", "duration", "active"]
      .map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, rows.map((v) => h("tr", { "data-version": v.id, "data-status": v.status },
      h("td", { text: `v${v.id}` }),
      h("td", { text: new Date(v.created_at).toLocaleString([], { dateStyle: "short", timeStyle: "short" }) }),
      h("td", { class: `status-${v.status}`, text: v.status + (v.stage && inFlight(v) ? ` · ${v.stage}` : "") + (v.error ? ` · ${v.error}` : "") }),
      h("td", {}, inFlight(v)
        ? [h("progress", { max: "1", value: String(v.progress), "aria-label": `v${v.id} progress` }), h("span", { class: "muted", text: ` ${Math.round(100 * v.progress)}%` })]
        : null),
      h("td", { text: `${v.data_counts.train ?? 0} / ${v.data_counts.dev ?? 0}` }),
      h("td", { text: num(v.combined_metric, 4) }),
      h("td", { text: v.compared_with ? `v${v.compared_with.version}: ${num(v.compared_with.combined, 4)}` : "" }),
      h("td", { text: v.duration_s ? `${num(v.duration_s, 1)} s` : "" }),
      h("td", { text: v.is_active ? `active (${v.activated_by})` : "" })))),
  );
  const running = versions.find(inFlight);
  const box = document.getElementById("run-progress");
  const status = document.getElementById("run-status");
  const button = document.getElementById("retrain");
  if (running) {
    box.hidden = false;
    box.dataset.version = running.id;
    box.querySelector("progress").value = running.progress;
    box.querySelector(".label").textContent = `v${running.id} ${running.status}${running.stage ? ` · ${running.stage}` : ""} · ${Math.round(100 * running.progress)}%`;
    status.textContent = `A run is ${running.status} (v${running.id}).`;
    button.disabled = true;
    button.textContent = "Training…";
  } else {
    box.hidden = true;
    button.disabled = false;
    button.textContent = "Retrain now";
    const last = versions[versions.length - 1];
    const active = versions.find((v) => v.is_active);
    status.textContent = last
      ? `Last run: v${last.id}, ${last.status}. Active version: ${active ? `v${active.id}` : "none"}.`
      : "No run yet.";
  }
  renderCharts(versions);
  return Boolean(running);
}

let polling = false;
async function pollVersions() {
  if (polling) return;
  polling = true;
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      const res = await fetch(config.urls.versions, { credentials: "same-origin" });
      if (!res.ok) continue;
      config.versions = await res.json();
      if (!renderVersions(config.versions)) break;
    }
  } finally {
    polling = false;
  }
}

async function retrain() {
  const button = document.getElementById("retrain");
  const message = document.getElementById("retrain-message");
  button.disabled = true;
  const res = await fetch(config.urls.retrain, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() } });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    button.disabled = false;
    message.textContent = data.detail || `Could not start a run (${res.status}).`;
    return;
  }
  message.textContent = data.started
    ? `Run v${data.version.id} queued: a worker trains it; the bar shows how far it has got.`
    : `A run is already ${data.version.status} (v${data.version.id}); no second one was started.`;
  if (!config.versions.some((v) => v.id === data.version.id)) config.versions.push(data.version);
  renderVersions(config.versions);
  pollVersions();
}

// --- charts -------------------------------------------------------------------------------
function combinedChart(versions) {
  const done = versions.filter((v) => v.combined_metric !== null && v.combined_metric !== undefined);
  if (!done.length) return h("p", { class: "note", text: "No finished version yet." });
  const width = 480;
  const height = 200;
  const pad = { l: 44, r: 12, t: 12, b: 36 };
  const values = done.map((v) => v.combined_metric);
  let lo = Math.min(0, ...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-6) hi = lo + 1;
  const x = (i) => pad.l + (done.length === 1 ? (width - pad.l - pad.r) / 2 : (i / (done.length - 1)) * (width - pad.l - pad.r));
  const y = (v) => pad.t + (1 - (v - lo) / (hi - lo)) * (height - pad.t - pad.b);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": "combined dev metric per version", class: "chart-svg", id: "metric-chart" });
  const base = height - pad.b;
  for (const t of [lo, (lo + hi) / 2, hi]) {
    svg.append(s("line", { x1: pad.l, x2: width - pad.r, y1: y(t), y2: y(t), class: "grid" }));
    svg.append(s("text", { x: pad.l - 4, y: y(t) + 3, class: "tick", "text-anchor": "end", text: num(t, 2) }));
  }
  svg.append(s("line", { x1: pad.l, x2: pad.l, y1: pad.t, y2: base, class: "axis" }));
  svg.append(s("line", { x1: pad.l, x2: width - pad.r, y1: base, y2: base, class: "axis" }));
  svg.append(s("polyline", { points: done.map((v, i) => `${x(i)},${y(v.combined_metric)}`).join(" "), class: "line" }));
  done.forEach((v, i) => {
    const pt = s("circle", { cx: x(i), cy: y(v.combined_metric), r: 4, class: `pt ${v.is_active ? "active" : ""}` });
    pt.append(s("title", { text: `v${v.id}: ${num(v.combined_metric, 4)}` }));
    svg.append(pt);
    svg.append(s("text", { x: x(i), y: base + 12, class: "tick", "text-anchor": "middle", text: `v${v.id}` }));
  });
  svg.append(s("text", { x: pad.l + (width - pad.l - pad.r) / 2, y: height - 4, class: "axis-label", "text-anchor": "middle", text: "model version (oldest → newest)" }));
  svg.append(s("text", { x: 10, y: pad.t + (base - pad.t) / 2, class: "axis-label", "text-anchor": "middle", transform: `rotate(-90 10 ${pad.t + (base - pad.t) / 2})`, text: "combined metric (unitless)" }));
  return svg;
}

function scoresChart(versions) {
  const active = versions.find((v) => v.is_active);
  const metrics = active && active.dev_metrics && active.dev_metrics.scores;
  if (!metrics) return h("p", { class: "note", text: "No active version with dev metrics yet." });
  const width = 480;
  const height = 200;
  const pad = { l: 44, r: 12, t: 12, b: 36 };
  const iw = width - pad.l - pad.r;
  const y = (v) => pad.t + (1 - (Math.max(-1, Math.min(1, v)) + 1) / 2) * (height - pad.t - pad.b);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": "PLCC and SRCC per score of the active version", class: "chart-svg" });
  const base = height - pad.b;
  for (const t of [-1, -0.5, 0, 0.5, 1]) {
    svg.append(s("line", { x1: pad.l, x2: width - pad.r, y1: y(t), y2: y(t), class: t === 0 ? "zero" : "grid" }));
    svg.append(s("text", { x: pad.l - 4, y: y(t) + 3, class: "tick", "text-anchor": "end", text: num(t, 1) }));
  }
  svg.append(s("line", { x1: pad.l, x2: pad.l, y1: pad.t, y2: base, class: "axis" }));
  const group = iw / SCORES.length;
  SCORES.forEach((name, i) => {
    const m = metrics[name] || {};
    [["plcc", ""], ["srcc", "srcc"]].forEach(([key, cls], j) => {
      const v = m[key];
      if (v === null || v === undefined) return;
      const x0 = pad.l + i * group + group * (0.15 + 0.35 * j);
      const rect = s("rect", { x: x0, y: Math.min(y(v), y(0)), width: group * 0.3, height: Math.abs(y(v) - y(0)), class: `bar ${cls}` });
      rect.append(s("title", { text: `${name} ${key.toUpperCase()}: ${num(v, 3)} (n = ${m.n})` }));
      svg.append(rect);
    });
    svg.append(s("text", { x: pad.l + i * group + group / 2, y: base + 12, class: "tick", "text-anchor": "middle", text: `${name} (n=${m.n ?? "–"})` }));
  });
  svg.append(s("text", { x: pad.l + iw / 2, y: height - 4, class: "axis-label", "text-anchor": "middle", text: `score (active version v${active.id}); blue = PLCC, amber = SRCC` }));
  svg.append(s("text", { x: 10, y: pad.t + (base - pad.t) / 2, class: "axis-label", "text-anchor": "middle", transform: `rotate(-90 10 ${pad.t + (base - pad.t) / 2})`, text: "correlation (−1 to 1)" }));
  return svg;
}

function renderCharts(versions) {
  document.getElementById("combined-chart").replaceChildren(combinedChart(versions));
  document.getElementById("scores-chart").replaceChildren(scoresChart(versions));
}

buildForm();
document.getElementById("retrain").addEventListener("click", retrain);
if (renderVersions(config.versions)) pollVersions();
root.dataset.state = "ready";
