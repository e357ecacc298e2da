"""The rater's own home and history (issue 15): progress per campaign, past answers paged, one
answer drawn read-only over its image at the true disk size; nobody sees anyone else's."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotation.models import Annotation, Assignment, AssignmentState
from annotation.services import assignment_next, campaign_add_raters
from frontend.views import HISTORY_PAGE_SIZE
from tests.conftest import docs_screenshot, submitted_annotation

from .conftest import login


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def answer(item, user, **kwargs) -> Annotation:
    return submitted_annotation(item, user, **kwargs)


# --------------------------------------------------------------------------- home progress


@pytest.mark.django_db
def test_home_shows_each_campaigns_progress_for_the_rater(make_campaign, make_item, make_user):
    campaign = make_campaign("progress", raters_per_item=1)
    items = [make_item(campaign) for _ in range(6)]
    rater, other = make_user("me", "rater"), make_user("other", "rater")
    campaign_add_raters(campaign=campaign, users=[rater, other])
    answer(items[0], rater)
    answer(items[1], rater)
    answer(items[2], other)  # k = 1: complete, no longer available to me
    items[2].completed_at = timezone.now()
    items[2].save(update_fields=["completed_at"])
    assignment_next(rater=other, campaign=campaign)  # leased by other: not available to me now
    mine = assignment_next(rater=rater, campaign=campaign).assignment  # my live lease counts
    assert mine is not None
    gold = make_item(campaign)
    gold.is_gold = True  # never in a rater's counts
    gold.save(update_fields=["is_gold"])

    page = client_for(rater).get(reverse("home") + "?list").content.decode()
    # done 2; available = 2 done + my live lease + 1 untouched item (6 - 2 mine - 1 complete - 1 leased - 1 mine live).
    assert f'<progress id="progress-{campaign.pk}" value="2" max="4"' in page
    assert "2 of 4 done" in page
    assert f"{reverse('history')}?campaign={campaign.pk}" in page


@pytest.mark.django_db
def test_home_progress_of_an_empty_campaign_is_zero_of_zero(make_campaign, make_user):
    campaign = make_campaign("empty")
    rater = make_user("me", "rater")
    campaign_add_raters(campaign=campaign, users=[rater])
    page = client_for(rater).get(reverse("home") + "?list").content.decode()
    assert 'value="0" max="1"' in page and "0 of 0 done" in page


@pytest.mark.django_db
def test_a_lead_who_is_not_a_rater_gets_no_progress_or_history_link(make_campaign, make_user):
    make_campaign("c")
    lead = make_user("boss", "lead")
    page = client_for(lead).get(reverse("home") + "?list").content.decode()
    assert "<progress" not in page
    assert f'href="{reverse("history")}' not in page


# --------------------------------------------------------------------------- history list


@pytest.mark.django_db
def test_history_lists_only_my_answers_newest_first_and_pages(raters, make_item):
    campaign, (r1, r2, _) = raters
    items = [make_item(campaign, prompt=f"prompt number {i}") for i in range(HISTORY_PAGE_SIZE + 3)]
    for i, item in enumerate(items):
        a = answer(item, r1)
        Annotation.objects.filter(pk=a.pk).update(created_at=timezone.now() - timedelta(minutes=len(items) - i))
    theirs = make_item(campaign, prompt="somebody else's secret prompt")
    answer(theirs, r2)

    client = client_for(r1)
    first = client.get(reverse("history")).content.decode()
    assert "somebody else" not in first
    shown = re.findall(r"prompt number (\d+)", first)
    assert len(shown) == HISTORY_PAGE_SIZE
    assert shown[0] == str(len(items) - 1)  # newest first
    assert "Page 1 of 2" in first and 'rel="next"' in first
    second = client.get(reverse("history") + "?page=2").content.decode()
    assert sorted(int(n) for n in re.findall(r"prompt number (\d+)", second)) == [0, 1, 2]
    assert "somebody else" not in second


@pytest.mark.django_db
def test_history_for_one_campaign_and_not_for_someone_elses(raters, make_campaign, make_item, make_user):
    campaign, (r1, _, _) = raters
    other_campaign = make_campaign("other")
    answer(make_item(campaign, prompt="in the first campaign"), r1)
    client = client_for(r1)
    page = client.get(f"{reverse('history')}?campaign={campaign.pk}").content.decode()
    assert "in the first campaign" in page
    assert client.get(f"{reverse('history')}?campaign={other_campaign.pk}").status_code == 404
    assert client.get(f"{reverse('history')}?campaign=abc").status_code == 404


@pytest.mark.django_db
def test_history_without_answers_says_so(raters):
    _, (r1, _, _) = raters
    page = client_for(r1).get(reverse("history")).content.decode()
    assert "You have not submitted any answer yet." in page


@pytest.mark.django_db
@pytest.mark.parametrize("n", [1, 12], ids=["one", "many"])
def test_history_page_queries_do_not_grow_with_answers(n, raters, make_item, django_assert_max_num_queries):
    campaign, (r1, _, _) = raters
    for _ in range(n):
        answer(make_item(campaign), r1)
    client = client_for(r1)
    # session, user, roles (base), the count, the page of answers with item and campaign.
    with django_assert_max_num_queries(6):
        response = client.get(reverse("history"))
    assert response.status_code == 200


# --------------------------------------------------------------------------- one answer


@pytest.mark.django_db
def test_answer_page_draws_my_points_as_true_size_disks_with_words_and_scores(raters, make_item):
    campaign, (r1, _, _) = raters
    item = make_item(campaign, prompt="a yellow cat on a red sofa", width=640, height=480)
    mine = answer(
        item,
        r1,
        scores=(2, 3, 4, 5),
        words=[1, 5],
        implausible=[[0.25, 0.5]],
        misaligned=[[0.75, 0.125], [0.5, 0.5]],
        time_ms=83_000,
    )
    page = client_for(r1).get(reverse("history-answer", args=[mine.pk])).content.decode()
    assert 'viewBox="0 0 640 480"' in page
    assert reverse("api:item-image", args=[item.pk]) in page
    r = campaign.radius_fraction * 480  # 24 px of the original image
    disks = re.findall(r'data-kind="(\w+)" data-cx="([\d.]+)" data-cy="([\d.]+)" data-r="([\d.]+)"', page)
    assert [(k, float(x), float(y), float(rr)) for k, x, y, rr in disks] == [
        ("implausible", 160.0, 240.0, r),
        ("misaligned", 480.0, 60.0, r),
        ("misaligned", 320.0, 240.0, r),
    ]
    assert re.findall(r"<mark[^>]*>(\w+)</mark>", page) == ["yellow", "red"]
    scores = dict(re.findall(r'data-score="(\w+)"><dt>[^<]+</dt><dd>.*?<b>(\d)</b>', page))
    assert scores == {"plausibility": "2", "alignment": "3", "aesthetics": "4", "overall": "5"}
    assert "1:23" in page  # time on item
    # Read-only: no form posts anything from this page but the top bar's.
    assert page.count("<form") == 2  # the language switch and log out


@pytest.mark.django_db
def test_answer_page_coordinates_do_not_follow_the_locale(raters, make_item):
    campaign, (r1, _, _) = raters
    item = make_item(campaign, width=640, height=480)
    mine = answer(item, r1, implausible=[[0.3333, 0.5]])
    client = client_for(r1)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    page = client.get(reverse("history-answer", args=[mine.pk])).content.decode()
    assert re.search(r'cx="213\.31\d*"', page), page  # a dot, never a locale's decimal comma


@pytest.mark.django_db
def test_nobody_else_sees_my_answer(raters, make_item, make_user):
    campaign, (r1, r2, _) = raters
    mine = answer(make_item(campaign), r1)
    url = reverse("history-answer", args=[mine.pk])
    assert client_for(r1).get(url).status_code == 200
    assert client_for(r2).get(url).status_code == 404  # another rater
    assert client_for(make_user("boss", "lead")).get(url).status_code == 404  # a lead (not theirs)
    assert client_for(make_user("adm", "admin")).get(url).status_code == 404  # the admin has the admin
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))
    assert client_for(r1).get(reverse("history-answer", args=[999_999])).status_code == 404


@pytest.mark.django_db
def test_a_lead_who_also_rates_sees_only_their_own_answers(raters, make_item, make_user):
    campaign, (r1, _, _) = raters
    lead = make_user("lead-rater", "lead", "rater")
    campaign_add_raters(campaign=campaign, users=[lead])
    own = answer(make_item(campaign, prompt="the lead's own answer"), lead)
    other = answer(make_item(campaign, prompt="a rater's answer"), r1)
    client = client_for(lead)
    listing = client.get(reverse("history")).content.decode()
    assert "the lead&#x27;s own answer" in listing and "a rater&#x27;s answer" not in listing
    assert client.get(reverse("history-answer", args=[own.pk])).status_code == 200
    assert client.get(reverse("history-answer", args=[other.pk])).status_code == 404


@pytest.mark.django_db
def test_skipped_and_leased_items_are_not_answers(raters, make_item):
    campaign, (r1, _, _) = raters
    now = timezone.now()
    Assignment.objects.create(
        item=make_item(campaign, prompt="skipped one"),
        rater=r1,
        state=AssignmentState.SKIPPED,
        leased_at=now,
        expires_at=now,
        skip_reason="blurry",
    )
    page = client_for(r1).get(reverse("history")).content.decode()
    assert "skipped one" not in page and "You have not submitted any answer yet." in page


# --------------------------------------------------------------------------- in Chromium


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_home_and_history_in_chromium_on_desktop_and_phone(
    live_server, browser, shot, make_campaign, make_coded_item, make_item, make_user
):
    campaign = make_campaign("Street scenes", description="photos of streets", raters_per_item=1)
    second = make_campaign("Portraits", raters_per_item=1)
    rater = make_user("rita", "rater")
    campaign_add_raters(campaign=campaign, users=[rater])
    campaign_add_raters(campaign=second, users=[rater])
    item = make_coded_item(
        campaign, prompt="a yellow cat sitting on a red sofa next to a window", width=600, height=400
    )
    for i in range(3):
        make_item(campaign, prompt=f"an old tram on a rainy street, picture {i}")
    make_item(second, prompt="a portrait of a smiling woman")
    mine = answer(
        item,
        rater,
        scores=(2, 4, 3, 3),
        words=[1, 6],
        implausible=[[0.3, 0.4], [0.62, 0.7]],
        misaligned=[[0.8, 0.25]],
        time_ms=71_000,
    )
    for i, other in enumerate(campaign.items.exclude(pk=item.pk).order_by("id")[:2]):
        answer(other, rater, scores=(3 + i, 3, 4, 4), implausible=[[0.5, 0.5]])

    for width, height, suffix in ((1280, 800, "desktop"), (390, 844, "phone")):
        context = browser.new_context(
            viewport={"width": width, "height": height},
            device_scale_factor=1,
            is_mobile=suffix == "phone",
            has_touch=suffix == "phone",
        )
        page = context.new_page()
        violations: list[str] = []
        page.on(
            "console", lambda m, seen=violations: seen.append(m.text) if "Content Security Policy" in m.text else None
        )
        login(page, live_server.url, "rita")
        page.goto(f"{live_server.url}{reverse('home')}?list")
        progress = page.locator(f"#progress-{campaign.pk}")
        assert progress.get_attribute("value") == "3" and progress.get_attribute("max") == "4"
        assert page.locator(f"#progress-text-{campaign.pk}").inner_text() == "3 of 4 done"
        # Nothing is cut off on a phone: the page does not scroll sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        shot(page, f"rater-home-{suffix}", full_page=True)
        if suffix == "desktop":
            docs_screenshot(shot(page, "rater-home-docs"), "rater-home")

        page.click("text=All your answers")
        page.wait_for_selector(".answers li")
        assert page.locator(".answers li").count() == 3
        loaded = page.evaluate(
            "() => Promise.all([...document.querySelectorAll('img.thumb')].map(i => i.complete ? i :"
            " new Promise(r => { i.onload = i.onerror = () => r(i); }))).then(a => a.map(i => i.naturalWidth))"
        )
        assert len(loaded) == 3 and all(loaded), loaded
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        shot(page, f"rater-history-list-{suffix}", full_page=True)

        page.click(f"li[data-answer='{mine.pk}'] a")
        page.wait_for_selector("#answer-image")
        # The image really loads and each disk is drawn at radius_fraction of the image's height.
        assert page.evaluate(f"fetch('{reverse('api:item-image', args=[item.pk])}').then(r => r.status)") == 200
        svg = page.locator("#answer-image").bounding_box()
        assert abs(svg["width"] / svg["height"] - 600 / 400) < 0.01
        for disk in page.locator("g.disk .disk-fill").all():
            box = disk.bounding_box()
            assert abs(box["height"] / svg["height"] - 2 * campaign.radius_fraction) < 0.01, box
        centre = page.locator("g.disk-implausible .disk-fill").first.bounding_box()
        assert abs((centre["x"] + centre["width"] / 2 - svg["x"]) / svg["width"] - 0.3) < 0.01
        assert abs((centre["y"] + centre["height"] / 2 - svg["y"]) / svg["height"] - 0.4) < 0.01
        assert page.locator("#prompt-words mark").all_inner_texts() == ["yellow", "red"]
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        shot(page, f"rater-history-{suffix}", full_page=True)
        if suffix == "desktop":
            docs_screenshot(shot(page, "rater-history-docs"), "rater-history")
        assert violations == []  # the catalog script, the SVG's image and the styles pass the CSP
        context.close()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_language_switch_in_chromium_turns_the_pages_chinese(live_server, page, shot, make_campaign, make_user):
    campaign = make_campaign("Street scenes")
    rater = make_user("li", "rater")
    campaign_add_raters(campaign=campaign, users=[rater])
    page.set_viewport_size({"width": 1280, "height": 800})
    login(page, live_server.url, "li")
    page.goto(f"{live_server.url}{reverse('home')}?list")
    page.click(".lang-switch button[value=zh-hans]")
    page.wait_for_selector("html[lang=zh-hans]")
    assert page.locator("h1").first.inner_text() == "你的活动"
    # The JavaScript catalog loaded: window.gettext and friends exist on the page.
    assert page.evaluate("typeof gettext === 'function' && typeof ngettext === 'function' && typeof interpolate")
    assert page.evaluate("interpolate('%s / %s', [1, 2])") == "1 / 2"
    shot(page, "rater-home-zh-hans")
    page.goto(f"{live_server.url}{reverse('history')}")
    assert page.locator("h1").inner_text() == "你的答案"
    shot(page, "rater-history-zh-hans")
    page.click(".lang-switch button[value=en]")
    page.wait_for_selector("html[lang=en]")
    assert page.locator("h1").inner_text() == "Your answers"
