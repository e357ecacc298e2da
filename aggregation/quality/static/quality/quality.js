// The leads' rater-quality page: figures per rater, trend chart, actions and audit log, all
// from the JSON API; actions POST and redraw. "Recompute now" shows the run's progress.
import { PALETTE, trendChart } from "./trend.js";

const config = JSON.parse(document.getElementById("quality-config").textContent);
const root = document.getElementById("quality");
const urls = config.urls;

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

const num = (x, d = 2) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));
const pct = (x) => (x === null || x === undefined ? "–" : `${Math.round(x * 100)}%`);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
const withId = (url, id) => url.replace(/\/0\/([a-z]+\/)$/, `/${id}/$1`);

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

async function api(url, body = null) {
  const opts = body === null ? { credentials: "same-origin" } : {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
    body: JSON.stringify(body),
  };
  const res = await fetch(url, opts);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.detail || `HTTP ${res.status}`);
  return data;
}

function say(text, error = false) {
  const el = document.getElementById("message");
  el.textContent = text;
  el.classList.toggle("error", error);
  el.hidden = false;
}

async function act(url, body, done) {
  try {
    const data = await api(url, body);
    say(done(data));
  } catch (err) {
    say(err.message, true);
  }
  await load();
}

function askReason(what) {
  const reason = window.prompt(`Why ${what}? (goes into the audit log)`);
  return reason && reason.trim() ? reason.trim() : null;
}

let state = { summary: null };

function flagChips(flags) {
  return (flags || []).map((f) => h("span", { class: "flag-chip", text: f.replace("_", " ") }));
}

function raterRow(r) {
  const f = r.figures || {};
  const flagged = (f.flags || []).length > 0;
  const buttons = [];
  if (r.paused) {
    buttons.push(h("button", { class: "btn small ghost", type: "button", "data-action": "resume", text: "Resume",
      onclick: () => act(urls.resume, { rater_id: r.rater_id }, () => `${r.username} resumed.`) }));
  } else {
    buttons.push(h("button", { class: "btn small ghost", type: "button", "data-action": "pause", text: "Pause",
      onclick: () => { const reason = askReason(`pause ${r.username}`); if (reason) act(urls.pause, { rater_id: r.rater_id, reason }, (d) => d.created ? `${r.username} paused.` : `${r.username} was already paused.`); } }));
  }
  if (r.counting_answers > 0) {
    buttons.push(h("button", { class: "btn small ghost", type: "button", "data-action": "exclude", text: "Exclude all",
      onclick: () => { const reason = askReason(`exclude all ${r.counting_answers} answers of ${r.username}`); if (reason) act(urls.exclude, { rater_id: r.rater_id, reason }, (d) => d.created ? `${d.action.annotation_ids.length} answers of ${r.username} excluded; their items are back in the queue.` : "Nothing left to exclude."); } }));
  }
  const fast = (f.fast_answer_ids || []).length;
  if (fast > 0 && r.counting_answers > 0) {
    buttons.push(h("button", { class: "btn small ghost", type: "button", "data-action": "exclude-fast", text: `Exclude ${fast} fast`,
      title: "exclude only the answers faster than the policy's factor × the campaign median",
      onclick: () => { const reason = askReason(`exclude ${fast} fast answers of ${r.username}`); if (reason) act(urls.exclude, { annotation_ids: f.fast_answer_ids, reason }, (d) => d.created ? `${d.action.annotation_ids.length} fast answers of ${r.username} excluded.` : "Nothing left to exclude."); } }));
  }
  for (const p of r.proposals) {
    buttons.push(h("button", { class: "btn small", type: "button", "data-action": `apply-${p.kind}`, title: p.reason, text: `Apply: ${p.kind}`,
      onclick: () => act(withId(urls.apply, p.id), {}, () => `Proposal applied: ${p.kind} ${r.username}.`) }));
    buttons.push(h("button", { class: "btn small ghost", type: "button", "data-action": `dismiss-${p.kind}`, text: "Dismiss",
      onclick: () => act(withId(urls.dismiss, p.id), {}, () => "Proposal dismissed.") }));
  }
  const name = h("td", {}, r.username);
  return h("tr", { class: r.paused ? "paused" : flagged ? "flagged" : "", "data-rater": r.username },
    name,
    h("td", { text: String(r.counting_answers) }),
    h("td", { text: f.n_excluded ? String(f.n_excluded) : "0" }),
    h("td", { text: num(f.reliability) }),
    h("td", { text: num(f.keyword_competence) }),
    h("td", { text: num(f.score_consistency) }),
    h("td", { text: f.score_bias === null || f.score_bias === undefined ? "–" : `${f.score_bias > 0 ? "+" : ""}${num(f.score_bias)}` }),
    h("td", { text: num(f.map_agreement) }),
    h("td", { text: f.n_gold ? `${num(f.gold_accuracy)} (${f.n_gold})` : "–" }),
    h("td", { text: f.median_time_ms ? `${num(f.median_time_ms / 1000, 1)} s` : "–" }),
    h("td", { text: pct(f.fast_share) }),
    h("td", { class: "left" }, r.paused ? h("span", { class: "state-chip", text: "paused", title: r.paused_reason }) : null, flagChips(f.flags)),
    h("td", { class: "actions" }, buttons));
}

