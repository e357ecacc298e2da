"""modeling/quality.py against hand-computed values (docs/quality-scoring.md)."""

from __future__ import annotations

import numpy as np
import pytest

from modeling.quality import (
    GoldAnswer,
    ImageShape,
    Reference,
    answer_quality,
    best_soft_iou,
    keyword_agreement,
    map_agreement,
    reference_map_from_points,
    score_mae,
    soft_iou,
)

THIRDS = np.array([[1.0, 2 / 3, 1 / 3, 0.0]])  # three raters: all, two, one, none


def test_soft_iou_by_hand() -> None:
    # min: 1 + 0.5 + 0 + 0 = 1.5; max: 1 + 1 + 0.5 + 0 = 2.5.
    assert soft_iou(np.array([1, 1, 0, 0]), np.array([1, 0.5, 0.5, 0])) == pytest.approx(0.6)
    assert soft_iou(np.zeros(4), np.zeros(4)) is None


def test_best_soft_iou_tries_every_top_k() -> None:
    # total 2; k=1: 1/2; k=2: (5/3)/(2 + 1/3) = 5/7; k=3: 2/3; k=4: 1/2.
    assert best_soft_iou(THIRDS) == pytest.approx(5 / 7)
    assert best_soft_iou(np.array([[0, 1, 1, 0]])) == pytest.approx(1.0)
    assert best_soft_iou(np.zeros((2, 2))) is None


def test_map_agreement_is_relative_to_the_best_binary_answer() -> None:
    # Marking the majority pixels is the best answer against a three-rater map: 1.
    assert map_agreement(np.array([[1, 1, 0, 0]], dtype=bool), THIRDS) == pytest.approx(1.0)
    # Only the unanimous pixel: 1 / (1 + 2/3 + 1/3) = 0.5, over 5/7 = 0.7.
    assert map_agreement(np.array([[1, 0, 0, 0]], dtype=bool), THIRDS) == pytest.approx(0.7)
    # Only the unmarked pixel: no overlap at all.
    assert map_agreement(np.array([[0, 0, 0, 1]], dtype=bool), THIRDS) == 0.0


def test_map_agreement_when_either_side_is_empty() -> None:
    empty = np.zeros((1, 4))
    assert map_agreement(np.zeros((1, 4), dtype=bool), empty) == 1.0
    assert map_agreement(np.zeros((1, 4), dtype=bool), THIRDS) == 0.0
    assert map_agreement(np.array([[0, 1, 0, 0]], dtype=bool), empty) == 0.0
    with pytest.raises(ValueError, match="differ"):
        map_agreement(np.zeros((2, 2), dtype=bool), THIRDS)


def test_keyword_precision_recall_f1() -> None:
    k = keyword_agreement([1, 2, 3], [2, 3, 4, 5])
    assert (k.precision, k.recall, k.f1) == pytest.approx((2 / 3, 1 / 2, 4 / 7))
    assert keyword_agreement([], []) == keyword_agreement([4], [4])  # both empty: full agreement
    assert (keyword_agreement([], []).f1, keyword_agreement([], [1]).f1, keyword_agreement([1], []).f1) == (1, 0, 0)
    assert keyword_agreement([], [1]).precision == 1.0 and keyword_agreement([1], []).recall == 1.0


def test_score_mae_on_normalised_scores() -> None:
    # (5, 3, 1, 4) normalise to (1, .5, 0, .75): errors 0, 0, .25, .25.
    answer = {"plausibility": 5, "alignment": 3, "aesthetics": 1, "overall": 4}
    reference = {"plausibility": 1.0, "alignment": 0.5, "aesthetics": 0.25, "overall": 0.5}
    assert score_mae(answer, reference) == pytest.approx(0.125)


def test_disks_are_rasterised_as_the_protocol_does() -> None:
    # 100 x 100 image on a 10 x 10 grid: pixel centres at 5, 15, ..., 95. A point at the
    # image centre (50, 50) is 7.07 px from the four nearest centres: a disk of radius
    # 0.05 x H = 5 px covers none of them, a disk of 0.08 x H = 8 px covers all four.
    small = reference_map_from_points([[0.5, 0.5]], ImageShape(100, 100, 0.05), (10, 10))
    large = reference_map_from_points([[0.5, 0.5]], ImageShape(100, 100, 0.08), (10, 10))
    assert small.sum() == 0
    assert large.sum() == 4 and large[4:6, 4:6].all()


def test_answer_quality_combines_the_components_with_the_documented_weights() -> None:
    shape = ImageShape(100, 100, 0.05)
    implausibility = np.zeros((10, 10))
    implausibility[5, 5] = 1.0  # the pixel whose centre is (55, 55)
    reference = Reference(
        maps={"implausibility": implausibility, "misalignment": np.zeros((10, 10))},
        misaligned_words=[2, 3, 4, 5],
        scores={"plausibility": 1.0, "alignment": 0.5, "aesthetics": 0.25, "overall": 0.5},
    )
    answer = GoldAnswer(
        points={"implausibility": [[0.55, 0.55]], "misalignment": []},
        misaligned_words=[1, 2, 3],
        scores={"plausibility": 5, "alignment": 3, "aesthetics": 1, "overall": 4},
    )
    q = answer_quality(answer=answer, reference=reference, shape=shape)
    assert q.maps == {"implausibility": 1.0, "misalignment": 1.0}
    assert q.keywords.f1 == pytest.approx(4 / 7)
    assert q.score_agreement == pytest.approx(0.75)
    # 0.2 * 1 + 0.2 * 1 + 0.2 * 4/7 + 0.4 * 0.75
    assert q.quality == pytest.approx(0.4 + 0.8 / 7 + 0.3)
    assert q.components()["keywords"]["precision"] == pytest.approx(2 / 3)


def test_a_random_answer_scores_well_below_a_faithful_one() -> None:
    shape = ImageShape(64, 48, 1 / 20)
    points = [[0.2, 0.3], [0.7, 0.6]]
    reference = Reference(
        maps={
            "implausibility": reference_map_from_points(points, shape, (48, 64)),
            "misalignment": np.zeros((48, 64)),
        },
        misaligned_words=[0],
        scores={name: 0.75 for name in ("plausibility", "alignment", "aesthetics", "overall")},
    )
    faithful = GoldAnswer({"implausibility": points}, [0], dict.fromkeys(reference.scores, 4))
    rng = np.random.default_rng(0)
    spam = GoldAnswer(
        {"implausibility": rng.random((3, 2)).tolist(), "misalignment": rng.random((2, 2)).tolist()},
        [1, 2],
        dict.fromkeys(reference.scores, 1),
    )
    assert answer_quality(answer=faithful, reference=reference, shape=shape).quality == pytest.approx(1.0)
    assert answer_quality(answer=spam, reference=reference, shape=shape).quality < 0.2
