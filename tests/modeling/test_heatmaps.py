"""The rasteriser and the PNG codec of modeling.heatmaps against hand-computed maps
(docs/protocol.md section 2).

Every expected map below was worked out by hand from the rule in heatmaps.py: output pixel
(i, j) has its centre at ((i + .5) W / out_w, (j + .5) H / out_h) in original pixels and is
inside when its distance to the point is <= radius_fraction * H.
"""

import io

import numpy as np
import pytest
from PIL import Image

from modeling.heatmaps import (
    Points,
    RasterGeometry,
    counts_to_uint8,
    decode_heatmap_png,
    encode_heatmap_png,
    encode_png,
    heatmap_to_uint8,
    rasterise_votes,
    rasterise_votes_numpy,
    rater_masks,
    vote_counts,
)


def rater_mask(points: Points, geometry: RasterGeometry) -> np.ndarray:
    """One rater's binary map."""
    return rater_masks([points], geometry)[0]


def pillow_decode(data: bytes) -> np.ndarray:
    """An independent decoder: Pillow, refusing anything but 8-bit grayscale."""
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode == "L"
        return np.asarray(img).copy()


def grid(rows: list[str]) -> np.ndarray:
    return np.array([[c == "#" for c in row] for row in rows], dtype=bool)


def test_point_at_corner_covers_the_four_corner_pixels():
    # 100x100 image, 10x10 map: centres at 5, 15, 25...; r = 25, r^2 = 625.
    # (5,5): 50, (15,5): 250, (15,15): 450 inside; (25,5): 650 outside.
    g = RasterGeometry(100, 100, 10, 10, 0.25)
    expected = np.zeros((10, 10), dtype=bool)
    expected[0:2, 0:2] = True
    assert np.array_equal(rater_mask([[0.0, 0.0]], g), expected)


def test_point_at_far_corner_is_clipped_symmetrically():
    g = RasterGeometry(100, 100, 10, 10, 0.25)
    expected = np.zeros((10, 10), dtype=bool)
    expected[8:10, 8:10] = True
    assert np.array_equal(rater_mask([[1.0, 1.0]], g), expected)


def test_overlapping_disks_of_one_rater_form_a_union_not_a_sum():
    # r = 15 (r^2 = 225). Point A at (30, 50): rows Y=45,55 (dy^2 25) leave dx^2 <= 200, so
    # X = 25, 35 (cols 2, 3); rows 35/65 need dx = 0, which no centre has. B at (40, 50):
    # cols 3, 4. Column 3 is covered by both disks and must still read 1.
    g = RasterGeometry(100, 100, 10, 10, 0.15)
    mask = rater_mask([[0.3, 0.5], [0.4, 0.5]], g)
    expected = grid(
        [
            "..........",
            "..........",
            "..........",
            "..........",
            "..###.....",
            "..###.....",
            "..........",
            "..........",
            "..........",
            "..........",
        ]
    )
    assert np.array_equal(mask, expected)
    values = counts_to_uint8(vote_counts(mask[None]), 1)
    assert set(np.unique(values)) == {0, 255}


def test_non_square_image_gives_an_ellipse_at_square_output():
    # 200 wide x 100 high, 10x10 map: X = 10, 30, 50...; Y = 5, 15, 25...; r = 20 (r^2 400).
    # Point (100, 50): cols 4, 5 have dx = 10, so dy^2 <= 300: dy = 5, 15 -> rows 3..6.
    # Cols 3, 6 have dx = 30 (900) -> none. The round disk is 2 columns x 4 rows here.
    g = RasterGeometry(200, 100, 10, 10, 0.2)
    expected = np.zeros((10, 10), dtype=bool)
    expected[3:7, 4:6] = True
    assert np.array_equal(rater_mask([[0.5, 0.5]], g), expected)


