// Campaign page: live preview of the guidelines (rendered and sanitised by the server, the
// same function the rater page uses) and the copy button of a one-time invite link.
import { config, csrfToken } from "./common.js";

const cfg = config();

function previewer(box) {
  const source = document.getElementById(box.dataset.source);
  if (!source) return;
  let timer = null;
  let sent = 0;
  const render = async () => {
    const ticket = ++sent;
    try {
      const response = await fetch(cfg.preview, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ text: source.value }),
      });
      const body = await response.json();
      if (ticket !== sent) return; // a newer keystroke's answer wins
      if (!response.ok) {
        box.textContent = body.detail || `Preview failed (HTTP ${response.status}).`;
        return;
      }
      // Server-sanitised HTML (markdown-it without raw HTML, then nh3's allow-list).
      box.innerHTML = body.html || '<p class="muted">Nothing to preview.</p>';
      box.dataset.state = "ready";
    } catch (err) {
      box.textContent = `Preview unavailable (${err.message}).`;
    }
  };
  source.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(render, 250);
  });
  render();
}

document.querySelectorAll(".md-preview").forEach(previewer);

const copy = document.getElementById("copy-link");
if (copy) {
  copy.addEventListener("click", async () => {
    const field = document.getElementById("invite-link");
    field.select();
    try {
      await navigator.clipboard.writeText(field.value);
      copy.textContent = "Copied";
    } catch {
      copy.textContent = "Select and copy";
    }
  });
}
