// The rater's annotation page: lease an item, edit the answer, submit or skip, next.
// It talks only to the rater API, which never returns other raters' answers or aggregates.

import { api, ApiError, withId } from "./api.js";
import { Doc } from "./doc.js";
import { Drafts, forgetLocalDraft, newestDraft } from "./drafts.js";
import { format, gettext } from "./i18n.js";
import { Viewer } from "./viewer.js";

const config = JSON.parse(document.getElementById("annotate-config").textContent);
const $ = (id) => document.getElementById(id);
const root = $("annotate");
const SCORES = ["plausibility", "alignment", "aesthetics", "overall"];
const WARN_BEFORE_MS = 2 * 60 * 1000;
const IDLE_AFTER_MS = 10 * 60 * 1000; // an untouched tab stops renewing, so the lease can lapse
const BUSY_RETRY_MS = 30 * 1000;
const NOTE_MS = 4000;

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
  hint: null, // {canvas, maps} of the current item's suggestion, once loaded
  hintShown: false, // the hint was on screen at some moment for this item
  suggestionAccepted: false,
  remainingForMe: undefined,
  metrics: { switches: [], imageReadyMs: [] },
};

// The draft endpoint sits next to submit: /api/assignments/<id>/draft/.
const draftUrl = config.urls.draft ?? config.urls.submit.replace(/submit\/$/, "draft/");
const drafts = new Drafts({ url: (id) => withId(draftUrl, id), collect: draftBody, onState: showDraftState });
const doc = new Doc(onDocChange);
const viewer = new Viewer($("canvas"), doc, {
  onViewChange: (scale) => {
    $("zoom-level").textContent = `${Math.round(scale * 100)}%`;
  },
  canEdit: () => root.dataset.state === "ready",
  onBlocked: (why) => {
    if (why === "hidden") showNote(gettext("Points are hidden, so nothing was added. Show the points (H) to add one."));
  },
  onSelect: (hit) => {
    $("point-remove").hidden = !hit;
  },
  onPaint: placeRemoveButton,
});
window.richhf = { viewer, doc, page, drafts, metrics: page.metrics };

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

