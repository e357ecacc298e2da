// A small line chart for the reliability trend: x = time of each recompute run, y = 0..1.
// Plain SVG built through the DOM (CSP: no inline styles; colours are SVG attributes).
const SVG = "http://www.w3.org/2000/svg";
export const PALETTE = ["#2f5bd3", "#c62828", "#2e9a5b", "#e0a526", "#7b3fb5", "#00838f", "#5d4037", "#ad1457", "#546e7a", "#9e9d24"];

function s(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

function timeLabel(t) {
  const d = new Date(t);
  return `${d.toLocaleDateString(undefined, { month: "short", day: "numeric" })} ${d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })}`;
}

/**
 * series: [{name, color, points: [{t: ms, y: 0..1 | null}]}]; threshold: a dashed line (0..1).
 * Returns an <svg> with a y axis (ticks 0, .25, .5, .75, 1, label "reliability (0–1)") and an
 * x axis (first/middle/last run times, label "recompute run time").
 */
export function trendChart({ series, threshold = null, width = 900, height = 260, yLabel = "reliability (0–1)" }) {
  const pad = { l: 46, r: 12, t: 10, b: 40 };
  const iw = width - pad.l - pad.r;
  const ih = height - pad.t - pad.b;
  const times = series.flatMap((se) => se.points.map((p) => p.t));
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const span = Math.max(1, t1 - t0);
  const x = (t) => pad.l + (times.length > 1 && t1 > t0 ? ((t - t0) / span) * iw : iw / 2);
  const y = (v) => pad.t + ih - v * ih;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${yLabel} per rater over time`, class: "chart-svg", "data-chart": "trend" });
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(s("line", { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(s("text", { x: pad.l - 5, y: y(v) + 3, class: "tick", "text-anchor": "end" }, v.toFixed(2)));
  }
  svg.append(s("line", { x1: pad.l, x2: pad.l, y1: pad.t, y2: pad.t + ih, class: "axis" }));
  svg.append(s("line", { x1: pad.l, x2: width - pad.r, y1: pad.t + ih, y2: pad.t + ih, class: "axis" }));
  svg.append(s("text", { x: 11, y: pad.t + ih / 2, class: "axis-label", "text-anchor": "middle", transform: `rotate(-90 11 ${pad.t + ih / 2})` }, yLabel));
  const ticks = times.length ? [...new Set([t0, t0 + span / 2, t1])] : [];
  for (const t of ticks) {
    svg.append(s("line", { x1: x(t), x2: x(t), y1: pad.t + ih, y2: pad.t + ih + 4, class: "axis" }));
    svg.append(s("text", { x: x(t), y: pad.t + ih + 15, class: "tick", "text-anchor": "middle" }, timeLabel(t)));
  }
  svg.append(s("text", { x: pad.l + iw / 2, y: height - 4, class: "axis-label", "text-anchor": "middle" }, "recompute run time"));
  if (threshold !== null) {
    svg.append(s("line", { x1: pad.l, x2: width - pad.r, y1: y(threshold), y2: y(threshold), class: "ref" }));
    svg.append(s("text", { x: width - pad.r, y: y(threshold) - 4, class: "ref-label", "text-anchor": "end" }, `threshold ${threshold.toFixed(2)}`));
  }
  for (const se of series) {
    const pts = se.points.filter((p) => p.y !== null && p.y !== undefined);
    if (pts.length > 1) {
      svg.append(s("polyline", { points: pts.map((p) => `${x(p.t).toFixed(1)},${y(p.y).toFixed(1)}`).join(" "), class: "trend-line", stroke: se.color, "data-rater": se.name }));
    }
    for (const p of pts) {
      const dot = s("circle", { cx: x(p.t).toFixed(1), cy: y(p.y).toFixed(1), r: 3.5, class: "trend-dot", fill: se.color });
      dot.append(s("title", {}, `${se.name}: ${p.y.toFixed(2)} at ${timeLabel(p.t)}`));
      svg.append(dot);
    }
  }
  return svg;
}
