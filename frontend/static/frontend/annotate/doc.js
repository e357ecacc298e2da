// The rater's answer for the current item, with undo/redo over whole snapshots (small: a few
// dozen points and word indices), so every change, including a drag, undoes in one step.
// Points are in ORIGINAL image pixels (continuous: pixel i spans [i, i+1)).

export const KINDS = ["implausible", "misaligned"];

export class Doc {
  constructor(onChange) {
    this.onChange = onChange;
    this.reset();
  }

  reset() {
    this.state = { implausible: [], misaligned: [], words: [] };
    this.undoStack = [];
    this.redoStack = [];
  }

  snapshot() {
    return structuredClone(this.state);
  }

  change(mutate, what = "") {
    const before = this.snapshot();
    mutate(this.state);
    this.commitFrom(before, what);
  }

  // For edits applied live (a drag): `before` is the snapshot taken when the edit began.
  commitFrom(before, what = "") {
    this.undoStack.push(before);
    if (this.undoStack.length > 500) this.undoStack.shift();
    this.redoStack = [];
    this.onChange(what);
  }

  undo() {
    if (!this.undoStack.length) return false;
    this.redoStack.push(this.snapshot());
    this.state = this.undoStack.pop();
    this.onChange("undo");
    return true;
  }

  redo() {
    if (!this.redoStack.length) return false;
    this.undoStack.push(this.snapshot());
    this.state = this.redoStack.pop();
    this.onChange("redo");
    return true;
  }

  toggleWord(index) {
    this.change((s) => {
      const at = s.words.indexOf(index);
      if (at >= 0) s.words.splice(at, 1);
      else s.words.push(index);
    }, "word");
  }
}
