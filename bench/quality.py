"""Rater quality control on a simulated crowd with known truth: does it protect the dataset?

    .venv/bin/python bench/quality.py                 # 1,000 items, 60 raters
    .venv/bin/python bench/quality.py --items 300     # quick
    .venv/bin/python bench/quality.py --gold          # + honeypot gold items (5% of leases)

Synthetic items (the generator of bench/aggregate.py and bench/dashboard.py, extended with a
truth): 512x512 images, 8-word prompts, true Likert scores (real numbers in 1..5), 0-2 truly
misaligned words, 0-3 true implausible regions and 0-2 misaligned ones (points). Raters:
- careful (70%): points within 2% of the truth, scores truth + N(0, 0.5), miss a true word
  with p = 0.1, mark a wrong one with p = 0.02, 20-40 s per answer;
- sloppy (20%): points within 8%, scores + N(0, 1.0), miss p = 0.3, wrong p = 0.1, 10-25 s;
- spammers (10%): 0-3 random points per map, 0-3 random words, uniform scores, 2-5 s; being
  fast they are picked twice as often as careful raters.

Three campaigns run the same items through the real services, in this process, on a fresh
PostgreSQL database (richhf_bench_quality): annotation.services.assignment_next and
annotation_submit for every answer (the real lease engine, pause checks included), the
item_completed hook aggregating each item at once (Celery eager), and the quality recompute
(aggregation.quality.services.recompute.quality_run_execute) every --every answers, as the
debounced task would run in production:
- clean: the spammers replaced by careful raters (what the data would be without spammers);
- QC off: the crowd with spammers, policy off;
- QC on: automatic pause + exclusion + adaptive redundancy (cap 1).
Each run goes on until every item is complete (k = 3 counting answers) or no rater can work.
Quality against the truth is measured on the final aggregates (the dataset).
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "richhf_bench_quality"
WORDS = "a photo of a red car near a tall tree at sunset with two dogs".split()
SIZE = 512
MAP = 128  # the campaign's heatmap size in this bench (512 in production): faster, same shapes


@dataclass
class Truth:
    scores: list[float]
    words: list[int]
    implausible: list[list[float]]
    misaligned: list[list[float]]


@dataclass
class Rater:
    kind: str  # careful | sloppy | spammer
    user: object
    active: bool = True


def make_truth(n: int, seed: int) -> list[Truth]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        out.append(
            Truth(
                scores=[rng.uniform(1, 5) for _ in range(4)],
                words=sorted(rng.sample(range(8), rng.choice([0, 1, 1, 2]))),
                implausible=[[rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)] for _ in range(rng.choice([0, 1, 2, 3]))],
                misaligned=[[rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)] for _ in range(rng.choice([0, 1, 2]))],
            )
        )
    return out


def answer_of(kind: str, truth: Truth, rng: random.Random):
    from annotation.services import AnnotationInput
    from modeling.protocol import SCORE_NAMES

    def clip(v: float) -> float:
        return min(1.0, max(0.0, v))

    if kind == "spammer":
        return AnnotationInput(
            implausible_points=[[rng.random(), rng.random()] for _ in range(rng.randint(0, 3))],
            misaligned_points=[[rng.random(), rng.random()] for _ in range(rng.randint(0, 3))],
            misaligned_words=sorted(rng.sample(range(8), rng.randint(0, 3))),
            scores={name: rng.randint(1, 5) for name in SCORE_NAMES},
            time_spent_ms=rng.randint(2_000, 5_000),
        )
    spread, sd, miss, wrong, times = {
        "careful": (0.02, 0.5, 0.1, 0.02, (20_000, 40_000)),
        "sloppy": (0.08, 1.0, 0.3, 0.1, (10_000, 25_000)),
    }[kind]
    words = [w for w in truth.words if rng.random() > miss] + [
        w for w in range(8) if w not in truth.words and rng.random() < wrong
    ]
    return AnnotationInput(
        implausible_points=[
            [clip(x + rng.gauss(0, spread)), clip(y + rng.gauss(0, spread))] for x, y in truth.implausible
        ],
        misaligned_points=[
            [clip(x + rng.gauss(0, spread)), clip(y + rng.gauss(0, spread))] for x, y in truth.misaligned
        ],
        misaligned_words=sorted(set(words)),
        scores={
            name: int(min(5, max(1, round(truth.scores[i] + rng.gauss(0, sd))))) for i, name in enumerate(SCORE_NAMES)
        },
        time_spent_ms=rng.randint(*times),
    )


def simulate(name: str, truths: list[Truth], kinds: list[str], *, qc: bool, every: int, seed: int, gold: bool) -> dict:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from aggregation.quality.models import QualityPolicy, QualityRun
    from aggregation.quality.services.recompute import quality_run_execute
    from annotation.models import Annotation, Campaign, GoldReference, Item
    from annotation.services import annotation_submit, assignment_next
    from modeling.protocol import SCORE_NAMES
    from richhf_site.errors import ApplicationError
    from richhf_site.roles import RATER, user_add_role

    rng = random.Random(seed)
    User = get_user_model()
    campaign = Campaign.objects.create(
        name=f"bench-{name}", heatmap_width=MAP, heatmap_height=MAP, honeypot_share=0.05 if gold else 0.0
    )
    prompt = " ".join(WORDS)
    items = Item.objects.bulk_create(
        Item(
            campaign=campaign,
            image=f"items/bench/{i}.png",
            width=SIZE,
            height=SIZE,
            prompt=prompt,
            words=WORDS,
            content_hash=f"{campaign.pk:08x}{i:056x}",
        )
        for i in range(len(truths))
    )
    truth_of = {item.pk: t for item, t in zip(items, truths, strict=True)}
    if gold:
        # Honeypots: 5% extra items with the truth as reference (points, as an expert's answer
        # gives them). The queue mixes them into 5% of leases and scores each answer
        # (annotation.GoldAnswerScore); the recompute reads those as gold accuracy.
        gold_truths = make_truth(max(10, len(truths) // 20), seed + 99)
        golds = Item.objects.bulk_create(
            Item(
                campaign=campaign,
                image=f"items/bench/g{i}.png",
                width=SIZE,
                height=SIZE,
                prompt=prompt,
                words=WORDS,
                content_hash=f"{campaign.pk:08x}g{i:055x}",
                is_gold=True,
            )
            for i in range(len(gold_truths))
        )
        GoldReference.objects.bulk_create(
            GoldReference(
                item=g,
                source="expert",
                implausible_points=t.implausible,
                misaligned_points=t.misaligned,
                misaligned_words=t.words,
                scores={s: (v - 1) / 4 for s, v in zip(SCORE_NAMES, t.scores, strict=True)},
            )
            for g, t in zip(golds, gold_truths, strict=True)
        )
        truth_of.update({g.pk: t for g, t in zip(golds, gold_truths, strict=True)})
    raters = []
    for i, kind in enumerate(kinds):
        user = User.objects.create_user(username=f"{name}-{kind}-{i}")
        user_add_role(user=user, role=RATER)
        campaign.raters.add(user)
        raters.append(Rater(kind=kind, user=user))
    QualityPolicy.objects.create(
        campaign=campaign,
        pause_mode="auto" if qc else "off",
        exclude_mode="auto" if qc else "off",
        redundancy_mode="auto" if qc else "off",
        redundancy_threshold=0.35,
        redundancy_cap=1,
    )
    weight = {"careful": 1.0, "sloppy": 1.2, "spammer": 2.0}
    answers = 0
    runs = 0
    run_s = 0.0
    started = time.perf_counter()
    while True:
        pool = [r for r in raters if r.active]
        if not pool or not Item.objects.filter(campaign=campaign, completed_at__isnull=True, is_gold=False).exists():
            break
        rater = rng.choices(pool, weights=[weight[r.kind] for r in pool])[0]
        try:
            lease = assignment_next(rater=rater.user, campaign=campaign, rng=rng)
        except ApplicationError:  # a 409 on a lease action
            rater.active = False
            continue
        if lease.assignment is None:
            rater.active = lease.reason == "busy"
            continue
        truth = truth_of[lease.assignment.item_id]
        annotation_submit(assignment_id=lease.assignment.pk, rater=rater.user, data=answer_of(rater.kind, truth, rng))
        answers += 1
        if answers % every == 0:
            t0 = time.perf_counter()
            quality_run_execute(run_id=QualityRun.objects.create(campaign=campaign, trigger="bench").pk)
            run_s += time.perf_counter() - t0
            runs += 1
    if qc:
        t0 = time.perf_counter()
        quality_run_execute(run_id=QualityRun.objects.create(campaign=campaign, trigger="bench").pk)
        run_s += time.perf_counter() - t0
        runs += 1
    elapsed = time.perf_counter() - started
    result = {
        "name": name,
        "campaign": campaign,
        "answers": Annotation.objects.filter(item__campaign=campaign, item__is_gold=False).count(),
        "excluded": Annotation.objects.filter(item__campaign=campaign, excluded_at__isnull=False).count(),
        "incomplete": Item.objects.filter(campaign=campaign, completed_at__isnull=True, is_gold=False).count(),
        "runs": runs,
        "run_s": run_s,
        "elapsed": elapsed,
        "raters": raters,
        "truth_of": truth_of,
        "now": timezone.now(),
    }
    return result


def truth_map(points: list[list[float]]) -> np.ndarray:
    from modeling.heatmaps import RasterGeometry, rater_masks
    from modeling.protocol import RADIUS_FRACTION

    return rater_masks([points], RasterGeometry(SIZE, SIZE, MAP, MAP, RADIUS_FRACTION))[0]


def dataset_quality(result: dict) -> dict:
    from django.core.files.storage import default_storage

    from aggregation.models import ItemAggregate
    from modeling.heatmaps import decode_heatmap_png
    from modeling.protocol import SCORE_NAMES

    truth_of = result["truth_of"]
    ccs, ious, errs, pred, true = [], [], [], [], []
    tp = fp = fn = 0
    for agg in ItemAggregate.objects.filter(item__campaign=result["campaign"], item__is_gold=False):
        t = truth_of[agg.item_id]
        for field, points in (("implausibility_map", t.implausible), ("misalignment_map", t.misaligned)):
            with default_storage.open(getattr(agg, field).name, "rb") as fh:
                values = decode_heatmap_png(fh.read()).astype(np.float64) / 255.0
            want = truth_map(points)
            got = values >= 0.5
            union = np.logical_or(got, want).sum()
            ious.append(np.logical_and(got, want).sum() / union if union else 1.0)
            if values.std() > 0 and want.std() > 0:
                ccs.append(float(np.corrcoef(values.ravel(), want.ravel().astype(np.float64))[0, 1]))
        for i, s in enumerate(SCORE_NAMES):
            got_score = getattr(agg, f"{s}_mean")
            errs.append(abs(got_score - t.scores[i]))
            pred.append(got_score)
            true.append(t.scores[i])
        marked, right = set(agg.misaligned_words), set(t.words)
        tp += len(marked & right)
        fp += len(marked - right)
        fn += len(right - marked)
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return {
        "CC": float(np.mean(ccs)),
        "IoU": float(np.mean(ious)),
        "MAE": float(np.mean(errs)),
        "PLCC": float(np.corrcoef(pred, true)[0, 1]),
        "F1": f1,
    }


def detection(result: dict) -> dict:
    from annotation.models import Annotation, RaterStatus

    campaign = result["campaign"]
    paused = {s.rater_id: s.paused_at for s in RaterStatus.objects.filter(campaign=campaign, paused_at__isnull=False)}
    spammers = [r for r in result["raters"] if r.kind == "spammer"]
    careful = [r for r in result["raters"] if r.kind == "careful"]
    sloppy = [r for r in result["raters"] if r.kind == "sloppy"]
    caught = [r for r in spammers if r.user.pk in paused]
    before = []
    for r in spammers:
        qs = Annotation.objects.filter(item__campaign=campaign, rater=r.user)
        if r.user.pk in paused:
            qs = qs.filter(created_at__lte=paused[r.user.pk])
        before.append(qs.count())
    return {
        "precision": len(caught) / len(paused) if paused else 1.0,
        "recall": len(caught) / len(spammers) if spammers else 1.0,
        "answers_before_pause": before,
        "careful_paused": sum(r.user.pk in paused for r in careful),
        "careful": len(careful),
        "sloppy_paused": sum(r.user.pk in paused for r in sloppy),
        "sloppy": len(sloppy),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--raters", type=int, default=60)
    parser.add_argument("--every", type=int, default=100, help="answers between quality recomputes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gold", action="store_true", help="add honeypot gold items (5%% of leases)")
    args = parser.parse_args()
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB_NAME], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB_NAME], check=True)
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-" + secrets.token_urlsafe(50))
    os.environ.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        RICHHF_VAR_DIR=str(ROOT / "build" / "bench-quality"),
        DJANGO_SETTINGS_MODULE="richhf_site.settings",
        # Aggregation of a completed item runs inline (the worker's task body, in process).
        CELERY_TASK_ALWAYS_EAGER="1",
    )
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)
    from django.core.management import call_command

    from annotation import hooks

    call_command("migrate", verbosity=0)
    # The bench drives the recompute itself every --every answers (the debounced task's role).
    hooks._item_completed.pop("quality.recompute_soon", None)

    n_spam = max(1, round(args.raters * 0.1))
    n_sloppy = round(args.raters * 0.2)
    crowd = ["spammer"] * n_spam + ["sloppy"] * n_sloppy + ["careful"] * (args.raters - n_spam - n_sloppy)
    clean = ["careful" if k == "spammer" else k for k in crowd]
    truths = make_truth(args.items, args.seed)
    print(
        f"{args.items} items x k=3; {args.raters} raters: {crowd.count('careful')} careful, "
        f"{n_sloppy} sloppy, {n_spam} spammers; recompute every {args.every} answers",
        flush=True,
    )
    results = {}
    for name, kinds, qc in (("clean", clean, False), ("qc-off", crowd, False), ("qc-on", crowd, True)):
        res = simulate(
            name, truths, kinds, qc=qc, every=args.every if qc else 10**9, seed=args.seed + 1, gold=args.gold
        )
        res["quality"] = dataset_quality(res)
        results[name] = res
        print(
            f"  {name}: {res['answers']} answers ({res['excluded']} excluded), {res['incomplete']} items incomplete, "
            f"{res['elapsed']:.0f} s ({res['runs']} recomputes, {res['run_s']:.0f} s)",
            flush=True,
        )

    budget = 3 * args.items
    print("\nDataset quality against the truth (final aggregates):")
    print(f"  {'':8} {'CC':>7} {'IoU':>7} {'MAE':>7} {'PLCC':>7} {'kw F1':>7}")
    for name, res in results.items():
        q = res["quality"]
        print(f"  {name:8} {q['CC']:7.3f} {q['IoU']:7.3f} {q['MAE']:7.3f} {q['PLCC']:7.3f} {q['F1']:7.3f}")
    print("\nRecovered share of the quality spammers cost, (on - off) / (clean - off):")
    clean_q, off_q, on_q = (results[n]["quality"] for n in ("clean", "qc-off", "qc-on"))
    recovered = {}
    for metric in ("CC", "IoU", "MAE", "PLCC", "F1"):
        cost = clean_q[metric] - off_q[metric]
        recovered[metric] = (on_q[metric] - off_q[metric]) / cost if abs(cost) > 1e-9 else float("nan")
        print(f"  {metric:5} cost {cost:+.3f}  recovered {recovered[metric] * 100:6.1f}%")
    det = detection(results["qc-on"])
    extra = results["qc-on"]["answers"] - budget
    print("\nSpammer detection (QC on):")
    print(f"  precision {det['precision']:.2f}, recall {det['recall']:.2f}")
    print(
        f"  answers per spammer before the pause: {det['answers_before_pause']} (max {max(det['answers_before_pause'])})"
    )
    print(
        f"  careful raters paused: {det['careful_paused']} of {det['careful']}; sloppy paused: {det['sloppy_paused']} of {det['sloppy']}"
    )
    print(f"\nExtra annotations spent: {extra} over the budget of {budget} (3 x items) = {100 * extra / budget:.1f}%")
    ok = {
        "recovers >= 80% (every metric)": all(v >= 0.8 for v in recovered.values()),
        "extra <= 15%": extra <= 0.15 * budget,
        "every spammer paused within 20 answers": det["recall"] == 1.0 and max(det["answers_before_pause"]) <= 20,
        "<= 5% careful paused": det["careful_paused"] <= 0.05 * det["careful"],
    }
    print("\nTargets:")
    for what, met in ok.items():
        print(f"  {'met    ' if met else 'MISSED '} {what}")


if __name__ == "__main__":
    main()
