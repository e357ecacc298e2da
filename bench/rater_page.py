"""The rater page: its weight and the time from Enter to the next item drawn.

    .venv/bin/python bench/rater_page.py [--items 16] [--size 1024x768]

A fresh PostgreSQL database, one rater, N items (photo-like PNGs of --size), and the static
files as production ships them: `collectstatic` with the production storage (DEBUG off:
richhf_site.staticfiles.MinifiedCompressedStaticFilesStorage, our JS and CSS minified, then
gzip-compressed by WhiteNoise) into a temporary STATIC_ROOT, served by WhiteNoise's middleware
from there through Django's live server (its own static-files handler is taken out, so nothing
is served from the source folders). Debian's Chromium at 1280x800. The rater does what a rater
does on every item: a point, a word, four scores, Enter. Measured per item, in the page: from
the Enter keydown to the first frame painted after the next item is shown (two
requestAnimationFrames after the state turns "ready"), with the next image preloaded (the page
leases one ahead) and the draft autosave running (every change PUTs the draft; the bench waits
until it is saved before Enter, so a save is in the loop's past, and the one for the score keys
is still pending at Enter).

Two runs in the same process: "autosave on" (the figure) and "autosave off" (the baseline:
the draft endpoint answers 404, so the page stops saving, as on a server without drafts).
Where the server has no draft endpoint yet, the "on" run answers each PUT in the browser
(page.route) with 200 after the server's usual latency for a small write, and says so.

Page weight: every file the browser loaded for the page until the first item is ready
(Resource Timing: the HTML, CSS, JS and the translation catalog; images and /api/ excluded),
each fetched again from the same server: "raw" is its bytes as served uncompressed, "gzip" its
gzip -9 size (what WhiteNoise serves for static files: the .gz it wrote at collectstatic; the
bench checks the two agree). Baseline: the page at --before (git rev 060ca41, before issue 15),
its HTML rendered from that revision's templates for the same rater and campaign, its CSS and JS
as they were in git. That page had no minifier, so it shipped unminified: its files are counted
as they are (and gzip -9 the same way). The page before issue 15 switched items in 147-373 ms
(docs/performance.md); that range is printed next to today's for reference.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "richhf_bench_rater_page"
PASSWORD = "bench-pw"
REFERENCE = {"page_kb": 58, "switch_ms": (147, 373)}

# Enter -> next item drawn, measured inside the page.
PROBE = """() => {
  window.__bench = { t0: 0, samples: [] };
  document.addEventListener("keydown", (e) => { if (e.key === "Enter") window.__bench.t0 = performance.now(); }, true);
  const root = document.getElementById("annotate");
  new MutationObserver(() => {
    if (root.dataset.state !== "ready" || !window.__bench.t0) return;
    const t0 = window.__bench.t0;
    window.__bench.t0 = 0;
    requestAnimationFrame(() => requestAnimationFrame(() => window.__bench.samples.push(performance.now() - t0)));
  }).observe(root, { attributes: true, attributeFilter: ["data-state"] });
}"""

URLS = """() => performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource"))
  .map((e) => e.name).filter((u) => !u.includes("/api/") && !/\\.(png|jpe?g|webp)(\\?|$)/.test(u))"""


def photo_png(width: int, height: int, seed: int) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([(x * (seed + 3)) % 256, (y * (seed + 5)) % 256, ((x + y) * 7) % 256], axis=-1)
    noise = rng.integers(0, 40, size=(height, width, 3))
    buf = io.BytesIO()
    Image.fromarray((base + noise).clip(0, 255).astype(np.uint8), "RGB").save(buf, format="PNG")
    return buf.getvalue()


def setup(items: int, size: tuple[int, int]) -> None:
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB_NAME], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB_NAME], check=True)
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + secrets.token_urlsafe(50))
    os.environ.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        RICHHF_VAR_DIR=str(ROOT / "build" / "bench-rater-page"),
        DJANGO_SETTINGS_MODULE="richhf_site.settings",
        DJANGO_ALLOW_ASYNC_UNSAFE="true",
        # Production's static files: collected (minified, compressed) into a fresh folder.
        DJANGO_STATIC_ROOT=tempfile.mkdtemp(prefix="richhf-bench-static-"),
    )
    os.environ.pop("DJANGO_DEBUG", None)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from annotation.models import Campaign
    from annotation.services import ItemInput, campaign_add_raters, item_create
    from richhf_site.roles import RATER, user_add_role

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    users = []
    for run in ("on", "off"):
        user = get_user_model().objects.create_user(username=f"bench-{run}", password=PASSWORD)
        user_add_role(user=user, role=RATER)
        users.append(user)
    for run, user in zip(("on", "off"), users, strict=True):
        campaign = Campaign.objects.create(name=f"bench-{run}", raters_per_item=1)
        campaign_add_raters(campaign=campaign, users=[user])
        for i in range(items):
            item_create(
                campaign=campaign,
                data=ItemInput(
                    image_bytes=photo_png(*size, seed=i + (0 if run == "on" else 1000)),
                    filename=f"b{i}.png",
                    prompt="a photo of a red car parked next to a tall tree",
                ),
            )


def run_flow(browser, base_url: str, username: str, items: int, *, autosave: str) -> dict:
    from tests.frontend.annotate_support import server_has_drafts

    context = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
    page = context.new_page()
    simulated = False
    if autosave == "off":
        page.route(
            "**/draft/",
            lambda route: route.fulfill(status=404, content_type="application/json", body='{"detail": "Not found."}'),
        )
    elif not server_has_drafts():
        simulated = True

        def saved(route) -> None:
            time.sleep(0.008)  # a small write's latency on this server (heartbeat p50)
            route.fulfill(status=200, content_type="application/json", body=json.dumps({"saved_at": "now"}))

        page.route("**/draft/", saved)
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#annotate[data-state=ready]", timeout=20_000)
    files = [(url, context.request.get(url).body()) for url in page.evaluate(URLS)]
    page.evaluate(PROBE)
    saves = 0
    for n in range(items - 1):
        # The next image is decoded before Enter (the page preloads it).
        page.wait_for_function(
            """async () => { const p = window.richhf.page; const next = p.upcoming[0];
                 if (!next) return true; const img = p.images.get(next.item.id);
                 return Boolean(img) && (await img.then(() => true, () => false)); }""",
            timeout=20_000,
        )
        box = page.locator("#canvas").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
        page.click(".chip[data-index='5']")
        if autosave == "on":
            page.wait_for_function(
                "() => document.getElementById('draft-state').dataset.state === 'saved'", timeout=10_000
            )
            saves += 1
        for key in "4354":
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => window.__bench.samples.length > {n}", timeout=20_000)
    samples = page.evaluate("() => window.__bench.samples")
    context.close()
    return {"files": files, "switch_ms": samples, "simulated": simulated, "saves": saves}


def page_before(rev: str, campaign_name: str, username: str) -> list[tuple[str, bytes]]:
    """The files the browser loaded for the page as it was at `rev`: its HTML rendered from that
    revision's templates for the same rater and campaign, its CSS and JS as they were in git
    (unminified: the project had no minifier then)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.template.backends.django import DjangoTemplates
    from django.test import RequestFactory

    from annotation.models import Campaign

    def show(path: str) -> bytes:
        return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, check=True).stdout

    old = {
        name: show(f"frontend/templates/{name}").decode() for name in ("frontend/base.html", "frontend/annotate.html")
    }
    engine = DjangoTemplates(
        {
            "NAME": "before",
            "DIRS": [],
            "APP_DIRS": False,
            "OPTIONS": {
                "loaders": [
                    ("django.template.loaders.locmem.Loader", old),
                    "django.template.loaders.app_directories.Loader",
                ],
                "context_processors": settings.TEMPLATES[0]["OPTIONS"].get("context_processors", []),
            },
        }
    )
    request = RequestFactory().get("/annotate/1/")
    request.user = get_user_model().objects.get(username=username)
    campaign = Campaign.objects.get(name=campaign_name)
    config = {"campaign": {"id": campaign.pk}, "urls": {"home": "/?list"}}
    html = engine.get_template("frontend/annotate.html").render({"campaign": campaign, "config": config}, request)
    names = (
        "base.css",
        "annotate/annotate.css",
        "annotate/main.js",
        "annotate/viewer.js",
        "annotate/api.js",
        "annotate/doc.js",
    )
    return [("annotate.html", html.encode())] + [(name, show(f"frontend/static/frontend/{name}")) for name in names]


