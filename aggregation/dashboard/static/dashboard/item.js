// One item, its raters side by side: each panel draws the image with that rater's points
// (implausible red, misaligned blue; the disk radius is the campaign's, 1/20 of the height)
// and the prompt words they marked.
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
  const r = canvas.height / 20;
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
