// The rater's annotation page: lease an item, edit the answer, submit or skip, next.
// It talks only to the rater API, which never returns other raters' answers or aggregates.

import { api, ApiError, withId } from "./api.js";
import { Doc } from "./doc.js";
import { showFeedback } from "./feedback.js";
import { Viewer } from "./viewer.js";

const config = JSON.parse(document.getElementById("annotate-config").textContent);
const $ = (id) => document.getElementById(id);
const root = $("annotate");
const SCORES = ["plausibility", "alignment", "aesthetics", "overall"];
const WARN_BEFORE_MS = 2 * 60 * 1000;
const IDLE_AFTER_MS = 10 * 60 * 1000; // an untouched tab stops renewing, so the lease can lapse
const BUSY_RETRY_MS = 30 * 1000;

const page = {
  assignment: null,
  upcoming: [],
  images: new Map(), // item id -> Promise<HTMLImageElement>
  leaseMs: config.campaign.lease_minutes * 60 * 1000,
  expiresAt: 0, // local clock
  lastBeat: 0,
  lastActivity: Date.now(),
  activeMs: 0,
  shownAt: 0,
  expired: false,
  busyTimer: null,
  metrics: { switches: [], imageReadyMs: [] },
};

const doc = new Doc(onDocChange);
const viewer = new Viewer($("canvas"), doc, {
  onViewChange: (scale) => {
    $("zoom-level").textContent = `${Math.round(scale * 100)}%`;
  },
  canEdit: () => root.dataset.state === "ready",
});
window.richhf = { viewer, doc, page, metrics: page.metrics };

// ------------------------------------------------------------------ states

function setState(state) {
  root.dataset.state = state;
  updateSubmit();
}

function showMessage(title, text, { retry = false } = {}) {
  $("viewer-message-title").textContent = title;
  $("viewer-message-text").textContent = text;
  $("retry").hidden = !retry;
  $("viewer-message").hidden = false;
}

function hideMessage() {
  $("viewer-message").hidden = true;
}

function showAlert(message, { errors = {}, kind = "error", action = null } = {}) {
  const box = $("alert");
  delete box.dataset.lease;
  box.replaceChildren();
  box.className = kind === "info" ? "alert info" : "alert";
  const p = document.createElement("div");
  p.textContent = message;
  box.append(p);
  const details = Object.entries(errors).flatMap(([field, msgs]) =>
    (Array.isArray(msgs) ? msgs : [JSON.stringify(msgs)]).map((m) => `${field}: ${typeof m === "string" ? m : JSON.stringify(m)}`),
  );
  if (details.length > 1 || (details.length === 1 && !message.includes(details[0].split(": ").slice(1).join(": ")))) {
    const ul = document.createElement("ul");
    for (const d of details) {
      const li = document.createElement("li");
      li.textContent = d;
      ul.append(li);
    }
    box.append(ul);
  }
  if (action) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = action.label;
    b.addEventListener("click", action.run);
    box.append(b);
  }
  box.hidden = false;
}

function hideAlert() {
  delete $("alert").dataset.lease;
  $("alert").hidden = true;
  $("alert").replaceChildren();
}

// ------------------------------------------------------------------ items

function loadImage(url) {
  const img = new Image();
  img.decoding = "async";
  img.alt = "";
  img.src = url;
  return img.decode().then(
    () => img,
    () => {
      throw new ApiError(0, { detail: "The image could not be loaded." });
    },
  );
}

function imageFor(item) {
  if (!page.images.has(item.id)) {
    const promise = loadImage(item.image_url);
    promise.catch(() => page.images.delete(item.id));
    page.images.set(item.id, promise);
  }
  return page.images.get(item.id);
}

