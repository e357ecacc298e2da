"""Shared helpers of the rater-page tests (test_annotate_*.py): items of one flat colour,
screenshots as arrays, touch contexts, and the check for the server's draft endpoint."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.urls import Resolver404, resolve
from PIL import Image

from .conftest import PASSWORD, next_frames

PHONE = {"width": 390, "height": 844}
TABLET = {"width": 768, "height": 1024}


def server_has_drafts() -> bool:
    """The draft endpoint (PUT /api/assignments/<id>/draft/) is another branch's work; the tests
    that need it run once it is merged and say why they are skipped before."""
    try:
        resolve("/api/assignments/1/draft/")
    except Resolver404:
        return False
    return True


needs_drafts = pytest.mark.skipif(not server_has_drafts(), reason="the server has no draft endpoint yet")


def flat_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), rgb).save(buf, format="PNG")
    return buf.getvalue()


def make_flat_item(
    campaign, rgb=(128, 128, 128), width: int = 600, height: int = 400, prompt: str = "a cat on a red sofa", **kw
):
    from annotation.services import ItemInput, item_create

    item, created = item_create(
        campaign=campaign,
        data=ItemInput(image_bytes=flat_png(width, height, rgb), filename=f"flat{rgb}.png", prompt=prompt, **kw),
    )
    assert created
    return item


def canvas_pixels(page) -> tuple[np.ndarray, dict]:
    """The canvas as drawn, RGB int array indexed [y, x] in CSS px (device_scale_factor 1)."""
    next_frames(page)
    box = page.locator("#canvas").bounding_box()
    png = page.screenshot(clip=box)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int64), box


def to_screen(page, x: float, y: float) -> tuple[float, float]:
    """Canvas CSS px of an original-image coordinate, from the viewer's current transform."""
    return tuple(
        page.evaluate("([x, y]) => { const s = window.richhf.viewer.toScreen(x, y); return [s.x, s.y]; }", [x, y])
    )


def touch_context(browser, viewport: dict, **kw):
    return browser.new_context(viewport=viewport, device_scale_factor=1, has_touch=True, is_mobile=True, **kw)


def login_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("domcontentloaded")


def tap(page, x: float, y: float) -> None:
    page.touchscreen.tap(x, y)
    next_frames(page)


def touch(cdp, kind: str, points: list[tuple[float, float]]) -> None:
    """Raw touch events (Chromium turns them into touch pointer events): pinch and two-finger pan."""
    cdp.send(
        "Input.dispatchTouchEvent",
        {"type": kind, "touchPoints": [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)]},
    )


def two_finger(page, start: list[tuple[float, float]], end: list[tuple[float, float]], steps: int = 8) -> None:
    cdp = page.context.new_cdp_session(page)
    touch(cdp, "touchStart", start)
    for k in range(1, steps + 1):
        t = k / steps
        touch(
            cdp,
            "touchMove",
            [(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t) for a, b in zip(start, end, strict=True)],
        )
    touch(cdp, "touchEnd", [])
    cdp.detach()
    next_frames(page)
