// The "Generators" section: per generator, mean normalised scores with 95% intervals (and the
// active model's estimate for unrated images), pairwise differences with their permutation
// test, the share of images with implausible regions, the mean heatmap area and the words
// most often marked misaligned. Every chart is an inline SVG with labelled axes and units.
import { h, num, pct, s } from "./charts.js";

/**
 * Dot-and-whisker chart, one row per entry: rows = [{label, mean, low, high, est, cls, title}]
 * (est = {mean, low, high} drawn as a hollow dot on a dashed whisker just below).
 */
export function forestChart({ rows, min = 0, max = 1, ticks = [0, 0.25, 0.5, 0.75, 1], format = (v) => num(v), axisLabel, ariaLabel, zero = null, width = 520 }) {
  const pad = { l: 150, r: 14, t: 8, b: 34 };
  const rowH = rows.some((r) => r.est) ? 30 : 22;
  const height = pad.t + pad.b + rowH * Math.max(1, rows.length);
  const iw = width - pad.l - pad.r;
  const x = (v) => pad.l + ((Math.min(max, Math.max(min, v)) - min) / (max - min || 1)) * iw;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": ariaLabel, class: "chart-svg forest" });
  const base = height - pad.b;
  for (const t of ticks) {
    svg.append(s("line", { x1: x(t), x2: x(t), y1: pad.t, y2: base, class: "grid" }));
    svg.append(s("line", { x1: x(t), x2: x(t), y1: base, y2: base + 3, class: "axis" }));
    svg.append(s("text", { x: x(t), y: base + 13, class: "tick", "text-anchor": "middle", text: format(t) }));
  }
  svg.append(s("line", { x1: pad.l, x2: width - pad.r, y1: base, y2: base, class: "axis" }));
  svg.append(s("text", { x: pad.l + iw / 2, y: height - 4, class: "axis-label", "text-anchor": "middle", text: axisLabel }));
  if (zero !== null) svg.append(s("line", { x1: x(zero), x2: x(zero), y1: pad.t, y2: base, class: "zero" }));
  rows.forEach((r, i) => {
    const y = pad.t + i * rowH + 9;
    const g = s("g", { class: `row ${r.cls || ""}`, "data-label": r.label });
    g.append(s("text", { x: pad.l - 6, y: y + 3, class: "row-label", "text-anchor": "end", text: r.label }));
    if (r.mean !== null && r.mean !== undefined) {
      if (r.low !== null && r.high !== null) g.append(s("line", { x1: x(r.low), x2: x(r.high), y1: y, y2: y, class: "whisker" }));
      const dot = s("circle", { cx: x(r.mean), cy: y, r: 4, class: "mean-dot" });
      dot.append(s("title", { text: r.title || `${r.label}: ${format(r.mean)} (95% CI ${format(r.low)} – ${format(r.high)})` }));
      g.append(dot);
    } else {
      g.append(s("text", { x: pad.l + 4, y: y + 3, class: "tick", text: "no rated items" }));
    }
    if (r.est && r.est.mean !== null && r.est.mean !== undefined) {
      const ye = y + 11;
      if (r.est.low !== null && r.est.high !== null) g.append(s("line", { x1: x(r.est.low), x2: x(r.est.high), y1: ye, y2: ye, class: "est-whisker" }));
      const dot = s("circle", { cx: x(r.est.mean), cy: ye, r: 3.5, class: "est-dot" });
      dot.append(s("title", { text: `${r.label}, model estimate on ${r.est.n} unrated images: ${format(r.est.mean)}` }));
      g.append(dot);
    }
    svg.append(g);
  });
  return svg;
}

