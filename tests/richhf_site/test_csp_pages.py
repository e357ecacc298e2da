"""The pages pass the Content-Security-Policy: each role's pages load in Chromium without a
single CSP violation (securitypolicyviolation events and "Refused to" console messages)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.services import campaign_add_raters
from tests.frontend.conftest import login, wait_ready

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} in ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def watched_page(page):
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy" in m.text else None)
    page.add_init_script(RECORD_VIOLATIONS)

    def violations() -> list[str]:
        page.wait_for_load_state("networkidle")
        return page.evaluate("window.__csp") + console

    page.csp_violations = violations
    return page


@pytest.fixture
def campaign(make_campaign, make_item, make_user):
    campaign = make_campaign("csp")
    items = [make_item(campaign) for _ in range(2)]
    campaign_add_raters(campaign=campaign, users=[make_user("r1", "rater")])
    make_user("boss", "lead")
    make_user("adm", "admin")
    return campaign, items


def test_the_rater_page_has_no_csp_violation(live_server, watched_page, campaign):
    login(watched_page, live_server.url, "r1")
    watched_page.wait_for_url("**/annotate/*/")
    wait_ready(watched_page)
    assert watched_page.csp_violations() == []
    # The home page with its API tokens section, after issuing one.
    watched_page.goto(live_server.url + reverse("home") + "?list")
    watched_page.click("#api-tokens button[type=submit]:text('New token')")
    watched_page.wait_for_selector("#new-token")
    assert watched_page.csp_violations() == []
    assert "script-src 'self'" in watched_page.evaluate(
        "fetch(location.href).then(r => r.headers.get('content-security-policy'))"
    )


def test_the_lead_pages_have_no_csp_violation(live_server, watched_page, campaign):
    campaign_obj, items = campaign
    login(watched_page, live_server.url, "boss")
    for url in (
        reverse("home") + "?list",
        reverse("dashboard:campaign", args=[campaign_obj.pk]),
        reverse("dashboard:item", args=[items[0].pk]),
        reverse("learning:campaign", args=[campaign_obj.pk]),
    ):
        response = watched_page.goto(live_server.url + url)
        assert response is not None and response.status == 200, url
        assert watched_page.csp_violations() == [], url


def test_the_admin_pages_have_no_csp_violation(live_server, watched_page, campaign):
    login(watched_page, live_server.url, "adm")
    for url in (
        reverse("admin:index"),
        reverse("admin:annotation_campaign_changelist"),
        reverse("admin:annotation_campaign_change", args=[campaign[0].pk]),
        reverse("admin:richhf_site_apitoken_changelist"),
    ):
        response = watched_page.goto(live_server.url + url)
        assert response is not None and response.status == 200, url
        assert watched_page.csp_violations() == [], url


def test_a_violation_is_seen(live_server, watched_page, campaign):
    """The watcher itself works: an inline script injected into a page is reported."""
    login(watched_page, live_server.url, "boss")
    watched_page.goto(live_server.url + reverse("home") + "?list")
    watched_page.evaluate(
        """() => { const s = document.createElement('script'); s.textContent = '1'; document.body.append(s); }"""
    )
    assert any("script-src" in v for v in watched_page.csp_violations())
