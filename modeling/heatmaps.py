"""Point annotations to heatmaps, and heatmaps to PNG (docs/protocol.md section 2). Plain numpy,
no Django: the web app's aggregation, the synthetic generator, the importer and the learning
loop all rasterise and encode through this one module.

Which output pixels a point covers (the one definition every test checks against):
- the heatmap has ``out_width`` x ``out_height`` pixels spanning the whole original image;
  output pixel (column i, row j) stands for its centre, which lies in ORIGINAL pixel space at
  X = (i + 0.5) * W / out_width, Y = (j + 0.5) * H / out_height;
- a point (x, y), normalised to [0, 1] of the original image (x right, y down), sits at
  (x * W, y * H);
- the pixel is inside the point's disk when (X - x W)^2 <= r^2 - (Y - y H)^2, i.e. within
  distance r, with r = radius_fraction * H (paper: H / 20), boundary included; evaluated in
  float64 in exactly this form (the tests' whole-grid reference uses the same expression).
The disk is round in the original image, so on a non-square image rendered at a square size
it becomes an ellipse. One rater's map is the union of their disks (overlaps do not add up);
the heatmap is the mean of the raters' binary maps, so three raters give 0, 1/3, 2/3, 1.

Stored maps are 8-bit grayscale PNG, lossless (docs/protocol.md section 3: JPEG noise would
turn "pixel > 0" into stray fixations). A value v in [0, 1] is stored as round(v * 255) with
halves rounded up, whether it comes from vote counts (:func:`counts_to_uint8`, exact integer
arithmetic) or from a float map (:func:`heatmap_to_uint8`, float64): both give the same byte
for the same fraction.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

#: One rater's points: [[x, y], ...] normalised to [0, 1] of the original image.
Points = Sequence[Sequence[float]]


@dataclass(frozen=True)
class RasterGeometry:
    """The original image's size, the heatmap's size and the disk radius (a fraction of H)."""

    image_width: int
    image_height: int
    out_width: int
    out_height: int
    radius_fraction: float

    def __post_init__(self) -> None:
        if min(self.image_width, self.image_height, self.out_width, self.out_height) <= 0:
            raise ValueError(f"sizes must be positive: {self}")
        if not self.radius_fraction > 0:
            raise ValueError(f"radius_fraction must be positive, not {self.radius_fraction}")

    @property
    def radius(self) -> float:
        """Disk radius in original pixels."""
        return self.radius_fraction * self.image_height

    @property
    def col_centres(self) -> np.ndarray:
        """X of every output column's centre, in original pixels."""
        return (np.arange(self.out_width) + 0.5) * (self.image_width / self.out_width)

    @property
    def row_centres(self) -> np.ndarray:
        """Y of every output row's centre, in original pixels."""
        return (np.arange(self.out_height) + 0.5) * (self.image_height / self.out_height)


@dataclass(frozen=True)
class HeatmapSummary:
    """Figures of one aggregated map, stored beside its PNG."""

    max: float
    mean: float
    coverage: float  # fraction of pixels > 0
    n_points: int


# Upper bound on the booleans one vectorised step builds (points x window rows x columns).
_WINDOW_BUDGET = 4_000_000