/** Horizontal bars of shares (0..1), one row per entry: rows = [{label, value, title}]. */
function shareBars({ rows, axisLabel, ariaLabel, width = 300 }) {
  const pad = { l: 96, r: 36, t: 4, b: 30 };
  const rowH = 16;
  const height = pad.t + pad.b + rowH * Math.max(1, rows.length);
  const iw = width - pad.l - pad.r;
  const top = Math.max(0.01, ...rows.map((r) => r.value));
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": ariaLabel, class: "chart-svg" });
  const base = height - pad.b;
  rows.forEach((r, i) => {
    const y = pad.t + i * rowH;
    svg.append(s("text", { x: pad.l - 4, y: y + 11, class: "row-label", "text-anchor": "end", text: r.label }));
    const rect = s("rect", { x: pad.l, y: y + 2, width: (r.value / top) * iw, height: rowH - 5, class: "bar" });
    rect.append(s("title", { text: r.title }));
    svg.append(rect);
    svg.append(s("text", { x: pad.l + (r.value / top) * iw + 3, y: y + 11, class: "tick", text: pct(r.value) }));
  });
  svg.append(s("line", { x1: pad.l, x2: pad.l + iw, y1: base, y2: base, class: "axis" }));
  svg.append(s("text", { x: pad.l, y: base + 11, class: "tick", "text-anchor": "middle", text: "0%" }));
  svg.append(s("text", { x: pad.l + iw, y: base + 11, class: "tick", "text-anchor": "middle", text: pct(top) }));
  svg.append(s("text", { x: pad.l + iw / 2, y: height - 3, class: "axis-label", "text-anchor": "middle", text: axisLabel }));
  return svg;
}

const figure = (title, note, chart, attrs = {}) =>
  h("figure", { class: "mini", ...attrs }, h("figcaption", {}, h("strong", { text: title })), chart, h("p", { class: "fig-note", text: note }));

