// Feedback after a qualification answer (issue 13): the reference answer laid over the image
// beside the rater's own disks, the reference words and scores beside theirs, and the
// answer's quality. The server sends it only after qualification answers, never after a
// honeypot, so nothing here runs on ordinary work.

import { format, gettext } from "./i18n.js";

const KINDS = [
  { kind: "implausibility", points: "implausible_points", map: "implausibility_map_url", rgb: [229, 57, 53], label: "artifacts" },
  { kind: "misalignment", points: "misaligned_points", map: "misalignment_map_url", rgb: [30, 99, 214], label: "misaligned" },
];
const SCORE_LABELS = {
  plausibility: gettext("Plausibility"),
  alignment: gettext("Alignment"),
  aesthetics: gettext("Aesthetics"),
  overall: gettext("Overall"),
};

// The stylesheet travels with the module: one <link>, same origin (the CSP allows 'self').
const css = document.createElement("link");
css.rel = "stylesheet";
css.href = new URL("./feedback.css", import.meta.url).href;
document.head.append(css);

const pct = (v) => `${Math.round(v * 100)}%`;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

function loadMap(url) {
  const img = new Image();
  img.src = url;
  return img.decode().then(() => img);
}

// A grayscale reference map as a transparent layer in the kind's colour: value = opacity.
function tint(img, [r, g, b]) {
  const c = document.createElement("canvas");
  c.width = img.naturalWidth;
  c.height = img.naturalHeight;
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, c.width, c.height);
  const px = data.data;
  for (let i = 0; i < px.length; i += 4) {
    const v = px[i];
    px[i] = r;
    px[i + 1] = g;
    px[i + 2] = b;
    px[i + 3] = Math.round(v * 0.6);
  }
  ctx.putImageData(data, 0, 0);
  return c;
}

class ReferenceLayer {
  constructor(viewer, reference) {
    this.viewer = viewer;
    this.reference = reference;
    this.maps = [];
    this.canvas = el("canvas", { id: "feedback-layer", class: "feedback-layer", "aria-hidden": "true" });
    viewer.canvas.after(this.canvas);
    this.last = "";
    this.running = true;
    Promise.all(
      KINDS.filter((k) => reference[k.map]).map((k) =>
        loadMap(reference[k.map]).then(
          (img) => this.maps.push(tint(img, k.rgb)),
          () => {},
        ),
      ),
    ).then(() => {
      this.last = "";
    });
    const loop = () => {
      if (!this.running) return;
      this.paintIfMoved();
      requestAnimationFrame(loop);
    };
    requestAnimationFrame(loop);
  }

  // Follows the viewer's zoom and pan: repaint whenever its transform or size changes.
  paintIfMoved() {
    const v = this.viewer;
    const key = [v.tx, v.ty, v.scale, v.canvas.width, v.canvas.height, this.maps.length, v.showOverlay].join();
    if (key === this.last) return;
    this.last = key;
    this.paint();
  }

  paint() {
    const v = this.viewer;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = v.canvas.width;
    this.canvas.height = v.canvas.height;
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (!v.image || !v.showOverlay) return;
    ctx.imageSmoothingEnabled = true;
    for (const map of this.maps) ctx.drawImage(map, v.tx, v.ty, v.width * v.scale, v.height * v.scale);
    const r = v.radiusFraction * v.height * v.scale;
    for (const k of KINDS) {
      for (const [x, y] of this.reference[k.points] || []) {
        const s = v.toScreen(x * v.width, y * v.height);
        // Black, white, then the kind's colour: the ring stays visible on any image, even
        // on a region of its own colour.
        ctx.beginPath();
        ctx.arc(s.x, s.y, r, 0, 2 * Math.PI);
        ctx.fillStyle = `rgba(${k.rgb.join(",")},0.22)`;
        ctx.fill();
        ctx.lineWidth = 7;
        ctx.strokeStyle = "rgba(0,0,0,0.75)";
        ctx.stroke();
        ctx.lineWidth = 4.5;
        ctx.strokeStyle = "#fff";
        ctx.stroke();
        ctx.lineWidth = 2;
        ctx.strokeStyle = `rgb(${k.rgb.join(",")})`;
        ctx.stroke();
      }
    }
  }

