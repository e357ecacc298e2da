"""Compatibility re-exports: the rasteriser and the PNG codec live in modeling.heatmaps.

Only modules outside this package's refactor still import these names from here
(aggregation/dashboard/services/recompute.py, bench/export.py and three aggregation tests);
once they import modeling.heatmaps directly this module goes.
"""

from __future__ import annotations

from modeling.heatmaps import RasterGeometry, encode_png, rater_masks
from modeling.heatmaps import decode_heatmap_png as decode_png

__all__ = ["RasterGeometry", "decode_png", "encode_png", "rater_masks"]