async function loadNext({ startedAt = performance.now() } = {}) {
  clearTimeout(page.busyTimer);
  setState("loading");
  viewer.setOverlay(true);
  let data;
  try {
    data = await api(config.urls.next, { method: "POST", body: { lookahead: 1 } });
  } catch (err) {
    setState("error");
    page.assignment = null;
    viewer.clear();
    showMessage("Cannot load an item", err.message, { retry: true });
    return;
  }
  refreshProgress();
  if (data.status !== "leased") {
    page.assignment = null;
    page.upcoming = [];
    viewer.clear();
    clearItemUi();
    if (data.status === "busy") {
      setState("busy");
      showMessage("All items are being worked on", `${data.detail} This page checks again every 30 seconds.`, { retry: true });
      page.busyTimer = setTimeout(() => loadNext(), BUSY_RETRY_MS);
    } else {
      setState("done");
      const titles = { paused: "Your work is paused", not_qualified: "Qualification not passed", qualification_unavailable: "Qualification not ready" };
      showMessage(titles[data.status] ?? "Nothing to do", data.detail);
    }
    return;
  }
  const assignment = data.assignment;
  page.upcoming = data.upcoming;
  let image;
  const t0 = performance.now();
  try {
    image = await imageFor(assignment.item);
  } catch (err) {
    page.assignment = assignment;
    setState("error");
    showMessage("Cannot show this item", `${err.message} You can skip it with a reason.`, { retry: true });
    return;
  }
  page.metrics.imageReadyMs.push(Math.round(performance.now() - t0));
  showAssignment(assignment, image);
  page.metrics.switches.push(Math.round(performance.now() - startedAt));
  // Keep only images still useful, then warm the cache for the next item.
  for (const id of page.images.keys()) {
    if (id !== assignment.item.id && !page.upcoming.some((a) => a.item.id === id)) page.images.delete(id);
  }
  for (const next of page.upcoming) imageFor(next.item).catch(() => {});
}

function showAssignment(assignment, image) {
  page.assignment = assignment;
  page.expired = false;
  doc.reset();
  for (const name of SCORES) for (const input of document.getElementsByName(name)) input.checked = false;
  renderWords(assignment.item.words);
  showSuggestion(assignment.suggestion);
  hideAlert();
  hideMessage();
  closeSkip();
  viewer.setImage(image, assignment.item.width, assignment.item.height, config.campaign.radius_fraction);
  page.shownAt = performance.now();
  page.activeMs = 0;
  page.expiresAt = 0;
  $("item-timer").textContent = "0:00";
  updateCountdown();
  updateRemaining();
  onDocChange("load");
  setState("ready");
  // Keys go to the image first (tools, zoom, crosshair); Tab reaches words and scores.
  $("canvas").focus({ preventScroll: true });
  heartbeat(); // re-anchors the countdown on this machine's clock
}

function clearItemUi() {
  doc.reset();
  renderWords([]);
  onDocChange("load");
  page.expiresAt = 0;
  updateCountdown();
}

function renderWords(words) {
  const box = $("words");
  box.replaceChildren(
    ...words.map((word, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "chip";
      b.textContent = word; // the server's split (docs/protocol.md section 4), never re-split here
      b.dataset.index = String(i);
      b.setAttribute("aria-pressed", "false");
      b.addEventListener("click", () => {
        if (root.dataset.state === "ready") doc.toggleWord(i);
      });
      return b;
    }),
  );
}

// An active-learning hint (campaigns with suggestions on): a faint predicted heatmap and a
// dotted outline on predicted misaligned words. Nothing is pre-filled.
function showSuggestion(suggestion) {
  const box = $("suggestion");
  box.hidden = !suggestion;
  if (suggestion) $("suggestion-map").src = suggestion.implausibility_url;
  else $("suggestion-map").removeAttribute("src");
  const hinted = new Set(suggestion ? suggestion.misaligned_words : []);
  for (const chip of $("words").children) chip.classList.toggle("suggested", hinted.has(Number(chip.dataset.index)));
}

