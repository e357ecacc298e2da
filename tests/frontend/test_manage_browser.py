"""The admin pages in Debian's Chromium against the live server: every action an admin takes,
what a lead and a rater are refused, and the screenshots under docs/screenshots/."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import zipfile
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import expect

from aggregation.exports import jobs, services
from aggregation.exports.models import ExportJob, ImportedLabel, ImportJob
from annotation.models import Campaign, Item
from richhf_site.models import Invite
from tests.aggregation.exports.test_export_import import annotated  # noqa: F401 (fixture)
from tests.aggregation.exports.test_jobs import BAD_ROWS_CSV, bad_rows_zip, zip_of
from tests.conftest import SCREENSHOTS, docs_screenshot, png_bytes

from .conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def screenshot(page, name: str, *, docs: bool = False, full_page: bool = False) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    if docs:
        docs_screenshot(path, name)
    return path


@pytest.fixture
def background_jobs(monkeypatch):
    """Jobs run in a thread of this process, as a worker would run them, so the page really
    polls a job that is queued, then running, then done (test_jobs_worker.py uses Celery)."""
    threads: list[threading.Thread] = []

    def spawn(target, **kwargs):
        def run():
            try:
                target(**kwargs)
            except Exception:  # noqa: BLE001 - the job row records the failure; the page shows it
                pass
            finally:
                connection.close()

        thread = threading.Thread(target=run, daemon=True)
        threads.append(thread)
        thread.start()

    monkeypatch.setattr(jobs, "_import_job_enqueue", lambda job_id: spawn(jobs.import_job_run, job_id=job_id))
    monkeypatch.setattr(services, "_export_job_enqueue", lambda job_id: spawn(services.export_job_run, job_id=job_id))
    yield
    for thread in threads:
        thread.join(timeout=60)


def as_admin(page, live_server, make_user):
    make_user("root", "admin")
    page.set_viewport_size(DESKTOP)
    login(page, live_server.url, "root")


def test_admin_creates_and_edits_a_campaign_with_a_safe_preview(live_server, page, make_user):
    as_admin(page, live_server, make_user)
    page.goto(f"{live_server.url}/manage/campaigns/")
    page.click("#new-campaign")
    page.fill("#id_name", "Pick-a-Pic batch 2")
    page.fill("#id_raters_per_item", "5")
    page.fill("#id_radius_fraction", "0.04")
    page.fill("#id_lease_minutes", "25")
    page.check("#id_show_suggestions")
    page.check("#id_qualification_required")
    page.fill("#id_honeypot_share", "0.1")
    page.fill(
        "#id_guidelines",
        "## What to mark\n\n- **Implausible** regions: extra fingers, melted text\n"
        "- Misaligned words: what the image *lacks*\n\n<script>alert('x')</script>\n\n[more](javascript:alert(1))",
    )
    page.fill("#id_guidelines_zh_hans", "## 标注什么\n\n- **不合理**的区域")
    preview = page.locator("#preview-guidelines")
    expect(preview.locator("strong")).to_have_text("Implausible")
    expect(preview.locator("h2")).to_have_text("What to mark")
    expect(preview).to_contain_text("<script>alert('x')</script>")  # shown as text
    assert preview.locator("script").count() == 0 and preview.locator("a[href^=javascript]").count() == 0
    expect(page.locator("#preview-zh strong")).to_have_text("不合理")
    page.click("#save")
    expect(page.locator("#saved")).to_have_text("Saved.")
    campaign = Campaign.objects.get(name="Pick-a-Pic batch 2")
    assert (campaign.raters_per_item, campaign.radius_fraction, campaign.lease_minutes) == (5, 0.04, 25)
    assert campaign.show_suggestions and campaign.qualification_required and campaign.honeypot_share == 0.1
    assert campaign.guidelines_translations["zh-hans"].startswith("## 标注什么")
    screenshot(page, "campaigns", docs=True)
    # Edit: a bad value is named at its field, nothing saved; then a good one.
    page.fill("#id_radius_fraction", "0.9")
    page.click("#save")
    expect(page.locator('.field-error[data-field="radius_fraction"]')).to_contain_text("less than or equal to 0.5")
    campaign.refresh_from_db()
    assert campaign.radius_fraction == 0.04
    page.fill("#id_radius_fraction", "0.06")
    page.uncheck("#id_show_suggestions")
    page.click("#save")
    expect(page.locator("#saved")).to_be_visible()
    campaign.refresh_from_db()
    assert campaign.radius_fraction == 0.06 and not campaign.show_suggestions
    page.goto(f"{live_server.url}/manage/campaigns/")
    expect(page.locator("#campaign-table")).to_contain_text("Pick-a-Pic batch 2")
    screenshot(page, "campaigns-list")
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/manage/campaigns/{campaign.pk}/")
    expect(page.locator("#preview-guidelines strong")).to_have_text("Implausible")
    screenshot(page, "campaigns-phone", docs=True)
    # Nothing sticks out sideways on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_admin_invites_by_username_csv_and_one_time_link(live_server, page, browser, make_user, make_campaign):
    campaign = make_campaign("team")
    for name in ("alice", "bob", "carol"):
        make_user(name)
    as_admin(page, live_server, make_user)
    page.goto(f"{live_server.url}/manage/campaigns/{campaign.pk}/")
    page.fill("#usernames", "alice\nghost")
    page.click("#invite-names button[type=submit]")
    expect(page.locator("#invite-report")).to_contain_text("1 added: alice")
    expect(page.locator("#invite-report .problems")).to_contain_text("ghost: no user named 'ghost'")
    page.set_input_files(
        "#csv",
        files=[{"name": "team.csv", "mimeType": "text/csv", "buffer": b"username\nbob\n\nnobody\ncarol\nalice\n"}],
    )
    page.click("#invite-csv button[type=submit]")
    report = page.locator("#invite-report")
    expect(report).to_contain_text("2 added: bob, carol")
    expect(report).to_contain_text("1 already in: alice")
    expect(report.locator(".problems li")).to_have_text(["team.csv:4: no user named 'nobody'"])
    assert set(campaign.raters.values_list("username", flat=True)) == {"alice", "bob", "carol"}
    page.fill("#new-username", "dora")
    page.click("#invite-new button[type=submit]")
    link = page.locator("#invite-link").input_value()
    assert "/invite/" in link
    expect(page.locator("#invite-link-box")).to_be_in_viewport()  # the answer scrolls to it
    screenshot(page, "campaigns-invite-link")
    token = link.rstrip("/").rsplit("/", 1)[1]
    invite = Invite.objects.get(user__username="dora")
    assert invite.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in invite.token_hash
    # Shown once: reloading the campaign page does not show it again.
    page.goto(f"{live_server.url}/manage/campaigns/{campaign.pk}/")
    assert token not in page.content()
    # The invitee, in a browser of their own, sets a password and lands on their work.
    other = browser.new_context()
    newcomer = other.new_page()
    newcomer.goto(link)
    expect(newcomer.locator("h1")).to_have_text("Welcome, dora")
    newcomer.fill("#id_password1", "a long enough passphrase 42")
    newcomer.fill("#id_password2", "a long enough passphrase 42")
    newcomer.click("button[type=submit]")
    newcomer.wait_for_url(f"**/annotate/{campaign.pk}/")
    expect(newcomer.locator(".who")).to_have_text("dora")
    # The link is spent.
    response = newcomer.goto(link)
    assert response.status == 404
    other.close()


def drop_files(page, selector: str, files: dict[str, bytes]) -> None:
    """A real drop event carrying File objects, as a desktop drag and drop sends it."""
    payload = {name: base64.b64encode(data).decode() for name, data in files.items()}
    transfer = page.evaluate_handle(
        """(files) => {
            const dt = new DataTransfer();
            for (const [name, b64] of Object.entries(files)) {
                const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                dt.items.add(new File([bytes], name));
            }
            return dt;
        }""",
        payload,
    )
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_upload_of_a_zip_with_bad_rows_imports_the_good_ones_and_names_each_bad_row(
    live_server, page, make_user, make_campaign, background_jobs, settings
):
    campaign = make_campaign("batch")
    as_admin(page, live_server, make_user)
    page.goto(f"{live_server.url}/manage/uploads/")
    drop_files(page, "#dropzone", {"batch.zip": bad_rows_zip()})
    expect(page.locator("#file-list li")).to_have_count(1)
    page.click("#start-upload")
    panel = page.locator("#current-job")
    expect(panel).to_have_attribute("data-status", "succeeded", timeout=30_000)
    expect(page.locator("#job-pct")).to_have_text("100%")
    expect(page.locator("#job-summary")).to_have_text("2 imported, 0 already present, 5 rejected.")
    rows = page.locator("#job-problems li")
    expect(rows).to_have_count(5)
    texts = rows.all_inner_texts()
    assert [t.split(":", 2)[:2] for t in texts] == [["batch/items.csv", str(n)] for n in (3, 4, 5, 6, 7)]
    assert "missing.png" in texts[0] and "no prompt" in texts[1] and "not a readable image" in texts[3]
    items = Item.objects.filter(campaign=campaign)
    assert sorted(items.values_list("source_id", "generator")) == [("a.png", "sdxl"), ("d.png", "dalle3")]
    # The uploaded zip is gone from the storage once the job is done.
    assert not (Path(settings.MEDIA_ROOT) / "uploads").exists() or not any(
        p.is_file() for p in (Path(settings.MEDIA_ROOT) / "uploads").rglob("*")
    )
    screenshot(page, "uploads", docs=True, full_page=False)
    # Loose files picked with the file chooser: a manifest and images.
    page.goto(f"{live_server.url}/manage/uploads/")
    page.set_input_files(
        "#files",
        files=[
            {
                "name": "items.csv",
                "mimeType": "text/csv",
                "buffer": b"image,prompt,generator\nz.png,a green apple,flux\n",
            },
            {"name": "z.png", "mimeType": "image/png", "buffer": png_bytes(seed=99)},
        ],
    )
    page.select_option("#split", "dev")
    page.click("#start-upload")
    expect(page.locator("#current-job")).to_have_attribute("data-status", "succeeded", timeout=30_000)
    assert Item.objects.get(campaign=campaign, source_id="z.png").split == "dev"
    page.reload()
    expect(page.locator("#job-table tbody tr")).to_have_count(2)


def test_malformed_and_oversized_uploads_are_refused_with_a_clear_message(
    live_server, page, make_user, make_campaign, settings
):
    make_campaign("strict")
    as_admin(page, live_server, make_user)
    page.goto(f"{live_server.url}/manage/uploads/")
    page.set_input_files("#files", files=[{"name": "broken.zip", "mimeType": "application/zip", "buffer": b"nope"}])
    page.click("#start-upload")
    expect(page.locator("#upload-error")).to_have_text("broken.zip: not a zip archive")
    page.goto(f"{live_server.url}/manage/uploads/")
    page.set_input_files(
        "#files",
        files=[
            {"name": "items.csv", "mimeType": "text/csv", "buffer": b"image,prompt\na.png,x\n"},
            {"name": "b.zip", "mimeType": "application/zip", "buffer": zip_of({"items.csv": BAD_ROWS_CSV.encode()})},
        ],
    )
    page.click("#start-upload")
    expect(page.locator("#upload-error")).to_contain_text("one zip on its own")
    settings.RICHHF_MAX_UPLOAD_BYTES = 1000
    page.goto(f"{live_server.url}/manage/uploads/")
    page.set_input_files("#files", files=[{"name": "big.zip", "mimeType": "application/zip", "buffer": b"x" * 5000}])
    expect(page.locator("#upload-error")).to_contain_text("the limit is 1,000")
    expect(page.locator("#start-upload")).to_be_disabled()
    expect(page.locator("#send-progress")).to_be_hidden()  # nothing is being sent
    screenshot(page, "uploads-refused")
    # The server says the same if the page's own check is bypassed.
    status = page.evaluate(
        """async (id) => {
            const data = new FormData();
            data.append("kind", "items");
            data.append("files", new File([new Uint8Array(5000)], "big.zip"));
            const r = await fetch(`/api/campaigns/${id}/imports/`, {method: "POST", body: data,
                headers: {"X-CSRFToken": document.querySelector("input[name=csrfmiddlewaretoken]").value}});
            return r.status;
        }""",
        Campaign.objects.get().pk,
    )
    assert status == 413
    assert not ImportJob.objects.exists()
    assert not (Path(settings.MEDIA_ROOT) / "uploads").exists()


def test_release_import_and_export_with_images_download_verifies(
    live_server,
    page,
    make_user,
    annotated,  # noqa: F811
    background_jobs,
):
    campaign, items = annotated
    as_admin(page, live_server, make_user)
    # Export with images through the page.
    page.goto(f"{live_server.url}/manage/exports/")
    page.select_option("#campaign", str(campaign.pk))
    page.select_option("#format", "tfrecord")
    expect(page.locator("#image-bytes")).to_be_disabled()
    page.check("#with-images")
    page.click("#start-export")
    panel = page.locator("#current-export")
    expect(panel).to_have_attribute("data-status", "succeeded", timeout=60_000)
    expect(page.locator("#export-pct")).to_have_text("100%")
    expect(page.locator("#export-summary")).to_contain_text("6 items exported; left out: 2 items still being annotated")
    sha = page.locator("#export-sha").inner_text()
    with page.expect_download() as info:
        page.click("#export-download")
    blob = Path(info.value.path()).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == sha == ExportJob.objects.get().sha256
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        names = set(zf.namelist())
    assert {"train.tfrecord", "dev.tfrecord", "test.tfrecord", "prompts.jsonl"} <= names
    assert sum(n.startswith("images/") for n in names) == 6
    page.reload()
    expect(page.locator("#export-history tbody tr")).to_have_count(1)
    expect(page.locator("#export-history")).to_contain_text("images + prompts")
    screenshot(page, "exports-history")
    # A JSONL export of one split, shown with its progress and checksum.
    page.select_option("#format", "jsonl")
    page.select_option("#split", "train")
    page.click("#start-export")
    expect(panel).to_have_attribute("data-status", "succeeded", timeout=60_000)
    expect(page.locator("#export-sha")).to_have_text(ExportJob.objects.get(split="train").sha256)
    screenshot(page, "exports", docs=True)
    # The downloaded export is a release: import it into a new campaign from the imports page.
    copy = Campaign.objects.create(name="re-imported")
    page.goto(f"{live_server.url}/manage/imports/")
    page.select_option("#campaign", str(copy.pk))
    page.set_input_files("#files", files=[{"name": "release.zip", "mimeType": "application/zip", "buffer": blob}])
    page.click("#start-upload")
    expect(page.locator("#current-job")).to_have_attribute("data-status", "succeeded", timeout=60_000)
    expect(page.locator("#job-summary")).to_have_text("6 imported, 0 already present, 0 rejected.")
    assert ImportedLabel.objects.filter(item__campaign=copy).count() == 6
    screenshot(page, "imports", docs=True)


def test_lead_reads_but_cannot_change_and_a_rater_is_refused(live_server, page, make_user, make_campaign):
    campaign = make_campaign("look")
    make_user("boss", "lead")
    make_user("worker", "rater")
    page.set_viewport_size(DESKTOP)
    login(page, live_server.url, "boss")
    for path in ("/manage/campaigns/", "/manage/uploads/", "/manage/imports/", "/manage/exports/"):
        assert page.goto(f"{live_server.url}{path}").status == 200, path
    expect(page.locator("#export-form")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("only admins start and download them")
    page.goto(f"{live_server.url}/manage/uploads/")
    expect(page.locator("#upload-form")).to_have_count(0)
    for path in ("/manage/campaigns/new/", f"/manage/campaigns/{campaign.pk}/"):
        assert page.goto(f"{live_server.url}{path}").status == 403, path
    expect(page.locator("#forbidden")).to_contain_text("Only admins may change campaigns")
    screenshot(page, "manage-lead-denied")
    status = page.evaluate(
        """async (id) => (await fetch(`/api/campaigns/${id}/exports/`, {method: "POST",
            headers: {"Content-Type": "application/json"}, body: JSON.stringify({format: "jsonl"})})).status""",
        campaign.pk,
    )
    assert status == 403 and not ExportJob.objects.exists()
    page.context.clear_cookies()
    login(page, live_server.url, "worker")
    for path in ("/manage/campaigns/", "/manage/uploads/", "/manage/exports/"):
        assert page.goto(f"{live_server.url}{path}").status == 403, path
