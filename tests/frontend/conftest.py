"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

PASSWORD = "pw-for-tests"


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 720}, "device_scale_factor": 1}


def coded_png(width: int, height: int) -> bytes:
    """An image whose every pixel spells its own coordinates: R = x mod 256, G = y mod 256,
    B = 0x80 | (x div 256) << 4 | (y div 256). A screenshot then tells, for any screen pixel,
    which original pixel the page really drew there (the viewer draws magnified pixels
    without smoothing)."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x & 255, y & 255, 0x80 | ((x >> 8) << 4) | (y >> 8)], axis=-1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def make_coded_item():
    from annotation.services import ItemInput, item_create

    def make(campaign, prompt: str = "a yellow cat on a red sofa", width: int = 640, height: int = 480, **kw):
        item, created = item_create(
            campaign=campaign,
            data=ItemInput(image_bytes=coded_png(width, height), filename="coded.png", prompt=prompt, **kw),
        )
        assert created
        return item

    return make


def login(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    """Through the real login form, as a rater does."""
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("domcontentloaded")


def wait_ready(page, timeout: float = 15_000) -> None:
    page.wait_for_selector("#annotate[data-state=ready]", timeout=timeout)
    next_frames(page)


def next_frames(page) -> None:
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
