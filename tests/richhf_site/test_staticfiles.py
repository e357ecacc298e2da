"""Production static files: collectstatic with the production storage minifies our JS and CSS
(still valid ES modules, same names, gzip made from the minified bytes), leaves third-party
files alone, and the rater page served from those files by WhiteNoise (DEBUG off) works."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from annotation.models import Annotation
from tests.conftest import wait_for

ROOT = Path(settings.BASE_DIR)
STORAGE = "richhf_site.staticfiles.MinifiedCompressedStaticFilesStorage"
# Every JS and CSS file of our own apps, as the finders see them (app/static/<name>).
OURS = {
    str(p.relative_to(static)): p
    for app in apps.get_app_configs()
    if Path(app.path).resolve().is_relative_to(ROOT.resolve()) and "site-packages" not in Path(app.path).parts
    for static in [Path(app.path) / "static"]
    if static.is_dir()
    for p in static.rglob("*")
    if p.suffix in (".js", ".css") and not p.name.endswith((".min.js", ".min.css"))
}


def production_storages() -> dict:
    return {**settings.STORAGES, "staticfiles": {"BACKEND": STORAGE}}


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=root, STORAGES=production_storages()):
        call_command("collectstatic", interactive=False, verbosity=0)
    return root


def test_our_js_and_css_are_minified_and_keep_their_names(collected):
    assert "frontend/annotate/main.js" in OURS and "frontend/annotate/annotate.css" in OURS
    for name, source in OURS.items():
        out = collected / name
        assert out.exists(), f"{name} must keep its name (modules import each other by relative name)"
        assert out.stat().st_size < source.stat().st_size, f"{name} was not minified"
        text = out.read_text()
        assert "sourceMappingURL" not in text
        assert not re.search(r"^\s*//|/\*", text, re.M), f"{name} still has comments"
    main = (collected / "frontend/annotate/main.js").read_text()
    # The page's first module: at least a quarter lighter.
    assert len(main) < 0.8 * OURS["frontend/annotate/main.js"].stat().st_size


def test_gzip_is_made_from_the_minified_bytes(collected):
    for name in ("frontend/annotate/main.js", "frontend/annotate/viewer.js", "frontend/annotate/annotate.css"):
        out = collected / name
        assert gzip.decompress((collected / f"{name}.gz").read_bytes()) == out.read_bytes()


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to parse the modules")
def test_minified_js_still_parses_as_es_modules(collected, tmp_path):
    js = [name for name in OURS if name.endswith(".js")]
    assert len(js) > 10
    for name in js:
        copy = tmp_path / (name.replace("/", "__") + ".mjs")  # .mjs: parsed as a module
        copy.write_bytes((collected / name).read_bytes())
        result = subprocess.run(["node", "--check", str(copy)], capture_output=True, text=True)
        assert result.returncode == 0, f"{name} minified is not a valid module:\n{result.stderr}"
        # Its relative imports still point at collected files.
        for target in re.findall(r"""(?:from|import)\s*\(?\s*["'](\.{1,2}/[^"']+)["']""", copy.read_text()):
            assert (collected / name).parent.joinpath(target).resolve().exists(), f"{name} imports {target}"


def test_third_party_and_minified_files_are_left_alone(collected):
    import django.contrib.admin

    admin_js = Path(django.contrib.admin.__file__).parent / "static/admin/js/core.js"
    assert (collected / "admin/js/core.js").read_bytes() == admin_js.read_bytes()
    vendored = Path(django.contrib.admin.__file__).parent / "static/admin/js/vendor/jquery/jquery.min.js"
    assert (collected / "admin/js/vendor/jquery/jquery.min.js").read_bytes() == vendored.read_bytes()


def test_collecting_again_keeps_the_minified_files(collected):
    before = {name: (collected / name).read_bytes() for name in OURS}
    with override_settings(STATIC_ROOT=collected, STORAGES=production_storages()):
        call_command("collectstatic", interactive=False, verbosity=0)
    assert {name: (collected / name).read_bytes() for name in OURS} == before


@pytest.fixture
def production_server(collected, transactional_db):
    """Django's live server without its static-files handler: /static/ is served by WhiteNoise's
    middleware from the collected (minified, pre-compressed) files, DEBUG off, as in production."""
    from pytest_django.live_server_helper import LiveServer

    with override_settings(STATIC_ROOT=collected, STORAGES=production_storages(), DEBUG=False):
        server = LiveServer("localhost:0", start=False)
        server.thread.static_handler = lambda handler: handler  # no finders: WhiteNoise only
        server._live_server_modified_settings.enable()
        server.start()
        try:
            yield server
        finally:
            server.stop()
            server._live_server_modified_settings.disable()


@pytest.mark.browser
@pytest.mark.slow
def test_rater_page_from_the_minified_files_submits_an_answer(collected, production_server, page, raters, make_item):
    from tests.frontend.conftest import login, wait_ready

    campaign, (r1, *_) = raters
    item = make_item(campaign, width=640, height=480)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    served: dict[str, tuple[bytes, str | None]] = {}
    page.on(
        "response",
        lambda r: (
            served.__setitem__(r.url, (r.body(), r.headers.get("content-encoding"))) if "/static/" in r.url else None
        ),
    )
    login(page, production_server.url, "r1")
    wait_ready(page)
    box = page.locator("#canvas").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
    page.click(".chip[data-index='1']")
    for key in "2343":
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    wait_for(lambda: Annotation.objects.filter(rater=r1, item=item).exists(), timeout=10, what="the answer")
    answer = Annotation.objects.get(rater=r1, item=item)
    assert (answer.plausibility, answer.alignment, answer.aesthetics, answer.overall) == (2, 3, 4, 3)
    assert answer.misaligned_words == [1] and len(answer.implausible_points) == 1
    page.wait_for_selector("#annotate[data-state=done]", timeout=10_000)
    assert errors == []
    # The browser got the minified files, gzip-compressed by WhiteNoise.
    body, encoding = next(v for url, v in served.items() if url.endswith("/frontend/annotate/main.js"))
    assert body == (collected / "frontend/annotate/main.js").read_bytes()
    assert encoding == "gzip"
