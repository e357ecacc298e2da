"""Languages (issue 15): English and Simplified Chinese, a switch on every page, the JavaScript
catalog, per-language guidelines, and a catalog that is complete and compiled.

The catalog checks run the real tools (makemessages, msgfmt) on a scratch copy of the sources,
so a rater-visible string added without a translation, a fuzzy entry or a stale .mo fails here.
"""

from __future__ import annotations

import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from frontend.views import guidelines_html

pytestmark = pytest.mark.django_db

ROOT = Path(settings.BASE_DIR)
PO = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
# Where the strings a rater sees live: their pages' templates and the rater API's Python.
RATER_SOURCES = ("annotation", "frontend", "richhf_site")
MSGFMT = shutil.which("msgfmt")


def _has_han(text: str) -> bool:
    return re.search(r"[\u4e00-\u9fff]", text) is not None


def page_for(user, url: str, language: str | None = None) -> str:
    client = Client()
    client.force_login(user)
    if language:
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


# --------------------------------------------------------------------------- pages


def test_home_renders_in_chinese_with_the_language_cookie_and_in_english_without(raters):
    _, (r1, _, _) = raters
    zh = page_for(r1, reverse("home") + "?list", "zh-hans")
    assert '<html lang="zh-hans">' in zh
    assert "你的活动" in zh and "开始标注" in zh and "退出登录" in zh
    assert "Your campaigns" not in zh
    en = page_for(r1, reverse("home") + "?list")
    assert '<html lang="en' in en and "Your campaigns" in en and not _has_han(en.replace("简体中文", ""))


def test_accept_language_picks_chinese_for_a_new_visitor(client):
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.5").content.decode()
    assert "登录" in page and "用户名" in page and "密码" in page


def test_language_switch_is_a_csrf_protected_post_form_on_every_page(raters, client):
    _, (r1, _, _) = raters
    page = page_for(r1, reverse("home") + "?list")
    form = re.search(r'<form method="post" action="([^"]+)" class="lang-switch".*?</form>', page, re.S)
    assert form and form.group(1) == reverse("set_language")
    assert "csrfmiddlewaretoken" in form.group(0)
    assert 'value="en"' in form.group(0) and 'value="zh-hans"' in form.group(0)
    assert "简体中文" in form.group(0) and "English" in form.group(0)
    # The login page (anonymous) has it too.
    assert 'class="lang-switch"' in client.get(reverse("login")).content.decode()


def test_switching_the_language_sets_the_cookie_and_returns_to_the_page(raters):
    _, (r1, _, _) = raters
    client = Client(enforce_csrf_checks=True)
    client.force_login(r1)
    home = reverse("home") + "?list"
    page = client.get(home).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": home, "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == home
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    assert "你的活动" in client.get(home).content.decode()
    # Without the CSRF token the switch is refused.
    assert Client(enforce_csrf_checks=True).post(reverse("set_language"), {"language": "en"}).status_code == 403


def test_the_catalog_script_loads_before_page_modules_and_serves_the_language(raters, client):
    campaign, (r1, _, _) = raters
    page = page_for(r1, reverse("annotate", args=[campaign.pk]), "zh-hans")
    catalog = page.index(reverse("javascript-catalog"))
    assert catalog < page.index('type="module"')
    src = re.search(r'<script src="([^"]+)"></script>', page).group(1)
    assert src.startswith(reverse("javascript-catalog"))
    script = client.get(src.replace("&amp;", "&"), HTTP_COOKIE=f"{settings.LANGUAGE_COOKIE_NAME}=zh-hans")
    assert script.status_code == 200 and "javascript" in script["Content-Type"]
    body = script.content.decode()
    for name in ("django.gettext", "django.ngettext", "django.interpolate", "globals.gettext"):
        assert name in body, name
    # Not the admin's strings: the catalog holds only the site's own (it stays small).
    assert "Available %s" not in body
    # Browsers revalidate it (304) instead of downloading it on every page.
    again = client.get(src.replace("&amp;", "&"), HTTP_IF_MODIFIED_SINCE=script["Last-Modified"])
    assert again.status_code == 304


