"""aggregation/quality/services/reliability.py on a crowd with known careful and spamming raters."""

import random

import pytest

from aggregation.quality.services.reliability import Answer, campaign_figures, weighted_item_scores


def crowd(n_items=40, seed=0):
    """Three careful raters agree with a hidden truth (small noise); one spammer answers at
    random and fast. Every item gets two careful raters and, on half the items, the spammer."""
    rng = random.Random(seed)
    answers = []
    pk = 0
    for item in range(n_items):
        truth_scores = [rng.randint(1, 5) for _ in range(4)]
        truth_words = {rng.randrange(8)}
        truth_point = (rng.random(), rng.random())
        raters = rng.sample([1, 2, 3], 2) + ([9] if item % 2 == 0 else [])
        for rater in raters:
            pk += 1
            if rater == 9:
                scores = [rng.randint(1, 5) for _ in range(4)]
                words = rng.sample(range(8), 3)
                points = [[rng.random(), rng.random()]]
                time_ms = 1500
            else:
                scores = [min(5, max(1, s + rng.choice([0, 0, 0, 1, -1]))) for s in truth_scores]
                words = sorted(truth_words)
                points = [[truth_point[0] + rng.gauss(0, 0.01), truth_point[1] + rng.gauss(0, 0.01)]]
                time_ms = rng.randint(20_000, 40_000)
            answers.append(
                Answer(
                    annotation_id=pk,
                    item_id=item,
                    rater_id=rater,
                    scores=scores,
                    misaligned_words=words,
                    n_words=8,
                    points={"implausibility": points, "misalignment": []},
                    image_width=64,
                    image_height=64,
                    radius_fraction=0.05,
                    time_spent_ms=time_ms,
                )
            )
    return answers


def test_the_spammer_is_least_reliable_on_every_component():
    figures = campaign_figures(crowd(), speed_factor=0.3)
    spammer = figures.raters[9]
    careful = [figures.raters[r] for r in (1, 2, 3)]
    assert spammer.n_answers == 20 and spammer.n_overlap == 20
    for name in ("keyword_competence", "score_consistency", "map_agreement", "reliability"):
        assert getattr(spammer, name) < min(getattr(c, name) for c in careful) - 0.2, name
    assert all(c.reliability > 0.7 for c in careful)
    assert spammer.reliability < 0.35
    # Speed: every spammer answer is far below 0.3 x the median (about 30 s); no careful one is.
    assert spammer.fast_share == 1.0 and all(c.fast_share == 0.0 for c in careful)
    assert 20_000 <= figures.median_time_ms <= 40_000


def test_excluded_answers_leave_the_consensus_but_still_judge_their_rater():
    answers = crowd()
    excluded = [Answer(**{**a.__dict__, "excluded": True}) if a.rater_id == 9 else a for a in answers]
    figures = campaign_figures(excluded)
    assert figures.raters[9].n_excluded == 20
    assert figures.raters[9].reliability < 0.35
    # With the spammer out of the consensus, the careful raters agree even better.
    before = campaign_figures(answers)
    assert figures.raters[1].map_agreement >= before.raters[1].map_agreement


def test_bias_and_reliability_weighting():
    answers = [
        Answer(i, 1, r, [s] * 4, [], 3, {"implausibility": [], "misalignment": []}, 8, 8, 0.05, 1000)
        for i, (r, s) in enumerate([(1, 4), (2, 4), (3, 1)])
    ]
    figures = campaign_figures(answers)
    assert figures.raters[3].score_bias == pytest.approx(-3.0)
    assert figures.raters[1].score_bias == pytest.approx(1.5)  # 4 against the mean of 4 and 1
    plain = weighted_item_scores(answers, reliability={}, bias={})[1]["overall"]
    assert plain == pytest.approx(3.0)
    weighted = weighted_item_scores(answers, reliability={1: 1.0, 2: 1.0, 3: 0.0}, bias={})[1]["overall"]
    assert weighted == pytest.approx(4.0, abs=0.01)
