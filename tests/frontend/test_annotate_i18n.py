"""The rater page in Simplified Chinese: the JavaScript catalog (loaded by base.html) turns the
page's own sentences into zh-Hans, and the page is screenshotted in each state. Needs the
catalog view and the locale middleware of the `drafts` branch; skipped, saying so, before."""

from __future__ import annotations

import pytest
from django.conf import settings
from playwright.sync_api import expect

from annotation.services import campaign_add_raters

from .annotate_support import PHONE, login_in, touch_context
from .conftest import wait_ready

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        "django.middleware.locale.LocaleMiddleware" not in settings.MIDDLEWARE,
        reason="the server does not pick the rater's language yet (LocaleMiddleware)",
    ),
]


def zh_context(browser, viewport=None, touch=False):
    kw = {"locale": "zh-CN", "extra_http_headers": {"Accept-Language": "zh-Hans,zh;q=0.9"}}
    if touch:
        return touch_context(browser, viewport or PHONE, **kw)
    return browser.new_context(viewport=viewport or {"width": 1280, "height": 800}, device_scale_factor=1, **kw)


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_zh_hans_rater_page(live_server, browser, shot, raters, make_item, make_campaign, screen):
    campaign, (r1, *_) = raters
    make_item(campaign, width=640, height=480)
    empty = make_campaign("empty")
    campaign_add_raters(campaign=empty, users=[r1])
    context = zh_context(browser, PHONE if screen == "phone" else None, touch=screen == "phone")
    page = context.new_page()
    page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": "zh-hans", "url": live_server.url}])
    login_in(page, live_server.url, "r1")
    page.goto(f"{live_server.url}/annotate/{campaign.pk}/")
    wait_ready(page)
    if page.evaluate("() => typeof window.gettext") != "function":
        pytest.skip("base.html loads no JavaScript catalog yet")
    expect(page.locator("#points-live")).to_have_text("新条目。")
    expect(page.locator("#submit-why")).to_have_text("请给出全部四项评分后再提交。")
    shot(page, f"rater-zh-Hans-leased-{screen}")
    page.goto(f"{live_server.url}/annotate/{empty.pk}/")
    page.wait_for_selector("#annotate[data-state=new]")
    expect(page.locator("#viewer-message-title")).to_have_text("暂无可评分的条目")
    shot(page, f"rater-zh-Hans-new-{screen}")
    context.close()
