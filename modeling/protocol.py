"""The one home of the protocol's shared names (docs/protocol.md). Plain Python, no Django.

Every app imports these instead of spelling the names again: a tuple written five times
drifts. Order matters: scores and maps are stored, exported and predicted in this order.
"""

from __future__ import annotations

#: The four 1-5 Likert scores a rater gives (docs/protocol.md section 1).
SCORE_NAMES: tuple[str, ...] = ("plausibility", "alignment", "aesthetics", "overall")

#: The two point kinds, and the heatmap each becomes (docs/protocol.md section 2).
MAP_KINDS: tuple[str, ...] = ("implausibility", "misalignment")

#: The answer field that holds each map kind's points.
POINT_FIELDS: dict[str, str] = {"implausibility": "implausible_points", "misalignment": "misaligned_points"}

#: Release score feature -> our score name (docs/protocol.md section 3: artifact = plausibility,
#: misalignment = alignment).
RELEASE_SCORE_FEATURES: dict[str, str] = {
    "artifact_score": "plausibility",
    "misalignment_score": "alignment",
    "aesthetics_score": "aesthetics",
    "overall_score": "overall",
}
#: Release heatmap feature -> our map kind.
RELEASE_MAP_FEATURES: dict[str, str] = {
    "artifact_map": "implausibility",
    "misalignment_map": "misalignment",
}
#: Our map kind -> release heatmap feature.
RELEASE_MAP_NAMES: dict[str, str] = {kind: feature for feature, kind in RELEASE_MAP_FEATURES.items()}
#: Our score name -> release score feature.
RELEASE_SCORE_NAMES: dict[str, str] = {name: feature for feature, name in RELEASE_SCORE_FEATURES.items()}
#: Every feature of a release example, in the release's order.
RELEASE_FEATURES: tuple[str, ...] = (
    "filename",
    *RELEASE_SCORE_FEATURES,
    *RELEASE_MAP_FEATURES,
    "prompt_misalignment_label",
)
#: Side of the release's square heatmaps.
RELEASE_MAP_SIZE = 512

#: The paper's disk radius around each point, as a fraction of the image height (H / 20;
#: docs/protocol.md section 2). A campaign may choose another.
RADIUS_FRACTION = 1 / 20

#: The Likert range of every score.
SCORE_MIN, SCORE_MAX = 1, 5


def normalise_score(value: float) -> float:
    """A 1-5 Likert score to the release's [0, 1]: (s - 1) / 4 (docs/protocol.md section 3)."""
    return (value - SCORE_MIN) / (SCORE_MAX - SCORE_MIN)
