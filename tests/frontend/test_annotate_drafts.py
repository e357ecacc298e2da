"""Drafts in the browser: every change is saved on the server, and a reload or another browser
(another device) gets the points, words, scores and time on the item back. Needs the draft
endpoint of the `drafts` branch; skipped, with the reason, on a server without it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from annotation.models import Annotation, Draft
from tests.conftest import wait_for

from .annotate_support import login_in, needs_drafts
from .conftest import login, next_frames, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_drafts]

ANSWER_JS = """() => {
  const r = window.richhf;
  return {
    id: r.page.assignment.id,
    implausible: r.doc.state.implausible,
    misaligned: r.doc.state.misaligned,
    words: [...r.doc.state.words].sort((a, b) => a - b),
    scores: Object.fromEntries([...document.querySelectorAll("input[type=radio]:checked")].map((i) => [i.name, i.value])),
  };
}"""


def click_at(page, fx: float, fy: float) -> None:
    box = page.locator("#canvas").bounding_box()
    page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
    next_frames(page)


def close(a: list, b: list, tol: float = 1e-3) -> bool:
    return len(a) == len(b) and all(
        abs(p[0] - q[0]) <= tol and abs(p[1] - q[1]) <= tol for p, q in zip(a, b, strict=True)
    )


def test_draft_survives_a_reload_and_a_second_browser(live_server, page, browser, raters, make_item):
    campaign, (r1, *_) = raters
    item = make_item(campaign, width=640, height=480, prompt="a yellow cat on a red sofa")
    login(page, live_server.url, "r1")
    wait_ready(page)
    click_at(page, 0.3, 0.4)
    page.keyboard.press("b")
    click_at(page, 0.7, 0.6)
    page.click(".chip[data-index='1']")
    for key in "243":  # three of four scores: an unfinished answer
        page.keyboard.press(key)
    expect(page.locator("#draft-state")).to_have_attribute("data-state", "saved", timeout=10_000)
    before = page.evaluate(ANSWER_JS)
    draft = Draft.objects.get(assignment_id=before["id"])
    assert draft.answer["misaligned_words"] == [1]
    assert draft.answer["scores"] == {"plausibility": 2, "alignment": 4, "aesthetics": 3, "overall": None}
    page.wait_for_timeout(1500)  # time on the item goes on

    page.reload()
    wait_ready(page)
    after = page.evaluate(ANSWER_JS)
    assert after["id"] == before["id"]
    assert close(after["implausible"], before["implausible"]) and close(after["misaligned"], before["misaligned"])
    assert after["words"] == before["words"] == [1]
    assert after["scores"] == before["scores"]
    # The time on the item is the draft's, saved as the page went away (not 0, not a guess).
    restored_ms = page.evaluate("() => window.richhf.page.activeMs")
    assert restored_ms >= 1500
    # ...and the server has that same time once the old page's last save has landed.
    wait_for(
        lambda: Draft.objects.get(assignment_id=before["id"]).time_spent_ms == restored_ms,
        timeout=5,
        what="the draft's time on the server to be the restored one",
    )
    expect(page.locator("#points-live")).to_contain_text("draft")

    # Another browser (another device): the same lease, the same draft.
    other = browser.new_context(viewport={"width": 1280, "height": 720}, device_scale_factor=1)
    second = other.new_page()
    login_in(second, live_server.url, "r1")
    wait_ready(second)
    there = second.evaluate(ANSWER_JS)
    assert there["id"] == before["id"]
    assert close(there["implausible"], before["implausible"]) and there["words"] == [1]
    assert there["scores"] == before["scores"]
    # Finished there: the draft is gone, the answer is in.
    second.keyboard.press("5")
    second.keyboard.press("Enter")
    wait_for(lambda: Annotation.objects.filter(rater=r1, item=item).exists(), timeout=10, what="the answer")
    assert not Draft.objects.filter(assignment_id=before["id"]).exists()
    other.close()
