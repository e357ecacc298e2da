// Small inline-SVG chart helpers: no library, every number drawn from the cached payload.
const SVG = "http://www.w3.org/2000/svg";

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    // Through the CSSOM: the CSP (style-src 'self') drops style *attributes*, so widths and
    // custom properties set with setAttribute("style") were silently ignored.
    else if (k === "style") node.style.cssText = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

export function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined) continue;
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c) node.append(c);
  return node;
}

export const pct = (x, digits = 0) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(digits)}%`);
export const num = (x, digits = 2) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));

/**
 * Vertical bar chart. bars: [{label, value, title, cls}]; refs: [{bar, value, label}] draws a
 * dashed reference mark across bar index `bar` at `value` (same scale as values).
 */
export function barChart({ bars, width = 260, height = 150, max = null, format = (v) => v, refs = [], ariaLabel = "", ticks = null, maxBarWidth = 60 }) {
  const pad = { l: 30, r: 6, t: 14, b: 22 };
  const iw = width - pad.l - pad.r;
  const ih = height - pad.t - pad.b;
  const top = max ?? Math.max(1e-9, ...bars.map((b) => b.value), ...refs.map((r) => r.value));
  const bw = Math.min(maxBarWidth, iw / Math.max(1, bars.length));
  const y = (v) => pad.t + ih - (v / top) * ih;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": ariaLabel, class: "chart-svg" });
  svg.append(s("line", { x1: pad.l, x2: width - pad.r, y1: pad.t + ih, y2: pad.t + ih, class: "axis" }));
  svg.append(s("text", { x: pad.l - 4, y: pad.t + 4, class: "tick", "text-anchor": "end", text: format(top) }));
  svg.append(s("text", { x: pad.l - 4, y: pad.t + ih, class: "tick", "text-anchor": "end", text: format(0) }));
  bars.forEach((b, i) => {
    const x = pad.l + i * bw + bw * 0.12;
    const hgt = Math.max(0, pad.t + ih - y(b.value));
    const rect = s("rect", { x, y: y(b.value), width: bw * 0.76, height: hgt, class: `bar ${b.cls || ""}` });
    rect.append(s("title", { text: b.title ?? `${b.label}: ${format(b.value)}` }));
    svg.append(rect);
    if (b.label !== undefined && b.label !== "") {
      svg.append(s("text", { x: x + bw * 0.38, y: height - 7, class: "tick", "text-anchor": "middle", text: b.label }));
    }
  });
  // ticks: bin edges (bars.length + 1 values); whole numbers get a label at their edge
  (ticks || []).forEach((edge, i) => {
    if (!Number.isInteger(edge)) return;
    const x = pad.l + i * bw;
    svg.append(s("line", { x1: x, x2: x, y1: pad.t + ih, y2: pad.t + ih + 3, class: "axis" }));
    svg.append(s("text", { x, y: height - 7, class: "tick", "text-anchor": "middle", text: String(edge) }));
  });
  for (const r of refs) {
    const x0 = pad.l + r.bar * bw;
    const yy = y(r.value);
    svg.append(s("line", { x1: x0, x2: x0 + bw, y1: yy, y2: yy, class: "ref" }));
    svg.append(s("text", { x: x0 + 2, y: yy - 3, class: "ref-label", text: r.label }));
  }
  return svg;
}

/** Horizontal bullet: our share against the paper's mark. */
export function bullet({ value, ref, label, width = 260 }) {
  const height = 30;
  const pad = 4;
  const iw = width - 2 * pad;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "chart-svg bullet", role: "img",
    "aria-label": `${label}: ${pct(value)} (paper ${pct(ref)})` });
  svg.append(s("rect", { x: pad, y: 8, width: iw, height: 12, class: "track" }));
  svg.append(s("rect", { x: pad, y: 8, width: iw * (value ?? 0), height: 12, class: "fill" }));
  const rx = pad + iw * ref;
  svg.append(s("line", { x1: rx, x2: rx, y1: 3, y2: 25, class: "ref" }));
  return svg;
}

/** A raw-rating strip: five dots sized by the share of each Likert value. */
export function rawStrip(counts, width = 260) {
  const total = counts.reduce((a, b) => a + b, 0) || 1;
  const height = 34;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "chart-svg strip", role: "img",
    "aria-label": `raw ratings 1 to 5: ${counts.join(", ")}` });
  const step = (width - 40) / 5;
  counts.forEach((c, i) => {
    const share = c / total;
    const cx = 30 + step * i + step / 2;
    const circle = s("circle", { cx, cy: 13, r: 2 + 10 * Math.sqrt(share), class: "raw-dot" });
    circle.append(s("title", { text: `${i + 1}: ${c} ratings (${pct(share)})` }));
    svg.append(circle);
    svg.append(s("text", { x: cx, y: 32, class: "tick", "text-anchor": "middle", text: `${i + 1}·${pct(share)}` }));
  });
  return svg;
}
