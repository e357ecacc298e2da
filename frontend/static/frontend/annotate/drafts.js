// The draft of the current lease, kept on the server (PUT /api/assignments/<id>/draft/) so it
// follows the rater to a reload or another device. Saves are debounced; one is in flight at a
// time, and a change made meanwhile is saved right after it. A server without the endpoint
// (404/405) turns saving off: the page then only warns before leaving.

import { api } from "./api.js";

const DEBOUNCE_MS = 600;
const LOCAL_KEY = "richhf-draft";

// The draft to restore for a lease: the server's, or this browser's last one for the same
// lease when it is at least as far along (a reload that overtook its own last save).
export function newestDraft(assignmentId, serverDraft) {
  let local = null;
  try {
    local = JSON.parse(localStorage.getItem(LOCAL_KEY) || "null");
  } catch {
    local = null;
  }
  if (!local || local.assignment !== assignmentId || !local.answer) return serverDraft ?? null;
  if (serverDraft && !(local.time_spent_ms >= serverDraft.time_spent_ms)) return serverDraft;
  return { answer: local.answer, time_spent_ms: local.time_spent_ms };
}

export function forgetLocalDraft() {
  try {
    localStorage.removeItem(LOCAL_KEY);
  } catch {
    /* nothing kept */
  }
}

export class Drafts {
  constructor({ url, collect, onState = () => {} }) {
    this.url = url; // assignment id -> URL
    this.collect = collect; // () => {answer, time_spent_ms}
    this.onState = onState; // "idle" | "saving" | "saved" | "unsaved" | "off" | "lost" | "error"
    this.supported = true;
    this.assignmentId = null;
    this.dirty = false;
    this.timer = null;
    this.inFlight = null;
  }

  // A new lease: nothing unsaved yet (a restored draft is what the server already has).
  start(assignmentId, { restored = false } = {}) {
    clearTimeout(this.timer);
    this.assignmentId = assignmentId;
    this.dirty = false;
    this.onState(restored ? "saved" : "idle");
  }

  stop() {
    clearTimeout(this.timer);
    this.assignmentId = null;
    this.dirty = false;
  }

  // A submit or skip is on its way: no draft save for this lease meanwhile (the answer goes
  // with the submit); if it is refused, the pending change is saved after all.
  hold() {
    clearTimeout(this.timer);
  }

  resume() {
    if (this.dirty) this.changed();
  }

  changed() {
    if (this.assignmentId === null) return;
    this.dirty = true;
    this.onState(this.supported ? "unsaved" : "off");
    if (!this.supported) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.save(), DEBOUNCE_MS);
  }

  async save() {
    clearTimeout(this.timer);
    if (!this.supported || this.assignmentId === null || !this.dirty) return;
    if (this.inFlight) {
      await this.inFlight.catch(() => {});
      if (!this.dirty) return;
    }
    const id = this.assignmentId;
    this.dirty = false;
    this.onState("saving");
    this.inFlight = api(this.url(id), { method: "PUT", body: this.collect() });
    try {
      await this.inFlight;
      if (id === this.assignmentId) this.onState(this.dirty ? "unsaved" : "saved");
    } catch (err) {
      if (id !== this.assignmentId) return;
      if (err.status === 404 || err.status === 405) {
        this.supported = false;
        this.dirty = true;
        this.onState("off");
      } else if (err.status === 409) {
        this.onState("lost"); // the lease is gone; the heartbeat says so in words
      } else {
        this.dirty = true;
        this.onState("error");
        this.timer = setTimeout(() => this.save(), 5000);
      }
    } finally {
      this.inFlight = null;
    }
  }

  // The page is going away: a last save that outlives it (keepalive), with the time on the item.
  // The same state is kept in this browser too: a reload's next-item request may reach the
  // server before that last save does, and then the local copy is the newer one.
  flush() {
    if (this.assignmentId === null) return;
    const body = this.collect();
    try {
      localStorage.setItem(LOCAL_KEY, JSON.stringify({ assignment: this.assignmentId, ...body }));
    } catch {
      /* storage full or off: the server's copy will do */
    }
    if (!this.supported) return;
    const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
    try {
      fetch(this.url(this.assignmentId), {
        method: "PUT",
        keepalive: true,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify(body),
      }).catch(() => {});
    } catch {
      /* a browser without keepalive: the debounced save already has the answer */
    }
  }

  get unsaved() {
    return this.assignmentId !== null && (this.dirty || Boolean(this.inFlight));
  }
}
