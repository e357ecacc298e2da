"""The compiled run rasteriser (numba): the same rows, runs and figures as
modeling.heatmaps' numpy path, one loop per disk row. Imported lazily by modeling.heatmaps."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Up to this many raters, a map's figures come from a histogram of coverage patterns.
_PATTERN_RATERS = 8


@njit(cache=True, inline="always")
def _inside(col: float, sx: float, cx: float, rhs: float) -> bool:
    # The definition's test, as the numpy path and the whole-grid reference write it.
    dx = (col + 0.5) * sx - cx
    return dx * dx <= rhs


@njit(cache=True)
def votes_kernel(
    xy: np.ndarray, owner: np.ndarray, point_start: np.ndarray, geometry: np.ndarray, kmax: int, out: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every map of a batch: points (n, 2) of all maps, the rater of each point, each map's
    first point, and per map one float64 row (image width, image height, out width, out
    height, radius in original pixels, raters); kmax, the most raters of a map; out, the maps'
    8-bit values laid end to end in row-major order, all zero. Paints every covered pixel of
    out and returns per map the max votes, covered pixels and (kmax, kmax) overlaps, as
    modeling.heatmaps.MapVotes holds them.

    The sizes travel as float64 (exact: whole numbers far below 2^53), so the definition's
    float operations see the same values as the numpy path's int-to-float conversions."""
    n_maps = geometry.shape[0]
    image_w = geometry[:, 0]
    image_h = geometry[:, 1]
    out_w = geometry[:, 2].astype(np.int64)
    out_h = geometry[:, 3].astype(np.int64)
    radius = geometry[:, 4]
    ks = geometry[:, 5].astype(np.int64)
    # Upper bound on the disk rows (= runs) of the batch: rasterise_votes' row window per point.
    bound = 0
    for m in range(n_maps):
        sy = image_h[m] / out_h[m]
        window = int(math.ceil(2 * radius[m] / sy)) + 3
        bound += window * (point_start[m + 1] - point_start[m])
    run_row = np.empty(bound, np.int64)
    run_lo = np.empty(bound, np.int64)
    run_hi = np.empty(bound, np.int64)
    run_rater = np.empty(bound, np.int64)
    order = np.empty(bound, np.int64)
    keys = np.empty(2 * bound + 2, np.int64)
    max_votes = np.zeros(n_maps, np.int64)
    covered = np.zeros(n_maps, np.int64)
    overlaps = np.zeros((n_maps, kmax, kmax), np.int64)
    cover = np.zeros(max(kmax, 1), np.int64)
    active = np.empty(max(kmax, 1), np.int64)
    byte = np.empty(kmax + 1, np.uint8)
    hist = np.zeros(1 << _PATTERN_RATERS, np.int64)  # pixels per coverage pattern, one map
    map_at = 0  # the map's first byte in out
    for m in range(n_maps):
        w = out_w[m]
        h = out_h[m]
        sx = image_w[m] / out_w[m]
        sy = image_h[m] / out_h[m]
        r = radius[m]
        r2 = r * r
        window = int(math.ceil(2 * r / sy)) + 3
        inv_sx = 1.0 / sx  # the estimate's only: the definition's test settles every end
        k = ks[m]
        kk = max(k, 1)
        for v in range(kmax + 1):
            byte[v] = (v * 510 + kk) // (2 * kk)
        # 1. Every disk row's run of inside columns, settled by the definition's test.
        n_runs = 0
        for p in range(point_start[m], point_start[m + 1]):
            cx = xy[p, 0] * image_w[m]
            cy = xy[p, 1] * image_h[m]
            top = int(np.floor((cy - r) / sy - 0.5))
            row_lo = max(top, 0)
            row_hi = min(top + window, h)
            for row in range(row_lo, row_hi):
                dy = (row + 0.5) * sy - cy
                rhs = r2 - dy * dy
                if rhs < 0:
                    continue
                half = math.sqrt(rhs)
                lo = np.ceil((cx - half) * inv_sx - 0.5)
                hi = np.floor((cx + half) * inv_sx - 0.5)
                if lo <= hi and _inside(lo, sx, cx, rhs) and _inside(hi, sx, cx, rhs):
                    pass  # both estimated ends inside: the run holds them and all between
                else:
                    # The row's smallest dx^2 is at c0 or c0 + 1, c0 the last column whose
                    # centre is at or left of the point (dx never decreases along a row).
                    c0 = np.floor(cx / sx - 0.5)
                    while (c0 + 0.5) * sx - cx > 0:
                        c0 -= 1.0
                    while (c0 + 1.5) * sx - cx <= 0:
                        c0 += 1.0
                    if _inside(c0, sx, cx, rhs):
                        lo = hi = c0
                    elif _inside(c0 + 1.0, sx, cx, rhs):
                        lo = hi = c0 + 1.0
                    else:
                        continue  # no column centre of this row is inside
                while _inside(lo - 1.0, sx, cx, rhs):
                    lo -= 1.0
                while _inside(hi + 1.0, sx, cx, rhs):
                    hi += 1.0
                first = max(lo, 0.0)
                last = min(hi, w - 1.0)
                if first > last:
                    continue
                run_row[n_runs] = row
                run_lo[n_runs] = int(first)
                run_hi[n_runs] = int(last) + 1
                run_rater[n_runs] = owner[p]
                n_runs += 1
        # 2. Runs in row order (counting sort by row).
        if n_runs:
            start_of = np.zeros(h + 1, np.int64)
            for i in range(n_runs):
                start_of[run_row[i] + 1] += 1
            for y in range(h):
                start_of[y + 1] += start_of[y]
            fill = start_of[:h].copy()
            for i in range(n_runs):
                order[fill[run_row[i]]] = i
                fill[run_row[i]] += 1
            # 3. Each row's events swept left to right: spans of equal vote count, painted.
            by_pattern = k <= _PATTERN_RATERS
            mv = 0
            cov = 0
            for y in range(h):
                a = start_of[y]
                b = start_of[y + 1]
                if a == b:
                    continue
                base = map_at + y * w
                if b - a == 1:  # one run in the row (the common case): one rater, one vote
                    i = order[a]
                    length = run_hi[i] - run_lo[i]
                    value = byte[1]
                    out[base + run_lo[i] : base + run_hi[i]] = value
                    if by_pattern:
                        hist[1 << run_rater[i]] += length
                    else:
                        q = run_rater[i]
                        overlaps[m, q, q] += length
                        cov += length
                        if mv < 1:
                            mv = 1
                    continue
                ne = 0
                for j in range(a, b):
                    i = order[j]
                    keys[ne] = run_lo[i] << 9 | run_rater[i] << 1
                    keys[ne + 1] = run_hi[i] << 9 | run_rater[i] << 1 | 1
                    ne += 2
                for e in range(1, ne):  # insertion sort: a row holds a handful of events
                    key = keys[e]
                    f = e - 1
                    while f >= 0 and keys[f] > key:
                        keys[f + 1] = keys[f]
                        f -= 1
                    keys[f + 1] = key
                votes = 0
                pattern = 0  # bit q: rater q covers the current span (k <= _PATTERN_RATERS)
                prev = keys[0] >> 9
                for e in range(ne):
                    key = keys[e]
                    col = key >> 9
                    if col > prev and votes > 0:
                        length = col - prev
                        value = byte[votes]
                        out[base + prev : base + col] = value
                        if by_pattern:
                            hist[pattern] += length
                        else:  # many raters: each covering pair directly
                            n_active = 0
                            for q in range(k):
                                if cover[q] > 0:
                                    active[n_active] = q
                                    n_active += 1
                            for i_a in range(n_active):
                                qa = active[i_a]
                                for i_b in range(i_a, n_active):
                                    qb = active[i_b]
                                    overlaps[m, qa, qb] += length
                                    if qa != qb:
                                        overlaps[m, qb, qa] += length
                            cov += length
                            if votes > mv:
                                mv = votes
                    prev = col
                    q = (key >> 1) & 255
                    if key & 1:
                        cover[q] -= 1
                        if cover[q] == 0:
                            votes -= 1
                            pattern ^= 1 << q
                    else:
                        if cover[q] == 0:
                            votes += 1
                            pattern ^= 1 << q
                        cover[q] += 1
            if by_pattern:
                # Every figure from the pixels per coverage pattern (2^k of them).
                for pat in range(1, 1 << k):
                    n_pix = hist[pat]
                    if n_pix == 0:
                        continue
                    hist[pat] = 0
                    cov += n_pix
                    n_votes = 0
                    for qa in range(k):
                        if pat >> qa & 1:
                            n_votes += 1
                            for qb in range(k):
                                if pat >> qb & 1:
                                    overlaps[m, qa, qb] += n_pix
                    if n_votes > mv:
                        mv = n_votes
            max_votes[m] = mv
            covered[m] = cov
        map_at += w * h
    return max_votes, covered, overlaps