def test_radius_follows_the_image_height_not_the_width():
    # 100 wide x 200 high: r = 0.2 * 200 = 40 (r^2 1600). Map 10x10: X = 5, 15..., Y = 10, 30...
    # Point (50, 100): cols 4, 5 (dx 5) need dy^2 <= 1575 -> dy = 10, 30 -> rows 3..6;
    # cols 3, 6 (dx 15) need dy^2 <= 1375 -> rows 3..6; cols 2, 7 (dx 25) need dy^2 <= 975 ->
    # dy = 10, 30 -> rows 3..6; cols 1, 8 (dx 35) need dy^2 <= 375 -> dy = 10 -> rows 4, 5.
    g = RasterGeometry(100, 200, 10, 10, 0.2)
    expected = np.zeros((10, 10), dtype=bool)
    expected[3:7, 2:8] = True
    expected[4:6, 1] = expected[4:6, 8] = True
    assert np.array_equal(rater_mask([[0.5, 0.5]], g), expected)


def test_three_raters_give_thirds():
    # r = 4 and points on pixel centres: each point covers exactly its own pixel.
    g = RasterGeometry(100, 100, 10, 10, 0.04)
    a, b, c = [0.05, 0.05], [0.55, 0.35], [0.95, 0.95]
    masks = rater_masks([[a, b, c], [b, c], [c]], g)
    counts = vote_counts(masks)
    values = counts_to_uint8(counts, 3)
    expected = np.zeros((10, 10), dtype=np.uint8)
    expected[0, 0] = 85  # 1/3
    expected[3, 5] = 170  # 2/3
    expected[9, 9] = 255  # 3/3
    assert np.array_equal(values, expected)
    assert sorted(np.unique(counts / 3).tolist()) == pytest.approx([0, 1 / 3, 2 / 3, 1])


def test_no_points_give_an_empty_map_of_the_output_size():
    g = RasterGeometry(64, 48, 16, 8, 0.05)
    masks = rater_masks([[], [], []], g)
    assert masks.shape == (3, 8, 16)
    assert not masks.any()


def test_rounding_of_non_exact_fractions_is_half_up():
    counts = np.arange(3, dtype=np.uint8)[None, :]
    # 255/2 = 127.5 -> 128; 2 of 2 -> 255.
    assert counts_to_uint8(counts, 2).tolist() == [[0, 128, 255]]
    # 1/6 * 255 = 42.5 -> 43; 5/6 * 255 = 212.5 -> 213.
    assert counts_to_uint8(np.array([[1, 5]], dtype=np.uint8), 6).tolist() == [[43, 213]]


def test_matches_the_definition_on_random_geometries():
    """The windowed rasteriser against a whole-grid evaluation of the definition."""
    rng = np.random.default_rng(7)
    for _ in range(150):
        w, h = int(rng.integers(1, 400)), int(rng.integers(1, 400))
        g = RasterGeometry(w, h, int(rng.integers(1, 70)), int(rng.integers(1, 70)), float(rng.uniform(0.005, 0.5)))
        points = rng.random((int(rng.integers(0, 8)), 2))
        points[rng.random(len(points)) < 0.2] = rng.integers(0, 2, 2)  # corners and edges
        got = rater_mask(points.tolist(), g)
        ref = np.zeros_like(got)
        for x, y in points:
            dx = g.col_centres - x * w
            dy = g.row_centres - y * h
            ref |= (dx * dx)[None, :] <= (g.radius * g.radius - dy * dy)[:, None]
        assert np.array_equal(got, ref), g


def _whole_grid(points_per_rater: list, g: RasterGeometry) -> np.ndarray:
    """The definition evaluated on every pixel of the map, rater by rater (no windows)."""
    ref = np.zeros((len(points_per_rater), g.out_height, g.out_width), dtype=bool)
    for rater, points in enumerate(points_per_rater):
        for x, y in points:
            dx = g.col_centres - x * g.image_width
            dy = g.row_centres - y * g.image_height
            ref[rater] |= (dx * dx)[None, :] <= (g.radius * g.radius - dy * dy)[:, None]
    return ref


