// Uploads and release imports: drop files (or one zip), send them with an upload progress bar,
// then follow the import job (progress bar, counts, every rejected row as FILE:LINE: reason).
import { config, csrfToken, errorText, percent, pollJob } from "./common.js";

const cfg = config();
const $ = (id) => document.getElementById(id);

function showJob(job, problem) {
  const panel = $("current-job");
  panel.hidden = false;
  if (problem) {
    $("job-error").hidden = false;
    $("job-error").textContent = problem;
    return;
  }
  $("job-id").textContent = job.id;
  $("job-status").textContent = job.status;
  panel.dataset.status = job.status;
  $("job-bar").value = job.progress;
  $("job-pct").textContent = percent(job.progress);
  $("job-summary").textContent =
    job.status === "succeeded" || job.status === "failed"
      ? `${job.imported} imported, ${job.already_present} already present, ${job.problems_count} rejected.`
      : `Importing ${job.file_names.join(", ")}…`;
  $("job-error").hidden = !job.error;
  $("job-error").textContent = job.error || "";
  const list = $("job-problems");
  list.replaceChildren(
    ...job.problems.map((text) => {
      const li = document.createElement("li");
      li.textContent = text;
      return li;
    }),
  );
}

function follow(jobId) {
  return pollJob(cfg.urls.job.replace("/0/", `/${jobId}/`), showJob);
}

// --- the upload form (admins only) ---
const form = $("upload-form");
if (form) {
  const input = $("files");
  const zone = $("dropzone");
  let chosen = [];

  const listFiles = () => {
    const total = chosen.reduce((n, f) => n + f.size, 0);
    $("file-list").replaceChildren(
      ...chosen.map((f) => {
        const li = document.createElement("li");
        li.textContent = `${f.name} (${(f.size / 1024).toFixed(1)} KiB)`;
        return li;
      }),
    );
    const error = $("upload-error");
    if (total > cfg.max_bytes) {
      error.hidden = false;
      error.textContent = `These files are ${total.toLocaleString()} bytes; the limit is ${cfg.max_bytes.toLocaleString()}.`;
    } else {
      error.hidden = true;
    }
    $("start-upload").disabled = chosen.length === 0 || total > cfg.max_bytes;
  };
  const add = (files) => {
    const byName = new Map(chosen.map((f) => [f.name, f]));
    for (const f of files) byName.set(f.name, f);
    chosen = [...byName.values()];
    listFiles();
  };

  input.addEventListener("change", () => add(input.files));
  zone.addEventListener("click", (e) => {
    if (e.target.tagName !== "LABEL") input.click();
  });
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      input.click();
    }
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => {
      e.preventDefault();
      zone.classList.add("over");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    zone.addEventListener(type, (e) => {
      e.preventDefault();
      zone.classList.remove("over");
    });
  }
  zone.addEventListener("drop", (e) => add(e.dataTransfer.files));

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData();
    data.append("kind", cfg.kind);
    for (const f of chosen) data.append("files", f, f.name);
    if ($("split")) data.append("split", $("split").value);
    if ($("as-gold")) data.append("as_gold", $("as-gold").checked ? "true" : "false");
    const url = cfg.urls.create.replace("/0/", `/${$("campaign").value}/`);
    // XMLHttpRequest, not fetch: only it reports upload progress.
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    $("send-progress").hidden = false;
    $("start-upload").disabled = true;
    $("upload-error").hidden = true;
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable) {
        $("send-bar").value = ev.loaded / ev.total;
        $("send-pct").textContent = percent(ev.loaded / ev.total);
      }
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status !== 202) {
        $("upload-error").hidden = false;
        $("upload-error").textContent = errorText(body, `The upload was refused (HTTP ${xhr.status}).`);
        $("send-progress").hidden = true;
        $("start-upload").disabled = false;
        return;
      }
      chosen = [];
      listFiles();
      $("send-progress").hidden = true;
      showJob(body, null);
      follow(body.id);
    });
    xhr.addEventListener("error", () => {
      $("upload-error").hidden = false;
      $("upload-error").textContent = "The upload did not reach the server (network error).";
      $("start-upload").disabled = false;
    });
    xhr.send(data);
  });
}

// --- the job page: follow a job that is still going ---
if (cfg.job_id) {
  const status = $("job-status").textContent.trim();
  if (status === "queued" || status === "running") follow(cfg.job_id);
}
