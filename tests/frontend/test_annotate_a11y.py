"""Every state a rater can meet, at desktop, tablet and phone size: an axe-core scan (the
axe-playwright-python wheel bundles axe.min.js; nothing is downloaded at test time) finds no
serious or critical violation (WCAG AA contrast included), and each state is screenshotted
under build/test-artifacts/screenshots/rater-<state>-<screen>.png.

paused and not_qualified are statuses of the rater API's next-item answer; the page's words
for them are checked with that answer given by the test (page.route), so this test does not
depend on which server branch computes them."""

from __future__ import annotations

import json

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from annotation.services import assignment_next, campaign_add_raters
from tests.conftest import submitted_annotation

from .annotate_support import PHONE, TABLET, login_in, touch_context
from .conftest import wait_ready
from .test_annotate_hint import hinted_item

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DESKTOP = {"width": 1280, "height": 800}
SCREENS = {"desktop": DESKTOP, "tablet": TABLET, "phone": PHONE}
AXE = Axe()


def serious_violations(page) -> list[str]:
    results = AXE.run(
        page, options={"resultTypes": ["violations"], "runOnly": ["wcag2a", "wcag2aa", "wcag21aa", "best-practice"]}
    )
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:5]} {v['help']}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def fake_next(status: str, detail: str):
    body = json.dumps({"status": status, "detail": detail, "assignment": None, "upcoming": []})
    return lambda route: route.fulfill(status=200, content_type="application/json", body=body)


@pytest.fixture
def campaigns(make_user, make_campaign, raters):
    campaign, (r1, r2, _) = raters
    hinted_item(campaign)
    empty = make_campaign("empty")
    finished = make_campaign("finished")
    crowded = make_campaign("crowded", raters_per_item=1)
    done_item = hinted_item(finished)
    from .annotate_support import make_flat_item

    make_flat_item(crowded, rgb=(10, 20, 30))
    campaign_add_raters(campaign=empty, users=[r1])
    campaign_add_raters(campaign=finished, users=[r1])
    campaign_add_raters(campaign=crowded, users=[r1, r2])
    submitted_annotation(done_item, r1)
    assignment_next(rater=r2, campaign=crowded)
    return {"leased": campaign, "new": empty, "done": finished, "busy": crowded}


@pytest.mark.parametrize("screen", list(SCREENS))
def test_every_rater_state_passes_axe_and_is_screenshotted(live_server, browser, shot, campaigns, screen):
    viewport = SCREENS[screen]
    touch = screen != "desktop"
    context = (
        touch_context(browser, viewport) if touch else browser.new_context(viewport=viewport, device_scale_factor=1)
    )
    page = context.new_page()
    login_in(page, live_server.url, "r1")
    found: dict[str, list[str]] = {}

    def visit(state: str, campaign, expect_state: str) -> None:
        page.goto(f"{live_server.url}/annotate/{campaign.pk}/")
        page.wait_for_selector(f"#annotate[data-state={expect_state}]")
        if state == "leased":
            page.wait_for_function("() => window.richhf.viewer.hint !== null")
        page.wait_for_timeout(100)
        shot(page, f"rater-{state}-{screen}")
        found[state] = serious_violations(page)

    visit("leased", campaigns["leased"], "ready")
    visit("new", campaigns["new"], "new")
    expect(page.locator("#viewer-message-title")).to_have_text("Nothing to rate yet")
    visit("done", campaigns["done"], "done")
    expect(page.locator("#viewer-message-title")).to_have_text("Nothing to do")
    visit("busy", campaigns["busy"], "busy")
    expect(page.locator("#viewer-message-title")).to_have_text("All items are being worked on")

    next_url = f"**/api/campaigns/{campaigns['new'].pk}/next/"
    page.route(next_url, fake_next("paused", "A lead paused your work here: too many answers far from the others."))
    visit("paused", campaigns["new"], "paused")
    expect(page.locator("#viewer-message-title")).to_have_text("Your work here is paused")
    expect(page.locator("#viewer-message-text")).to_contain_text("too many answers")
    page.unroute(next_url)
    page.route(next_url, fake_next("not_qualified", "Your qualification score was 40%; this campaign asks for 70%."))
    visit("not_qualified", campaigns["new"], "not-qualified")
    expect(page.locator("#viewer-message-title")).to_have_text("Not qualified for this campaign")
    expect(page.locator("#viewer-message-text")).to_contain_text("70%")
    page.unroute(next_url)

    # A refused submit: the error in words, the answer still there.
    page.goto(f"{live_server.url}/annotate/{campaigns['leased'].pk}/")
    wait_ready(page)
    page.route(
        "**/submit/",
        lambda route: route.fulfill(
            status=400,
            content_type="application/json",
            body=json.dumps({"detail": "Invalid input.", "errors": {"scores": ["Give every score from 1 to 5."]}}),
        ),
    )
    for row in ("plausibility", "alignment", "aesthetics", "overall"):
        page.click(f"label[for={row}-3]")
    page.click("#submit")
    expect(page.locator("#alert")).to_contain_text("Not submitted")
    page.locator("#alert").scroll_into_view_if_needed()
    shot(page, f"rater-submit-error-{screen}")
    found["submit-error"] = serious_violations(page)

    # The guidelines, open.
    page.click("#open-guidelines")
    expect(page.locator("#guidelines")).to_be_visible()
    expect(page.locator("#guidelines")).to_contain_text("Wrong position")  # the fragment is in
    shot(page, f"rater-guidelines-{screen}")
    found["guidelines"] = serious_violations(page)
    context.close()

    bad = {state: v for state, v in found.items() if v}
    assert not bad, json.dumps(bad, indent=1)
