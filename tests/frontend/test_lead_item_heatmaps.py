"""The item page's heatmaps over the image, in Debian's Chromium: the opacity slider changes the
drawn pixels, each rater's disks toggle on and off at their true radius, and the active
model's prediction is drawn beside the human aggregate (or a note says why it is not)."""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect

from aggregation.dashboard.services import campaign_stats_recompute
from aggregation.services.aggregates import item_aggregate_upsert
from annotation.models import Annotation
from tests.conftest import SCREENSHOTS
from tests.frontend.conftest import login
from tests.frontend.lead_world import build_world, prediction_create, watch_csp

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def pixel(page, canvas: str, x: float, y: float) -> list[int]:
    """RGBA of the canvas pixel at the relative position (x, y)."""
    return page.evaluate(
        """([sel, x, y]) => { const c = document.querySelector(sel);
        return Array.from(c.getContext('2d').getImageData(Math.floor(x * c.width), Math.floor(y * c.height), 1, 1).data); }""",
        [canvas, x, y],
    )


def test_heatmaps_over_the_image(live_server, page, transactional_db, make_user):
    world = build_world(make_user, per_generator=2, unrated_per_generator=1)
    item = world.rated[0]
    # Every rater marks the same spot, so the aggregate's maximum is there; a second point of
    # the first rater alone, far away, makes that rater's disk easy to find.
    Annotation.objects.filter(item=item).update(implausible_points=[[0.3, 0.5]])
    first = Annotation.objects.filter(item=item).order_by("id").first()
    Annotation.objects.filter(pk=first.pk).update(implausible_points=[[0.3, 0.5], [0.75, 0.3]])
    assert item_aggregate_upsert(item_id=item.pk, force=True).implausibility_max == 1.0
    prediction_create(item=item, version=world.version, rng=np.random.default_rng(3), plausibility=0.5)
    campaign_stats_recompute(campaign_id=world.campaign.pk)

    csp = watch_csp(page)
    page.set_viewport_size({"width": 1280, "height": 800})
    login(page, live_server.url, "lead")
    page.goto(f"{live_server.url}/dashboard/items/{item.pk}/")
    page.wait_for_selector("#item-compare[data-state=ready]")
    expect(page.locator("#human-caption")).to_have_text("Human aggregate (3 raters)")
    expect(page.locator("#model-caption")).to_have_text(f"Model prediction (version v{world.version.pk})")
    expect(page.locator("#model-overlay")).to_be_visible()

    # Opacity: at the spot all three raters marked, the red tint follows the slider.
    at_60 = pixel(page, "#human-overlay", 0.3, 0.5)
    slider = page.locator("#overlay-opacity")
    slider.focus()
    page.keyboard.press("Home")  # 0%
    expect(page.locator("#opacity-value")).to_have_text("0%")
    at_0 = pixel(page, "#human-overlay", 0.3, 0.5)
    page.keyboard.press("End")  # 100%
    expect(page.locator("#opacity-value")).to_have_text("100%")
    at_100 = pixel(page, "#human-overlay", 0.3, 0.5)
    redness = [p[0] - (p[1] + p[2]) / 2 for p in (at_0, at_60, at_100)]
    assert redness[0] < redness[1] < redness[2], redness
    assert at_100[:3] == pytest.approx([220, 40, 40], abs=2)  # the map's maximum, fully opaque
    # The model's canvas is drawn with the same slider (its map differs from the human one).
    assert pixel(page, "#model-overlay", 0.3, 0.5) != pixel(page, "#human-overlay", 0.3, 0.5)

    # Per-rater disks, at the true radius (radius_fraction x H): a pixel on the first rater's
    # circle around (0.75, 0.3) changes when that rater's toggle is switched off, and back on.
    page.keyboard.press("Home")
    radius = world.campaign.radius_fraction  # as a fraction of the height
    aspect = item.height / item.width
    on_circle = (0.75 + radius * aspect, 0.3)  # straight right of the centre, one radius away
    before = pixel(page, "#human-overlay", *on_circle)
    toggle = page.locator(f'#rater-toggles input[data-rater="{first.rater.username}"]')
    toggle.uncheck()
    after = pixel(page, "#human-overlay", *on_circle)
    assert before != after
    toggle.check()
    assert pixel(page, "#human-overlay", *on_circle) == before
    # A disk of twice the radius would leave this pixel untouched: the radius is the true one.
    twice = (0.75 + 2 * radius * aspect, 0.3)
    toggle.uncheck()
    off_twice = pixel(page, "#human-overlay", *twice)
    toggle.check()
    assert pixel(page, "#human-overlay", *twice) == off_twice

    # Map kind: the misalignment map is drawn in blue.
    page.check("input[name=map-kind][value=misalignment]")
    expect(page.locator("#human-overlay")).to_have_attribute("data-kind", "misalignment")

    page.check("input[name=map-kind][value=implausibility]")
    slider.focus()
    page.keyboard.press("End")
    for _ in range(35):
        page.keyboard.press("ArrowLeft")
    expect(page.locator("#opacity-value")).to_have_text("65%")
    page.locator("#heatmaps").scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "lead-item-heatmaps.png"))

    # An item without a prediction of the active model gets a clear note instead.
    other = world.rated[1]
    page.goto(f"{live_server.url}/dashboard/items/{other.pk}/")
    page.wait_for_selector("#item-compare[data-state=ready]")
    expect(page.locator("#no-model")).to_contain_text(
        f"The active model (v{world.version.pk}) has no stored prediction"
    )
    assert csp == []