let noteTimer = null;
function showNote(text) {
  const note = $("viewer-note");
  note.textContent = text;
  note.hidden = false;
  clearTimeout(noteTimer);
  noteTimer = setTimeout(() => {
    note.hidden = true;
  }, NOTE_MS);
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
      throw new ApiError(0, { detail: gettext("The image could not be loaded.") });
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
    drafts.stop();
    viewer.clear();
    clearItemUi();
    showMessage(gettext("Cannot load an item"), err.message, { retry: true });
    return;
  }
  refreshProgress();
  if (data.status !== "leased") {
    page.assignment = null;
    page.upcoming = [];
    drafts.stop();
    viewer.clear();
    clearItemUi();
    showQueueState(data);
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
    showMessage(
      gettext("Cannot show this item"),
      format(gettext("%(error)s You can skip it with a reason."), { error: err.message }),
      { retry: true },
    );
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

// Every state but "leased" gets its own words: a rater who never rated anything is not told
// they have finished, and one who has is not told to wait. `detail` is the server's sentence,
// already in the rater's language.
const QUEUE_STATES = {
  new: {
    title: gettext("Nothing to rate yet"),
    text: gettext("You have not rated any item in this campaign, and none is ready for you now. Items appear here as the campaign lead adds them."),
  },
  done: {
    title: gettext("Nothing to do"),
    text: gettext("You have rated or skipped every item this campaign has for you. Thank you!"),
  },
  busy: {
    title: gettext("All items are being worked on"),
    text: gettext("Every item left is reserved by another rater right now."),
    retry: true,
  },
  paused: {
    title: gettext("Your work here is paused"),
    text: gettext("The campaign lead has paused your work in this campaign. Your past answers are kept."),
  },
  not_qualified: {
    title: gettext("Not qualified for this campaign"),
    text: gettext("Your answers to the qualification items did not reach the threshold this campaign asks for."),
  },  qualification_unavailable: {
    title: gettext("Qualification not ready"),
    text: gettext("This campaign needs a qualification first, but it has no practice items left for you."),
  },
};

function showQueueState(data) {
  // An unknown status (a newer server) reads as "nothing for you now".
  const status = data.status in QUEUE_STATES ? data.status : "done";
  const state = QUEUE_STATES[status];
  let text = data.detail || state.text;
  if (status === "busy") {
    text = format(gettext("%(detail)s This page checks again every 30 seconds."), { detail: text });
    page.busyTimer = setTimeout(() => loadNext(), BUSY_RETRY_MS);
  }
  setState(status.replaceAll("_", "-"));
  showMessage(state.title, text, { retry: Boolean(state.retry) });
}

function showAssignment(assignment, image) {
  page.assignment = assignment;
  page.expired = false;
  doc.reset();
  clearScores();
  renderWords(assignment.item.words);
  hideAlert();
  hideMessage();
  closeSkip();
  viewer.setImage(image, assignment.item.width, assignment.item.height, config.campaign.radius_fraction);
  page.suggestionAccepted = false;
  page.hintShown = false;
  showSuggestion(assignment);
  page.shownAt = performance.now();
  page.clockPaused = document.hidden;
  page.activeMs = 0;
  page.expiresAt = 0;
  const restored = restoreDraft(assignment);
  $("item-timer").textContent = fmt(page.activeMs);
  // The live region speaks of this item only (the last one's points are gone).
  $("points-live").textContent = restored
    ? format(gettext("New item. Your draft is back: %(red)s red, %(blue)s blue points."), {
        red: doc.state.implausible.length,
        blue: doc.state.misaligned.length,
      })
    : gettext("New item.");
  updateCountdown();
  updateRemaining();
  onDocChange("load");
  drafts.start(assignment.id, { restored });
  setState("ready");
  // Keys go to the image first (tools, zoom, crosshair); Tab reaches words and scores.
  $("canvas").focus({ preventScroll: true });
  heartbeat(); // re-anchors the countdown on this machine's clock
}

// The form of no item: no words, points, scores, hint, timer or announcement left over.
function clearItemUi() {
  doc.reset();
  clearScores();
  renderWords([]);
  showSuggestion(null);
  closeSkip();
  hideAlert();
  onDocChange("load");
  $("points-live").textContent = "";
  $("item-timer").textContent = "0:00";
  page.activeMs = 0;
  page.expiresAt = 0;
  updateCountdown();
  updateSubmit();
}

function clearScores() {
  for (const name of SCORES) for (const input of document.getElementsByName(name)) input.checked = false;
}

// ------------------------------------------------------------------ drafts

function draftBody() {
  const item = page.assignment.item;
  const scored = scores();
  return {
    answer: {
      implausible_points: normalised(doc.state.implausible, item),
      misaligned_points: normalised(doc.state.misaligned, item),
      misaligned_words: [...doc.state.words].sort((a, b) => a - b),
      scores: Object.fromEntries(SCORES.map((n) => [n, scored[n] ?? null])),
      suggestion_accepted: page.suggestionAccepted,
    },
    time_spent_ms: activeTime(),
  };
}

// The lease's draft, as the server keeps it: points, words, scores and the time on the item.
function restoreDraft(assignment) {
  const draft = newestDraft(assignment.id, assignment.draft);
  if (!draft || typeof draft !== "object" || !draft.answer) return false;
  const a = draft.answer;
  const item = assignment.item;
  const pixels = (pts) =>
    Array.isArray(pts) ? pts.filter((p) => Array.isArray(p) && p.length === 2).map(([x, y]) => [x * item.width, y * item.height]) : [];
  doc.state = {
    implausible: pixels(a.implausible_points),
    misaligned: pixels(a.misaligned_points),
    words: Array.isArray(a.misaligned_words) ? a.misaligned_words.filter((i) => i >= 0 && i < item.words.length) : [],
  };
  for (const name of SCORES) {
    const v = a.scores?.[name];
    if (Number.isInteger(v) && v >= 1 && v <= 5) $(`${name}-${v}`).checked = true;
  }
  page.suggestionAccepted = Boolean(a.suggestion_accepted);
  if (Number.isFinite(draft.time_spent_ms) && draft.time_spent_ms > 0) page.activeMs = draft.time_spent_ms;
  return true;
}

function showDraftState(state) {
  const el = $("draft-state");
  el.dataset.state = state;
  el.textContent = {
    idle: "",
    saved: gettext("Draft saved"),
    saving: gettext("Saving…"),
    unsaved: gettext("Saving…"),
    off: gettext("Kept on this page"),
    lost: gettext("Draft not saved"),
    error: gettext("Not saved, retrying"),
  }[state];
  el.title = {
    off: gettext("This server keeps no drafts: your work is on this page until you submit."),
    lost: gettext("The reservation of this item ended, so the draft cannot be saved."),
  }[state] ?? "";
}

function answerChanged() {
  drafts.changed();
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

// An active-learning hint (campaigns with suggestions on): the predicted regions drawn over the
// image (hint.js, loaded only when there is one), the predicted words marked in the prompt.
// Nothing is pre-filled: the rater may accept the regions as points, then edit them.
function showSuggestion(assignment) {
  const suggestion = assignment?.suggestion ?? null;
  page.hint = null;
  viewer.setHint(null);
  $("hint").hidden = !suggestion;
  $("hint-accept").disabled = true;
  const hinted = new Set(suggestion?.misaligned_words ?? []);
  for (const chip of $("words").children) {
    const on = hinted.has(Number(chip.dataset.index));
    chip.classList.toggle("suggested", on);
    if (on) chip.title = gettext("The model suggests this word may be wrong");
    else chip.removeAttribute("title");
  }
  if (!suggestion) return;
  setHintVisible(viewer.showHint || !page.hintChosen);
  import("./hint.js")
    .then(async ({ loadHint }) => {
      const hint = await loadHint(suggestion);
      if (page.assignment !== assignment || !hint) return;
      page.hint = hint;
      viewer.setHint(hint.canvas);
      $("hint-accept").disabled = root.dataset.state !== "ready";
    })
    .catch(() => {});
}

function setHintVisible(visible) {
  viewer.showHint = visible;
  if (visible && page.assignment?.suggestion) page.hintShown = true;
  $("hint-toggle").setAttribute("aria-pressed", String(visible));
  $("hint-toggle").textContent = visible ? gettext("Hide hint") : gettext("Show hint");
  viewer.draw();
}

function toggleHint() {
  if (!page.assignment?.suggestion) return;
  page.hintChosen = true; // the rater's choice holds for the next items
  setHintVisible(!viewer.showHint);
}

async function acceptHint() {
  if (!page.hint || root.dataset.state !== "ready" || !page.assignment) return;
  const { pointsFromMap } = await import("./hint.js");
  const item = page.assignment.item;
  const rf = config.campaign.radius_fraction;
  const red = pointsFromMap(page.hint.maps.implausibility, item.width, item.height, rf);
  const blue = pointsFromMap(page.hint.maps.misalignment, item.width, item.height, rf);
  const words = page.assignment.suggestion.misaligned_words ?? [];
  if (!viewer.showOverlay) toggleOverlay();
  page.suggestionAccepted = true;
  doc.change((s) => {
    s.implausible.push(...red);
    s.misaligned.push(...blue);
    for (const w of words) if (!s.words.includes(w)) s.words.push(w);
  }, "accept-hint");
}

function onDocChange(what) {
  const s = doc.state;
  for (const chip of $("words").children) {
    chip.setAttribute("aria-pressed", String(s.words.includes(Number(chip.dataset.index))));
  }
  $("count-implausible").textContent = s.implausible.length;
  $("count-misaligned").textContent = s.misaligned.length;
  const said = {
    "add-implausible": gettext("Red point added."),
    "add-misaligned": gettext("Blue point added."),
    "remove-implausible": gettext("Red point removed."),
    "remove-misaligned": gettext("Blue point removed."),
    "accept-hint": gettext("The model's suggestion was added as points."),
    undo: gettext("Undone."),
    redo: gettext("Redone."),
  }[what];
  if (said) {
    $("points-live").textContent = `${said} ${format(gettext("%(red)s red, %(blue)s blue."), {
      red: s.implausible.length,
      blue: s.misaligned.length,
    })}`;
  }
  if (what !== "load") answerChanged();
  viewer.draw();
}

// Touch: the selected point gets a button to remove it, beside it on the image.
function placeRemoveButton() {
  const button = $("point-remove");
  const sel = viewer.selected;
  const pt = sel && doc.state[sel.kind][sel.index];
  if (!pt) {
    button.hidden = true;
    return;
  }
  const s = viewer.toScreen(pt[0], pt[1]);
  button.hidden = false;
  const x = Math.min(Math.max(s.x + 16, 4), viewer.cssW - button.offsetWidth - 4);
  const y = Math.min(Math.max(s.y - button.offsetHeight - 16, 4), viewer.cssH - button.offsetHeight - 4);
  button.style.transform = `translate(${Math.round(x)}px, ${Math.round(y)}px)`;
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
  const names = {
    plausibility: gettext("Plausibility"),
    alignment: gettext("Alignment"),
    aesthetics: gettext("Aesthetics"),
    overall: gettext("Overall"),
  };
  $("submit-why").textContent = !missing.length
    ? gettext("Ready to submit.")
    : missing.length === 4
      ? gettext("Set all four scores to submit.")
      : format(gettext("Set %(names)s to submit."), {
          names: missing.map((n) => names[n]).join(", "),
        });
}

// In the focused row focus follows the checked choice (as with arrow keys); a row picked
// because it was the first empty one leaves focus where it is, so "4354" fills all four.
function setScore(row, value, { focus }) {
  const input = document.getElementById(`${row}-${value}`);
  input.checked = true;
  if (focus) input.focus();
  updateSubmit();
  answerChanged();
}

function normalised(points, item) {
  const r = (v) => Math.round(v * 1e6) / 1e6;
  return points.map(([x, y]) => [r(Math.min(Math.max(x / item.width, 0), 1)), r(Math.min(Math.max(y / item.height, 0), 1))]);
}

function activeTime() {
  return Math.round(page.activeMs + (page.clockPaused ? 0 : performance.now() - page.shownAt));
}

// The time on the item counts while the page is visible. Paused once when it goes away
// (pagehide and visibilitychange both fire, in either order), so every last save sends the same time.
function pauseClock() {
  if (page.clockPaused) return;
  page.activeMs += performance.now() - page.shownAt;
  page.clockPaused = true;
}

function resumeClock() {
  if (!page.clockPaused) return;
  page.shownAt = performance.now();
  page.clockPaused = false;
}

async function submit() {
  if ($("submit").disabled || !page.assignment) return;
  const startedAt = performance.now();
  const assignment = page.assignment;
  const item = assignment.item;
  const body = {
    implausible_points: normalised(doc.state.implausible, item),
    misaligned_points: normalised(doc.state.misaligned, item),
    misaligned_words: [...doc.state.words].sort((a, b) => a - b),
    scores: scores(),
    time_spent_ms: activeTime(),
    suggestion_shown: Boolean(assignment.suggestion) && page.hintShown,
  };
  // A server that knows drafts (every payload has "draft") also takes suggestion_accepted;
  // an older one rejects unknown fields.
  if ("draft" in assignment) body.suggestion_accepted = page.suggestionAccepted;
  setState("submitting");
  drafts.hold();
  let response;
  try {
    response = await api(withId(config.urls.submit, assignment.id), { method: "POST", body });
  } catch (err) {
    drafts.resume();
    setState("ready");
    reportActionError(err, gettext("Not submitted"));
    return;
  }
  drafts.stop(); // the server drops the draft with the submit
  forgetLocalDraft();
  await afterSubmit(response, { startedAt, words: assignment.item.words });
}

// What follows an accepted answer: after a qualification answer only, the reference beside
// this answer (feedback.js); then the next item (already leased and its image preloaded).
async function afterSubmit(response, { startedAt = performance.now(), words = [] } = {}) {
  if (response.feedback) {
    setState("feedback");
    // Loaded only here: most answers get no feedback, so it stays out of the page's first load.
    const { showFeedback } = await import("./feedback.js");
    await showFeedback(response.feedback, { viewer, words });
  }
  await loadNext({ startedAt });
}

function reportActionError(err, what) {
  if (err.code === "lease_expired") {
    page.expired = true;
    page.expiresAt = Date.now();
    updateCountdown();
    showAlert(`${what}: ${err.message}`, { action: { label: gettext("Load the next item"), run: () => loadNext() } });
  } else {
    showAlert(
      `${what}: ${err.message} ${gettext("Your points, words and scores are still here.")}`,
      { errors: err.errors },
    );
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
      showAlert(gettext("Say why you skip this item."));
      return;
    }
  }
  setState("submitting");
  drafts.hold();
  try {
    await api(withId(config.urls.skip, page.assignment.id), { method: "POST", body: { reason } });
  } catch (err) {
    drafts.resume();
    setState("ready");
    reportActionError(err, gettext("Not skipped"));
    return;
  }
  drafts.stop();
  forgetLocalDraft();
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
      showAlert(err.message, { action: { label: gettext("Load the next item"), run: () => loadNext() } });
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
  $("lease-countdown").textContent = left > 0 ? fmt(left) : gettext("expired");
  lease.classList.toggle("warn", left > 0 && left < WARN_BEFORE_MS);
  lease.classList.toggle("expired", left <= 0);
  const warning = left < WARN_BEFORE_MS && !page.expired;
  if (warning && ($("alert").hidden || $("alert").dataset.lease)) {
    showAlert(
      left > 0
        ? format(gettext("This item stays reserved for you for %(time)s. Press a key or click to keep it."), {
            time: fmt(left),
          })
        : gettext("Your reservation of this item has lapsed. Press a key or click to renew it, if nobody else took it."),
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
    $("done-today").parentElement.title = format(gettext("You have done %(n)s in this campaign in all."), {
      n: p.done_total,
    });
  } catch {
    /* progress is informative only */
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden) {
    pauseClock();
    drafts.flush(); // the time on the item, too, for another device
  } else {
    resumeClock();
  }
});
window.addEventListener("pagehide", () => {
  pauseClock();
  drafts.flush();
});
// Leaving with changes the server does not have yet asks first.
window.addEventListener("beforeunload", (e) => {
  if (!drafts.unsaved || !page.assignment) return;
  e.preventDefault();
  e.returnValue = "";
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
  if (hidden) viewer.select(null);
  $("toggle-overlay").setAttribute("aria-pressed", String(hidden));
  $("toggle-overlay").textContent = hidden ? gettext("Show points") : gettext("Hide points");
}

function openGuidelines() {
  const dlg = $("guidelines");
  if (!dlg.open) dlg.showModal();
  loadDefaultGuidelines();
}

// The built-in guidelines are a static fragment (cached once, not in every page).
async function loadDefaultGuidelines() {
  const box = $("default-guidelines");
  if (!box || box.dataset.loaded) return;
  box.dataset.loaded = "1";
  try {
    const response = await fetch(box.dataset.src, { credentials: "same-origin" });
    if (!response.ok) throw new Error(String(response.status));
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    box.replaceChildren(...doc.body.childNodes);
  } catch {
    delete box.dataset.loaded;
    box.textContent = gettext("The guidelines could not be loaded. Close and open them again to retry.");
  }
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
$("point-remove").addEventListener("click", () => viewer.removeSelected());
$("hint-toggle").addEventListener("click", toggleHint);
$("hint-accept").addEventListener("click", acceptHint);
$("hint-opacity").addEventListener("input", () => {
  viewer.hintOpacity = Number($("hint-opacity").value) / 100;
  viewer.draw();
});
viewer.hintOpacity = Number($("hint-opacity").value) / 100;
for (const name of SCORES) {
  for (const input of document.getElementsByName(name)) {
    input.addEventListener("change", () => {
      updateSubmit();
      answerChanged();
    });
  }
}
for (const type of ["pointerdown", "keydown", "wheel"]) document.addEventListener(type, noteActivity, { passive: true });
document.addEventListener("pointermove", () => {
  page.lastActivity = Date.now();
}, { passive: true });

const isTyping = (el) => el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" || (el.tagName === "INPUT" && el.type !== "radio" && el.type !== "range"));
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
    // Enter submits a complete answer whatever has focus (chips and buttons toggle with
    // Space). Links, the skip form and, with an incomplete answer, buttons keep their own Enter.
    if (target.closest?.("#skip-form, #alert, .viewer-message")) return;
    if (!$("submit").disabled) {
      e.preventDefault();
      submit();
      return;
    }
    if (target.classList?.contains("chip")) {
      e.preventDefault(); // a word toggles with Space or a click only
      return;
    }
    if (isActivatable(target)) return;
    e.preventDefault();
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
    m: toggleHint,
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