function onDocChange(what) {
  const s = doc.state;
  for (const chip of $("words").children) {
    chip.setAttribute("aria-pressed", String(s.words.includes(Number(chip.dataset.index))));
  }
  $("count-implausible").textContent = s.implausible.length;
  $("count-misaligned").textContent = s.misaligned.length;
  const said = {
    "add-implausible": "Red point added",
    "add-misaligned": "Blue point added",
    "remove-implausible": "Red point removed",
    "remove-misaligned": "Blue point removed",
    undo: "Undone",
    redo: "Redone",
  }[what];
  if (said) $("points-live").textContent = `${said}. ${s.implausible.length} red, ${s.misaligned.length} blue.`;
  viewer.draw();
}

// ------------------------------------------------------------------ scores and submit

function scores() {
  const out = {};
  for (const name of SCORES) {
    const checked = document.querySelector(`input[name="${name}"]:checked`);
    if (checked) out[name] = Number(checked.value);
  }
  return out;
}

function updateSubmit() {
  const missing = SCORES.filter((n) => !(n in scores()));
  const ready = root.dataset.state === "ready";
  $("submit").disabled = !ready || missing.length > 0;
  $("skip").disabled = !(ready || root.dataset.state === "error") || !page.assignment;
  $("submit-why").textContent = missing.length
    ? `Set ${missing.length === 4 ? "all four scores" : missing.join(", ")} to submit.`
    : "Ready to submit.";
}

// In the focused row focus follows the checked choice (as with arrow keys); a row picked
// because it was the first empty one leaves focus where it is, so "4354" fills all four.
function setScore(row, value, { focus }) {
  const input = document.getElementById(`${row}-${value}`);
  input.checked = true;
  if (focus) input.focus();
  updateSubmit();
}

function normalised(points, item) {
  const r = (v) => Math.round(v * 1e6) / 1e6;
  return points.map(([x, y]) => [r(Math.min(Math.max(x / item.width, 0), 1)), r(Math.min(Math.max(y / item.height, 0), 1))]);
}

function activeTime() {
  return Math.round(page.activeMs + (document.hidden ? 0 : performance.now() - page.shownAt));
}

async function submit() {
  if ($("submit").disabled || !page.assignment) return;
  const startedAt = performance.now();
  const item = page.assignment.item;
  const body = {
    implausible_points: normalised(doc.state.implausible, item),
    misaligned_points: normalised(doc.state.misaligned, item),
    misaligned_words: [...doc.state.words].sort((a, b) => a - b),
    scores: scores(),
    time_spent_ms: activeTime(),
    suggestion_shown: Boolean(page.assignment.suggestion),
  };
  setState("submitting");
  let result;
  try {
    result = await api(withId(config.urls.submit, page.assignment.id), { method: "POST", body });
  } catch (err) {
    setState("ready");
    reportActionError(err, "Not submitted");
    return;
  }
  // Only after a qualification answer: the reference beside this answer, before moving on.
  if (result.feedback) {
    setState("feedback");
    await showFeedback(result.feedback, { viewer, words: item.words });
  }
  await loadNext({ startedAt });
}

function reportActionError(err, what) {
  if (err.code === "lease_expired") {
    page.expired = true;
    page.expiresAt = Date.now();
    updateCountdown();
    showAlert(`${what}: ${err.message}`, { action: { label: "Load the next item", run: () => loadNext() } });
  } else {
    showAlert(`${what}: ${err.message} Your points, words and scores are still here.`, { errors: err.errors });
  }
}

// ------------------------------------------------------------------ skip

function openSkip() {
  if ($("skip").disabled) return;
  $("skip-form").hidden = false;
  $("skip-reason").focus();
}

function closeSkip() {
  $("skip-form").hidden = true;
  $("skip-other").hidden = true;
  $("skip-other").value = "";
  $("skip-reason").selectedIndex = 0;
}

