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
import itertools
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


@dataclass(frozen=True)
class MapVotes:
    """One aggregated map, computed from the raters' disks row by row (no per-rater masks).

    ``values`` is what :func:`counts_to_uint8` gives for the map's vote counts; the figures are
    exact pixel counts, the same as counting on the raters' binary maps (:func:`rater_masks`).
    """

    values: np.ndarray  # uint8 (out_h, out_w): the stored 8-bit map
    n_raters: int
    max_votes: int  # the most raters covering one pixel
    covered: int  # pixels covered by at least one rater
    overlaps: np.ndarray  # int64 (k, k): pixels both raters cover; the diagonal is each rater's area


# Up to this many raters per map, the overlaps come from a histogram of coverage patterns.
_PATTERN_RATERS = 8


def _inside(col: np.ndarray, sx: np.ndarray, cx: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """The definition's test for column ``col`` (a whole number, as float64) of a row whose
    r^2 - dy^2 is ``rhs``: the same float operations as rater_masks and the whole-grid check."""
    dx = (col + 0.5) * sx - cx
    return dx * dx <= rhs


def _walk(edge: np.ndarray, step: float, bound: np.ndarray, sx: np.ndarray, cx: np.ndarray, rhs: np.ndarray) -> None:
    """Moves every run end (in place) to the row's last inside column in direction ``step``.

    A row's inside columns are one run: along a row dx = (c + 0.5) * sx - cx never decreases,
    in floating point too (each operation rounds monotonically), so dx^2 falls and then rises.
    The end of the run is therefore the column that is inside while the next one outward is
    not. First step outward while the next column is inside, then inward while the end itself
    is outside, but not past ``bound`` (an end that crosses it marks the row as empty). The
    estimate is within a column of the answer, so the first pass over all rows does nearly all
    the work and the loops then run on a handful of rows.
    """
    sel = np.flatnonzero(_inside(edge + step, sx, cx, rhs))
    while sel.size:
        edge[sel] += step
        sel = sel[_inside(edge[sel] + step, sx[sel], cx[sel], rhs[sel])]
    sel = np.flatnonzero(~_inside(edge, sx, cx, rhs))
    while sel.size:
        edge[sel] -= step
        sel = sel[(edge[sel] * step > bound[sel] * step) & ~_inside(edge[sel], sx[sel], cx[sel], rhs[sel])]


def rasterise_votes(maps: Sequence[tuple[Sequence[Points], RasterGeometry]]) -> list[MapVotes]:
    """Several aggregated maps at once, each given as (points per rater, geometry): the stored
    8-bit values, the vote figures and the raters' pairwise overlaps, exact to the definition.

    Compiled with numba when it is installed (modeling/heatmaps_numba.py: one loop per disk
    row, the same runs and the same figures); otherwise :func:`rasterise_votes_numpy`. Both
    give identical results (tests/modeling/test_heatmaps.py runs every check on both).
    """
    kernel = _compiled_kernel()
    if kernel is None:
        return rasterise_votes_numpy(maps)
    return _rasterise_votes_compiled(maps, kernel)


# The compiled kernels (modeling/heatmaps_numba.py), imported on first use: numba's import
# (~0.3 s) and the kernels' load from numba's on-disk cache are paid only by processes that
# rasterise. None: numba is not installed.
_COMPILED: object = None
_COMPILED_LOADED = False


def _compiled():  # type: ignore[no-untyped-def]
    global _COMPILED, _COMPILED_LOADED
    if not _COMPILED_LOADED:
        try:
            from modeling import heatmaps_numba as compiled
        except ImportError:  # numba not installed: the numpy path
            compiled = None  # type: ignore[assignment]
        _COMPILED, _COMPILED_LOADED = compiled, True
    return _COMPILED


def _compiled_kernel():  # type: ignore[no-untyped-def]
    compiled = _compiled()
    return None if compiled is None else compiled.votes_kernel


def _rasterise_votes_compiled(maps: Sequence[tuple[Sequence[Points], RasterGeometry]], kernel) -> list[MapVotes]:  # type: ignore[no-untyped-def]
    n_maps = len(maps)
    if n_maps == 0:
        return []
    ks = [len(raters) for raters, _ in maps]
    kmax = max(ks)
    if kmax > 255:
        raise ValueError(f"at most 255 raters fit the uint8 vote counts, not {kmax}")
    flat: list = []
    owner: list[int] = []
    point_start = [0]
    for raters, _ in maps:
        for r, points in enumerate(raters):
            flat.extend(points)
            owner.extend([r] * len(points))
        point_start.append(len(flat))
    geometries = [g for _, g in maps]
    # One array per kind, built from flat Python sequences (numpy's slowest input is a
    # nested list: chain the points' coordinates instead).
    xy = np.fromiter(itertools.chain.from_iterable(flat), dtype=np.float64, count=2 * len(flat)).reshape(-1, 2)
    geometry = np.array(
        [
            (g.image_width, g.image_height, g.out_width, g.out_height, g.radius, k)
            for g, k in zip(geometries, ks, strict=True)
        ],
        dtype=np.float64,
    )
    # The maps' bytes, end to end: the kernel paints the covered pixels, the rest stay 0.
    sizes = [g.out_width * g.out_height for g in geometries]
    out = np.zeros(sum(sizes), dtype=np.uint8)
    max_votes, covered, overlaps = kernel(
        xy, np.array(owner, dtype=np.int64), np.array(point_start, dtype=np.int64), geometry, kmax, out
    )
    results = []
    at = 0
    for m, g in enumerate(geometries):
        k = ks[m]
        results.append(
            MapVotes(
                values=out[at : at + sizes[m]].reshape(g.out_height, g.out_width),
                n_raters=k,
                max_votes=int(max_votes[m]),
                covered=int(covered[m]),
                overlaps=overlaps[m, :k, :k].copy(),
            )
        )
        at += sizes[m]
    return results


def rasterise_votes_numpy(maps: Sequence[tuple[Sequence[Points], RasterGeometry]]) -> list[MapVotes]:
    """Several aggregated maps at once, each given as (points per rater, geometry): the stored
    8-bit values, the vote figures and the raters' pairwise overlaps. Exact to the definition
    above: bit for bit what :func:`rater_masks` + :func:`vote_counts` + :func:`counts_to_uint8`
    give, and the same pixel counts, without building a mask.

    Every disk is cut into rows, and a row's covered columns are one run. The run's ends are
    estimated from the circle equation and then settled with the definition's own float test
    (:func:`_walk`), so rounding in the estimate never decides a pixel. The runs of all the
    maps are laid end to end in one position space and swept once: sorted run starts and ends
    give, between consecutive positions, how many raters cover the pixels there, and
    ``np.repeat`` writes each map as whole segments of equal value (memset speed). The work
    grows with the number of disk rows, not with the disks' area or the map size, and one
    call serves a batch of maps, so numpy's per-call cost is paid once per batch.
    """
    n_maps = len(maps)
    if n_maps == 0:
        return []
    geometries = [g for _, g in maps]
    ks = [len(raters) for raters, _ in maps]
    kmax = max(ks)
    if kmax > 255:
        raise ValueError(f"at most 255 raters fit the uint8 vote counts, not {kmax}")
    sizes = [g.out_width * g.out_height for g in geometries]
    offsets = np.zeros(n_maps + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    total = int(offsets[-1])
    run_start, run_stop, run_rater = _runs(maps, offsets)

    max_votes = np.zeros(n_maps, dtype=np.int64)
    covered = np.zeros(n_maps, dtype=np.int64)
    overlaps = np.zeros((n_maps, kmax, kmax), dtype=np.int64)
    if run_start.size:
        # One sorted array of events: position, then rater, then start (0) before stop (1).
        # The order among events at one position does not matter: the segments between them
        # are empty.
        keys = np.concatenate([run_start << 9 | run_rater << 1, run_stop << 9 | run_rater << 1 | 1])
        keys.sort()
        pos = keys >> 9
        rater = (keys >> 1) & 255
        delta = 1 - 2 * (keys & 1)
        # Each rater's coverage after each event (a rater's own disks may overlap: > 0 counts),
        # as one bit per rater of the segment's coverage pattern.
        pattern = np.zeros(keys.size, dtype=np.int64)
        for r in range(kmax):
            cover = np.cumsum(np.where(rater == r, delta, 0), dtype=np.int32) > 0
            pattern |= cover.astype(np.int64) << r
        seg_len = np.diff(pos, append=total)  # the segment after each event, up to the next
        # Events grouped by map: a segment belongs to the map holding its first pixel.
        first = np.searchsorted(pos, offsets, side="left")
        first[-1] = pos.size  # stops on the last map's last pixel sit at position `total`
        n_events = np.diff(first)
        map_of = np.repeat(np.arange(n_maps), n_events)
        # Each segment's stored byte is counts_to_uint8 of its votes: round(votes / k * 255),
        # halves up, in integers. (A map without raters has no runs, but the previous map's
        # last run may stop on its first pixel: that segment holds 0 votes, and k = 1 keeps
        # the division defined.)
        if kmax <= _PATTERN_RATERS:
            # Pixels per map and coverage pattern (a covered segment never crosses a map's
            # end); every figure follows from these 2^k counts. Float weights are exact here
            # (integers far below 2^53).
            n_patterns = 1 << kmax
            bits = (np.arange(n_patterns)[:, None] >> np.arange(kmax)) & 1  # (patterns, raters)
            cell = map_of * n_patterns + pattern
            hist = np.rint(np.bincount(cell, weights=seg_len, minlength=n_maps * n_patterns)).astype(np.int64)
            hist = hist.reshape(n_maps, n_patterns)
            hist[:, 0] = 0
            overlaps = np.matmul((hist[:, :, None] * bits).transpose(0, 2, 1), bits)
            covered = hist.sum(axis=1)
            n_votes = bits.sum(axis=1)  # raters in each pattern
            max_votes = ((hist > 0) * n_votes).max(axis=1)
            # The stored byte of each (map, pattern): counts_to_uint8 of its votes, looked up.
            k_m = np.maximum(np.asarray(ks, dtype=np.int64), 1)[:, None]
            byte = ((n_votes * 510 + k_m) // (2 * k_m)).astype(np.uint8)
            seg_values = byte.ravel()[cell]
        else:  # many raters: pairwise sums over the segments instead of 2^k patterns
            votes = np.zeros(keys.size, dtype=np.int64)
            for r in range(kmax):
                votes += (pattern >> r) & 1
            live = seg_len > 0
            present = np.flatnonzero(n_events)
            at = first[present]
            max_votes[present] = np.maximum.reduceat(np.where(live, votes, 0), at)
            covered[present] = np.add.reduceat(np.where(votes > 0, seg_len, 0), at)
            for a in range(kmax):
                for b in range(a, kmax):
                    both_bits = ((pattern >> a) & (pattern >> b) & 1).astype(bool)
                    both = np.add.reduceat(np.where(both_bits, seg_len, 0), at)
                    overlaps[present, a, b] = overlaps[present, b, a] = both
            k_of = np.maximum(np.asarray(ks, dtype=np.int64), 1)[map_of]
            seg_values = ((votes * 510 + k_of) // (2 * k_of)).astype(np.uint8)
    results = []
    for m, g in enumerate(geometries):
        if run_start.size and first[m] < first[m + 1]:
            lo, hi = int(first[m]), int(first[m + 1])
            # The map's lead-in before its first event holds no votes; its last segment ends
            # at the map's end (the next event may belong to a later map).
            lengths = np.empty(hi - lo + 1, dtype=np.int64)
            lengths[0] = pos[lo] - offsets[m]
            lengths[1:] = seg_len[lo:hi]
            lengths[-1] = offsets[m + 1] - pos[hi - 1]
            seg = np.empty(hi - lo + 1, dtype=np.uint8)
            seg[0] = 0
            seg[1:] = seg_values[lo:hi]
        else:
            lengths = np.array([sizes[m]], dtype=np.int64)
            seg = np.zeros(1, dtype=np.uint8)
        results.append(
            MapVotes(
                values=np.repeat(seg, lengths).reshape(g.out_height, g.out_width),
                n_raters=ks[m],
                max_votes=int(max_votes[m]),
                covered=int(covered[m]),
                overlaps=overlaps[m, : ks[m], : ks[m]].copy(),
            )
        )
    return results


def _runs(
    maps: Sequence[tuple[Sequence[Points], RasterGeometry]], offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every disk row's run of covered columns, clipped to its map, as (first position, last
    position + 1, rater) in the maps' common position space (map offset + row * width +
    column). Rows that cover no pixel centre give no run."""
    flat: list = []
    per_rater: list[int] = []
    rater_index: list[int] = []
    map_index: list[int] = []
    for m, (raters, _) in enumerate(maps):
        for r, points in enumerate(raters):
            flat.extend(points)
            per_rater.append(len(points))
            rater_index.append(r)
            map_index.append(m)
    if not flat:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    xy = np.array(flat, dtype=np.float64).reshape(-1, 2)
    counts = np.asarray(per_rater, dtype=np.int64)
    pm = np.repeat(np.asarray(map_index, dtype=np.int64), counts)
    owner = np.repeat(np.asarray(rater_index, dtype=np.int64), counts)
    # Per map, the definition's floats exactly as RasterGeometry and rater_masks compute them.
    geometries = [g for _, g in maps]
    image_w = np.array([g.image_width for g in geometries], dtype=np.int64)
    image_h = np.array([g.image_height for g in geometries], dtype=np.int64)
    out_w = np.array([g.out_width for g in geometries], dtype=np.int64)
    out_h = np.array([g.out_height for g in geometries], dtype=np.int64)
    radius = np.array([g.radius for g in geometries], dtype=np.float64)
    sx_m = image_w / out_w
    sy_m = image_h / out_h
    r2_m = radius * radius  # r * r, as rater_masks
    window = np.ceil(2 * radius / sy_m).astype(np.int64) + 3
    sx, sy = sx_m[pm], sy_m[pm]
    cx = xy[:, 0] * image_w[pm]
    cy = xy[:, 1] * image_h[pm]
    # Rows a disk may reach: rater_masks' window (from the first row whose centre could lie
    # within r, floored so never late), clipped to the map.
    top = np.floor((cy - radius[pm]) / sy - 0.5).astype(np.int64)
    row_lo = np.maximum(top, 0)
    n_rows = np.maximum(np.minimum(top + window[pm], out_h[pm]) - row_lo, 0)
    point = np.repeat(np.arange(xy.shape[0]), n_rows)
    row = np.arange(point.size) + np.repeat(row_lo - (np.cumsum(n_rows) - n_rows), n_rows)
    sx_p, cx_p = sx[point], cx[point]
    dy = (row + 0.5) * sy[point] - cy[point]
    rhs = r2_m[pm][point] - dy * dy
    # A row with r^2 - dy^2 < 0 covers nothing (dx^2 >= 0): drop it before any column work.
    reach = rhs >= 0
    if not reach.all():
        point, row, dy, rhs = point[reach], row[reach], dy[reach], rhs[reach]
        sx_p, cx_p = sx_p[reach], cx_p[reach]
    # Run ends from the circle equation (an estimate), as whole numbers in float64, then
    # settled by the definition's test. A row whose ends cross is empty.
    lo, hi = _estimate_ends(cx_p, sx_p, rhs)
    _walk(lo, -1.0, hi + 1.0, sx_p, cx_p, rhs)
    _walk(hi, 1.0, lo - 1.0, sx_p, cx_p, rhs)
    crossed = lo > hi
    if crossed.any():
        _check_empty(np.flatnonzero(crossed), lo, hi, sx_p, cx_p, rhs)
    pm_p = pm[point]
    width = out_w[pm_p]
    first = np.maximum(lo, 0.0).astype(np.int64)
    last = np.minimum(hi.astype(np.int64), width - 1)
    keep = first <= last
    base = offsets[pm_p] + row * width
    return (base + first)[keep], (base + last + 1)[keep], owner[point][keep]


def _estimate_ends(cx: np.ndarray, sx: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last column of each row's run from the circle equation, as whole numbers in
    float64: an estimate only (its rounding may be a column off), settled afterwards."""
    half = np.sqrt(rhs)
    return np.ceil((cx - half) / sx - 0.5), np.floor((cx + half) / sx - 0.5)


def _check_empty(
    rows: np.ndarray, lo: np.ndarray, hi: np.ndarray, sx: np.ndarray, cx: np.ndarray, rhs: np.ndarray
) -> None:
    """Rows whose run came out empty, proven so: the smallest dx^2 of a row is at c0 or c0 + 1,
    c0 the last column whose centre is at or left of the point (found exactly here). If either
    is inside after all (an estimate off by more than a column), the row's run is rebuilt
    from that column, which is certainly inside."""
    s, c = sx[rows], cx[rows]
    c0 = np.floor(c / s - 0.5)
    while (late := (c0 + 0.5) * s - c > 0).any():
        c0[late] -= 1.0
    while (early := (c0 + 1.5) * s - c <= 0).any():
        c0[early] += 1.0
    at_c0 = _inside(c0, s, c, rhs[rows])
    seed = np.where(at_c0, c0, c0 + 1.0)
    wrong = at_c0 | _inside(c0 + 1.0, s, c, rhs[rows])
    if not wrong.any():
        return
    rows, seed = rows[wrong], seed[wrong]
    lo[rows] = hi[rows] = seed
    sub_lo, sub_hi = lo[rows], hi[rows]
    _walk(sub_lo, -1.0, seed, sx[rows], cx[rows], rhs[rows])
    _walk(sub_hi, 1.0, seed, sx[rows], cx[rows], rhs[rows])
    lo[rows], hi[rows] = sub_lo, sub_hi


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
