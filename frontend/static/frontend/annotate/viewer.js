// Canvas image viewer with point editing.
//
// View transform: a screen (CSS) pixel s maps to image coordinate (s - t) / scale, and image
// coordinate p is drawn at t + p * scale. Points live in original-image coordinates, so zoom,
// pan, resizing and device pixel ratio never move them; markers are drawn in screen space at a
// constant size, and each point's disk of influence at true scale (radius_fraction x height).

import { KINDS } from "./doc.js";

const COLORS = {
  implausible: { solid: "#e53935", fill: "rgba(229,57,53,0.17)", edge: "rgba(229,57,53,0.95)" },
  misaligned: { solid: "#1e63d6", fill: "rgba(30,99,214,0.17)", edge: "rgba(30,99,214,0.95)" },
};
// Every disk and marker is ringed by a light AND a dark outline, so it stays visible on a red,
// an orange, a white or a black image alike (a coloured dashed edge alone vanishes on its own hue).
const LIGHT = "#ffffff";
const DARK = "#000000";
const MARKER_R = 5; // screen px
const HIT_R = 10; // screen px: a press this close to a point grabs it
const DRAG_START = 4; // screen px of movement before a press becomes a drag
const MARGIN = 12; // screen px around the fitted image
const TOUCH_HIT_R = 22; // screen px: a fingertip is less precise than a mouse

export class Viewer {
  constructor(
    canvas,
    doc,
    { onViewChange = () => {}, canEdit = () => true, onBlocked = () => {}, onSelect = () => {}, onPaint = () => {} } = {},
  ) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.doc = doc;
    this.onViewChange = onViewChange;
    this.canEdit = canEdit;
    this.onBlocked = onBlocked; // an edit refused, with why ("hidden")
    this.onSelect = onSelect; // touch: a tapped point is selected (or null)
    this.onPaint = onPaint; // after every frame (the remove button follows its point)
    this.hint = null; // offscreen canvas of the model's suggested regions, map resolution
    this.showHint = false;
    this.hintOpacity = 0.5;
    this.selected = null; // {kind, index} after a tap on a point (touch)
    this.touches = new Map(); // pointerId -> screen position, for pinch and two-finger pan
    this.gesture = null;
    this.tool = "implausible";
    this.image = null;
    this.width = 0;
    this.height = 0;
    this.radiusFraction = 0.05;
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.userView = false; // once the rater zooms or pans, a resize keeps their view
    this.showOverlay = true;
    this.hover = null;
    this.cross = null; // keyboard crosshair, image coordinates
    this.press = null;
    this.cssW = 0;
    this.cssH = 0;
    this.pending = false;