@pytest.mark.parametrize("seed", range(4))
def test_matches_the_definition_on_boundary_points_and_campaign_geometries(seed):
    """Points whose disks pass exactly through pixel centres (the boundary is included), on
    the campaign's real geometries (512x512 maps of Pick-a-Pic sizes, radius H/20) and on odd
    ones, three raters at a time: any shortcut in the rasteriser (stamps, lower precision,
    a window one pixel short) shows up as a differing pixel here."""
    rng = np.random.default_rng(100 + seed)
    sizes = [(512, 512), (768, 768), (512, 768), (768, 512), (640, 640), (1024, 1024), (100, 100), (37, 311)]
    for _ in range(40):
        w, h = sizes[int(rng.integers(len(sizes)))]
        out_w, out_h = (512, 512) if rng.random() < 0.5 else (int(rng.integers(1, 300)), int(rng.integers(1, 300)))
        fraction = 0.05 if rng.random() < 0.5 else float(rng.uniform(0.002, 0.6))
        g = RasterGeometry(w, h, out_w, out_h, fraction)
        raters = []
        for _ in range(3):
            n = int(rng.integers(0, 16))
            # Half the points on the half-pixel lattice of the output grid: with radius H/20
            # many pixel centres then lie exactly at distance r or a rounding error from it.
            lattice = np.stack(
                [rng.integers(0, 2 * out_w + 1, n) / (2 * out_w), rng.integers(0, 2 * out_h + 1, n) / (2 * out_h)], 1
            )
            points = np.where(rng.random((n, 1)) < 0.5, lattice, rng.uniform(-0.05, 1.05, (n, 2)))
            raters.append(points.tolist())
        assert np.array_equal(rater_masks(raters, g), _whole_grid(raters, g)), g


def test_pixels_exactly_at_distance_r_are_inside():
    # 100x100 image, 10x10 map (centres 5, 15, ...), r = 25, point at (25, 50); every number
    # here is exact in binary. Centre (5, 35) is at dx = -20, dy = -15: distance exactly 25,
    # so inside; (5, 25) is at distance sqrt(400 + 625) and outside.
    g = RasterGeometry(100, 100, 10, 10, 0.25)
    mask = rater_mask([[0.25, 0.5]], g)
    assert mask[3, 0] and mask[6, 4] and mask[3, 4] and mask[6, 0]
    assert not mask[2, 0] and not mask[7, 4]


def test_png_is_8_bit_grayscale_and_lossless():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    data = encode_png(values)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(pillow_decode(data), values)
    assert np.array_equal(decode_heatmap_png(data), values)


def test_encode_png_refuses_what_is_not_a_2d_uint8_map():
    with pytest.raises(ValueError, match="2-D uint8"):
        encode_png(np.zeros((4, 4), dtype=np.float64))
    with pytest.raises(ValueError, match="2-D uint8"):
        encode_png(np.zeros((2, 4, 4), dtype=np.uint8))


def test_float_heatmaps_round_half_up_like_the_vote_counts():
    # (n + 0.5) / 255 scales back to exactly n + 0.5: every half goes up, where numpy's
    # half-to-even rounding would give 0, 2, 2, 4; outside [0, 1] is clipped.
    halves = np.array([[(n + 0.5) / 255 for n in range(4)]])
    assert heatmap_to_uint8(halves).tolist() == [[1, 2, 3, 4]]
    heat = np.array([[0.0, 0.5, 1.0, -0.2, 1.7]])
    assert heatmap_to_uint8(heat).tolist() == [[0, 128, 255, 0, 255]]
    # A mean of k raters' votes stores the byte counts_to_uint8 gives for the same counts.
    for k in range(1, 12):
        counts = np.arange(k + 1, dtype=np.uint8)[None, :]
        assert np.array_equal(heatmap_to_uint8(counts / k), counts_to_uint8(counts, k)), k


def test_encode_heatmap_png_takes_floats_or_bytes():
    levels = np.array([0, 1 / 3, 2 / 3, 1.0])
    heat = levels[np.random.default_rng(0).integers(0, 4, (64, 48))]
    data = encode_heatmap_png(heat)
    assert np.array_equal(pillow_decode(data), np.round(heat * 255).astype(np.uint8))
    values = pillow_decode(data)
    assert encode_heatmap_png(values) == encode_png(values) == data


def test_decode_converts_other_images_to_grayscale():
    rgb = np.zeros((3, 5, 3), dtype=np.uint8)
    rgb[1, 2] = (255, 255, 255)
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="PNG")
    decoded = decode_heatmap_png(buffer.getvalue())
    assert decoded.dtype == np.uint8 and decoded.shape == (3, 5)
    assert decoded[1, 2] == 255 and decoded.sum() == 255


