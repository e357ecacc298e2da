"""The leads' rater-quality page in headless Chromium: figures, flags, trend, pause and undo."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from aggregation.quality.models import QualityAction, QualityRun
from aggregation.quality.services.recompute import quality_run_execute
from annotation.models import RaterStatus

from .factories import careful_and_spammer_crowd

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _login(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-for-tests")
    page.click("button[type=submit]")
    page.wait_for_load_state("domcontentloaded")


def test_lead_sees_the_spammer_pauses_and_undoes(live_server, page, make_campaign, make_user, make_item, shot):
    campaign = make_campaign("Quality demo")
    careful = [make_user(name, "rater") for name in ("ana", "bo", "chen")]
    spammer = make_user("zed", "rater")
    campaign.raters.add(*careful, spammer)
    careful_and_spammer_crowd(campaign, careful, spammer, make_item, n_items=10)
    for _ in range(2):  # two runs: the trend has two points per rater
        quality_run_execute(run_id=QualityRun.objects.create(campaign=campaign).pk)
    make_user("lead", "lead")
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    _login(page, live_server.url, "lead")
    page.goto(f"{live_server.url}/dashboard/quality/{campaign.pk}/")
    page.wait_for_selector("#quality[data-state=ready]", timeout=15_000)

    rows = page.locator("#raters-table tbody tr")
    expect(rows).to_have_count(4)
    zed = page.locator("#raters-table tr[data-rater=zed]")
    expect(zed).to_have_class("flagged")
    expect(zed.locator(".flag-chip").first).to_contain_text("low reliability")
    expect(page.locator("#raters-table tr[data-rater=ana] .flag-chip")).to_have_count(0)
    expect(zed.locator("button[data-action=apply-pause]")).to_be_visible()
    expect(zed.locator("button[data-action=exclude-fast]")).to_have_text("Exclude 10 fast")
    expect(page.locator("#raters-table tr[data-rater=ana] button[data-action=exclude-fast]")).to_have_count(0)
    # The trend: one line per rater with two points, axes labelled with units.
    expect(page.locator("svg[data-chart=trend] polyline.trend-line")).to_have_count(4)
    expect(page.locator("svg[data-chart=trend] circle.trend-dot")).to_have_count(8)
    expect(page.locator("svg[data-chart=trend] text.axis-label").first).to_have_text("reliability (0–1)")
    expect(page.locator("svg[data-chart=trend] line.ref")).to_have_count(1)
    shot(page, "quality-page", full_page=True)

    # Pause through the button; the reason goes into the audit log.
    page.once("dialog", lambda dialog: dialog.accept("random words and regions"))
    zed.locator("button[data-action=pause]").click()
    expect(page.locator("#message")).to_have_text("zed paused.")
    expect(page.locator("#raters-table tr[data-rater=zed]")).to_have_class("paused")
    entry = page.locator("#audit-table tbody tr[data-kind=pause][data-state=applied]")
    expect(entry).to_have_count(1)
    # The task's open proposal to pause zed is settled by the lead's action.
    expect(page.locator("#audit-table tbody tr[data-kind=pause][data-state=dismissed]")).to_have_count(1)
    expect(entry).to_contain_text("random words and regions")
    expect(entry).to_contain_text("lead")
    assert RaterStatus.objects.get(rater=spammer).paused_at is not None
    shot(page, "quality-page-paused", full_page=True)

    entry.locator("button[data-action=undo]").click()
    expect(page.locator("#audit-table tbody tr[data-kind=pause][data-state=undone]")).to_have_count(1)
    expect(page.locator("#raters-table tr[data-rater=zed]")).not_to_have_class("paused")
    assert RaterStatus.objects.get(rater=spammer).paused_at is None
    assert QualityAction.objects.get(kind="pause", state="undone").undone_by.username == "lead"

    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "quality-page-phone", full_page=False)
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
