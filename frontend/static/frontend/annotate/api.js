// JSON calls to the rater API with the session cookie and the page's CSRF token.
// Every failure becomes an ApiError carrying the server's {"detail", "errors", "code"}.

import { format, gettext } from "./i18n.js";

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

export class ApiError extends Error {
  constructor(status, body) {
    super(
      body?.detail ||
        (status ? format(gettext("The server answered %(status)s."), { status }) : gettext("The server cannot be reached.")),
    );
    this.status = status;
    this.errors = body?.errors || {};
    this.code = body?.code || "";
  }
}

export async function api(url, { method = "GET", body } = {}) {
  let response;
  try {
    response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        ...(method === "GET" ? {} : { "X-CSRFToken": csrfToken() }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { detail: gettext("The server cannot be reached. Your work is kept on this page; try again.") });
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// URLs are rendered by Django with a placeholder id 0: /api/assignments/0/submit/.
export const withId = (template, id) => template.replace("/0/", `/${id}/`);