def test_bad_geometry_is_refused():
    with pytest.raises(ValueError):
        RasterGeometry(0, 10, 8, 8, 0.05)
    with pytest.raises(ValueError):
        RasterGeometry(10, 10, 8, 8, 0.0)


# --- rasterise_votes: the run rasteriser the aggregation uses (issue 16) -------------------


def _random_maps(rng: np.random.Generator, n_maps: int, max_raters: int) -> list:
    """Maps of odd and real geometries, a third of the points on the half-pixel lattice (pixel
    centres at exactly r or a rounding error from it), some off the image, corners, edges."""
    sizes = [(512, 512), (768, 768), (512, 768), (768, 512), (1024, 1024), (100, 100), (37, 311)]
    maps = []
    for _ in range(n_maps):
        w, h = sizes[int(rng.integers(len(sizes)))]
        out_w, out_h = (512, 512) if rng.random() < 0.3 else (int(rng.integers(1, 200)), int(rng.integers(1, 200)))
        fraction = 0.05 if rng.random() < 0.5 else float(rng.uniform(0.002, 0.6))
        raters = []
        for _ in range(int(rng.integers(0, max_raters + 1))):
            n = int(rng.integers(0, 16))
            lattice = np.stack(
                [rng.integers(0, 2 * out_w + 1, n) / (2 * out_w), rng.integers(0, 2 * out_h + 1, n) / (2 * out_h)], 1
            )
            points = np.where(rng.random((n, 1)) < 0.35, lattice, rng.uniform(-0.05, 1.05, (n, 2)))
            points[rng.random(n) < 0.1] = rng.integers(0, 2, 2)
            raters.append(points.tolist())
        maps.append((raters, RasterGeometry(w, h, out_w, out_h, fraction)))
    return maps


def _assert_votes_match_the_definition(maps: list, results: list) -> None:
    assert len(results) == len(maps)
    for (raters, g), votes in zip(maps, results, strict=True):
        ref = _whole_grid(raters, g)  # (k, h, w), the definition pixel by pixel
        k = len(raters)
        counts = ref.sum(axis=0).astype(np.uint8)
        expected = counts_to_uint8(counts, k) if k else np.zeros((g.out_height, g.out_width), np.uint8)
        flat = ref.reshape(k, g.out_height * g.out_width).astype(np.int64)
        assert votes.n_raters == k
        assert np.array_equal(votes.values, expected), g
        assert np.array_equal(votes.overlaps, flat @ flat.T), g
        assert votes.max_votes == int(counts.max(initial=0)), g
        assert votes.covered == int(np.count_nonzero(counts)), g


def _compiled(maps):
    import modeling.heatmaps as heatmaps

    kernel = heatmaps._compiled_kernel()
    if kernel is None:
        pytest.skip("numba is not installed: only the numpy path runs")
    return heatmaps._rasterise_votes_compiled(maps, kernel)


@pytest.fixture(params=["numba", "numpy"])
def rasterise(request):
    """Every run-rasteriser test runs on both paths: the compiled kernel (what rasterise_votes
    uses when numba is installed) and the numpy fallback."""
    return _compiled if request.param == "numba" else rasterise_votes_numpy


@pytest.mark.parametrize("seed", range(3))
def test_run_rasteriser_matches_the_definition_on_batches_of_mixed_maps(seed, rasterise):
    """Values, overlaps (areas on the diagonal), max votes and coverage of every map of a batch
    against the whole-grid definition: maps of different geometries and rater counts (0 to 5)
    share one call, so a position or rater leaking from one map to the next shows."""
    rng = np.random.default_rng(200 + seed)
    for _ in range(6):
        maps = _random_maps(rng, int(rng.integers(1, 9)), 5)
        _assert_votes_match_the_definition(maps, rasterise(maps))


def test_run_rasteriser_with_many_raters_takes_the_pairwise_path(rasterise):
    # Beyond 8 raters the figures come from pairwise sums, not a histogram of 2^k patterns.
    rng = np.random.default_rng(9)
    maps = [m for m in _random_maps(rng, 12, 12) if len(m[0]) > 8][:3]
    assert maps
    _assert_votes_match_the_definition(maps, rasterise(maps))


