"""The nine defects of issue 15, one test each, in real Chromium. Each failed on the page as it
was before the fix (run against the old main.js/viewer.js/annotate.html/annotate.css)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from playwright.sync_api import expect

from annotation.models import Annotation, Assignment, AssignmentState
from annotation.services import assignment_next, campaign_add_raters
from tests.conftest import submitted_annotation, wait_for

from .annotate_support import PHONE, canvas_pixels, login_in, make_flat_item, tap, to_screen, touch_context
from .conftest import login, next_frames, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def click_image(page, fx: float = 0.5, fy: float = 0.5) -> None:
    box = page.locator("#canvas").bounding_box()
    page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
    next_frames(page)


# 1 ------------------------------------------------------------------------------------------


def test_1_enter_submits_whatever_has_focus(live_server, page, raters, make_item):
    campaign, (r1, *_) = raters
    item = make_item(campaign, width=640, height=480)
    login(page, live_server.url, "r1")
    wait_ready(page)
    page.click(".chip[data-index='1']")  # the word now has focus
    for key in "2343":
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    wait_for(lambda: Annotation.objects.filter(rater=r1, item=item).exists(), timeout=10, what="the submitted answer")
    answer = Annotation.objects.get(rater=r1, item=item)
    assert answer.misaligned_words == [1], "Enter must not toggle the focused word"
    assert (answer.plausibility, answer.alignment, answer.aesthetics, answer.overall) == (2, 3, 4, 3)


def test_1_space_toggles_a_word_and_enter_on_an_incomplete_answer_does_not(live_server, page, raters, make_item):
    campaign, _ = raters
    make_item(campaign, width=640, height=480)
    login(page, live_server.url, "r1")
    wait_ready(page)
    chip = page.locator(".chip[data-index='2']")
    chip.focus()
    page.keyboard.press("Space")
    expect(chip).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Enter")  # no scores yet: nothing to submit, and the word stays marked
    expect(chip).to_have_attribute("aria-pressed", "true")
    assert page.get_attribute("#annotate", "data-state") == "ready"


# 2 ------------------------------------------------------------------------------------------


def test_2_hidden_points_refuse_clicks_and_say_why(live_server, page, raters, make_item):
    campaign, _ = raters
    make_item(campaign, width=640, height=480)
    login(page, live_server.url, "r1")
    wait_ready(page)
    page.keyboard.press("h")
    expect(page.locator("#toggle-overlay")).to_have_attribute("aria-pressed", "true")
    click_image(page)
    expect(page.locator("#count-implausible")).to_have_text("0")
    note = page.locator("#viewer-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("hidden")
    # Shown again, the same click adds a point.
    page.keyboard.press("h")
    click_image(page)
    expect(page.locator("#count-implausible")).to_have_text("1")


# 3 ------------------------------------------------------------------------------------------


def test_3_leaving_with_unsaved_changes_asks(live_server, page, raters, make_item):
    campaign, _ = raters
    make_item(campaign, width=640, height=480)
    login(page, live_server.url, "r1")
    wait_ready(page)
    # Every draft save fails, so the change stays unsaved whatever the server is. (Answered at
    # once: a request left hanging kept the context from closing and, under load, took the
    # shared browser down with it.)
    page.route("**/draft/", lambda route: route.fulfill(status=503, content_type="application/json", body="{}"))
    click_image(page)
    expect(page.locator("#count-implausible")).to_have_text("1")
    with page.expect_event("dialog", timeout=5000) as asked:
        page.close(run_before_unload=True)
    assert asked.value.type == "beforeunload"
    asked.value.dismiss()  # stay on the page
    page.unroute("**/draft/")
    page.close()  # and now leave for good, without asking


# (Drafts surviving a reload and a second browser context: test_annotate_drafts.py.)


# 4 ------------------------------------------------------------------------------------------


def test_4_phone_gets_a_usable_image_status_and_guidelines(live_server, browser, raters, make_item):
    campaign, (r1, *_) = raters
    make_item(campaign, width=640, height=480)
    context = touch_context(browser, PHONE)
    page = context.new_page()
    login_in(page, live_server.url, "r1")
    wait_ready(page)
    box = page.locator("#canvas").bounding_box()
    assert box["width"] >= 360, f"the image is {box['width']} px wide on a phone"
    assert box["height"] >= 300
    # Every part of the status bar is on screen, none cut off at the right.
    for el in page.locator(".status > *:visible").all():
        b = el.bounding_box()
        assert b and b["x"] >= 0 and b["x"] + b["width"] <= PHONE["width"] + 0.5, el.text_content()
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    # The guidelines are a tap away, and can be closed by tap.
    tap(page, *centre(page.locator("#open-guidelines")))
    expect(page.locator("#guidelines")).to_be_visible()
    tap(page, *centre(page.locator("#guidelines .dialog-close button")))
    expect(page.locator("#guidelines")).to_be_hidden()
    # A tap on the image adds a point where the finger was.
    page.locator("#canvas").scroll_into_view_if_needed()
    box = page.locator("#canvas").bounding_box()
    sx, sy = to_screen(page, 320, 240)
    tap(page, box["x"] + sx, box["y"] + sy)
    expect(page.locator("#count-implausible")).to_have_text("1")
    x, y = page.evaluate("() => window.richhf.doc.state.implausible[0]")
    scale = page.evaluate("() => window.richhf.viewer.scale")
    assert abs(x - 320) <= 1.5 / scale and abs(y - 240) <= 1.5 / scale
    context.close()


def centre(locator) -> tuple[float, float]:
    b = locator.bounding_box()
    return b["x"] + b["width"] / 2, b["y"] + b["height"] / 2


# 5 ------------------------------------------------------------------------------------------


def test_5_end_of_queue_resets_the_form(live_server, page, raters, make_item):
    campaign, (r1, *_) = raters
    make_item(campaign, width=640, height=480)
    login(page, live_server.url, "r1")
    wait_ready(page)
    click_image(page)
    page.click(".chip[data-index='0']")
    for key in "4354":
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    page.wait_for_selector("#annotate[data-state=done]")
    assert page.locator("input[type=radio]:checked").count() == 0, "the last item's scores are still selected"
    assert page.locator(".chip").count() == 0
    expect(page.locator("#count-implausible")).to_have_text("0")
    expect(page.locator("#item-timer")).to_have_text("0:00")
    assert page.is_disabled("#submit")


# 6 ------------------------------------------------------------------------------------------


def test_6_new_rater_and_finished_rater_get_their_own_message(live_server, page, make_user, make_campaign, make_item):
    empty = make_campaign("empty")
    rated = make_campaign("rated-all")
    item = make_item(rated)
    newbie, veteran = make_user("newbie", "rater"), make_user("veteran", "rater")
    campaign_add_raters(campaign=empty, users=[newbie])
    campaign_add_raters(campaign=rated, users=[veteran])
    submitted_annotation(item, veteran)

    login(page, live_server.url, "newbie")
    page.goto(f"{live_server.url}/annotate/{empty.pk}/")
    page.wait_for_selector("#annotate[data-state=new]")
    message = page.locator("#viewer-message")
    expect(page.locator("#viewer-message-title")).to_have_text("Nothing to rate yet")
    expect(message).not_to_contain_text("every item")
    expect(message).not_to_contain_text("annotated")

    page.context.clear_cookies()
    login(page, live_server.url, "veteran")
    page.goto(f"{live_server.url}/annotate/{rated.pk}/")
    page.wait_for_selector("#annotate[data-state=done]")
    expect(page.locator("#viewer-message-title")).to_have_text("Nothing to do")


# 7: the hint on the image is test_annotate_hint.py (pixel-wise, two zoom levels).

# 8 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rgb", [(229, 57, 53), (245, 124, 0), (255, 255, 255), (0, 0, 0)], ids=["red", "orange", "white", "black"]
)
def test_8_disk_outline_has_a_light_and_a_dark_ring_on_any_background(live_server, page, raters, rgb):
    campaign, _ = raters
    make_flat_item(campaign, rgb=rgb, width=600, height=400)
    login(page, live_server.url, "r1")
    wait_ready(page)
    click_image(page)
    expect(page.locator("#count-implausible")).to_have_text("1")
    x, y = page.evaluate("() => window.richhf.doc.state.implausible[0]")
    cx, cy = to_screen(page, x, y)
    r = page.evaluate(
        "() => window.richhf.viewer.radiusFraction * window.richhf.viewer.height * window.richhf.viewer.scale"
    )
    px, _ = canvas_pixels(page)
    luminance = px @ np.array([0.2126, 0.7152, 0.0722])
    both = 0
    angles = 48
    for k in range(angles):
        a = 2 * math.pi * k / angles
        band = [
            luminance[int(round(cy + d * math.sin(a))), int(round(cx + d * math.cos(a)))]
            for d in np.arange(r - 4, r + 4.5, 0.5)
        ]
        if max(band) > 200 and min(band) < 50:
            both += 1
    # Every direction of the disk's edge shows a light and a dark ring.
    assert both >= angles * 0.9, f"only {both}/{angles} directions show both outlines on {rgb}"


# 9 ------------------------------------------------------------------------------------------


def test_9_live_region_speaks_of_the_new_item_after_a_skip(live_server, page, raters, make_item):
    campaign, (r1, *_) = raters
    make_item(campaign, width=640, height=480, priority=5)
    make_item(campaign, width=640, height=480)
    login(page, live_server.url, "r1")
    wait_ready(page)
    first = page.evaluate("() => window.richhf.page.assignment.id")
    click_image(page, 0.4, 0.4)
    click_image(page, 0.6, 0.6)
    live = page.locator("#points-live")
    expect(live).to_contain_text("Red point added")
    page.keyboard.press("s")
    page.click("#skip-confirm")
    page.wait_for_function(f"() => window.richhf.page.assignment && window.richhf.page.assignment.id !== {first}")
    wait_ready(page)
    assert Assignment.objects.get(pk=first).state == AssignmentState.SKIPPED
    text = live.text_content()
    assert "Red point" not in text and "2 red" not in text, f"the live region still says {text!r}"
    assert "New item" in text


def test_6_busy_is_its_own_message(live_server, page, make_user, make_campaign, make_item):
    crowded = make_campaign("crowded", raters_per_item=1)
    make_item(crowded)
    rater, other = make_user("solo", "rater"), make_user("other", "rater")
    campaign_add_raters(campaign=crowded, users=[rater, other])
    assignment_next(rater=other, campaign=crowded)
    login(page, live_server.url, "solo")
    page.goto(f"{live_server.url}/annotate/{crowded.pk}/")
    page.wait_for_selector("#annotate[data-state=busy]")
    expect(page.locator("#viewer-message-title")).to_have_text("All items are being worked on")
    expect(page.locator("#viewer-message-text")).to_contain_text("30 seconds")


@pytest.mark.parametrize("width", [1280, 1024])
def test_4_desktop_status_bar_shows_every_part(live_server, browser, raters, make_item, width):
    """With the language switch in the same bar, nothing of the status is squeezed to nothing
    or clipped, the draft state included."""
    campaign, _ = raters
    make_item(campaign, width=640, height=480)
    context = browser.new_context(viewport={"width": width, "height": 800}, device_scale_factor=1)
    page = context.new_page()
    login_in(page, live_server.url, "r1")
    wait_ready(page)
    click_image(page)
    page.wait_for_function("() => document.getElementById('draft-state').dataset.state === 'saved'")
    status = page.locator(".status").bounding_box()
    for el in page.locator(".status > *:visible").all():
        b = el.bounding_box()
        assert b["width"] >= 20, f"{el.text_content()!r} is squeezed to {b['width']} px"
        assert b["x"] >= status["x"] - 0.5 and b["x"] + b["width"] <= status["x"] + status["width"] + 0.5, (
            el.text_content()
        )
    expect(page.locator("#draft-state")).to_have_text("Draft saved")
    context.close()
