"""Phones (390x844) and tablets (768x1024) with touch emulation: a tap adds a point, a tap on a
point selects it with a button to remove it, pinch zooms, two fingers pan, the words and scores
sit below the image, and a whole answer is given without a hover or a key."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from annotation.models import Annotation
from tests.conftest import wait_for

from .annotate_support import PHONE, TABLET, login_in, tap, to_screen, touch_context, two_finger
from .conftest import next_frames, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def centre(locator) -> tuple[float, float]:
    b = locator.bounding_box()
    return b["x"] + b["width"] / 2, b["y"] + b["height"] / 2


@pytest.mark.parametrize("viewport", [PHONE, TABLET], ids=["phone", "tablet"])
def test_touch_only_answer(live_server, browser, shot, raters, make_item, viewport):
    campaign, (r1, *_) = raters
    item = make_item(campaign, width=960, height=640, prompt="a yellow cat on a red sofa")
    context = touch_context(browser, viewport)
    page = context.new_page()
    login_in(page, live_server.url, "r1")
    wait_ready(page)
    name = "phone" if viewport is PHONE else "tablet"
    shot(page, f"rater-{name}-ready", full_page=True)
    # A full-page screenshot resizes the viewport for a moment: let the viewer settle back.
    page.wait_for_timeout(300)
    next_frames(page)
    assert page.evaluate("() => matchMedia('(hover: none) and (pointer: coarse)').matches")

    canvas = page.locator("#canvas")
    box = canvas.bounding_box()
    assert box["width"] >= viewport["width"] - 2
    # Words, scores and the submit button are below the image, not beside it.
    for sel in ["#words", ".scores", "#submit"]:
        assert page.locator(sel).bounding_box()["y"] >= box["y"] + box["height"] - 1, sel
    # Keyboard-only help is not shown on a touch screen.
    expect(page.locator("details.keys")).to_be_hidden()

    # Tap: a point where the finger was.
    sx, sy = to_screen(page, 480, 320)
    tap(page, box["x"] + sx, box["y"] + sy)
    expect(page.locator("#count-implausible")).to_have_text("1")
    box = canvas.bounding_box()
    # Tap on the point: selected, with a button to remove it; the point stays until then.
    tap(page, box["x"] + sx + 3, box["y"] + sy - 2)
    remove = page.locator("#point-remove")
    expect(remove).to_be_visible()
    expect(page.locator("#count-implausible")).to_have_text("1")
    shot(page, f"rater-{name}-point-selected")
    box = canvas.bounding_box()
    tap(page, *centre(remove))
    expect(page.locator("#count-implausible")).to_have_text("0")
    expect(remove).to_be_hidden()

    # Pinch out around the image centre: zoom in, the point under the fingers stays put.
    scale0 = page.evaluate("() => window.richhf.viewer.scale")
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    under = page.evaluate(f"() => window.richhf.viewer.toImage({box['width'] / 2}, {box['height'] / 2})")
    two_finger(page, [(cx - 40, cy), (cx + 40, cy)], [(cx - 120, cy), (cx + 120, cy)])
    scale1 = page.evaluate("() => window.richhf.viewer.scale")
    assert scale1 == pytest.approx(scale0 * 3, rel=0.05)
    still = page.evaluate(f"() => window.richhf.viewer.toImage({box['width'] / 2}, {box['height'] / 2})")
    assert abs(still["x"] - under["x"]) < 2 and abs(still["y"] - under["y"]) < 2
    assert page.evaluate("() => window.richhf.doc.state.implausible.length") == 0, "a pinch adds no point"
    # Two fingers moving together: pan by as much, same zoom.
    t0 = page.evaluate("() => [window.richhf.viewer.tx, window.richhf.viewer.ty]")
    two_finger(page, [(cx - 50, cy), (cx + 50, cy)], [(cx - 10, cy + 30), (cx + 90, cy + 30)])
    t1 = page.evaluate("() => [window.richhf.viewer.tx, window.richhf.viewer.ty]")
    assert t1[0] - t0[0] == pytest.approx(40, abs=2) and t1[1] - t0[1] == pytest.approx(30, abs=2)
    assert page.evaluate("() => window.richhf.viewer.scale") == pytest.approx(scale1, rel=0.01)
    shot(page, f"rater-{name}-pinched")

    # Blue tool, a point, a word and four scores, all by tapping; then Submit.
    tap(page, *centre(page.locator("#zoom-fit")))
    tap(page, *centre(page.locator("#tool-misaligned")))
    box = canvas.bounding_box()
    sx, sy = to_screen(page, 300, 200)
    tap(page, box["x"] + sx, box["y"] + sy)
    expect(page.locator("#count-misaligned")).to_have_text("1")
    chip = page.locator(".chip[data-index='1']")
    chip.scroll_into_view_if_needed()
    tap(page, *centre(chip))
    expect(chip).to_have_attribute("aria-pressed", "true")
    for row, value in [("plausibility", 4), ("alignment", 3), ("aesthetics", 5), ("overall", 4)]:
        label = page.locator(f"label[for='{row}-{value}']")
        label.scroll_into_view_if_needed()
        tap(page, *centre(label))
    submit = page.locator("#submit")
    submit.scroll_into_view_if_needed()
    expect(submit).to_be_enabled()
    shot(page, f"rater-{name}-ready-to-submit", full_page=True)
    page.wait_for_timeout(300)
    submit.scroll_into_view_if_needed()
    next_frames(page)
    tap(page, *centre(submit))
    wait_for(lambda: Annotation.objects.filter(rater=r1, item=item).exists(), timeout=10, what="the answer")
    answer = Annotation.objects.get(rater=r1, item=item)
    assert answer.misaligned_words == [1] and len(answer.misaligned_points) == 1
    x, y = answer.misaligned_points[0]
    assert abs(x - 300 / 960) < 0.01 and abs(y - 200 / 640) < 0.01
    context.close()
