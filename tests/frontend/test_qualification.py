"""The qualification flow in real Chromium: a new rater answers N gold items, sees the reference
beside their own answer after each, passes and gets real work; another fails and is told so;
an admin lets them retry. And a honeypot leaves no trace in the page or its traffic."""

from __future__ import annotations

import io
import json
import re
from urllib.parse import urlparse

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from annotation import services
from annotation.gold import gold_from_annotation, gold_from_import
from annotation.models import GoldReference, Qualification, RaterStatus
from annotation.services import ItemInput, campaign_add_raters, item_create
from modeling.heatmaps import encode_png
from tests.conftest import api_client_for, docs_screenshot, submitted_annotation

from .conftest import login, next_frames, wait_ready

pytestmark = [pytest.mark.browser, pytest.mark.slow]

W, H = 640, 480
PROMPT = "a red ball under a green tree"


def scene_png(seed: int) -> bytes:
    """A small drawn scene (sky, grass, a tree and a ball), different per seed."""
    img = Image.new("RGB", (W, H), (135, 190, 235))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 330, W, H], fill=(90, 160, 80))
    x = 380 + (seed % 5) * 20
    d.rectangle([x + 40, 170, x + 70, 340], fill=(110, 75, 40))
    d.ellipse([x - 20, 60, x + 130, 220], fill=(40, 120, 50))
    d.ellipse([120 + seed * 9, 340, 200 + seed * 9, 420], fill=(210, 40, 40))
    d.ellipse([60, 40, 120, 100], fill=(250, 220, 80))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def scene_item(campaign, seed: int):
    item, created = item_create(
        campaign=campaign, data=ItemInput(image_bytes=scene_png(seed), filename=f"s{seed}.png", prompt=PROMPT)
    )
    assert created
    return item


def expert_gold(campaign, expert, seed: int):
    """Gold from an expert's answer: a red point on the ball, the word 'green', these scores."""
    item = scene_item(campaign, seed)
    answer = submitted_annotation(
        item, expert, scores=(2, 3, 4, 2), words=[5], implausible=[[(160 + seed * 9) / W, 380 / H]]
    )
    gold_from_annotation(annotation_id=answer.pk, by=expert)
    return item


def imported_gold(campaign, seed: int):
    """Gold as an imported release record gives it: a soft artifact map around the tree."""
    item = scene_item(campaign, seed)
    yy, xx = np.mgrid[0:512, 0:512]
    cx, cy = (425 + (seed % 5) * 20) / W * 512, 140 / H * 512
    blob = np.clip(1.2 - np.hypot(xx - cx, yy - cy) / 40, 0, 1)
    implausibility = np.round(blob * 255).astype(np.uint8)
    maps = {"implausibility": encode_png(implausibility), "misalignment": encode_png(np.zeros((512, 512), np.uint8))}
    gold_from_import(
        item=item,
        maps=maps,
        scores={"plausibility": 0.25, "alignment": 0.75, "aesthetics": 0.75, "overall": 0.5},
        misaligned_words=[1],
    )
    return item


class _LowestFirst:
    """Gold items in the order they were made (the imported one first), for stable pictures."""

    def random(self) -> float:
        return 1.0

    def choice(self, seq):
        return seq[0]


@pytest.fixture
def qualifying(make_campaign, make_user, monkeypatch):
    monkeypatch.setattr(services, "_RNG", _LowestFirst())
    campaign = make_campaign(
        "Qualified pets", qualification_required=True, qualification_items=2, qualification_threshold=0.6
    )
    expert = make_user("expert", "lead")
    admin = make_user("admin", "admin")
    first = imported_gold(campaign, 1)
    gold = [first, expert_gold(campaign, expert, 2), expert_gold(campaign, expert, 3)]
    real = scene_item(campaign, 9)
    return campaign, admin, {g.pk for g in gold}, real


def current_item(page) -> int:
    return page.evaluate("() => window.richhf.page.assignment.item.id")


def click_image_at(page, x: float, y: float) -> None:
    """Clicks the original-image point (x, y), normalised, through the viewer's transform."""
    box = page.locator("#canvas").bounding_box()
    s = page.evaluate(
        "([x, y]) => { const v = window.richhf.viewer; return v.toScreen(x * v.width, y * v.height); }", [x, y]
    )
    page.mouse.click(box["x"] + s["x"], box["y"] + s["y"])
    next_frames(page)