function renderRaters(summary) {
  const titles = { MACE: "keyword competence (MACE, 0–1)", "score r": "Pearson r of scores with the co-raters' mean", bias: "mean score difference from the co-raters, Likert points", maps: "map agreement with the leave-one-out consensus (soft IoU, 0–1)", median: "median time per answer", fast: "share of answers faster than the policy's factor × the campaign median" };
  const head = ["rater", "answers", "excluded", "reliability", "MACE", "score r", "bias", "maps", "gold", "median", "fast", "status"].map((t) => h("th", { class: t === "status" ? "left" : "", text: t, title: titles[t] || null }));
  head.push(h("th", { text: "actions" }));
  document.getElementById("raters-table").replaceChildren(
    h("thead", {}, h("tr", {}, head)),
    h("tbody", {}, summary.raters.map((r) => raterRow(r))));
}

function renderPolicy(p, run, last) {
  const mode = (m) => ({ off: "off", propose: "proposed to a lead", auto: "automatic" })[m];
  document.getElementById("policy").textContent =
    `Judged after ${p.min_answers} overlapping answers · flag below reliability ${num(p.reliability_threshold)} or gold accuracy ${num(p.gold_threshold)}, ` +
    `or when ≥ ${pct(p.fast_share_threshold)} of answers are faster than ${p.speed_factor}× the median · pause: ${mode(p.pause_mode)} · exclude: ${mode(p.exclude_mode)} · ` +
    `extra rater below item agreement ${num(p.redundancy_threshold)} (cap ${p.redundancy_cap}): ${mode(p.redundancy_mode)}.`;
  const status = document.getElementById("run-status");
  const bar = document.getElementById("run-progress");
  if (run && (run.state === "queued" || run.state === "running")) {
    status.textContent = `Recompute ${run.state}: ${run.stage || "waiting for a worker"} (${pct(run.progress)})`;
    bar.hidden = false;
    document.getElementById("run-progress-fill").style.width = `${Math.round(run.progress * 100)}%`;
  } else {
    bar.hidden = true;
    status.textContent = last ? `Figures from ${when(last.finished_at)}: ${last.n_answers} answers, ${last.n_raters} raters, median time ${num(last.median_time_ms / 1000, 1)} s.` : "No recompute has run yet. Press “Recompute now”.";
    if (run && run.state === "failed") status.textContent += ` Last run failed: ${run.error}`;
  }
  return run && (run.state === "queued" || run.state === "running");
}