async function confirmSkip(e) {
  e.preventDefault();
  if (!page.assignment) return;
  let reason = $("skip-reason").value;
  if (reason === "other") {
    reason = $("skip-other").value.trim();
    if (!reason) {
      $("skip-other").focus();
      showAlert("Say why you skip this item.");
      return;
    }
  }
  setState("submitting");
  try {
    await api(withId(config.urls.skip, page.assignment.id), { method: "POST", body: { reason } });
  } catch (err) {
    setState("ready");
    reportActionError(err, "Not skipped");
    return;
  }
  closeSkip();
  await loadNext();
}

// ------------------------------------------------------------------ lease, timer, progress

async function heartbeat() {
  const assignment = page.assignment;
  if (!assignment) return;
  page.lastBeat = Date.now();
  try {
    const sentAt = Date.now();
    await api(withId(config.urls.heartbeat, assignment.id), { method: "POST" });
    if (page.assignment !== assignment) return;
    page.expiresAt = sentAt + page.leaseMs;
    page.expired = false;
  } catch (err) {
    if (page.assignment !== assignment) return;
    if (err.code === "lease_expired" || err.status === 409) {
      page.expired = true;
      page.expiresAt = Date.now();
      showAlert(err.message, { action: { label: "Load the next item", run: () => loadNext() } });
    }
  }
  updateCountdown();
}

function fmt(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(total / 60);
  const s = String(total % 60).padStart(2, "0");
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function updateCountdown() {
  const lease = $("lease");
  if (!page.assignment || !page.expiresAt) {
    $("lease-countdown").textContent = "–";
    lease.classList.remove("warn", "expired");
    return;
  }
  const left = page.expiresAt - Date.now();
  $("lease-countdown").textContent = left > 0 ? fmt(left) : "expired";
  lease.classList.toggle("warn", left > 0 && left < WARN_BEFORE_MS);
  lease.classList.toggle("expired", left <= 0);
  const warning = left < WARN_BEFORE_MS && !page.expired;
  if (warning && ($("alert").hidden || $("alert").dataset.lease)) {
    showAlert(
      left > 0
        ? `This item stays reserved for you for ${fmt(left)}. Press a key or click to keep it.`
        : "Your reservation of this item has lapsed. Press a key or click to renew it, if nobody else took it.",
      { kind: "info" },
    );
    $("alert").dataset.lease = "1";
  } else if (!warning && $("alert").dataset.lease) {
    hideAlert();
  }
}

function tick() {
  if (page.assignment && root.dataset.state === "ready") {
    $("item-timer").textContent = fmt(activeTime());
    const since = Date.now() - page.lastBeat;
    const active = Date.now() - page.lastActivity < IDLE_AFTER_MS;
    const beatEvery = Math.min(60 * 1000, page.leaseMs / 4);
    if (active && !page.expired && since > beatEvery) heartbeat();
  }
  updateCountdown();
}

function noteActivity() {
  page.lastActivity = Date.now();
  const left = page.expiresAt - Date.now();
  if (page.assignment && left < WARN_BEFORE_MS && Date.now() - page.lastBeat > 3000) heartbeat();
}

// The server counts items nobody has given this rater yet; the ones they hold (this one and
// the preloaded next) are still left for them too.
function updateRemaining() {
  if (page.remainingForMe === undefined) return;
  $("remaining").textContent = page.remainingForMe + (page.assignment ? 1 : 0) + page.upcoming.length;
}

async function refreshProgress() {
  try {
    const p = await api(config.urls.progress);
    $("done-today").textContent = p.done_today;
    page.remainingForMe = p.remaining_for_me;
    updateRemaining();
    $("campaign-left").textContent = p.campaign_items_remaining;
    $("done-today").parentElement.title = `You have done ${p.done_total} in this campaign in all.`;
  } catch {
    /* progress is informative only */
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) page.activeMs += performance.now() - page.shownAt;
  page.shownAt = performance.now();
});

// ------------------------------------------------------------------ controls

function setTool(tool) {
  viewer.tool = tool;
  for (const b of document.querySelectorAll(".tool")) b.setAttribute("aria-checked", String(b.dataset.tool === tool));
  viewer.draw();
}