def answer_like_the_reference(page, item_id: int) -> None:
    ref = GoldReference.objects.get(item_id=item_id)
    for x, y in ref.implausible_points or []:
        click_image_at(page, x, y)
    if ref.implausible_map:  # the blob's centre, from the stored map itself
        with ref.implausible_map.open("rb") as handle:
            array = np.asarray(Image.open(handle).convert("L"))
        row, col = np.unravel_index(np.argmax(array), array.shape)
        click_image_at(page, (col + 0.5) / array.shape[1], (row + 0.5) / array.shape[0])
    for i in ref.misaligned_words:
        page.click(f"#words .chip[data-index='{i}']")
    for name in ("plausibility", "alignment", "aesthetics", "overall"):
        page.click(f"label[for='{name}-{round(1 + 4 * ref.scores[name])}']")


def answer_carelessly(page) -> None:
    click_image_at(page, 0.05, 0.05)
    page.click("#words .chip[data-index='0']")
    for name, value in (("plausibility", 5), ("alignment", 1), ("aesthetics", 1), ("overall", 5)):
        page.click(f"label[for='{name}-{value}']")


def submit_and_see_feedback(page) -> None:
    page.click("#submit")
    expect(page.locator("#feedback")).to_be_visible(timeout=15_000)
    next_frames(page)


def test_a_new_rater_trains_on_gold_items_passes_and_gets_real_work(live_server, page, shot, qualifying, make_user):
    campaign, _, gold, real = qualifying
    rater = make_user("newbie", "rater")
    campaign_add_raters(campaign=campaign, users=[rater])
    login(page, live_server.url, "newbie")
    page.goto(f"{live_server.url}/annotate/{campaign.pk}/")
    for n in (1, 2):
        wait_ready(page)
        item_id = current_item(page)
        assert item_id in gold
        answer_like_the_reference(page, item_id)
        submit_and_see_feedback(page)
        feedback = page.locator("#feedback")
        expect(feedback.locator("h2")).to_contain_text(f"Practice item {n} of 2")
        expect(feedback).to_contain_text("Reference words")
        expect(feedback.locator(".feedback-scores tbody tr")).to_have_count(4)
        # The reference layer lies over the image, beside the rater's own disks.
        expect(page.locator("#feedback-layer")).to_be_attached()
        if n == 1:
            expect(feedback).to_contain_text("Reference words: red")  # the imported record's word
            page.wait_for_timeout(300)  # the map is decoded and tinted
            shot(page, "qualification-01-feedback-map")
            page.set_viewport_size({"width": 1280, "height": 800})
            page.wait_for_timeout(300)
            docs_screenshot(shot(page, "qualification-feedback"), "qualification-feedback")
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(300)
            shot(page, "qualification-01-feedback-map-phone")
            page.set_viewport_size({"width": 1280, "height": 720})
        else:
            expect(feedback).to_contain_text("Reference words: green")
            expect(feedback.locator(".feedback-verdict")).to_contain_text("You passed the qualification")
            shot(page, "qualification-02-passed")
        page.click("#feedback-continue")
        expect(page.locator("#feedback")).to_have_count(0)
        expect(page.locator("#feedback-layer")).to_have_count(0)
    wait_ready(page)
    assert current_item(page) == real.pk
    assert RaterStatus.objects.get(campaign=campaign, rater=rater).qualification == Qualification.PASSED


def test_a_careless_rater_fails_is_told_so_and_an_admin_lets_them_retry(live_server, page, shot, qualifying, make_user):
    campaign, admin, gold, real = qualifying
    rater = make_user("sloppy", "rater")
    campaign_add_raters(campaign=campaign, users=[rater])
    login(page, live_server.url, "sloppy")
    page.goto(f"{live_server.url}/annotate/{campaign.pk}/")
    for n in (1, 2):
        wait_ready(page)
        assert current_item(page) in gold
        answer_carelessly(page)
        submit_and_see_feedback(page)
        if n == 1:
            expect(page.locator("#feedback .feedback-verdict")).to_contain_text("Mean quality so far")
            page.click("#feedback-continue")
    page.wait_for_timeout(300)
    verdict = page.locator("#feedback .feedback-verdict")
    expect(verdict).to_contain_text("You did not reach the pass mark")
    expect(page.locator("#feedback .feedback-scores tr.off")).not_to_have_count(0)  # far-off scores stand out
    shot(page, "qualification-03-failed-feedback")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    shot(page, "qualification-03-failed-feedback-phone")
    page.set_viewport_size({"width": 1280, "height": 720})
    page.click("#feedback-continue")
    message = page.locator("#viewer-message")
    expect(message).to_be_visible()
    expect(page.locator("#viewer-message-title")).to_have_text("Not qualified for this campaign")
    expect(page.locator("#viewer-message-text")).to_contain_text("A project admin can let you try again")
    shot(page, "qualification-04-not-qualified")
    assert page.evaluate("() => window.richhf.page.assignment") is None

    # The admin lets them retry: the page gives a practice item again, one they have not seen.
    seen = set(RaterStatus.objects.get(rater=rater).rater.assignments.values_list("item_id", flat=True))
    response = api_client_for(admin).post(reverse("api:requalify", args=[campaign.pk, rater.pk]))
    assert response.status_code == 200 and response.json()["attempt"] == 2
    page.reload()
    wait_ready(page)
    item_id = current_item(page)
    assert item_id in gold
    assert item_id in (gold - seen) or response.json()["reused_items"] > 0
    answer_like_the_reference(page, item_id)
    submit_and_see_feedback(page)
    expect(page.locator("#feedback h2")).to_contain_text("Practice item 1 of 2")


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