function renderTrend(snapshots, summary) {
  const byRater = new Map();
  for (const snap of snapshots) {
    if (!byRater.has(snap.rater_id)) byRater.set(snap.rater_id, []);
    byRater.get(snap.rater_id).push({ t: new Date(snap.computed_at).getTime(), y: snap.reliability });
  }
  const names = new Map(summary.raters.map((r) => [r.rater_id, r.username]));
  const box = document.getElementById("trend");
  if (!snapshots.length) {
    box.replaceChildren(h("p", { class: "note", text: "No history yet: the chart fills in as recompute runs accumulate." }));
    return;
  }
  const series = [...byRater.entries()].map(([id, points], i) => ({ name: names.get(id) || `rater ${id}`, color: PALETTE[i % PALETTE.length], points }));
  const legend = h("div", { class: "trend-legend" }, series.map((se) => {
    const sw = h("span", { class: "swatch" });
    sw.style.background = se.color;
    return h("span", {}, sw, se.name);
  }));
  box.replaceChildren(trendChart({ series, threshold: summary.policy.reliability_threshold }), legend);
}

function renderItems(summary) {
  const panel = document.getElementById("items-panel");
  panel.hidden = summary.item_proposals.length === 0;
  document.getElementById("items-table").replaceChildren(
    h("thead", {}, h("tr", {}, ["item", "why", "actions"].map((t) => h("th", { text: t })))),
    h("tbody", {}, summary.item_proposals.map((a) => h("tr", {},
      h("td", {}, h("a", { href: urls.item.replace(/\/0\/$/, `/${a.item_id}/`), text: `item ${a.item_id}` })),
      h("td", { class: "reason", text: a.reason }),
      h("td", { class: "actions" },
        h("button", { class: "btn small", type: "button", text: "Add a rater", onclick: () => act(withId(urls.apply, a.id), {}, () => `Extra rater requested for item ${a.item_id}.`) }),
        h("button", { class: "btn small ghost", type: "button", text: "Dismiss", onclick: () => act(withId(urls.dismiss, a.id), {}, () => "Proposal dismissed.") }))))));
}

function renderAudit(actions) {
  const who = (a) => a.automatic ? "automatic" : (a.applied_by || a.dismissed_by || a.created_by || "–");
  document.getElementById("audit-table").replaceChildren(
    h("thead", {}, h("tr", {}, ["when", "action", "target", "state", "by", "why", "undone", ""].map((t) => h("th", { class: t === "why" ? "left" : "", text: t })))),
    h("tbody", {}, actions.map((a) => h("tr", { "data-action-id": String(a.id), "data-kind": a.kind, "data-state": a.state },
      h("td", { text: when(a.applied_at || a.created_at) }),
      h("td", { text: a.kind === "exclude" ? (a.state === "proposed" || a.state === "dismissed" ? "exclude all answers" : `exclude ${a.annotation_ids.length} answer(s)`) : a.kind === "redundancy" ? "extra rater" : a.kind }),
      h("td", { text: a.rater || (a.item_id ? `item ${a.item_id}` : "–") }),
      h("td", {}, h("span", { class: `state-chip ${a.state}`, text: a.state })),
      h("td", { text: who(a) }),
      h("td", { class: "reason", text: a.reason }),
      h("td", { text: a.undone_at ? `${when(a.undone_at)} by ${a.undone_by}` : "" }),
      h("td", { class: "actions" }, a.state === "applied" && a.kind !== "redundancy"
        ? h("button", { class: "btn small ghost", type: "button", "data-action": "undo", text: "Undo",
          onclick: () => act(withId(urls.undo, a.id), {}, () => `Undone: ${a.kind}${a.rater ? ` of ${a.rater}` : ""}. Aggregates follow.`) })
        : null)))));
}

let polling = null;

async function load() {
  try {
    const [summary, history, audit] = await Promise.all([api(urls.summary), api(urls.history), api(urls.audit)]);
    state.summary = summary;
    const busy = renderPolicy(summary.policy, summary.run, summary.last_done_run);
    renderRaters(summary);
    renderTrend(history.snapshots, summary);
    renderItems(summary);
    renderAudit(audit.actions);
    root.dataset.state = busy ? "running" : "ready";
    if (busy && !polling) polling = setTimeout(() => { polling = null; load(); }, 1500);
  } catch (err) {
    say(err.message, true);
    root.dataset.state = "error";
  }
}

document.getElementById("recompute").addEventListener("click", async () => {
  try {
    await api(urls.run, {});
    say("Recompute queued.");
  } catch (err) {
    say(err.message, true);
  }
  await load();
});

load();