def test_run_rasteriser_edge_cases(rasterise):
    g = RasterGeometry(100, 100, 10, 10, 0.25)
    maps = [
        ([], g),  # no raters
        ([[], []], g),  # raters without points
        ([[[-3.0, -3.0]], [[5.0, 0.5]]], g),  # disks entirely off the map
        ([[[1.0, 1.0]]], g),  # the last pixel of the last map is covered: its run ends at the end
        ([[[0.25, 0.5]]], g),  # centres exactly at distance r (test_pixels_exactly_at_distance_r)
    ]
    results = rasterise(maps)
    _assert_votes_match_the_definition(maps, results)
    assert results[3].values[9, 9] == 255 and results[4].values[3, 0] == 255
    assert rasterise([]) == []


def test_run_ends_are_decided_by_the_definition_not_the_estimate(monkeypatch):
    """The circle-equation estimate of each run's ends is only a start: even when it is off by
    up to three columns either way (or claims a row is empty), the runs are settled with the
    definition's own test, so the maps are unchanged."""
    import modeling.heatmaps as heatmaps

    exact = heatmaps._estimate_ends
    rng = np.random.default_rng(11)

    def off(cx, sx, rhs):
        lo, hi = exact(cx, sx, rhs)
        return lo + rng.integers(-3, 4, lo.shape), hi + rng.integers(-3, 4, hi.shape)

    monkeypatch.setattr(heatmaps, "_estimate_ends", off)
    maps = _random_maps(np.random.default_rng(12), 8, 4)
    _assert_votes_match_the_definition(maps, rasterise_votes_numpy(maps))


def test_compiled_kernel_equals_the_numpy_path_on_random_batches():
    """Randomised cross-check: the numba kernel and the numpy path give the same bytes, the
    same overlaps, max votes and coverage on batches of mixed maps (0 to 12 raters, so both
    the pattern and the pairwise numpy branches are compared), beyond the whole-grid tests'
    sizes."""
    rng = np.random.default_rng(31)
    n = 0
    for _ in range(40):
        maps = _random_maps(rng, int(rng.integers(1, 9)), 12 if rng.random() < 0.2 else 5)
        for ours, theirs in zip(_compiled(maps), rasterise_votes_numpy(maps), strict=True):
            assert ours.n_raters == theirs.n_raters
            assert ours.max_votes == theirs.max_votes and ours.covered == theirs.covered
            assert np.array_equal(ours.overlaps, theirs.overlaps)
            assert np.array_equal(ours.values, theirs.values)
            n += 1
    assert n > 100


def test_rasterise_votes_falls_back_to_numpy_without_numba(monkeypatch):
    """Without numba (the kernel's import fails), rasterise_votes takes the numpy path and
    gives the same results."""
    import sys

    import modeling
    import modeling.heatmaps as heatmaps

    # As if numba were missing: the kernel module cannot be imported.
    monkeypatch.setitem(sys.modules, "modeling.heatmaps_numba", None)
    monkeypatch.delattr(modeling, "heatmaps_numba", raising=False)
    monkeypatch.setattr(heatmaps, "_COMPILED_LOADED", False)
    monkeypatch.setattr(heatmaps, "_COMPILED", None)
    calls = []
    real_numpy = heatmaps.rasterise_votes_numpy
    monkeypatch.setattr(heatmaps, "rasterise_votes_numpy", lambda maps: calls.append(1) or real_numpy(maps))
    maps = _random_maps(np.random.default_rng(5), 4, 3)
    results = heatmaps.rasterise_votes(maps)
    assert calls == [1] and heatmaps._compiled_kernel() is None
    _assert_votes_match_the_definition(maps, results)  # values painted by np.repeat here


def test_rasterise_votes_uses_the_compiled_kernel_when_numba_is_installed(monkeypatch):
    import modeling.heatmaps as heatmaps

    if heatmaps._compiled_kernel() is None:
        pytest.skip("numba is not installed")
    monkeypatch.setattr(heatmaps, "rasterise_votes_numpy", lambda maps: pytest.fail("took the numpy path"))
    maps = _random_maps(np.random.default_rng(6), 4, 3)
    _assert_votes_match_the_definition(maps, rasterise_votes(maps))
