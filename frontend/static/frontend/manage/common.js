// Shared by the admin pages: the CSRF token, JSON errors in the API's contract, job polling.

export function config() {
  const node = document.getElementById("manage-config");
  return node ? JSON.parse(node.textContent) : {};
}

export function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

// {"detail", "errors": {field: [...]}} -> one readable line.
export function errorText(body, fallback) {
  if (!body || typeof body !== "object") return fallback;
  const detail = body.detail || "";
  // Field messages the detail does not already say (a service error repeats it under its field).
  const extra = Object.entries(body.errors || {})
    .map(([field, messages]) => [field, [].concat(messages).filter((m) => !detail.includes(m))])
    .filter(([, messages]) => messages.length)
    .map(([field, messages]) => `${field}: ${messages.join(" ")}`)
    .join("; ");
  if (extra) return detail ? `${detail} (${extra})` : extra;
  return detail || fallback;
}

export function percent(fraction) {
  return `${Math.round(Math.max(0, Math.min(1, Number(fraction) || 0)) * 100)}%`;
}

// Polls url until the job is no longer queued or running; onUpdate gets each body.
export async function pollJob(url, onUpdate, intervalMs = 700) {
  for (;;) {
    let body = null;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      body = await response.json().catch(() => null);
      if (!response.ok) {
        onUpdate(null, errorText(body, `HTTP ${response.status}`));
        return null;
      }
    } catch (err) {
      onUpdate(null, `Lost contact with the server (${err.message}); retrying.`);
      await new Promise((r) => setTimeout(r, intervalMs * 3));
      continue;
    }
    onUpdate(body, null);
    if (body.status !== "queued" && body.status !== "running") return body;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
