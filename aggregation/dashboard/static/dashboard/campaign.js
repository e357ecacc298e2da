// The campaign agreement dashboard: draws the cached payload, and refreshes it by itself when
// new answers arrive (see poll() below); "Refresh" enqueues a recompute by hand.
import { barChart, bullet, h, num, pct, rawStrip } from "./charts.js";
import { renderGenerators } from "./generators.js";

const config = JSON.parse(document.getElementById("dashboard-config").textContent);
const SCORES = config.score_names; // modeling.protocol.SCORE_NAMES, in its order
const root = document.getElementById("dashboard");

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

function ago(iso) {
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

function tile(label, value, sub = "", id = null) {
  return h("div", { class: "tile", "data-metric": id },
    h("div", { class: "tile-value", text: value }),
    h("div", { class: "tile-label", text: label }),
    sub ? h("div", { class: "tile-sub", text: sub }) : null);
}

function renderFreshness(env) {
  const el = document.getElementById("freshness");
  if (!env || !env.computed_at) {
    el.textContent = env && env.refresh_requested_at ? "Computing…" : "No statistics computed yet.";
    return;
  }
  const when = new Date(env.computed_at);
  const counted = env.stats ? env.stats.progress.annotations : 0;
  const newer = config.annotations_now - counted;
  el.textContent = `Computed ${ago(env.computed_at)} (${when.toLocaleString()}) in ${num(env.compute_seconds, 1)} s` +
    (newer > 0 ? ` · ${newer.toLocaleString()} annotations since` : newer < 0 ? " · answers were excluded since" : " · up to date with the annotations") +
    (env.refresh_requested_at ? " · refreshing…" : "");
  el.dataset.computedAt = env.computed_at;
}

function renderProgress(p) {
  const tiles = document.getElementById("progress-tiles");
  tiles.replaceChildren(
    tile("items", p.items_total.toLocaleString(), "", "items_total"),
    tile("complete", p.items_complete.toLocaleString(), pct(p.items_total ? p.items_complete / p.items_total : 0), "items_complete"),
    tile("in progress", p.items_in_progress.toLocaleString(), "", "items_in_progress"),
    tile("untouched", p.items_untouched.toLocaleString(), "", "items_untouched"),
    tile("annotations", p.annotations.toLocaleString(), "", "annotations"),
    tile("active raters", String(p.active_raters), `last ${p.active_days} days · ${p.raters} in all`, "active_raters"),
    tile("median time", p.median_time_s === null ? "–" : `${num(p.median_time_s, 1)} s`, "per annotation", "median_time"),
  );
  const bar = document.getElementById("progress-bar");
  const total = p.items_total || 1;
  bar.replaceChildren(
    ...[["complete", p.items_complete], ["in-progress", p.items_in_progress], ["untouched", p.items_untouched]]
      .filter(([, n]) => n > 0)
      .map(([cls, n]) => h("span", { class: `seg ${cls}`, style: `width:${(100 * n) / total}%`, title: `${cls}: ${n}`, text: n / total > 0.08 ? `${cls.replace("-", " ")} ${n}` : "" })),
  );
  const days = p.per_day.slice(-60);
  const chart = document.getElementById("per-day");
  chart.replaceChildren(days.length
    ? barChart({ bars: days.map((d, i) => ({ label: i === 0 || i === days.length - 1 ? d.day.slice(5) : "", value: d.n, title: `${d.day}: ${d.n}` })),
      width: Math.min(900, 120 + days.length * 28), height: 130, ariaLabel: "annotations per day" })
    : h("p", { class: "note", text: "No annotations yet." }));
}

function renderAgreement(st) {
  const tiles = SCORES.map((name) => {
    const a = st.scores[name].alpha;
    return tile(`Krippendorff α · ${name}`, num(a.alpha), (a.ci_low === null ? "CI –" : `95% CI ${num(a.ci_low)} – ${num(a.ci_high)}`) + ` · ordinal ${num(a.alpha_ordinal)}`, `alpha_${name}`);
  });
  tiles.push(tile("Fleiss κ · misaligned words", num(st.words.fleiss_kappa), (st.words.ci_low === null ? "CI –" : `95% CI ${num(st.words.ci_low)} – ${num(st.words.ci_high)}`) + ` · ${st.words.n_units.toLocaleString()} words, ${st.words.raters_per_unit} raters`, "fleiss_kappa"));
  for (const kind of config.map_kinds) {
    const m = st.heatmaps[kind];
    tiles.push(tile(`${kind} maps · IoU`, num(m.iou), `CC ${num(m.cc)} · ${m.n_items} items`, `${kind}_iou`));
  }
  document.getElementById("agreement-tiles").replaceChildren(...tiles);
  const b = st.methods.bootstrap;
  document.getElementById("alpha-note").textContent =
    `Krippendorff's α on the ${st.methods.alpha_level} scale (1–5); 95% CI: percentile bootstrap over items, ` +
    `${b.resamples} resamples, seed ${b.seed}. Fleiss' κ: per prompt word, marked misaligned or not (CI resamples whole prompts). ` +
    "Heatmaps: mean over items of the mean pairwise IoU / correlation of the raters' binary maps.";
}

function renderMaxdiff(st) {
  const out = document.getElementById("maxdiff-charts");
  out.replaceChildren(...SCORES.map((name) => {
    const md = st.scores[name].maxdiff;
    const n = md.n || 1;
    const chart = barChart({
      bars: md.counts.map((c, i) => ({ label: md.bins[i].toFixed(2), value: c / n, cls: i === 0 ? "perfect" : i === 1 ? "good" : "" })),
      max: 1, format: (v) => pct(v), refs: [{ bar: 0, value: md.paper_perfect_share, label: "paper" }],
      ariaLabel: `maxdiff distribution for ${name}`,
    });
    return h("figure", { class: "mini", "data-score": name },
      h("figcaption", {}, h("strong", { text: name }), h("span", { class: "muted", text: ` · ${md.n.toLocaleString()} items` })),
      chart,
      h("div", { class: "cmp" },
        h("span", { class: "cmp-label", text: "perfect (=0)" }),
        h("span", { class: "cmp-ours perfect-share", text: pct(md.perfect_share) }),
        h("span", { class: "cmp-paper", text: `paper ≈${pct(md.paper_perfect_share)}` })),
      h("div", { class: "cmp" },
        h("span", { class: "cmp-label", text: "good (≤0.25)" }),
        h("span", { class: "cmp-ours good-share", text: pct(md.good_share) }),
        h("span", { class: "cmp-paper", text: `paper ≈${pct(md.paper_good_share)}` })),
      bullet({ value: md.good_share, ref: md.paper_good_share, label: `good agreement ${name}` }));
  }));
}

function renderHistograms(st) {
  const out = document.getElementById("hist-charts");
  out.replaceChildren(...SCORES.map((name) => {
    const block = st.scores[name];
    const hist = block.averaged_histogram;
    const bars = hist.counts.map((c, i) => ({
      // the Likert points are labelled by the edge ticks below
      label: "",
      value: c,
      title: `${num(hist.edges[i])}–${num(hist.edges[i + 1])}: ${c} items`,
    }));
    return h("figure", { class: "mini", "data-score": name },
      h("figcaption", {}, h("strong", { text: name }), h("span", { class: "muted", text: ` · mean rating ${num(block.mean)}` })),
      barChart({ bars, ariaLabel: `averaged ${name} scores`, maxBarWidth: 1000, ticks: hist.edges }),
      rawStrip(block.raw_histogram));
  }));
}

const RATER_COLUMNS = [
  { key: "username", label: "rater", get: (r) => r.username, fmt: (v) => v },
  { key: "annotations", label: "annotations", get: (r) => r.annotations, fmt: (v) => v.toLocaleString() },
  { key: "median_time_s", label: "median s", get: (r) => r.median_time_s, fmt: (v) => num(v, 1), z: "median_time_s" },
  { key: "mean_points", label: "points / item", get: (r) => r.mean_points, fmt: (v) => num(v, 1) },
  ...SCORES.map((s) => ({ key: `bias_${s}`, label: `bias ${s.slice(0, 5)}.`, get: (r) => r.bias[s], fmt: (v) => (v === null ? "–" : (v > 0 ? "+" : "") + num(v)), z: `bias_${s}` })),
  { key: "consensus_corr", label: "r consensus", get: (r) => r.consensus_corr, fmt: (v) => num(v), z: "consensus_corr" },
  { key: "word_disagreement", label: "word disagr.", get: (r) => r.word_disagreement, fmt: (v) => pct(v), z: "word_disagreement" },
];

function renderRaters(st) {
  const table = document.getElementById("raters-table");
  let sortKey = "annotations";
  let desc = true;
  const draw = () => {
    const col = RATER_COLUMNS.find((c) => c.key === sortKey);
    const rows = [...st.raters].sort((a, b) => {
      const va = col.get(a);
      const vb = col.get(b);
      if (va === vb) return a.username.localeCompare(b.username);
      if (va === null) return 1;
      if (vb === null) return -1;
      return (va < vb ? -1 : 1) * (desc ? -1 : 1);
    });
    table.replaceChildren(
      h("thead", {}, h("tr", {}, RATER_COLUMNS.map((c) => h("th", {
        scope: "col", "data-key": c.key, "aria-sort": c.key === sortKey ? (desc ? "descending" : "ascending") : "none",
        tabindex: "0", text: c.label + (c.key === sortKey ? (desc ? " ▼" : " ▲") : ""),
        onclick: () => { desc = c.key === sortKey ? !desc : c.key !== "username"; sortKey = c.key; draw(); },
      })))),
      h("tbody", {}, rows.map((r) => h("tr", { class: r.outlier ? "outlier" : "", "data-rater": r.username },
        RATER_COLUMNS.map((c) => {
          const z = c.z ? r.z[c.z] : null;
          const flagged = c.z && r.outlier_metrics.includes(c.z);
          return h("td", { class: flagged ? "flag" : "", title: z === null || z === undefined ? null : `robust z = ${num(z, 1)}`,
            text: c.fmt(c.get(r)) + (flagged ? " ⚑" : "") });
        })))),
    );
  };
  draw();
  const n = st.raters.filter((r) => r.outlier).length;
  document.getElementById("raters-note").textContent =
    `${st.raters.length} raters, ${n} flagged. Bias: mean of (own score − the other raters' mean on the same item), in Likert points. ` +
    `r: correlation of own scores with the leave-one-out consensus (the four scores pooled). Word disagreement: items where the rater's marked words differ ` +
    `from the majority (items with ≥3 raters). ⚑ ${st.methods.outlier_rule}. Click a column to sort.`;
}

function renderWorst(st) {
  const table = document.getElementById("worst-table");
  table.replaceChildren(
    h("thead", {}, h("tr", {}, ["item", "prompt", "raters", "mean maxdiff", ...SCORES.map((s) => `${s.slice(0, 5)}.`), "word unanimity", ""]
      .map((t) => h("th", { scope: "col", class: t === "prompt" ? "left" : null, text: t })))),
    h("tbody", {}, st.worst_items.map((w) => h("tr", {},
      h("td", {}, h("a", { href: config.urls.item.replace("/0/", `/${w.item_id}/`), text: `#${w.item_id}` })),
      h("td", { class: "prompt-cell", text: w.prompt }),
      h("td", { text: String(w.n_raters) }),
      h("td", { class: "heat", style: `--v:${w.mean_maxdiff}`, text: num(w.mean_maxdiff) }),
      SCORES.map((s) => h("td", { class: "heat", style: `--v:${w.maxdiff[s] ?? 0}`, text: num(w.maxdiff[s]) })),
      h("td", { text: pct(w.word_unanimity) }),
      h("td", {},
        w.extra_rater_requested ? h("span", { class: "badge", title: "an extra rater is requested", text: "+1 asked" }) : null,
        h("a", { class: "btn small", href: config.urls.item.replace("/0/", `/${w.item_id}/`), text: "compare" })),
    ))),
  );
}

function render(env) {
  renderFreshness(env);
  const st = env && env.stats;
  document.getElementById("empty").hidden = Boolean(st);
  document.getElementById("content").hidden = !st;
  if (st) {
    renderProgress(st.progress);
    renderAgreement(st);
    renderMaxdiff(st);
    renderHistograms(st);
    renderRaters(st);
    renderWorst(st);
    renderGenerators(st.generators, { scores: SCORES, mapKinds: config.map_kinds, csv: config.urls.csv });
  }
  root.dataset.state = "ready";
}

// The page keeps itself fresh: it polls the cheap "freshness" endpoint; when the figures are
// stale (new answers since the last computation) and no recompute is pending, it enqueues one
// (exactly what the Refresh button does), shows the recompute's progress, and redraws once a
// newer computation has landed.
const progressBox = document.getElementById("refresh-progress");
const progressBar = progressBox.querySelector("progress");
const progressLabel = progressBox.querySelector(".label");

function showProgress(f) {
  progressBox.hidden = false;
  progressBar.value = f.refresh_progress || 0;
  progressLabel.textContent = `Recomputing: ${f.refresh_stage || "queued"} (${Math.round(100 * (f.refresh_progress || 0))}%)`;
}

async function requestRefresh(auto) {
  const button = document.getElementById("refresh");
  button.disabled = true;
  button.textContent = "Refreshing…";
  const res = await fetch(config.urls.refresh, { method: "POST", headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin" });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    button.textContent = "Refresh";
    button.disabled = false;
    progressBox.hidden = false;
    progressLabel.textContent = `Could not start a recompute: ${body.detail || res.status}`;
    return;
  }
  root.dataset.state = "refreshing";
  root.dataset.autoRefreshed = auto ? "yes" : "no";
  showProgress({ refresh_progress: 0, refresh_stage: "queued" });
}

async function poll() {
  try {
    const r = await fetch(config.urls.freshness, { credentials: "same-origin" });
    if (r.ok) {
      const f = await r.json();
      config.annotations_now = f.n_annotations_now;
      const shown = config.envelope && config.envelope.computed_at;
      if (f.computed_at && f.computed_at !== shown && !f.refresh_requested_at) {
        const s = await fetch(config.urls.stats, { credentials: "same-origin" });
        if (s.ok) {
          config.envelope = await s.json();
          progressBox.hidden = true;
          const button = document.getElementById("refresh");
          button.disabled = false;
          button.textContent = "Refresh";
          render(config.envelope);
        }
      } else if (f.refresh_requested_at) {
        root.dataset.state = "refreshing";
        showProgress(f);
      } else if (f.stale) {
        await requestRefresh(true);
      } else if (config.envelope) {
        renderFreshness(config.envelope);
      }
    }
  } finally {
    setTimeout(poll, config.poll_ms);
  }
}

document.getElementById("refresh").addEventListener("click", () => requestRefresh(false));
render(config.envelope);
poll();
setInterval(() => config.envelope && renderFreshness(config.envelope), 30_000);