def rater_masks(points_per_rater: Sequence[Points], geometry: RasterGeometry) -> np.ndarray:
    """The raters' binary maps, each the union of the disks of its points: bool (k, out_h, out_w).

    Every disk is tested on a window one pixel wider than its bounding box on each side, all
    points of all raters in one broadcast; the exact inside test above decides, so the result
    is the definition's, not an approximation. The only Python loop is one slice-OR per point.
    """
    g = geometry
    k = len(points_per_rater)
    masks = np.zeros((k, g.out_height, g.out_width), dtype=bool)
    owners = [rater for rater, points in enumerate(points_per_rater) for _ in range(len(points))]
    if not owners:
        return masks
    xy = np.array([p for points in points_per_rater for p in points], dtype=np.float64).reshape(-1, 2)
    r = g.radius
    r2 = r * r
    sx = g.image_width / g.out_width
    sy = g.image_height / g.out_height
    cx = xy[:, 0] * g.image_width
    cy = xy[:, 1] * g.image_height
    # Window origin: the first column/row whose centre could lie within r (floor, so never late).
    c_start = np.floor((cx - r) / sx - 0.5).astype(np.int64)
    r_start = np.floor((cy - r) / sy - 0.5).astype(np.int64)
    ww = math.ceil(2 * r / sx) + 3
    wh = math.ceil(2 * r / sy) + 3
    step = max(1, _WINDOW_BUDGET // (ww * wh))
    for lo in range(0, len(owners), step):
        hi = min(lo + step, len(owners))
        # Same float expressions as RasterGeometry.col_centres/row_centres, element for element.
        dx = (c_start[lo:hi, None] + np.arange(ww) + 0.5) * sx - cx[lo:hi, None]
        dy = (r_start[lo:hi, None] + np.arange(wh) + 0.5) * sy - cy[lo:hi, None]
        # dx^2 <= r^2 - dy^2: one broadcast comparison instead of an add and a comparison.
        inside = (dx * dx)[:, None, :] <= (r2 - dy * dy)[:, :, None]
        # Clipped target and window bounds for every point at once, as plain ints.
        c0s, r0s = c_start[lo:hi], r_start[lo:hi]
        a0s, a1s = np.maximum(c0s, 0), np.minimum(c0s + ww, g.out_width)
        b0s, b1s = np.maximum(r0s, 0), np.minimum(r0s + wh, g.out_height)
        bounds = zip(
            owners[lo:hi],
            a0s.tolist(),
            a1s.tolist(),
            b0s.tolist(),
            b1s.tolist(),
            (a0s - c0s).tolist(),
            (a1s - c0s).tolist(),
            (b0s - r0s).tolist(),
            (b1s - r0s).tolist(),
            strict=True,
        )
        for p, (owner, a0, a1, b0, b1, wa0, wa1, wb0, wb1) in enumerate(bounds):
            if a0 < a1 and b0 < b1:
                masks[owner, b0:b1, a0:a1] |= inside[p, wb0:wb1, wa0:wa1]
    return masks


def vote_counts(masks: np.ndarray) -> np.ndarray:
    """How many raters cover each pixel: uint8 (out_h, out_w). The heatmap is counts / k."""
    counts = np.zeros(masks.shape[1:], dtype=np.uint8)
    for mask in masks:  # k adds of uint8 views: far cheaper than a reduction over axis 0
        counts += mask.view(np.uint8)
    return counts


def counts_to_uint8(counts: np.ndarray, n_raters: int) -> np.ndarray:
    """The stored 8-bit value: round(counts / k * 255), halves rounded up, in exact integers."""
    if not 1 <= n_raters <= 255:
        raise ValueError(f"between 1 and 255 raters fit the uint8 vote counts, not {n_raters}")
    if 255 % n_raters == 0:
        return counts * np.uint8(255 // n_raters)
    wide = counts.astype(np.uint16)
    return ((wide * 510 + n_raters) // (2 * n_raters)).astype(np.uint8)


def heatmap_to_uint8(heatmap: np.ndarray) -> np.ndarray:
    """A float heatmap in [0, 1] to its stored 8-bit value: floor(v * 255 + 0.5), i.e. round
    half up, in float64; values outside [0, 1] are clipped first. uint8 passes unchanged.

    Half up, not numpy's half to even, so a mean of votes stores the same byte as
    counts_to_uint8 gives for the same counts (1/2 -> 128).
    """
    array = np.asarray(heatmap)
    if array.dtype == np.uint8:
        return array
    scaled = np.clip(array.astype(np.float64), 0.0, 1.0) * 255.0
    return np.floor(scaled + 0.5).astype(np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _deflate_rle(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    return compressor.compress(data) + compressor.flush()


def encode_png(values: np.ndarray) -> bytes:
    """8-bit grayscale PNG of a 2-D uint8 array, lossless.

    Written directly (filter type 0, deflate with zlib's run-length strategy): the maps are
    runs of a few values, so this is several times faster than Pillow's default encoder and
    its files are smaller (bench/aggregate.py). Any PNG decoder reads it.
    """
    if values.dtype != np.uint8 or values.ndim != 2:
        raise ValueError(f"expected a 2-D uint8 array, got {values.dtype} of shape {values.shape}")
    height, width = values.shape
    raw = np.zeros((height, width + 1), dtype=np.uint8)  # a leading 0 per row: filter "None"
    raw[:, 1:] = values
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", _deflate_rle(raw.tobytes()))
        + _png_chunk(b"IEND", b"")
    )


def encode_heatmap_png(heatmap: np.ndarray) -> bytes:
    """PNG of a 2-D heatmap: float in [0, 1] (quantised by :func:`heatmap_to_uint8`) or uint8."""
    return encode_png(heatmap_to_uint8(heatmap))


def decode_heatmap_png(data: bytes) -> np.ndarray:
    """uint8 (H, W) from encoded image bytes. Any format Pillow reads is accepted and colour is
    converted to grayscale, so a release file from elsewhere imports as its maps look."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("L"), dtype=np.uint8)


def heatmap_from_png(data: bytes) -> np.ndarray:
    """float32 (H, W) in [0, 1] from a heatmap PNG: stored byte / 255."""
    return decode_heatmap_png(data).astype(np.float32) / 255.0