function toggleOverlay() {
  const hidden = viewer.showOverlay;
  viewer.setOverlay(!hidden);
  $("toggle-overlay").setAttribute("aria-pressed", String(hidden));
  $("toggle-overlay").textContent = hidden ? "Show points" : "Hide points";
}

function openGuidelines() {
  const dlg = $("guidelines");
  if (!dlg.open) dlg.showModal();
}

for (const b of document.querySelectorAll(".tool")) b.addEventListener("click", () => setTool(b.dataset.tool));
$("zoom-in").addEventListener("click", () => viewer.zoomBy(1.25));
$("zoom-out").addEventListener("click", () => viewer.zoomBy(0.8));
$("zoom-fit").addEventListener("click", () => viewer.fit());
$("toggle-overlay").addEventListener("click", toggleOverlay);
$("open-guidelines").addEventListener("click", openGuidelines);
$("submit").addEventListener("click", submit);
$("skip").addEventListener("click", openSkip);
$("skip-cancel").addEventListener("click", closeSkip);
$("skip-form").addEventListener("submit", confirmSkip);
$("skip-reason").addEventListener("change", () => {
  const other = $("skip-reason").value === "other";
  $("skip-other").hidden = !other;
  if (other) $("skip-other").focus();
});
$("retry").addEventListener("click", () => loadNext());
for (const name of SCORES) {
  for (const input of document.getElementsByName(name)) input.addEventListener("change", updateSubmit);
}
for (const type of ["pointerdown", "keydown", "wheel"]) document.addEventListener(type, noteActivity, { passive: true });
document.addEventListener("pointermove", () => {
  page.lastActivity = Date.now();
}, { passive: true });

const isTyping = (el) => el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" || (el.tagName === "INPUT" && el.type !== "radio"));
const isActivatable = (el) => el && (el.tagName === "BUTTON" || el.tagName === "A" || el.tagName === "SUMMARY");

document.addEventListener("keydown", (e) => {
  const target = e.target;
  if ($("guidelines").open) {
    if (e.key === "?" || e.key === "g") {
      e.preventDefault();
      $("guidelines").close();
    }
    return;
  }
  if (e.key === "Escape" && !$("skip-form").hidden) {
    closeSkip();
    $("skip").focus();
    return;
  }
  if (isTyping(target)) return;
  const mod = e.ctrlKey || e.metaKey;
  if (mod && (e.key === "z" || e.key === "Z")) {
    e.preventDefault();
    if (root.dataset.state !== "ready") return;
    if (e.shiftKey) doc.redo();
    else doc.undo();
    return;
  }
  if (mod && e.key === "y") {
    e.preventDefault();
    if (root.dataset.state === "ready") doc.redo();
    return;
  }
  if (mod || e.altKey) return;
  const key = e.key;
  if (/^[1-5]$/.test(key)) {
    const focused = target.closest?.(".score-row")?.dataset.score;
    const row = focused ?? SCORES.find((n) => !(n in scores()));
    if (row) {
      e.preventDefault();
      setScore(row, key, { focus: Boolean(focused) });
    }
    return;
  }
  if (key === "Enter") {
    if (isActivatable(target) && target.id !== "submit") return;
    e.preventDefault();
    submit();
    return;
  }
  const actions = {
    r: () => setTool("implausible"),
    b: () => setTool("misaligned"),
    "+": () => viewer.zoomBy(1.25),
    "=": () => viewer.zoomBy(1.25),
    "-": () => viewer.zoomBy(0.8),
    _: () => viewer.zoomBy(0.8),
    0: () => viewer.fit(),
    h: toggleOverlay,
    "?": openGuidelines,
    g: openGuidelines,
    s: openSkip,
  };
  const action = actions[key] ?? (key.length === 1 && !e.shiftKey ? actions[key.toLowerCase()] : undefined);
  if (action) {
    e.preventDefault();
    action();
  }
});

setInterval(tick, 1000);
loadNext();
