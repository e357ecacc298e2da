"""The model's hint drawn on the image (issue 15, defect 7), checked pixel-wise: a 64x64 map
over a 3:2 image covers the image's extent (not a square), and follows zoom and pan; opacity,
the M key, the marked words, and "accept as points" then edit, recorded with the answer."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.base import ContentFile
from playwright.sync_api import expect

from aggregation.learning.models import ItemPrediction, ModelVersion
from annotation.models import Annotation
from modeling.heatmaps import encode_heatmap_png
from tests.conftest import wait_for

from .annotate_support import canvas_pixels, make_flat_item, server_has_drafts, to_screen
from .conftest import login, next_frames, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]

W, H = 960, 640  # 3:2
GREY = 128
# The map's hot block, in map pixels [y0:y1, x0:x1] of 64x64 -> image pixels.
MY0, MY1, MX0, MX1 = 20, 30, 16, 32
IX0, IX1 = MX0 * W / 64, MX1 * W / 64  # 240..480
IY0, IY1 = MY0 * H / 64, MY1 * H / 64  # 200..300


def hinted_item(campaign, priority: int = 0, blue: int = GREY):
    campaign.show_suggestions = True
    campaign.save(update_fields=["show_suggestions"])
    item = make_flat_item(
        campaign, rgb=(GREY, GREY, blue), width=W, height=H, prompt="a yellow cat on a red sofa", priority=priority
    )
    version = ModelVersion.objects.filter(campaign=campaign, is_active=True).first() or ModelVersion.objects.create(
        campaign=campaign,
        status="done",
        is_active=True,
        combined_metric=0.3,
        dev_metrics={"combined": 0.3},
        activated_by="rule",
    )
    heat = np.zeros((64, 64), np.float32)
    heat[MY0:MY1, MX0:MX1] = 1.0
    row = ItemPrediction(
        item=item,
        version=version,
        strategy="low_plausibility",
        acquisition=0.5,
        queue_rank=0,
        scores={"plausibility": 0.3, "alignment": 0.8, "aesthetics": 0.5, "overall": 0.6},
        misaligned_indices=[1, 5],
        tagged_prompt="",
    )
    row.implausibility_map.save(f"i{item.pk}.png", ContentFile(encode_heatmap_png(heat)), save=False)
    row.misalignment_map.save(f"m{item.pk}.png", ContentFile(encode_heatmap_png(heat * 0)), save=False)
    row.save()
    return item


def tinted(px: np.ndarray) -> np.ndarray:
    """Where the grey image is tinted amber (the hint): red up, blue down."""
    return (px[..., 0] - px[..., 2]) > 40


def check_overlay_at_current_view(page) -> None:
    px, _ = canvas_pixels(page)
    (x0, y0), (x1, y1) = to_screen(page, IX0, IY0), to_screen(page, IX1, IY1)
    scale = page.evaluate("() => window.richhf.viewer.scale")
    mask = tinted(px)
    ys, xs = np.nonzero(mask)
    assert len(xs), "no hint drawn on the image"
    # The tinted region is where the map's block lies on the image, at this zoom and pan,
    # give or take the smoothing of one map pixel.
    slack = max(W / 64, H / 64) * scale + 2
    h_img, w_img = px.shape[:2]
    assert abs(xs.min() - max(x0, 0)) <= slack and abs(xs.max() - min(x1, w_img - 1)) <= slack, (
        xs.min(),
        xs.max(),
        x0,
        x1,
    )
    assert abs(ys.min() - max(y0, 0)) <= slack and abs(ys.max() - min(y1, h_img - 1)) <= slack, (
        ys.min(),
        ys.max(),
        y0,
        y1,
    )
    # Well inside: amber over grey; well outside: the grey image untouched.
    cx, cy = int((x0 + x1) / 2), int((y0 + y1) / 2)
    r, g, b = px[cy, cx]
    assert r > 170 and b < 100 and r > g > b, (r, g, b)
    ox, oy = to_screen(page, W * 0.85, H * 0.85)
    if 0 <= ox < w_img and 0 <= oy < h_img:
        assert np.all(np.abs(px[int(oy), int(ox)] - GREY) <= 2)


def test_hint_is_drawn_on_the_image_and_follows_zoom(live_server, page, shot, raters):
    campaign, (r1, *_) = raters
    item = hinted_item(campaign)
    login(page, live_server.url, "r1")
    wait_ready(page)
    page.wait_for_function("() => window.richhf.viewer.hint !== null")
    expect(page.locator("#hint")).to_be_visible()
    # The old 120 px square thumbnail is gone.
    assert page.locator("#suggestion-map").count() == 0

    check_overlay_at_current_view(page)  # fitted
    # The block is 240x100 image px: 2.4:1 on screen too, not the map's 16:10 square-ish shape.
    px, _ = canvas_pixels(page)
    ys, xs = np.nonzero(tinted(px))
    assert 2.1 < (np.ptp(xs) + 1) / (np.ptp(ys) + 1) < 2.7
    shot(page, "rater-hint-fit")

    for _ in range(4):
        page.keyboard.press("+")
    box = page.locator("#canvas").bounding_box()
    page.mouse.move(box["x"] + 300, box["y"] + 300)
    page.mouse.down()
    page.mouse.move(box["x"] + 380, box["y"] + 340, steps=4)
    page.mouse.up()
    next_frames(page)
    assert page.evaluate("() => window.richhf.viewer.scale") > 2 * page.evaluate(
        "() => window.richhf.viewer.fitScale()"
    )
    check_overlay_at_current_view(page)  # zoomed in and panned
    shot(page, "rater-hint-zoomed")
    page.keyboard.press("0")

    # Opacity 0 and the M key both take it off; M puts it back.
    page.fill("#hint-opacity", "0")
    page.dispatch_event("#hint-opacity", "input")
    px, _ = canvas_pixels(page)
    assert not tinted(px).any()
    page.fill("#hint-opacity", "60")
    page.dispatch_event("#hint-opacity", "input")
    page.locator("#canvas").focus()
    page.keyboard.press("m")
    expect(page.locator("#hint-toggle")).to_have_attribute("aria-pressed", "false")
    px, _ = canvas_pixels(page)
    assert not tinted(px).any()
    page.keyboard.press("m")
    px, _ = canvas_pixels(page)
    assert tinted(px).any()

    # Suggested words are marked in the prompt.
    assert page.locator(".chip.suggested").evaluate_all("els => els.map(e => Number(e.dataset.index))") == [1, 5]

    # Accept as points: red points cover the block, the words are marked, all editable.
    page.click("#hint-accept")
    page.wait_for_function("() => window.richhf.doc.state.implausible.length > 0")
    n = int(page.text_content("#count-implausible"))
    assert n >= 1
    points = page.evaluate("() => window.richhf.doc.state.implausible")
    assert all(IX0 <= x <= IX1 and IY0 <= y <= IY1 for x, y in points)
    assert page.locator(".chip[aria-pressed=true]").evaluate_all("els => els.map(e => Number(e.dataset.index))") == [
        1,
        5,
    ]
    x, y = points[0]
    sx, sy = to_screen(page, x, y)
    page.mouse.click(box["x"] + sx, box["y"] + sy)  # a click on a point removes it
    expect(page.locator("#count-implausible")).to_have_text(str(n - 1))
    for key in "3333":
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    wait_for(lambda: Annotation.objects.filter(rater=r1, item=item).exists(), timeout=10, what="the answer")
    answer = Annotation.objects.get(rater=r1, item=item)
    assert answer.suggestion_shown is True
    assert len(answer.implausible_points) == n - 1
    if server_has_drafts():  # the server that knows drafts also takes suggestion_accepted
        assert answer.suggestion_accepted is True


def test_hint_turned_off_stays_off_and_the_answer_says_it_was_not_shown(live_server, page, raters):
    campaign, (r1, *_) = raters
    first, second = hinted_item(campaign, priority=5), hinted_item(campaign, blue=GREY + 1)
    login(page, live_server.url, "r1")
    wait_ready(page)
    page.wait_for_function("() => window.richhf.viewer.hint !== null")
    page.click("#hint-toggle")  # seen, then turned off: this answer saw it
    for key in "4444":
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => window.richhf.page.assignment?.item.id === {second.pk}")
    wait_ready(page)
    page.wait_for_function("() => window.richhf.viewer.hint !== null")
    expect(page.locator("#hint-toggle")).to_have_attribute("aria-pressed", "false")
    px, _ = canvas_pixels(page)
    assert not tinted(px).any(), "the rater's choice to hide the hint holds for the next item"
    for key in "2222":
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    wait_for(lambda: Annotation.objects.filter(rater=r1, item=second).exists(), timeout=10, what="the answer")
    assert Annotation.objects.get(rater=r1, item=first).suggestion_shown is True
    assert Annotation.objects.get(rater=r1, item=second).suggestion_shown is False