class _Draw:
    """Honeypot draws for the live server's thread: the first lease gold, then none."""

    def __init__(self) -> None:
        self.draws = 0

    def random(self) -> float:
        self.draws += 1
        return 0.0 if self.draws == 1 else 1.0

    def choice(self, seq):
        return seq[0]


# The progress figures arrive after the item (their request is separate): compare settled pages.
PROGRESS_SHOWN = "() => document.getElementById('done-today').parentElement.title !== ''"
DOM_SIGNATURE = """() => [...document.body.querySelectorAll('*')]
    .filter(e => !e.closest('#guidelines'))
    .map(e => [e.tagName, e.id, [...e.classList].sort().join('.'),
               [...e.attributes].map(a => a.name).filter(n => !['style', 'aria-pressed'].includes(n)).sort().join(',')].join('|'))
    .join('\\n')"""


def test_a_honeypot_leaves_no_trace_in_the_page_or_its_traffic(
    live_server, page, monkeypatch, make_campaign, make_user
):
    campaign = make_campaign("Production", honeypot_share=0.1)
    expert = make_user("expert", "lead")
    gold = expert_gold(campaign, expert, 4)
    real = scene_item(campaign, 5)
    rater = make_user("worker", "rater")
    campaign_add_raters(campaign=campaign, users=[rater])
    monkeypatch.setattr(services, "_RNG", _Draw())

    responses: list[tuple[str, int, str, object]] = []

    def record(response) -> None:
        kind = response.headers.get("content-type", "")
        body = None
        if "json" in kind and response.status != 302:
            body = response.json()
        responses.append((urlparse(response.url).path, response.status, kind, body))

    page.on("response", record)
    login(page, live_server.url, "worker")
    page.goto(f"{live_server.url}/annotate/{campaign.pk}/")
    wait_ready(page)
    assert current_item(page) == gold.pk
    page.wait_for_function(PROGRESS_SHOWN)
    dom_gold = page.evaluate(DOM_SIGNATURE)
    html_gold = page.content()
    start_gold = len(responses)
    answer_carelessly(page)
    page.click("#submit")
    page.wait_for_function(
        f"() => window.richhf.page.assignment && window.richhf.page.assignment.item.id === {real.pk}"
    )
    wait_ready(page)
    gold_traffic = responses[start_gold:]
    page.wait_for_function(PROGRESS_SHOWN)
    dom_real = page.evaluate(DOM_SIGNATURE)
    start_real = len(responses)
    answer_carelessly(page)
    page.click("#submit")
    expect(page.locator("#viewer-message-title")).to_have_text("Nothing to do")
    real_traffic = responses[start_real:]

    # The page's structure is the same for both; no feedback appeared after the honeypot.
    assert dom_gold == dom_real
    assert not re.search(r"gold|honeypot|reference", html_gold, re.I)

    # The same requests, the same statuses and types, and every JSON body of the same shape.
    def normalised(traffic):
        return [(re.sub(r"\d+", "N", path), status, kind, _shape(body)) for path, status, kind, body in traffic]

    gold_submit = [r for r in gold_traffic if r[0].endswith("/submit/")]
    real_submit = [r for r in real_traffic if r[0].endswith("/submit/")]
    assert len(gold_submit) == len(real_submit) == 1
    assert normalised(gold_submit) == normalised(real_submit)
    assert gold_submit[0][3]["feedback"] is None
    nexts = [r for r in responses if r[0].endswith("/next/") and r[3]["assignment"]]
    assert {json.dumps(_shape(r[3]["assignment"]), sort_keys=True) for r in nexts} == {
        json.dumps(_shape(nexts[0][3]["assignment"]), sort_keys=True)
    }
    assert not any(re.search(r"gold|honeypot|reference", json.dumps(r[3]), re.I) for r in responses if r[3])
    paths = {re.sub(r"\d+", "N", r[0]) for r in gold_traffic}
    assert not any("gold" in p for p in paths)
