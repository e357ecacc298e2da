"""The rater page: its weight and the time from Enter to the next item drawn.

    .venv/bin/python bench/rater_page.py [--items 16] [--size 1024x768]

A fresh PostgreSQL database, one rater, N items (photo-like PNGs of --size), Django's live
server (static files served as the browser tests serve them, uncompressed) and Debian's
Chromium at 1280x800. The rater does what a rater does on every item: a point, a word, four
scores, Enter. Measured per item, in the page: from the Enter keydown to the first frame
painted after the next item is shown (two requestAnimationFrames after the state turns
"ready"), with the next image preloaded (the page leases one ahead) and the draft autosave
running (every change PUTs the draft; the bench waits until it is saved before Enter, so a
save is in the loop's past, and the one for the score keys is still pending at Enter).

Two runs in the same process: "autosave on" (the figure) and "autosave off" (the baseline:
the draft endpoint answers 404, so the page stops saving, as on a server without drafts).
Where the server has no draft endpoint yet, the "on" run answers each PUT in the browser
(page.route) with 200 after the server's usual latency for a small write, and says so.

Page weight: bytes of HTML, JS and CSS the browser received for the page (Resource Timing
encodedBodySize, images and /api/ excluded), and the same files gzip-compressed (WhiteNoise's
CompressedStaticFilesStorage serves static files pre-compressed in production). The page as
it was before issue 15 weighed about 58 KB uncompressed and switched items in 147-373 ms
(docs/performance.md); those figures are printed next to today's for reference.
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

WEIGHT = """() => performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource"))
  .filter((e) => !e.name.includes("/api/") && !/\\.(png|jpe?g|webp)(\\?|$)/.test(e.name))
  .map((e) => [e.name, e.encodedBodySize || 0])"""


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
    )
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from annotation.models import Campaign
    from annotation.services import ItemInput, campaign_add_raters, item_create
    from richhf_site.roles import RATER, user_add_role

    call_command("migrate", verbosity=0)
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
    weight = page.evaluate(WEIGHT)
    html = page.content()  # the rendered page, for its compressed size
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
    return {"weight": weight, "html": html, "switch_ms": samples, "simulated": simulated, "saves": saves}


def page_before(rev: str, campaign_name: str, username: str) -> tuple[int, int]:
    """(raw, gzip) bytes of the page as it was at `rev` (the files the browser loaded then:
    HTML rendered from that template for the same rater and campaign, its CSS and JS)."""
    from django.contrib.auth import get_user_model
    from django.template import engines
    from django.test import RequestFactory

    from annotation.models import Campaign

    def show(path: str) -> bytes:
        return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, check=True).stdout

    request = RequestFactory().get("/annotate/1/")
    request.user = get_user_model().objects.get(username=username)
    campaign = Campaign.objects.get(name=campaign_name)
    config = {"campaign": {"id": campaign.pk}, "urls": {"home": "/?list"}}
    template = engines["django"].from_string(show("frontend/templates/frontend/annotate.html").decode())
    html = template.render({"campaign": campaign, "config": config}, request).encode()
    files = [html] + [
        show(f"frontend/static/frontend/{name}")
        for name in (
            "base.css",
            "annotate/annotate.css",
            "annotate/main.js",
            "annotate/viewer.js",
            "annotate/api.js",
            "annotate/doc.js",
        )
    ]
    return sum(len(f) for f in files), sum(len(gzip.compress(f, 6)) for f in files)


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

    server = LiveServer("localhost:0")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            on = run_flow(browser, server.url, "bench-on", args.items, autosave="on")
            off = run_flow(browser, server.url, "bench-off", args.items, autosave="off")
            browser.close()
        raw = sum(size for _, size in on["weight"])
        # Compressed: each static file as WhiteNoise would serve it, and the page's HTML.
        gz = len(gzip.compress(on["html"].encode(), 6))
        for url, _ in on["weight"]:
            if "/static/" in url:
                with urllib.request.urlopen(url) as response:  # noqa: S310 (our own live server)
                    gz += len(gzip.compress(response.read(), 6))
    finally:
        server.stop()

    a, b = summarise(on["switch_ms"]), summarise(off["switch_ms"])
    old_raw, old_gz = page_before(args.before, "bench-on", "bench-on")
    print(f"page weight: {raw / 1024:.1f} KB raw ({len(on['weight'])} files), {gz / 1024:.1f} KB gzip")
    for url, size in on["weight"]:
        print(f"  {size:>7}  {url.replace(server.url, '')}")
    print(
        f"  the page at {args.before} (before issue 15), same measure: {old_raw / 1024:.1f} KB raw,"
        f" {old_gz / 1024:.1f} KB gzip -> ratio {raw / old_raw:.2f} raw, {gz / old_gz:.2f} gzip"
        f" (reference: about {REFERENCE['page_kb']} KB)"
    )
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
