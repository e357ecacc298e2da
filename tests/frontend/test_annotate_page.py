"""The rater's annotation page in real headless Chromium against the live server.

Clicks are aimed at original-image pixels found in screenshots of what the page actually drew
(the test image spells each pixel's coordinates in its colour), so the test does not trust the
page's own view transform: it checks the stored coordinates against what the rater saw.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from annotation.models import Annotation
from tests.conftest import SCREENSHOTS, wait_for

from .conftest import login, next_frames, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]

W, H = 640, 480


def locate(page, targets: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[float, float]]:
    """Screen position (CSS px) of the centre of each original pixel, read from a screenshot
    taken with the points hidden ("h")."""
    page.keyboard.press("h")
    page.wait_for_selector("#toggle-overlay[aria-pressed=true]")
    next_frames(page)
    box = page.locator("#canvas").bounding_box()
    png = page.screenshot(clip=box)
    page.keyboard.press("h")
    page.wait_for_selector("#toggle-overlay[aria-pressed=false]")
    next_frames(page)
    px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int64)
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    coded = (b & 0x80) != 0
    xs = r + ((b >> 4) & 0x7) * 256
    ys = g + (b & 0xF) * 256
    found = {}
    for tx, ty in targets:
        rows, cols = np.nonzero(coded & (xs == tx) & (ys == ty))
        assert len(rows), f"original pixel {(tx, ty)} is not on screen"
        # One magnified pixel is a compact block; drop any stray look-alike elsewhere.
        mr, mc = np.median(rows), np.median(cols)
        keep = (np.abs(rows - mr) < 20) & (np.abs(cols - mc) < 20)
        found[(tx, ty)] = (box["x"] + cols[keep].mean() + 0.5, box["y"] + rows[keep].mean() + 0.5)
    return found


def click_pixels(page, targets: list[tuple[int, int]]) -> None:
    spots = locate(page, targets)
    for target in targets:
        page.mouse.click(*spots[target])
    next_frames(page)


def counts(page) -> tuple[int, int]:
    return int(page.text_content("#count-implausible")), int(page.text_content("#count-misaligned"))


def assert_fits(page, width: int, height: int) -> None:
    """No page scrolling, and every control a rater needs is on screen without scrolling."""
    size = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert size[0] <= width and size[1] <= height, size
    for selector in [
        "#canvas",
        "#tool-misaligned",
        ".chip >> nth=-1",
        "#overall-5",
        "#submit",
        "#skip",
        "#open-guidelines",
    ]:
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["y"] >= 0, selector
        assert box["x"] + box["width"] <= width and box["y"] + box["height"] <= height, (selector, box)


def assert_points_match(stored: list[list[float]], expected: list[tuple[int, int]]) -> None:
    assert len(stored) == len(expected), (stored, expected)
    got = sorted((x * W, y * H) for x, y in stored)
    want = sorted((tx + 0.5, ty + 0.5) for tx, ty in expected)
    for (gx, gy), (wx, wy) in zip(got, want, strict=True):
        assert abs(gx - wx) <= 1 and abs(gy - wy) <= 1, f"stored {(gx, gy)} vs clicked pixel centre {(wx, wy)}"


@pytest.fixture
def campaign_with_items(raters, make_coded_item, make_item):
    campaign, users = raters
    first = make_coded_item(campaign, priority=10)
    second = make_item(campaign, prompt="three apples, on a table", width=800, height=600)
    return campaign, users, first, second


def test_rater_annotates_with_precise_points_words_and_keyboard_scores(live_server, page, shot, campaign_with_items):
    campaign, (r1, _, _), first, second = campaign_with_items
    login(page, live_server.url, "r1")
    # A rater with one campaign lands on the annotation page straight after login.
    page.wait_for_url(f"**/annotate/{campaign.pk}/")
    wait_ready(page)
    assert page.locator(".chip").all_text_contents() == first.words
    shot(page, "01-item-loaded-1280x720")
    assert_fits(page, 1280, 720)
    assert page.is_disabled("#submit")

    # 1280x720, fitted: two red points, one blue, then a stray red one removed by clicking it.
    click_pixels(page, [(100, 100), (500, 120)])
    page.keyboard.press("b")
    assert page.get_attribute("#tool-misaligned", "aria-checked") == "true"
    click_pixels(page, [(320, 400)])
    page.click("#tool-implausible")
    click_pixels(page, [(600, 40)])
    assert counts(page) == (3, 1)
    click_pixels(page, [(600, 40)])
    assert counts(page) == (2, 1)
    # Remove (500,120), undo brings it back; redo removes it again, undo once more.
    click_pixels(page, [(500, 120)])
    assert counts(page) == (1, 1)
    page.keyboard.press("Control+z")
    assert counts(page) == (2, 1)
    page.keyboard.press("Control+Shift+z")
    assert counts(page) == (1, 1)
    page.keyboard.press("Control+z")
    assert counts(page) == (2, 1)
    shot(page, "02-points-fitted-1280x720")

    # 1280x720, zoomed with the wheel about (200, 300), then panned by a drag on empty image.
    spot = locate(page, [(200, 300)])[(200, 300)]
    page.mouse.move(*spot)
    page.mouse.wheel(0, -300)
    next_frames(page)
    zoom_fit = page.text_content("#zoom-level")
    click_pixels(page, [(220, 260)])
    page.keyboard.press("b")
    start = locate(page, [(150, 200)])[(150, 200)]
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 30, start[1] + 20, steps=4)
    page.mouse.move(start[0] + 60, start[1] + 40, steps=4)
    page.mouse.up()
    assert counts(page) == (3, 1), "a drag on empty image pans; it adds no point"
    click_pixels(page, [(180, 320)])
    assert counts(page) == (3, 2)
    shot(page, "03-zoomed-panned-1280x720")

    # 1920x1080, fitted again, then zoomed with the + key.
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.keyboard.press("0")
    next_frames(page)
    page.keyboard.press("r")
    click_pixels(page, [(400, 200)])
    page.keyboard.press("b")
    click_pixels(page, [(560, 440)])
    shot(page, "04-fitted-1920x1080")
    assert_fits(page, 1920, 1080)
    page.keyboard.press("+")
    page.keyboard.press("+")
    next_frames(page)
    assert page.text_content("#zoom-level") != zoom_fit
    page.keyboard.press("r")
    click_pixels(page, [(300, 230)])
    page.keyboard.press("b")
    click_pixels(page, [(350, 260)])
    assert counts(page) == (5, 4)
    # Drag the last red point onto another pixel: it moves, nothing is added.
    spots = locate(page, [(300, 230), (290, 215)])
    page.mouse.move(*spots[(300, 230)])
    page.mouse.down()
    for frac in (0.3, 0.6, 1.0):
        page.mouse.move(
            spots[(300, 230)][0] + frac * (spots[(290, 215)][0] - spots[(300, 230)][0]),
            spots[(300, 230)][1] + frac * (spots[(290, 215)][1] - spots[(300, 230)][1]),
        )
    page.mouse.up()
    assert counts(page) == (5, 4)
    shot(page, "05-zoomed-1920x1080")

    # Words: two chips, by click; the second toggled twice by keyboard (Space) comes back on.
    page.click(".chip[data-index='1']")
    page.click(".chip[data-index='6']")
    page.keyboard.press("Space")
    assert page.get_attribute(".chip[data-index='6']", "aria-pressed") == "false"
    page.keyboard.press("Space")
    assert page.get_attribute(".chip[data-index='1']", "aria-pressed") == "true"
    assert page.get_attribute(".chip[data-index='6']", "aria-pressed") == "true"

    # Scores by keyboard: Tab from the last chip reaches the first row; number keys set rows.
    for key in ["Tab", "4", "Tab", "2", "Tab", "5", "Tab"]:
        page.keyboard.press(key)
    assert page.is_disabled("#submit")
    page.keyboard.press("3")
    assert page.is_enabled("#submit")
    shot(page, "06-ready-to-submit-1920x1080")
    page.keyboard.press("Enter")

    annotation = wait_for(
        lambda: Annotation.objects.filter(rater=r1, item=first).first(), timeout=15, what="annotation"
    )
    assert_points_match(annotation.implausible_points, [(100, 100), (500, 120), (220, 260), (400, 200), (290, 215)])
    assert_points_match(annotation.misaligned_points, [(320, 400), (180, 320), (560, 440), (350, 260)])
    assert annotation.misaligned_words == [1, 6]
    assert annotation.scores() == {"plausibility": 4, "alignment": 2, "aesthetics": 5, "overall": 3}
    assert annotation.time_spent_ms > 0

    # The next item (preloaded while the first was open) replaces it, with a clean slate.
    page.wait_for_function(f"() => window.richhf.page.assignment?.item.id === {second.pk}")
    wait_ready(page)
    assert counts(page) == (0, 0)
    assert page.locator(".chip").all_text_contents() == second.words
    assert page.locator("input[type=radio]:checked").count() == 0
    expect(page.locator("#done-today")).to_have_text("1")
    expect(page.locator("#remaining")).to_have_text("1")  # this item; nothing else is left for r1
    expect(page.locator("#campaign-left")).to_have_text("2")  # both items still need two more raters
    metrics = page.evaluate("() => window.richhf.metrics")
    shot(page, "07-next-item-1920x1080")
    weight = page.evaluate(
        """() => performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))
             .filter(e => !e.name.includes('/api/'))
             .reduce((n, e) => n + (e.encodedBodySize || 0), 0)"""
    )
    SCREENSHOTS.parent.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS.parent / "frontend-metrics.json").write_text(
        json.dumps({"switch_ms": metrics["switches"], "image_ready_ms": metrics["imageReadyMs"], "page_bytes": weight})
    )
    # The switch waited for no image download: it was decoded before the submit.
    assert metrics["imageReadyMs"][-1] < 50, metrics