export function renderGenerators(gen, { scores, mapKinds }) {
  const body = document.getElementById("generators-body");
  const methods = document.getElementById("generators-methods");
  if (!gen) {
    methods.textContent = "";
    body.replaceChildren(h("p", { class: "note", text: "Not computed yet for this campaign: the next recompute adds it." }));
    return;
  }
  if (!gen.rows.length) {
    methods.textContent = "";
    body.replaceChildren(h("p", { class: "note", text: "No rated or predicted non-gold items yet." }));
    return;
  }
  methods.textContent = `Rated: ${gen.methods.rated}. Intervals: ${gen.methods.interval}. Differences: ${gen.methods.test}. ` +
    "Open dots on dashed whiskers: the active model's estimate for images nobody has rated yet.";
  const counts = h("p", { class: "note", id: "generators-counts", text: gen.rows.map((r) => `${r.generator}: ${r.n_rated} rated, ${r.n_estimated} estimated`).join(" · ") });

  const scoreCharts = scores.map((name) => figure(
    name,
    `Mean of each rated image's averaged ${name} score, normalised (s − 1) / 4; whiskers: 95% bootstrap interval.`,
    forestChart({
      rows: gen.rows.map((r) => ({ label: `${r.generator} (n=${r.n_rated})`, mean: r.scores[name].mean, low: r.scores[name].ci_low, high: r.scores[name].ci_high, est: r.n_estimated ? r.estimate[name] : null })),
      axisLabel: "mean normalised score (0 = worst, 1 = best)",
      ariaLabel: `mean normalised ${name} score per generator`,
    }),
    { "data-chart": `score-${name}` },
  ));

  const pairs = gen.pairs;
  const pairChart = figure(
    "Pairwise differences",
    "Difference of the mean normalised scores (first − second generator) with its 95% bootstrap interval; red: significant after Holm's correction.",
    pairs.length
      ? forestChart({
        rows: pairs.map((p) => ({ label: `${p.score.slice(0, 5)}. ${p.a} − ${p.b}`, mean: p.diff, low: p.ci_low, high: p.ci_high, cls: p.significant ? "sig" : "",
          title: `${p.score}: ${p.a} − ${p.b} = ${num(p.diff)}, p = ${num(p.p, 3)}, Holm p = ${num(p.p_holm, 3)}` })),
        min: -1, max: 1, ticks: [-1, -0.5, 0, 0.5, 1], zero: 0,
        axisLabel: "difference of mean normalised scores", ariaLabel: "pairwise differences between generators", width: 640,
      })
      : h("p", { class: "note", text: "Needs two generators with rated images." }),
    { "data-chart": "pairs" },
  );
  const pairTable = h("div", { class: "table-wrap" }, h("table", { id: "generator-pairs" },
    h("thead", {}, h("tr", {}, ["score", "generators", "difference", "95% CI", "p", "Holm p", "significant"].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, pairs.map((p) => h("tr", { "data-score": p.score, "data-pair": `${p.a}|${p.b}` },
      h("td", { text: p.score }),
      h("td", { text: `${p.a} − ${p.b}` }),
      h("td", { text: num(p.diff) }),
      h("td", { text: `${num(p.ci_low)} – ${num(p.ci_high)}` }),
      h("td", { text: num(p.p, 3) }),
      h("td", { text: num(p.p_holm, 3) }),
      h("td", { class: p.significant ? "sig-yes" : "", text: p.significant ? "yes" : "no" })))),
  ));

  const implausible = figure(
    "Images with implausible regions",
    "Share of rated images where at least one rater marked an implausible point; whiskers: 95% bootstrap interval.",
    forestChart({
      rows: gen.rows.map((r) => ({ label: `${r.generator} (n=${r.n_rated})`, mean: r.implausible_share.mean, low: r.implausible_share.ci_low, high: r.implausible_share.ci_high })),
      format: (v) => pct(v), axisLabel: "share of rated images (%)", ariaLabel: "share of images with implausible regions per generator",
    }),
    { "data-chart": "implausible-share" },
  );
  const areaMax = Math.max(0.05, ...gen.rows.flatMap((r) => mapKinds.map((k) => r.area[k].ci_high ?? 0)));
  const areaTop = Math.min(1, Math.ceil(areaMax * 20) / 20);
  const area = mapKinds.map((kind) => figure(
    `Mean ${kind} area`,
    `Share of the image the aggregate ${kind} map covers (pixels > 0), averaged over rated images; whiskers: 95% bootstrap interval.`,
    forestChart({
      rows: gen.rows.map((r) => ({ label: `${r.generator} (n=${r.n_rated})`, mean: r.area[kind].mean, low: r.area[kind].ci_low, high: r.area[kind].ci_high })),
      max: areaTop, ticks: [0, areaTop / 2, areaTop], format: (v) => pct(v, 1), axisLabel: "share of the image area (%)",
      ariaLabel: `mean ${kind} heatmap area per generator`,
    }),
    { "data-chart": `area-${kind}` },
  ));
  const words = gen.rows.map((r) => figure(
    `Misaligned words · ${r.generator}`,
    "Share of this generator's rated images whose prompt word the majority of raters marked misaligned.",
    r.top_words.length
      ? shareBars({ rows: r.top_words.map((w) => ({ label: w.word, value: w.share, title: `${w.word}: ${w.count} of ${r.n_rated} images` })), axisLabel: "share of rated images (%)", ariaLabel: `most often misaligned words of ${r.generator}` })
      : h("p", { class: "note", text: "No word marked by a majority yet." }),
    { "data-chart": "words", "data-generator": r.generator },
  ));

  const model = gen.model;
  const trust = model
    ? h("div", { id: "model-trust", class: "narrow" },
      h("p", { class: "note", text: `How far to trust the estimate: the active model (v${model.version}) against the human scores on the rated dev items it was evaluated on. PLCC = Pearson, SRCC = Spearman correlation (1 = perfect, 0 = none); n = items.` }),
      h("div", { class: "table-wrap" }, h("table", { class: "trust" },
        h("thead", {}, h("tr", {}, ["score", "PLCC", "SRCC", "n"].map((t) => h("th", { scope: "col", text: t })))),
        h("tbody", {}, scores.map((name) => h("tr", { "data-score": name },
          h("td", { text: name }), h("td", { text: num(model.scores[name].plcc) }), h("td", { text: num(model.scores[name].srcc) }), h("td", { text: model.scores[name].n ?? "–" })))))))
    : h("p", { id: "model-trust", class: "note", text: "No active model: unrated images get no automatic estimate (train one on the learning page)." });

  body.replaceChildren(
    counts,
    h("h3", { text: "Mean normalised score per generator" }),
    h("div", { class: "grid2" }, scoreCharts),
    trust,
    h("h3", { text: "Pairwise differences" }),
    pairChart,
    pairTable,
    h("h3", { text: "Implausible regions and heatmap area" }),
    h("div", { class: "grid2" }, implausible, ...area),
    h("h3", { text: "Most often misaligned words" }),
    h("div", { class: "grid2" }, words),
  );
}
