"""The dashboard in real headless Chromium against the live server, on the demo campaign filled
by simulated raters through the real API."""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from aggregation.dashboard.models import CampaignStats, ExtraRaterRequest
from aggregation.dashboard.services import campaign_stats_recompute
from annotation.models import Annotation, Campaign, Item
from tests.conftest import SCREENSHOTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}, "device_scale_factor": 1}


def _login(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("domcontentloaded")


def test_dashboard_shows_the_simulated_campaign(live_server, page):
    call_command("seed_demo")
    call_command("simulate_raters", "--campaign", "demo", "--raters", "5", "--seed", "3", "--no-progress")
    campaign = Campaign.objects.get(name="demo")
    stats = campaign_stats_recompute(campaign_id=campaign.pk)
    payload = stats.payload
    n_annotations = Annotation.objects.filter(item__campaign=campaign).count()
    assert n_annotations >= 30  # 12 items x 3 raters, all through the rater API

    _login(page, live_server.url, "lead", "lead-demo-pass")
    started = time.perf_counter()
    page.goto(f"{live_server.url}/dashboard/campaigns/{campaign.pk}/")
    page.wait_for_selector("#dashboard[data-state=ready]", timeout=10_000)
    load_s = time.perf_counter() - started
    assert load_s < 2.0, load_s

    expect(page.locator("#freshness")).to_contain_text("Computed")
    expect(page.locator("#freshness")).to_contain_text("up to date with the annotations")
    expect(page.locator("[data-metric=items_total] .tile-value")).to_have_text("12")
    expect(page.locator("[data-metric=annotations] .tile-value")).to_have_text(str(n_annotations))
    complete = Item.objects.filter(campaign=campaign, completed_at__isnull=False).count()
    expect(page.locator("[data-metric=items_complete] .tile-value")).to_have_text(str(complete))
    alpha = payload["scores"]["overall"]["alpha"]["alpha"]
    expect(page.locator("[data-metric=alpha_overall] .tile-value")).to_have_text(f"{alpha:.2f}")
    perfect = payload["scores"]["plausibility"]["maxdiff"]["perfect_share"]
    fig = page.locator("figure[data-score=plausibility]").first
    expect(fig.locator(".perfect-share")).to_have_text(f"{round(perfect * 100)}%")
    expect(fig.locator(".cmp-paper").first).to_have_text("paper ≈25%")
    # every maxdiff chart carries the paper's reference mark; every histogram has bars
    assert page.locator("#maxdiff-charts line.ref").count() == 4 * 2
    assert page.locator("#hist-charts rect.bar").count() == 4 * 16

    rows = page.locator("#raters-table tbody tr")
    expect(rows).to_have_count(len(payload["raters"]))
    assert (
        len(payload["raters"]) == Annotation.objects.filter(item__campaign=campaign).values("rater").distinct().count()
    )
    # sorting by bias puts the most positive overall bias first, then flips
    page.click("#raters-table th[data-key=bias_overall]")
    top = max(payload["raters"], key=lambda r: r["bias"]["overall"])["username"]
    expect(rows.first).to_have_attribute("data-rater", top)
    page.click("#raters-table th[data-key=bias_overall]")
    low = min(payload["raters"], key=lambda r: r["bias"]["overall"])["username"]
    expect(rows.first).to_have_attribute("data-rater", low)
    expect(page.locator("#worst-table tbody tr")).to_have_count(len(payload["worst_items"]))

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    # worst item -> side-by-side view -> request an extra rater
    worst = payload["worst_items"][0]
    page.locator("#worst-table tbody tr").first.locator("a").first.click()
    page.wait_for_selector("#item-compare[data-state=ready]", timeout=10_000)
    expect(page.locator("article.compare")).to_have_count(worst["n_raters"])
    # the canvas really drew the image (not blank): sample its pixels
    spread = page.evaluate(
        """() => { const c = document.querySelector('article.compare canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let lo = 255, hi = 0;
        for (let i = 0; i < d.length; i += 97) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); } return hi - lo; }"""
    )
    assert spread > 50
    page.screenshot(path=str(SCREENSHOTS / "dashboard-item.png"), full_page=True)
    page.click("#extra-rater")
    expect(page.locator("#extra-status")).to_contain_text("Requested")
    assert ExtraRaterRequest.objects.filter(item_id=worst["item_id"], status="open").count() == 1

    # refresh button: marks the row as refreshing (the task itself is covered by test_apis)
    page.goto(f"{live_server.url}/dashboard/campaigns/{campaign.pk}/")
    page.wait_for_selector("#dashboard[data-state=ready]")
    with page.expect_response(lambda r: r.url.endswith("/refresh/")) as resp:
        page.click("#refresh")
    assert resp.value.status == 202
    assert CampaignStats.objects.get(campaign=campaign).refresh_requested_at is not None
