"""The dashboard in Debian's Chromium: it refreshes itself after a new answer (a real Celery
worker recomputes; nobody presses Refresh), and the Generators section with its charts and
CSV downloads. Screenshots at 1280x800 and 390x844."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from aggregation.dashboard.models import CampaignStats
from aggregation.dashboard.services import campaign_stats_recompute
from annotation.models import Annotation
from tests.conftest import SCREENSHOTS, api_client_for, valid_submission
from tests.frontend.conftest import login
from tests.frontend.lead_world import GENERATORS, build_world, watch_csp

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow]


@pytest.fixture
def world(transactional_db, make_user, settings):
    settings.RICHHF_DASHBOARD_POLL_MS = 600
    return build_world(make_user)


def test_dashboard_refreshes_itself_after_a_new_answer(live_server, page, world, celery_worker_proc):
    csp = watch_csp(page)
    campaign = world.campaign
    page.set_viewport_size({"width": 1280, "height": 800})
    login(page, live_server.url, "lead")
    refresh_posts: list[str] = []
    page.on("request", lambda r: r.method == "POST" and r.url.endswith("/refresh/") and refresh_posts.append(r.url))
    page.goto(f"{live_server.url}/dashboard/campaigns/{campaign.pk}/")
    page.wait_for_selector("#dashboard[data-state=ready]")
    counted = Annotation.objects.filter(item__campaign=campaign, item__is_gold=False).count()
    expect(page.locator("[data-metric=annotations] .tile-value")).to_have_text(str(counted))
    expect(page.locator("#freshness")).to_contain_text("up to date with the annotations")
    page.wait_for_timeout(1500)  # a few polls: nothing stale, so nothing is enqueued
    assert refresh_posts == []

    # A rater answers an unrated item through the real API, while the page stays open.
    rater = api_client_for(world.raters[0])
    lease = rater.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json").json()["assignment"]
    done = rater.post(reverse("api:submit", args=[lease["id"]]), valid_submission(), format="json")
    assert done.status_code in (200, 201)

    # The page notices, enqueues the recompute itself, shows its progress, and redraws.
    expect(page.locator("[data-metric=annotations] .tile-value")).to_have_text(str(counted + 1), timeout=60_000)
    assert len(refresh_posts) == 1
    assert page.locator("#dashboard").get_attribute("data-auto-refreshed") == "yes"
    expect(page.locator("#freshness")).to_contain_text("up to date with the annotations")
    expect(page.locator("#refresh-progress")).to_be_hidden()
    assert CampaignStats.objects.get(campaign=campaign).n_annotations == counted + 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "lead-dashboard.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SCREENSHOTS / "lead-dashboard-phone.png"))
    assert csp == []


def test_refresh_progress_is_shown_while_a_recompute_runs(live_server, page, world):
    """A recompute in flight (its row says so; no worker takes part): the page shows its stage
    and progress as they change, then redraws when it is done."""
    campaign = world.campaign
    CampaignStats.objects.filter(campaign=campaign).update(
        refresh_requested_at=timezone.now(), refresh_stage="queued", refresh_progress=0.0
    )
    login(page, live_server.url, "lead")
    page.goto(f"{live_server.url}/dashboard/campaigns/{campaign.pk}/")
    expect(page.locator("#refresh-progress")).to_be_visible(timeout=10_000)
    expect(page.locator("#refresh-progress .label")).to_have_text("Recomputing: queued (0%)")
    CampaignStats.objects.filter(campaign=campaign).update(refresh_stage="generators", refresh_progress=0.8)
    expect(page.locator("#refresh-progress .label")).to_have_text("Recomputing: generators (80%)", timeout=10_000)
    assert page.evaluate("() => document.querySelector('#refresh-progress progress').value") == pytest.approx(0.8)
    campaign_stats_recompute(campaign_id=campaign.pk)
    expect(page.locator("#refresh-progress")).to_be_hidden(timeout=10_000)
    expect(page.locator("#freshness")).to_contain_text("up to date with the annotations")


def test_generators_section_charts_and_csv(live_server, page, world):
    csp = watch_csp(page)
    campaign = world.campaign
    payload = CampaignStats.objects.get(campaign=campaign).payload["generators"]
    page.set_viewport_size({"width": 1280, "height": 800})
    login(page, live_server.url, "lead")
    page.goto(f"{live_server.url}/dashboard/campaigns/{campaign.pk}/")
    page.wait_for_selector("#dashboard[data-state=ready]")
    # The progress bar's segments have their widths (set through the CSSOM, which the CSP allows):
    # 18 of the 24 dataset items are complete (the gold item is not counted).
    progress = CampaignStats.objects.get(campaign=campaign).payload["progress"]
    assert (progress["items_total"], progress["items_complete"]) == (24, 18)
    bar = page.locator("#progress-bar").bounding_box()
    seg = page.locator("#progress-bar .seg.complete").bounding_box()
    assert bar and seg and seg["width"] / bar["width"] == pytest.approx(18 / 24, abs=0.01)
    section = page.locator("#generators")
    section.scroll_into_view_if_needed()
    # one row per generator in each score chart, with its mean where the payload puts it
    names = sorted(GENERATORS)
    assert payload["generators"] == names
    chart = section.locator("[data-chart=score-plausibility] svg")
    expect(chart.locator("g.row")).to_have_count(3)
    expect(chart.locator("text.axis-label")).to_have_text("mean normalised score (0 = worst, 1 = best)")
    # the model's estimate (open dots) appears for every generator with unrated images
    expect(chart.locator("circle.est-dot")).to_have_count(3)
    # the better-rated generator's dot lies to the right
    xs = {g: float(chart.locator(f'g.row[data-label^="{g} "] circle.mean-dot').get_attribute("cx") or 0) for g in names}
    means = {r["generator"]: r["scores"]["plausibility"]["mean"] for r in payload["rows"]}
    assert sorted(names, key=xs.__getitem__) == sorted(names, key=means.__getitem__)
    assert means["SDXL"] > means["Muse"]
    # pairwise table: 3 pairs x 4 scores, with Holm-adjusted p-values
    expect(section.locator("#generator-pairs tbody tr")).to_have_count(12)
    sdxl_muse = [p for p in payload["pairs"] if p["score"] == "plausibility" and {p["a"], p["b"]} == {"SDXL", "Muse"}][
        0
    ]
    assert sdxl_muse["significant"] is True  # 3.9 vs 2.6 mean ratings over 6 + 6 images
    row = section.locator(
        f'#generator-pairs tr[data-score=plausibility][data-pair="{sdxl_muse["a"]}|{sdxl_muse["b"]}"]'
    )
    expect(row.locator("td").last).to_have_text("yes")
    expect(section.locator("[data-chart=implausible-share] g.row")).to_have_count(3)
    expect(section.locator("[data-chart=area-implausibility] g.row")).to_have_count(3)
    expect(section.locator("[data-chart=words]")).to_have_count(3)
    expect(section.locator("#model-trust tr[data-score=plausibility] td").nth(1)).to_have_text("0.62")
    expect(section.locator("#generators-counts")).to_contain_text("SDXL: 6 rated, 2 estimated")

    with page.expect_download() as download:
        page.click("#csv-generators")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    plaus = {
        r["generator"]: float(r["value"])
        for r in rows
        if r["metric"] == "mean_normalised_score" and r["name"] == "plausibility" and r["source"] == "human"
    }
    assert plaus == pytest.approx(means)
    with page.expect_download() as download:
        page.click("#csv-generator-pairs")
    pair_rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert len(pair_rows) == 12 and {"p", "p_holm", "significant"} <= set(pair_rows[0])

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    section.screenshot(path=str(SCREENSHOTS / "lead-generators-section.png"))
    page.evaluate("() => document.getElementById('generators').scrollIntoView({ block: 'start' })")
    page.screenshot(path=str(SCREENSHOTS / "lead-generators.png"))
    page.screenshot(path=str(SCREENSHOTS / "lead-dashboard-full.png"), full_page=True)
    assert csp == []
