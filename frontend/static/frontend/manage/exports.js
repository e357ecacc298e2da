// Exports: start one with the command's options, follow its progress, then offer the download
// and its SHA-256 (the X-Checksum-SHA256 header of the download says the same).
import { config, csrfToken, errorText, percent, pollJob } from "./common.js";

const cfg = config();
const $ = (id) => document.getElementById(id);

function showExport(job, problem) {
  const panel = $("current-export");
  panel.hidden = false;
  if (problem) {
    $("export-job-error").hidden = false;
    $("export-job-error").textContent = problem;
    return;
  }
  panel.dataset.status = job.status;
  $("export-id").textContent = job.id;
  $("export-status").textContent = job.status;
  $("export-bar").value = job.progress;
  $("export-pct").textContent = percent(job.progress);
  const left = Object.entries(job.left_out || {})
    .map(([why, n]) => `${n} ${why}`)
    .join(", ");
  $("export-summary").textContent =
    job.status === "succeeded"
      ? `${job.items_exported} items exported${left ? `; left out: ${left}` : ""}.`
      : job.status === "failed"
        ? "The export failed."
        : "Exporting…";
  $("export-job-error").hidden = !job.error;
  $("export-job-error").textContent = job.error || "";
  if (job.download_url) {
    $("export-download").href = job.download_url;
    $("export-download").hidden = false;
    $("export-sha").textContent = job.sha256;
    $("export-checksum-row").hidden = false;
  }
}

const form = $("export-form");
if (form) {
  const format = $("format");
  // Only the options that apply to the chosen format can be ticked (the server refuses the rest).
  const sync = () => {
    $("with-images").disabled = format.value !== "tfrecord";
    $("image-bytes").disabled = format.value !== "parquet";
    if ($("with-images").disabled) $("with-images").checked = false;
    if ($("image-bytes").disabled) $("image-bytes").checked = false;
    $("with-images-field").classList.toggle("disabled", $("with-images").disabled);
    $("image-bytes-field").classList.toggle("disabled", $("image-bytes").disabled);
  };
  format.addEventListener("change", sync);
  sync();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    $("export-error").hidden = true;
    $("start-export").disabled = true;
    try {
      const response = await fetch(cfg.urls.create.replace("/0/", `/${$("campaign").value}/`), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({
          format: format.value,
          split: $("split").value,
          with_images: $("with-images").checked,
          include_image_bytes: $("image-bytes").checked,
        }),
      });
      const body = await response.json().catch(() => null);
      if (response.status !== 202) {
        $("export-error").hidden = false;
        $("export-error").textContent = errorText(body, `The export was refused (HTTP ${response.status}).`);
        return;
      }
      $("export-download").hidden = true;
      $("export-checksum-row").hidden = true;
      showExport(body, null);
      await pollJob(cfg.urls.job.replace("/0/", `/${body.id}/`), showExport);
    } finally {
      $("start-export").disabled = false;
    }
  });
}