def gz(data: bytes) -> int:
    """gzip -9 size, as WhiteNoise compresses at collectstatic."""
    return len(gzip.compress(data, 9, mtime=0))


def served_gzip(url: str) -> tuple[int, str | None]:
    """Bytes the server sends for `url` to a browser that accepts gzip, and its Content-Encoding."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request) as response:  # noqa: S310 (our own live server)
        return len(response.read()), response.headers.get("Content-Encoding")


def summarise(samples: list[float]) -> dict:
    s = sorted(samples)
    return {
        "n": len(s),
        "median": statistics.median(s),
        "p90": s[min(len(s) - 1, int(0.9 * len(s)))],
        "min": s[0],
        "max": s[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--size", default="1024x768", help="image size WxH")
    parser.add_argument(
        "--before", default="060ca41", help="git revision of the page before issue 15 (weight baseline)"
    )
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    setup(args.items, size)  # type: ignore[arg-type]

    from playwright.sync_api import sync_playwright
    from pytest_django.live_server_helper import LiveServer

    from tests.conftest import CHROMIUM_ARGS

    # No static-files handler: /static/ comes from WhiteNoise's middleware and STATIC_ROOT.
    server = LiveServer("localhost:0", start=False)
    server.thread.static_handler = lambda handler: handler
    server.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            on = run_flow(browser, server.url, "bench-on", args.items, autosave="on")
            off = run_flow(browser, server.url, "bench-off", args.items, autosave="off")
            browser.close()
        served = {url: served_gzip(url) for url, _ in on["files"] if "/static/" in url}
    finally:
        server.stop()

    from django.conf import settings
    from django.contrib.staticfiles import finders

    print(f"static files: {settings.STORAGES['staticfiles']['BACKEND']} -> {settings.STATIC_ROOT}")
    raw = sum(len(body) for _, body in on["files"])
    zipped = sum(gz(body) for _, body in on["files"])
    source_total = 0
    print(f"page weight: {raw / 1024:.1f} KB raw ({len(on['files'])} files), {zipped / 1024:.1f} KB gzip")
    print("      raw    gzip  served  source  file")
    for url, body in on["files"]:
        path = url.replace(server.url, "")
        source = len(body)
        shipped = ""
        if url in served:
            name = path.split("/static/", 1)[1]
            source = Path(finders.find(name)).stat().st_size  # type: ignore[arg-type]
            size, encoding = served[url]
            shipped = f"{size} {encoding or 'identity'}"
            if encoding == "gzip" and size != gz(body):
                shipped += " (differs from gzip -9 of the raw bytes)"
        source_total += source
        print(f"  {len(body):>7} {gz(body):>7} {shipped.split(' ')[0] if shipped else '-':>7} {source:>7}  {path}")
    print(
        f"  (source: the same files before minification, {source_total / 1024:.1f} KB;"
        " HTML and the catalog are rendered by Django, not minified)"
    )
    old = page_before(args.before, "bench-on", "bench-on")
    old_raw, old_gz = sum(len(b) for _, b in old), sum(gz(b) for _, b in old)
    print(
        f"the page at {args.before} (before issue 15), shipped unminified (no minifier then):"
        f" {old_raw / 1024:.1f} KB raw, {old_gz / 1024:.1f} KB gzip ({len(old)} files)"
    )
    for name, body in old:
        print(f"  {len(body):>7} {gz(body):>7}  {name}")
    print(
        f"ratio today/before: {raw / old_raw:.2f} raw, {zipped / old_gz:.2f} gzip"
        f" (reference: about {REFERENCE['page_kb']} KB raw)"
    )
    a, b = summarise(on["switch_ms"]), summarise(off["switch_ms"])
    label = (
        "simulated 200 in the browser (no draft endpoint on this server)" if on["simulated"] else "real server endpoint"
    )
    print(f"Enter -> next item drawn, autosave on ({label}; {on['saves']} saves waited for):")
    print("  " + ", ".join(f"{k} {v:.0f}" if isinstance(v, float) else f"{k} {v}" for k, v in a.items()) + " ms")
    print("Enter -> next item drawn, autosave off (baseline, same process):")
    print("  " + ", ".join(f"{k} {v:.0f}" if isinstance(v, float) else f"{k} {v}" for k, v in b.items()) + " ms")
    print(f"  ratio on/off (median): {a['median'] / b['median']:.2f}")
    lo, hi = REFERENCE["switch_ms"]
    print(f"  reference before issue 15: {lo}-{hi} ms (submit -> next item shown)")


if __name__ == "__main__":
    main()
