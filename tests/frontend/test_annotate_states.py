"""The page's other states in real Chromium: nothing to do, busy, a refused submit that keeps
the rater's work, skip with a reason, the guidelines, the lease warning, and privacy."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from annotation.models import Annotation, Assignment, AssignmentState
from annotation.services import AnnotationInput, annotation_submit, assignment_next, campaign_add_raters
from tests.conftest import wait_for

from .conftest import login, next_frames, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCORES = {"plausibility": 4, "alignment": 3, "aesthetics": 5, "overall": 4}


def score_all_by_keyboard(page, keys: str = "4354") -> None:
    # With no row focused, a number key scores the first empty row.
    for key in keys:
        page.keyboard.press(key)


def click_image_centre(page) -> None:
    box = page.locator("#canvas").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    next_frames(page)


def test_nothing_to_do_and_busy_are_explicit(live_server, page, shot, make_user, make_campaign, make_item):
    empty = make_campaign("empty")
    crowded = make_campaign("crowded", raters_per_item=1)
    make_item(crowded)
    rater = make_user("solo", "rater")
    other = make_user("other", "rater")
    campaign_add_raters(campaign=empty, users=[rater])
    campaign_add_raters(campaign=crowded, users=[rater, other])
    assignment_next(rater=other, campaign=crowded)  # the only item is now leased to someone else

    login(page, live_server.url, "solo")
    # Two campaigns: the home page lists them with a way in.
    expect(page.locator(f"li[data-campaign='{empty.pk}'] a.start")).to_be_visible()

    page.goto(f"{live_server.url}/annotate/{empty.pk}/")
    # A rater who has rated nothing is not told they are done (issue 15, defect 6).
    page.wait_for_selector("#annotate[data-state=new]")
    expect(page.locator("#viewer-message-title")).to_have_text("Nothing to rate yet")
    assert page.is_disabled("#submit") and page.is_disabled("#skip")
    shot(page, "10-nothing-to-do")

    page.goto(f"{live_server.url}/annotate/{crowded.pk}/")
    page.wait_for_selector("#annotate[data-state=busy]")
    expect(page.locator("#viewer-message-title")).to_have_text("All items are being worked on")
    expect(page.locator("#retry")).to_be_visible()
    shot(page, "11-busy")

    # A campaign the rater is not in is a 404, like the API.
    outsider = make_campaign("not-mine")
    response = page.goto(f"{live_server.url}/annotate/{outsider.pk}/")
    assert response.status == 404


def test_refused_submit_keeps_work_then_skip_with_reason(live_server, page, shot, make_user, make_campaign, make_item):
    campaign = make_campaign("tight", raters_per_item=1)
    items = [make_item(campaign, prompt=f"item number {i}", width=640, height=480, priority=10 - i) for i in range(3)]
    r1, r2 = make_user("r1", "rater"), make_user("r2", "rater")
    campaign_add_raters(campaign=campaign, users=[r1, r2])

    login(page, live_server.url, "r1")
    wait_ready(page)
    assert page.evaluate("() => window.richhf.page.assignment.item.id") == items[0].pk
    # Preloaded next: r1 also holds the second item.
    assert Assignment.objects.filter(rater=r1, state=AssignmentState.LEASED).count() == 2

    click_image_centre(page)
    page.click(".chip[data-index='1']")
    score_all_by_keyboard(page)
    assert page.is_enabled("#submit")

    # The lease lapses and r2 takes the only slot: the server refuses r1's submit (409).
    past = timezone.now() - timedelta(minutes=30)
    Assignment.objects.filter(rater=r1, item=items[0]).update(leased_at=past, expires_at=past + timedelta(minutes=20))
    assert assignment_next(rater=r2, campaign=campaign).assignment.item_id == items[0].pk
    page.click("#submit")
    alert = page.locator("#alert")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("expired")
    # Nothing the rater did is lost.
    assert page.text_content("#count-implausible") == "1"
    assert page.get_attribute(".chip[data-index='1']", "aria-pressed") == "true"
    assert page.locator("input[type=radio]:checked").count() == 4
    assert not Annotation.objects.filter(rater=r1).exists()
    shot(page, "12-submit-refused-inline")

    alert.get_by_role("button", name="Load the next item").click()
    page.wait_for_function(f"() => window.richhf.page.assignment?.item.id === {items[1].pk}")
    wait_ready(page)

    # Skip by keyboard: S opens the form, a reason of one's own, Enter confirms.
    page.keyboard.press("s")
    expect(page.locator("#skip-form")).to_be_visible()
    page.select_option("#skip-reason", "other")
    page.fill("#skip-other", "the image is a screenshot of text")
    shot(page, "13-skip-form")
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => window.richhf.page.assignment?.item.id === {items[2].pk}")
    skipped = Assignment.objects.get(rater=r1, item=items[1])
    assert skipped.state == AssignmentState.SKIPPED
    assert skipped.skip_reason == "the image is a screenshot of text"


def test_guidelines_and_lease_warning(live_server, page, shot, raters, make_item):
    campaign, _ = raters
    item = make_item(campaign, width=640, height=480)
    page.clock.install()
    login(page, live_server.url, "r1")
    wait_ready(page)

    # Keyboard alone: the image has focus after loading; arrows move a crosshair, Space
    # toggles a point under it.
    assert page.evaluate("() => document.activeElement.id") == "canvas"
    for key in ["ArrowRight", "Shift+ArrowDown", "Space"]:
        page.keyboard.press(key)
    expect(page.locator("#count-implausible")).to_have_text("1")
    page.keyboard.press("Space")
    expect(page.locator("#count-implausible")).to_have_text("0")
    page.keyboard.press("b")
    page.keyboard.press("Space")
    expect(page.locator("#count-misaligned")).to_have_text("1")

    page.keyboard.press("?")
    dialog = page.locator("#guidelines")
    expect(dialog).to_be_visible()
    for words in [
        "Hands",
        "Faces",
        "Text",
        "Physics",
        "Missing element",
        "Wrong attribute",
        "Wrong action",
        "Wrong count",
        "Wrong position",
    ]:
        expect(dialog).to_contain_text(words)
    shot(page, "14-guidelines")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # Untouched for 18.5 minutes of a 20-minute lease: the countdown warns.
    page.clock.fast_forward("18:30")
    lease = page.locator("#lease")
    expect(lease).to_have_class(re.compile(r"\bwarn\b"))
    expect(page.locator("#alert")).to_contain_text("reserved for you")
    shot(page, "15-lease-warning")
    before = Assignment.objects.get(rater__username="r1", item=item).expires_at
    # Any key renews it: the server extends the lease and the warning goes away.
    page.keyboard.press("Shift")
    expect(lease).not_to_have_class(re.compile(r"\bwarn\b"))
    expect(page.locator("#alert")).to_be_hidden()
    assert Assignment.objects.get(rater__username="r1", item=item).expires_at > before


def test_page_never_shows_other_raters_answers_or_aggregates(live_server, page, raters, make_item):
    campaign, (r1, r2, r3) = raters
    first = make_item(campaign, width=640, height=480, priority=5)
    make_item(campaign, width=640, height=480)
    secrets = []
    for n, rater in enumerate([r2, r3]):
        assignment = assignment_next(rater=rater, campaign=campaign).assignment
        assert assignment.item_id == first.pk
        x, y = 0.123457 + n / 1000, 0.654321 + n / 1000
        secrets += [f"{x:.6f}"[2:], f"{y:.6f}"[2:]]
        annotation_submit(
            assignment_id=assignment.pk,
            rater=rater,
            data=AnnotationInput(
                implausible_points=[[x, y]],
                misaligned_points=[[y, x]],
                misaligned_words=[2],
                scores=SCORES,
                time_spent_ms=987654 + n,
            ),
        )
        secrets.append(str(987654 + n))

    seen: list[tuple[str, str]] = []  # (url, body of JSON and HTML answers)

    def record(response) -> None:
        kind = response.headers.get("content-type", "")
        # Bodies are read at once: after a navigation Chromium no longer has them.
        body = response.text() if ("json" in kind or "html" in kind) and response.status != 302 else ""
        seen.append((response.url, body))

    page.on("response", record)
    login(page, live_server.url, "r1")
    wait_ready(page)
    assert page.evaluate("() => window.richhf.page.assignment.item.id") == first.pk
    # r1 gives the third answer, which completes the item (and queues its aggregation).
    click_image_centre(page)
    score_all_by_keyboard(page, "2222")
    page.keyboard.press("Enter")
    wait_for(lambda: Annotation.objects.filter(rater=r1, item=first).exists(), timeout=15, what="r1's annotation")
    page.wait_for_function(
        f"() => window.richhf.page.assignment && window.richhf.page.assignment.item.id !== {first.pk}"
    )
    wait_ready(page)
    page.reload()
    wait_ready(page)

    allowed = [
        r"^/login/$",
        r"^/$",
        rf"^/annotate/{campaign.pk}/$",
        r"^/static/",
        r"^/jsi18n/$",  # the JavaScript catalog (base.html), the same for every rater
        rf"^/api/campaigns/{campaign.pk}/(next|progress)/$",
        r"^/api/assignments/\d+/(heartbeat|submit|draft)/$",
        r"^/api/items/\d+/image/$",
    ]
    paths = {urlparse(url).path for url, _ in seen if url.startswith(live_server.url)}
    assert paths, "the page made no requests?"
    unexpected = [p for p in paths if not any(re.match(a, p) for a in allowed)]
    assert not unexpected, f"the page fetched {unexpected}"
    assert any("/next/" in p for p in paths) and any("/submit/" in p for p in paths)

    blob = "\n".join([page.content(), *(body for _, body in seen)])
    assert '"words"' in blob, "the recorded bodies should include the item the page received"
    for secret in secrets:
        assert secret not in blob, f"another rater's value {secret} reached r1's page"
    for name in ("r2", "r3"):
        assert not re.search(rf"\b{name}\b", blob), f"{name}'s name reached r1's page"
    for key in ("heatmap", "aggregate", "maxdiff", "agreement"):
        assert key not in blob.lower(), f"{key!r} reached r1's page"
    # Answers travel only in the reply to r1's own submit (r1's own answer), and r1's own
    # draft of r1's own lease in the replies that carry that lease (next-item after the
    # reload, a heartbeat if its timer fired, the draft endpoint itself).
    answers = [url for url, body in seen if '"implausible_points"' in body or '"time_spent_ms"' in body]
    assert answers and all(url.endswith(("/submit/", "/next/", "/heartbeat/", "/draft/")) for url in answers), answers