def test_api_error_details_follow_the_raters_language(leased):
    client, assignment_id = leased
    response = client.post(
        reverse("api:skip", args=[assignment_id]), {"reason": "   "}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert response.status_code == 400
    assert _has_han(" ".join(response.json()["errors"]["reason"])), response.json()


# --------------------------------------------------------------------------- guidelines


def test_guidelines_are_given_in_the_raters_language_with_a_fallback(make_campaign, make_user, raters):
    campaign, (r1, _, _) = raters
    campaign.guidelines = "# Rules\n\nMark **every** artifact."
    campaign.guidelines_translations = {"zh-hans": "# 规则\n\n标出**每一个**瑕疵。"}
    campaign.save()
    assert guidelines_html(campaign, "zh-hans") == "<h1>规则</h1>\n<p>标出<strong>每一个</strong>瑕疵。</p>\n"
    assert "<strong>every</strong>" in guidelines_html(campaign, "en")
    assert "<strong>every</strong>" in guidelines_html(campaign, "fr")  # no translation: the default
    # "zh" alone (a generic code) serves zh-hans raters too.
    campaign.guidelines_translations = {"zh": "只有中文"}
    assert "只有中文" in guidelines_html(campaign, "zh-hans")
    bare = make_campaign("bare")
    assert guidelines_html(bare, "zh-hans") == ""


def test_annotate_page_context_carries_the_guidelines_of_the_active_language(raters):
    campaign, (r1, _, _) = raters
    campaign.guidelines = "Mark <script>alert(1)</script> **every** artifact."
    campaign.guidelines_translations = {"zh-hans": "标出**每一个**瑕疵。"}
    campaign.save()
    client = Client()
    client.force_login(r1)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    response = client.get(reverse("annotate", args=[campaign.pk]))
    assert response.context["guidelines_html"] == "<p>标出<strong>每一个</strong>瑕疵。</p>\n"
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = client.get(reverse("annotate", args=[campaign.pk])).context["guidelines_html"]
    assert "<strong>every</strong>" in english and "<script>" not in english


# --------------------------------------------------------------------------- the catalog itself


@pytest.fixture(scope="module")
def extracted_po(tmp_path_factory) -> Path:
    """makemessages over a scratch copy of the rater-visible sources, merged into the shipped
    django.po: a msgid there that the shipped file lacks comes out untranslated."""
    work = tmp_path_factory.mktemp("i18n")
    for name in RATER_SOURCES:
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "manage.py", work / "manage.py")
    (work / "locale" / "zh_Hans" / "LC_MESSAGES").mkdir(parents=True)
    shutil.copy(PO, work / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po")
    env = {**os.environ, "DJANGO_DEBUG": "1", "PYTHONPATH": f"{work}{os.pathsep}{ROOT}"}
    # The other apps import from the real checkout; only the copies are scanned.
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "-d", "django", "--no-location", "--no-wrap"],
        cwd=work,
        env={**env, "DJANGO_SETTINGS_MODULE": "richhf_site.settings"},
        check=True,
        capture_output=True,
    )
    return work / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def _statistics(po: Path) -> str:
    result = subprocess.run(
        [MSGFMT, "--check", "--statistics", "-o", os.devnull, str(po)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.skipif(MSGFMT is None, reason="msgfmt (gettext) is needed")
def test_shipped_django_po_has_no_untranslated_or_fuzzy_entry():
    stats = _statistics(PO)
    assert "untranslated" not in stats and "fuzzy" not in stats, stats
    assert int(re.match(r"(\d+) translated", stats).group(1)) > 50, stats


@pytest.mark.skipif(MSGFMT is None, reason="msgfmt (gettext) is needed")
def test_every_rater_visible_string_in_the_sources_is_translated(extracted_po):
    stats = _statistics(extracted_po)
    new = re.findall(r'^msgid "(.+)"\nmsgstr ""\n', extracted_po.read_text(encoding="utf-8"), re.M)
    assert "untranslated" not in stats and "fuzzy" not in stats, (stats, new)


@pytest.mark.skipif(MSGFMT is None, reason="msgfmt (gettext) is needed")
def test_compiled_mo_matches_the_po(tmp_path):
    fresh = tmp_path / "django.mo"
    subprocess.run([MSGFMT, "--check", "-o", str(fresh), str(PO)], check=True)
    with MO.open("rb") as shipped, fresh.open("rb") as compiled:
        shipped_catalog = gettext.GNUTranslations(shipped)._catalog  # type: ignore[attr-defined]
        fresh_catalog = gettext.GNUTranslations(compiled)._catalog  # type: ignore[attr-defined]
    assert shipped_catalog == fresh_catalog, "locale/zh_Hans/LC_MESSAGES/django.mo is stale: run compilemessages"
