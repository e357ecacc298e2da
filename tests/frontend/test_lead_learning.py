"""The learning page in Debian's Chromium: Retrain starts a run that appears with a progress bar
following the run's progress; an admin saves the settings form; a lead sees it read-only."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from aggregation.learning.models import LearningSettings, ModelVersion
from annotation.models import Campaign
from tests.conftest import SCREENSHOTS
from tests.frontend.conftest import login
from tests.frontend.lead_world import watch_csp

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def campaign(transactional_db, make_user):
    make_user("lead", "lead")
    make_user("admin", "admin")
    campaign = Campaign.objects.create(name="Cats, rockets and coffee")
    for i, (combined, plcc) in enumerate([(0.71, 0.35), (0.94, 0.48), (1.21, 0.62)]):
        ModelVersion.objects.create(
            campaign=campaign,
            status="done",
            is_active=i == 2,
            activated_by="rule" if i == 2 else "",
            combined_metric=combined,
            progress=1.0,
            config={"strategy": "uncertainty", "random_share": 0.1},
            duration_s=40.0 + i,
            data_counts={"train": 10 + 4 * i, "dev": 4},
            dev_metrics={
                "combined": combined,
                "scores": {
                    name: {"plcc": plcc - d, "srcc": plcc - d - 0.03, "n": 40}
                    for name, d in zip(
                        ("plausibility", "alignment", "aesthetics", "overall"), (0, 0.2, 0.05, 0.02), strict=True
                    )
                },
            },
        )
    return campaign


def test_retrain_button_shows_the_run_and_its_progress(live_server, page, campaign):
    csp = watch_csp(page)
    page.set_viewport_size({"width": 1280, "height": 800})
    login(page, live_server.url, "lead")
    page.goto(f"{live_server.url}/learning/campaigns/{campaign.pk}/")
    page.wait_for_selector("#learning[data-state=ready]")
    # the charts have axes, units and one point per finished version
    expect(page.locator("#metric-chart circle.pt")).to_have_count(3)
    expect(page.locator("#combined-chart text.axis-label")).to_have_text(
        ["model version (oldest → newest)", "combined metric (unitless)"]
    )
    expect(page.locator("#scores-chart rect.bar")).to_have_count(8)  # PLCC and SRCC per score
    expect(page.locator("#run-progress")).to_be_hidden()

    with page.expect_response(lambda r: r.url.endswith("/retrain/")) as response:
        page.click("#retrain")
    assert response.value.status == 202
    run = ModelVersion.objects.get(campaign=campaign, status="queued")
    assert run.reason == "manual (lead)"
    row = page.locator(f'#versions tr[data-version="{run.pk}"]')
    expect(row).to_have_attribute("data-status", "queued")
    expect(page.locator("#run-progress")).to_be_visible()
    expect(page.locator("#retrain")).to_be_disabled()
    expect(page.locator("#retrain-message")).to_contain_text(f"Run v{run.pk} queued")

    # The worker's progress reaches the page by itself (polling the versions API).
    ModelVersion.objects.filter(pk=run.pk).update(status="running", stage="training step 80/200", progress=0.4)
    expect(page.locator("#run-progress .label")).to_contain_text("running · training step 80/200 · 40%")
    assert page.evaluate("() => document.querySelector('#run-progress progress').value") == pytest.approx(0.4)
    expect(row.locator("progress")).to_have_attribute("value", "0.4")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "lead-learning.png"))
    page.screenshot(path=str(SCREENSHOTS / "lead-learning-full.png"), full_page=True)

    # A second press while it runs starts nothing.
    assert page.evaluate("() => document.querySelector('#retrain').disabled") is True
    ModelVersion.objects.filter(pk=run.pk).update(status="done", stage="", progress=1.0, combined_metric=1.3)
    expect(row).to_have_attribute("data-status", "done", timeout=10_000)
    expect(page.locator("#run-progress")).to_be_hidden()
    expect(page.locator("#retrain")).to_be_enabled()
    expect(page.locator("#metric-chart circle.pt")).to_have_count(4)
    assert csp == []


def test_admin_saves_the_settings_and_a_lead_sees_them_read_only(live_server, page, browser, campaign):
    login(page, live_server.url, "admin")
    page.goto(f"{live_server.url}/learning/campaigns/{campaign.pk}/")
    page.wait_for_selector("#learning[data-state=ready]")
    expect(page.locator("#settings-readonly")).to_have_count(0)
    # the suggestions toggle is a campaign setting: the link leads to the campaign's page
    expect(page.get_by_role("link", name="change it on the campaign")).to_have_attribute(
        "href", f"/manage/campaigns/{campaign.pk}/"
    )
    page.check("#setting-enabled")
    page.fill("#setting-schedule_hours", "12")
    page.fill("#setting-min_new_aggregates", "")
    page.select_option("#setting-strategy", "head_disagreement")
    page.fill("#setting-random_share", "0.25")
    page.click("#settings-save")
    expect(page.locator("#settings-message")).to_have_text("Saved.")
    row = LearningSettings.objects.get(campaign=campaign)
    assert (row.enabled, row.schedule_hours, row.min_new_aggregates, row.strategy, row.random_share) == (
        True,
        12.0,
        None,
        "head_disagreement",
        0.25,
    )
    # a bad value is refused and named; nothing changes
    page.fill("#setting-random_share", "1.5")
    page.click("#settings-save")
    expect(page.locator("#settings-message")).to_have_attribute("data-result", "error")
    expect(page.locator("#setting-random_share-error")).not_to_be_empty()
    assert LearningSettings.objects.get(campaign=campaign).random_share == 0.25
    page.fill("#setting-random_share", "0.25")
    page.click("#settings-save")
    expect(page.locator("#settings-message")).to_have_text("Saved.")
    expect(page.locator("#setting-random_share-error")).to_be_empty()
    page.set_viewport_size({"width": 1280, "height": 800})
    page.locator("#settings-h").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "lead-learning-admin.png"))

    lead_context = browser.new_context(viewport={"width": 1280, "height": 800})
    lead = lead_context.new_page()
    login(lead, live_server.url, "lead")
    lead.goto(f"{live_server.url}/learning/campaigns/{campaign.pk}/")
    lead.wait_for_selector("#learning[data-state=ready]")
    expect(lead.locator("#settings-readonly")).to_be_visible()
    expect(lead.locator("#settings-save")).to_have_count(0)
    expect(lead.locator("#settings-form")).not_to_contain_text("null")
    for field in ("enabled", "schedule_hours", "min_new_aggregates", "strategy", "random_share"):
        expect(lead.locator(f"#setting-{field}")).to_be_disabled()
    expect(lead.locator("#setting-random_share")).to_have_value("0.25")
    expect(lead.locator("#setting-strategy")).to_have_value("head_disagreement")
    # and the server refuses a lead's change even if the page were bypassed
    status = lead.evaluate(
        """async (url) => { const csrf = document.cookie.match(/csrftoken=([^;]+)/)[1];
        const r = await fetch(url, { method: 'PUT', headers: { 'X-CSRFToken': csrf, 'Content-Type': 'application/json' },
        body: JSON.stringify({ random_share: 0.9 }) }); return r.status; }""",
        f"{live_server.url}/api/learning/campaigns/{campaign.pk}/settings/",
    )
    assert status == 403 and LearningSettings.objects.get(campaign=campaign).random_share == 0.25
    lead_context.close()