  remove() {
    this.running = false;
    this.canvas.remove();
  }
}

function qualificationLine(q) {
  if (q.status === "passed") {
    return el("p", { class: "feedback-verdict pass" }, format(gettext("You passed the qualification (mean quality %(quality)s, pass mark %(mark)s). Real items follow."), { quality: pct(q.mean_quality), mark: pct(q.threshold) }));
  }
  if (q.status === "failed") {
    return el(
      "p",
      { class: "feedback-verdict fail" },
      format(
        gettext("You did not reach the pass mark: mean quality %(quality)s, needed %(mark)s. This campaign has no work for you now; a project admin can let you try again."),
        { quality: pct(q.mean_quality), mark: pct(q.threshold) },
      ),
    );
  }
  return el("p", { class: "feedback-verdict" }, format(gettext("Mean quality so far %(quality)s; the pass mark is %(mark)s over %(required)s practice items."), { quality: pct(q.mean_quality), mark: pct(q.threshold), required: q.required }));
}

function wordsLine(label, indices, words) {
  const text = indices.length ? indices.map((i) => words[i] ?? `#${i}`).join(", ") : gettext("none");
  return el("p", {}, el("b", {}, `${label}: `), text);
}

function panelSection(feedback, words) {
  const q = feedback.qualification;
  const ref = feedback.reference;
  const table = el(
    "table",
    { class: "feedback-scores" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, gettext("Score")), el("th", { scope: "col" }, gettext("Yours")), el("th", { scope: "col" }, gettext("Reference")))),
    el(
      "tbody",
      {},
      ...Object.entries(SCORE_LABELS).map(([name, label]) => {
        const mine = feedback.yours.scores[name];
        const theirs = ref.scores[name];
        const off = Math.abs(mine - theirs) >= 1.5;
        return el("tr", off ? { class: "off" } : {}, el("th", { scope: "row" }, label), el("td", {}, String(mine)), el("td", {}, theirs.toFixed(1)));
      }),
    ),
  );
  const button = el("button", { type: "button", id: "feedback-continue", class: "primary" }, q.status === "pending" ? gettext("Next practice item") : gettext("Continue"));
  const section = el(
    "section",
    { id: "feedback", class: "block feedback", "aria-labelledby": "feedback-h", role: "region" },
    el("h2", { id: "feedback-h" }, format(gettext("Practice item %(answered)s of %(required)s: quality %(quality)s"), { answered: q.answered, required: q.required, quality: pct(feedback.quality) })),
    el(
      "p",
      { class: "feedback-legend" },
      el("span", { class: "ring", "aria-hidden": "true" }),
      " " + gettext("Solid rings and shading: the reference answer.") + " ",
      el("span", { class: "dashed", "aria-hidden": "true" }),
      " " + gettext("Dashed disks: yours."),
    ),
    wordsLine(gettext("Reference words"), ref.misaligned_words, words),
    wordsLine(gettext("Your words"), feedback.yours.misaligned_words, words),
    table,
    qualificationLine(q),
    button,
  );
  return { section, button };
}

// Shows the feedback and resolves when the rater chooses to go on.
export function showFeedback(feedback, { viewer, words }) {
  const layer = new ReferenceLayer(viewer, feedback.reference);
  const reference = new Set(feedback.reference.misaligned_words);
  for (const chip of document.getElementById("words").children) {
    chip.classList.toggle("reference", reference.has(Number(chip.dataset.index)));
  }
  const { section, button } = panelSection(feedback, words);
  const panel = document.querySelector(".panel");
  panel.insertBefore(section, panel.querySelector(".block"));
  panel.scrollTop = 0;
  button.focus({ preventScroll: true });
  return new Promise((resolve) => {
    button.addEventListener("click", () => {
      layer.remove();
      section.remove();
      resolve();
    });
  });
}