    canvas.addEventListener("pointerdown", (e) => this.onPointerDown(e));
    canvas.addEventListener("pointermove", (e) => this.onPointerMove(e));
    canvas.addEventListener("pointerup", (e) => this.onPointerUp(e));
    canvas.addEventListener("pointercancel", (e) => {
      this.touches.delete(e.pointerId);
      if (this.touches.size === 0) this.gesture = null;
      this.cancelPress();
    });
    canvas.addEventListener("pointerleave", () => {
      if (!this.press && this.hover) {
        this.hover = null;
        this.draw();
      }
    });
    canvas.addEventListener("wheel", (e) => this.onWheel(e), { passive: false });
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    canvas.addEventListener("keydown", (e) => this.onKeyDown(e));
    canvas.addEventListener("blur", () => {
      this.cross = null;
      this.draw();
    });
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    this.resize();
  }

  // ------------------------------------------------------------------ image and view

  setImage(image, width, height, radiusFraction) {
    this.image = image;
    this.width = width;
    this.height = height;
    this.radiusFraction = radiusFraction;
    this.hover = null;
    this.cross = null;
    this.press = null;
    this.touches.clear();
    this.gesture = null;
    this.select(null);
    this.fit();
  }

  setHint(hint) {
    this.hint = hint;
    this.draw();
  }

  clear() {
    this.image = null;
    this.hint = null;
    this.select(null);
    this.draw();
  }

  select(hit) {
    this.selected = hit;
    this.onSelect(hit);
    this.draw();
  }

  resize() {
    const rect = this.canvas.parentElement.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const oldCenter = this.cssW ? this.toImage(this.cssW / 2, this.cssH / 2) : null;
    this.cssW = rect.width;
    this.cssH = rect.height;
    this.canvas.width = Math.max(1, Math.round(rect.width * dpr));
    this.canvas.height = Math.max(1, Math.round(rect.height * dpr));
    if (!this.userView || !oldCenter) {
      this.fit();
      return;
    }
    this.tx = this.cssW / 2 - oldCenter.x * this.scale;
    this.ty = this.cssH / 2 - oldCenter.y * this.scale;
    this.viewChanged();
  }

  fitScale() {
    if (!this.width || !this.height) return 1;
    return Math.max(1e-3, Math.min((this.cssW - 2 * MARGIN) / this.width, (this.cssH - 2 * MARGIN) / this.height));
  }

  fit() {
    this.userView = false;
    this.scale = this.fitScale();
    this.tx = (this.cssW - this.width * this.scale) / 2;
    this.ty = (this.cssH - this.height * this.scale) / 2;
    this.viewChanged();
  }

  zoomAt(sx, sy, factor) {
    if (!this.image) return;
    const fit = this.fitScale();
    const next = Math.min(Math.max(this.scale * factor, fit * 0.5), Math.max(fit * 16, 8));
    const p = this.toImage(sx, sy);
    this.scale = next;
    this.tx = sx - p.x * next;
    this.ty = sy - p.y * next;
    this.userView = true;
    this.viewChanged();
  }

  zoomBy(factor) {
    if (this.cross) {
      const s = this.toScreen(this.cross.x, this.cross.y);
      this.zoomAt(s.x, s.y, factor);
    } else {
      this.zoomAt(this.cssW / 2, this.cssH / 2, factor);
    }
  }

  panBy(dx, dy) {
    this.tx += dx;
    this.ty += dy;
    this.userView = true;
    this.viewChanged();
  }

  viewChanged() {
    this.onViewChange(this.scale, this.fitScale());
    this.draw();
  }

  toImage(sx, sy) {
    return { x: (sx - this.tx) / this.scale, y: (sy - this.ty) / this.scale };
  }

  toScreen(x, y) {
    return { x: this.tx + x * this.scale, y: this.ty + y * this.scale };
  }

  eventPos(e) {
    const r = this.canvas.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  insideImage(p) {
    return p.x >= 0 && p.y >= 0 && p.x <= this.width && p.y <= this.height;
  }

  clampToImage(p) {
    return { x: Math.min(Math.max(p.x, 0), this.width), y: Math.min(Math.max(p.y, 0), this.height) };
  }

  // The point under a screen position, last drawn first (it is the one on top).
  hitTest(sx, sy, radius = HIT_R) {
    if (!this.showOverlay) return null;
    let best = null;
    let bestD = radius;
    for (const kind of KINDS) {
      const pts = this.doc.state[kind];
      for (let i = pts.length - 1; i >= 0; i--) {
        const s = this.toScreen(pts[i][0], pts[i][1]);
        const d = Math.hypot(s.x - sx, s.y - sy);
        if (d <= bestD) {
          bestD = d;
          best = { kind, index: i };
        }
      }
    }
    return best;
  }

  // ------------------------------------------------------------------ editing

  addPoint(p) {
    const kind = this.tool;
    this.doc.change((s) => s[kind].push([p.x, p.y]), `add-${kind}`);
  }

  removePoint(hit) {
    this.doc.change((s) => s[hit.kind].splice(hit.index, 1), `remove-${hit.kind}`);
    this.hover = null;
    if (this.selected) this.select(null);
  }

  removeSelected() {
    if (this.selected && this.doc.state[this.selected.kind][this.selected.index]) this.removePoint(this.selected);
  }

  togglePointAt(p) {
    if (!this.showOverlay) {
      this.onBlocked("hidden");
      return;
    }
    const s = this.toScreen(p.x, p.y);
    const hit = this.hitTest(s.x, s.y);
    if (hit) this.removePoint(hit);
    else if (this.insideImage(p)) this.addPoint(p);
  }

  setOverlay(visible) {
    this.showOverlay = visible;
    this.draw();
  }

  // ------------------------------------------------------------------ pointer

  onPointerDown(e) {
    if (!this.image) return;
    this.canvas.focus({ preventScroll: true });
    this.cross = null;
    const pos = this.eventPos(e);
    if (e.pointerType === "touch") {
      this.touches.set(e.pointerId, pos);
      if (this.touches.size >= 2) {
        // A second finger: whatever the first began becomes a pinch / two-finger pan.
        this.cancelPress();
        this.startGesture();
        e.preventDefault();
        return;
      }
    }
    const panOnly = e.button !== 0 || e.shiftKey;
    const touch = e.pointerType === "touch";
    const hit = panOnly || !this.canEdit() ? null : this.hitTest(pos.x, pos.y, touch ? TOUCH_HIT_R : HIT_R);
    this.press = {
      id: e.pointerId,
      start: pos,
      t0: { x: this.tx, y: this.ty },
      hit,
      panOnly,
      touch,
      moved: false,
      before: hit ? this.doc.snapshot() : null,
      grabOffset: hit ? this.offsetFromPoint(hit, pos) : null,
    };
    this.canvas.setPointerCapture(e.pointerId);
    e.preventDefault();
  }

  offsetFromPoint(hit, pos) {
    const [x, y] = this.doc.state[hit.kind][hit.index];
    const s = this.toScreen(x, y);
    return { x: s.x - pos.x, y: s.y - pos.y };
  }

  startGesture() {
    const [a, b] = [...this.touches.values()];
    this.gesture = {
      dist: Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)),
      mid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 },
    };
  }

  // Two fingers: the image point under their midpoint stays under it while they spread
  // (zoom) and move (pan).
  moveGesture() {
    const [a, b] = [...this.touches.values()];
    const dist = Math.max(1, Math.hypot(a.x - b.x, a.y - b.y));
    const mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
    const g = this.gesture;
    this.panBy(mid.x - g.mid.x, mid.y - g.mid.y);
    this.zoomAt(mid.x, mid.y, dist / g.dist);
    this.gesture = { dist, mid };
  }

  onPointerMove(e) {
    const pos = this.eventPos(e);
    if (e.pointerType === "touch" && this.touches.has(e.pointerId)) {
      this.touches.set(e.pointerId, pos);
      if (this.gesture && this.touches.size >= 2) {
        this.moveGesture();
        return;
      }
    }
    const press = this.press;
    if (!press) {
      const hover = this.hitTest(pos.x, pos.y);
      const changed = (hover?.kind ?? null) !== (this.hover?.kind ?? null) || (hover?.index ?? -1) !== (this.hover?.index ?? -1);
      this.hover = hover;
      this.canvas.classList.toggle("on-point", Boolean(hover));
      if (changed) this.draw();
      return;
    }
    if (!press.moved && Math.hypot(pos.x - press.start.x, pos.y - press.start.y) < DRAG_START) return;
    press.moved = true;
    if (press.hit) {
      const p = this.clampToImage(this.toImage(pos.x + press.grabOffset.x, pos.y + press.grabOffset.y));
      this.doc.state[press.hit.kind][press.hit.index] = [p.x, p.y];
      this.draw();
    } else {
      this.canvas.classList.add("panning");
      this.tx = press.t0.x + pos.x - press.start.x;
      this.ty = press.t0.y + pos.y - press.start.y;
      this.userView = true;
      this.viewChanged();
    }
  }

  onPointerUp(e) {
    if (e.pointerType === "touch") {
      this.touches.delete(e.pointerId);
      if (this.gesture) {
        // The gesture ends with the last finger; a finger left behind does not add a point.
        if (this.touches.size === 0) this.gesture = null;
        return;
      }
    }
    const press = this.press;
    if (!press) return;
    this.press = null;
    this.canvas.classList.remove("panning");
    const pos = this.eventPos(e);
    if (press.moved) {
      if (press.hit) this.doc.commitFrom(press.before, `move-${press.hit.kind}`);
      return;
    }
    if (press.panOnly || !this.canEdit()) return;
    const p = this.toImage(pos.x, pos.y);
    if (!this.showOverlay) {
      // Points are hidden: a click would add one nobody sees.
      if (this.insideImage(p)) this.onBlocked("hidden");
      return;
    }
    if (press.hit) {
      // A finger covers the point: a tap selects it (a button then removes it); a mouse
      // click removes it at once, as before.
      if (press.touch) this.select(press.hit);
      else this.removePoint(press.hit);
      return;
    }
    if (this.selected) {
      this.select(null);
      return;
    }
    if (this.insideImage(p)) this.addPoint(p);
  }

  cancelPress() {
    const press = this.press;
    this.press = null;
    this.canvas.classList.remove("panning");
    if (press?.moved && press.hit) {
      this.doc.state = press.before;
      this.draw();
    }
  }

  onWheel(e) {
    if (!this.image) return;
    e.preventDefault();
    const pos = this.eventPos(e);
    // Pixel-mode wheels (trackpads) send small deltas, line-mode mice about 100 per notch.
    const delta = e.deltaMode === 1 ? e.deltaY * 33 : e.deltaY;
    this.zoomAt(pos.x, pos.y, Math.exp(-delta * 0.002));
  }

  // ------------------------------------------------------------------ keyboard crosshair

  onKeyDown(e) {
    if (!this.image || e.ctrlKey || e.metaKey || e.altKey) return;
    const steps = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (steps[e.key]) {
      e.preventDefault();
      if (!this.cross) this.cross = this.clampToImage(this.toImage(this.cssW / 2, this.cssH / 2));
      const step = (e.shiftKey ? 40 : 8) / this.scale;
      const [dx, dy] = steps[e.key];
      this.cross = this.clampToImage({ x: this.cross.x + dx * step, y: this.cross.y + dy * step });
      this.keepVisible(this.cross);
      this.draw();
    } else if (e.key === " " && this.cross) {
      e.preventDefault();
      if (this.canEdit()) this.togglePointAt(this.cross);
    }
  }

  keepVisible(p) {
    const s = this.toScreen(p.x, p.y);
    const pad = 30;
    let dx = 0;
    let dy = 0;
    if (s.x < pad) dx = pad - s.x;
    if (s.x > this.cssW - pad) dx = this.cssW - pad - s.x;
    if (s.y < pad) dy = pad - s.y;
    if (s.y > this.cssH - pad) dy = this.cssH - pad - s.y;
    if (dx || dy) this.panBy(dx, dy);
  }

  // ------------------------------------------------------------------ drawing

  draw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.paint();
    });
  }

  paint() {
    const ctx = this.ctx;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.image) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    // Magnified: crisp pixels, so the rater sees exactly which pixels a point sits on.
    ctx.imageSmoothingEnabled = this.scale < 1;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(this.image, this.tx, this.ty, this.width * this.scale, this.height * this.scale);
    ctx.strokeStyle = "rgba(255,255,255,0.35)";
    ctx.lineWidth = 1;
    ctx.strokeRect(this.tx - 0.5, this.ty - 0.5, this.width * this.scale + 1, this.height * this.scale + 1);
    if (this.hint && this.showHint && this.hintOpacity > 0) {
      // The model's map covers the whole image whatever its own resolution: stretched to the
      // image's extent it keeps the image's aspect and follows zoom and pan.
      ctx.save();
      ctx.globalAlpha = this.hintOpacity;
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(this.hint, this.tx, this.ty, this.width * this.scale, this.height * this.scale);
      ctx.restore();
    }
    if (!this.showOverlay) {
      this.onPaint();
      return;
    }

    const r = this.radiusFraction * this.height * this.scale;
    for (const kind of KINDS) {
      const c = COLORS[kind];
      for (const [x, y] of this.doc.state[kind]) {
        const s = this.toScreen(x, y);
        ctx.beginPath();
        ctx.arc(s.x, s.y, r, 0, 2 * Math.PI);
        ctx.fillStyle = c.fill;
        ctx.fill();
        ctx.strokeStyle = DARK;
        ctx.lineWidth = 5;
        ctx.stroke();
        ctx.strokeStyle = LIGHT;
        ctx.lineWidth = 2;
        ctx.stroke();
        // The colour, dashed, just inside the two rings (never on top of them).
        if (r > 8) {
          ctx.beginPath();
          ctx.arc(s.x, s.y, r - 4, 0, 2 * Math.PI);
          ctx.setLineDash([6, 4]);
          ctx.strokeStyle = c.edge;
          ctx.lineWidth = 2;
          ctx.stroke();
          ctx.setLineDash([]);
        }
      }
    }
    for (const kind of KINDS) {
      const c = COLORS[kind];
      this.doc.state[kind].forEach(([x, y], i) => {
        const s = this.toScreen(x, y);
        const sel = this.selected && this.selected.kind === kind && this.selected.index === i;
        const hot = sel || (this.hover && this.hover.kind === kind && this.hover.index === i);
        if (hot) {
          ctx.beginPath();
          ctx.arc(s.x, s.y, r, 0, 2 * Math.PI);
          ctx.strokeStyle = c.solid;
          ctx.lineWidth = 2.5;
          ctx.stroke();
        }
        ctx.beginPath();
        ctx.arc(s.x, s.y, hot ? MARKER_R + 2 : MARKER_R, 0, 2 * Math.PI);
        ctx.fillStyle = c.solid;
        ctx.fill();
        ctx.lineWidth = 2;
        ctx.strokeStyle = LIGHT;
        ctx.stroke();
        ctx.beginPath();
        ctx.arc(s.x, s.y, (hot ? MARKER_R + 2 : MARKER_R) + 1.5, 0, 2 * Math.PI);
        ctx.lineWidth = 1.5;
        ctx.strokeStyle = DARK;
        ctx.stroke();
      });
    }
    if (this.cross) {
      const s = this.toScreen(this.cross.x, this.cross.y);
      const c = COLORS[this.tool];
      ctx.beginPath();
      ctx.arc(s.x, s.y, r, 0, 2 * Math.PI);
      ctx.setLineDash([3, 3]);
      ctx.strokeStyle = c.edge;
      ctx.lineWidth = 1.5;
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.beginPath();
      ctx.moveTo(s.x - 12, s.y);
      ctx.lineTo(s.x + 12, s.y);
      ctx.moveTo(s.x, s.y - 12);
      ctx.lineTo(s.x, s.y + 12);
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 3;
      ctx.stroke();
      ctx.strokeStyle = c.solid;
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
    this.onPaint();
  }
}
