"""End-to-end: synthetic export -> train (resume exactness) -> evaluate -> predict -> uses."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from modeling import evaluate as evaluate_cli
from modeling import predict as predict_cli
from modeling import train as train_cli
from modeling.data.dataset import load_split
from modeling.data.synthetic import generate_release
from modeling.evaluate import baseline_reports
from modeling.inference import RAHFPredictor
from modeling.metrics import format_report
from modeling.train import TrainConfig, build_parser, cosine_schedule, parse_train_config
from modeling.uses import Candidate, inpainting_mask, select_finetuning_data


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    generate_release(root, splits={"train": 8, "dev": 3, "test": 3}, seed=3, progress=False)
    return root


def _train_args(export: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--data",
        str(export),
        "--out",
        str(out),
        "--config",
        "tiny",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--lr",
        "1e-3",
        "--min-lr",
        "1e-4",
        "--warmup-steps",
        "1",
        "--no-progress",
        "--eval-batch-size",
        "3",
        *extra,
    ]


def test_cosine_schedule() -> None:
    assert cosine_schedule(0, warmup=2, total=10, min_ratio=0.5) == pytest.approx(0.5)
    assert cosine_schedule(2, warmup=2, total=10, min_ratio=0.5) == pytest.approx(1.0)
    assert cosine_schedule(10, warmup=2, total=10, min_ratio=0.5) == pytest.approx(0.5)
    assert cosine_schedule(6, warmup=2, total=10, min_ratio=0.0) == pytest.approx(0.5)


@pytest.fixture(scope="module")
def trained(export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "straight"
    assert train_cli.main(_train_args(export, out)) == 0
    return out


def test_train_writes_checkpoints_and_log(trained: Path) -> None:
    for sub in ("last", "best"):
        assert (trained / sub / "model.safetensors").exists()
        assert (trained / sub / "config.json").exists()
        assert (trained / sub / "tokenizer").is_dir()
    assert (trained / "last" / "train_state.pt").exists()
    log = [json.loads(line) for line in (trained / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert log[-1]["step"] == 4
    assert all("dev_combined" in r for r in log)
    best = json.loads((trained / "best" / "metrics.json").read_text())
    assert best["dev_combined"] == max(r["dev_combined"] for r in log)


def test_resume_mid_epoch_matches_uninterrupted_run(export: Path, trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    assert train_cli.main(_train_args(export, out, "--stop-at-step", "1")) == 0
    assert json.loads((out / "last" / "metrics.json").read_text())["step"] == 1
    assert train_cli.main(_train_args(export, out, "--resume")) == 0
    straight = load_file(str(trained / "last" / "model.safetensors"))
    resumed = load_file(str(out / "last" / "model.safetensors"))
    assert straight.keys() == resumed.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=1e-6, msg=key)


def test_resume_without_state_names_the_file(export: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert train_cli.main(_train_args(export, tmp_path / "none", "--resume")) == 2
    assert "train_state.pt: nothing to resume" in capsys.readouterr().err


def test_train_bad_data_names_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert train_cli.main(_train_args(tmp_path, tmp_path / "o")) == 2
    assert "neither train.tfrecord nor train.parquet" in capsys.readouterr().err


def test_train_cli_parses_into_the_config_and_covers_every_option() -> None:
    options = {a.dest for a in build_parser()._actions if a.dest != "help"}
    assert options == {f.name for f in dataclasses.fields(TrainConfig)}
    assert parse_train_config(["--data", "d", "--out", "o"]) == TrainConfig(data=Path("d"), out=Path("o"))
    argv = ["--data", "d", "--out", "o", "--config", "base", "--no-progress", "--max-steps", "5", "--resume"]
    config = parse_train_config([*argv, "--heatmap-loss-weight", "2.5"])
    assert (config.config_name, config.progress, config.max_steps, config.resume) == ("base", False, 5, True)
    assert config.heatmap_loss_weight == 2.5 and config.score_loss_weight is None and config.epochs == 30
    with pytest.raises(ValueError, match="variant must be one of multihead, augmented"):
        TrainConfig(data=Path("d"), out=Path("o"), variant="triple")


def test_evaluate_cli_with_baselines(
    export: Path, trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    report = tmp_path / "report.json"
    args = ["--checkpoint", str(trained / "best"), "--data", str(export), "--split", "test"]
    assert evaluate_cli.main([*args, "--baselines", "--json", str(report), "--kld-eps", "richhf"]) == 0
    text = capsys.readouterr().out
    for label in ("plausibility PLCC", "AUC-Judd (GT>0)", "f1 (per-prompt)", "centre prior", "no word misaligned"):
        assert label in text
    data = json.loads(report.read_text())
    assert set(data) == {"model", "mean score", "all-zero map", "centre prior", "no word misaligned"}
    assert data["mean score"]["scores"]["overall"]["plcc"] is None  # constant: undefined, not 0
    assert data["model"]["heatmaps"]["implausibility"]["kld_eps"] == 1e-8
    # The all-zero map: SIM 0 (MIT similarity.m), CC/NSS undefined for each GT>0 image, and
    # the output says how many images those averages left out and why.
    zero = data["all-zero map"]["heatmaps"]["misalignment"]
    n = zero["n_gtpos"]
    assert n >= 1 and zero["sim"] == 0.0 and zero["cc"] is None and zero["nss"] is None
    assert zero["left_out"]["cc"] == zero["left_out"]["nss"] == {"constant prediction": n}
    assert f"all-zero map: CC {n} (constant prediction); NSS {n} (constant prediction)" in text
    assert "undef PLCC/SRCC in mean score (constant prediction): plausibility, alignment, aesthetics, overall" in text


def test_baselines_hand_checkable(export: Path) -> None:
    train, test = load_split(export, "train"), load_split(export, "test")
    reports = baseline_reports(train, test, size=16)
    zero = reports["all-zero map"].heatmaps["implausibility"]
    truth = [s.heatmaps(16)[0] for s in test]
    assert zero.mse_all == pytest.approx(float(np.mean([np.mean(t**2) for t in truth])))
    kw = reports["no word misaligned"].keywords
    assert kw is not None and kw.tp == 0 and kw.fp == 0
    text = format_report(reports)
    assert "mean score" in text


def test_predict_run_mask_select(export: Path, trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred"
    args = ["run", "--checkpoint", str(trained / "best"), "--images", str(export / "images")]
    assert (
        predict_cli.main([*args, "--prompts", str(export / "prompts.jsonl"), "--out", str(out), "--batch-size", "5"])
        == 0
    )
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 14
    first = rows[0]
    assert set(first["scores"]) == {"plausibility", "alignment", "aesthetics", "overall"}
    heat_png = out / first["heatmaps"]["implausibility"]
    assert Image.open(heat_png).size == (64, 64)
    # Same numbers as the library call.
    predictor = RAHFPredictor.from_checkpoint(trained / "best", device="cpu")
    direct = predictor.predict([Path(first["image"])], [first["prompt"]])[0]
    assert direct.scores == pytest.approx(first["scores"])
    assert direct.tagged_prompt == first["tagged_prompt"]

    mask_png = tmp_path / "mask.png"
    assert (
        predict_cli.main(
            ["mask", "--heatmap", str(heat_png), "--out", str(mask_png), "--threshold", "0.0", "--size", "128x96"]
        )
        == 0
    )
    assert Image.open(mask_png).size == (128, 96)

    selected = tmp_path / "selected.jsonl"
    assert (
        predict_cli.main(
            [
                "select",
                "--predictions",
                str(out / "predictions.jsonl"),
                "--out",
                str(selected),
                "--min",
                "plausibility=0",
                "--best-per-prompt",
                "1",
            ]
        )
        == 0
    )
    chosen = [json.loads(line) for line in selected.read_text().splitlines()]
    assert len(chosen) == len({r["prompt"] for r in rows})


def test_predict_errors_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nope.jsonl"
    assert (
        predict_cli.main(["run", "--checkpoint", str(tmp_path), "--images", str(missing), "--out", str(tmp_path)]) == 2
    )
    assert str(missing) in capsys.readouterr().err
    listing = tmp_path / "list.jsonl"
    listing.write_text(json.dumps({"image": "gone.png", "prompt": "a cat"}) + "\n")
    assert (
        predict_cli.main(["run", "--checkpoint", str(tmp_path), "--images", str(listing), "--out", str(tmp_path)]) == 2
    )
    assert "gone.png: image not found" in capsys.readouterr().err


def test_inpainting_mask_threshold_and_dilation() -> None:
    heat = np.zeros((32, 32), np.float32)
    heat[10, 10] = 0.9
    heat[20, 25] = 0.2
    mask = inpainting_mask(heat, threshold=0.5, dilation=0)
    assert mask.sum() == 1 and mask[10, 10]
    grown = inpainting_mask(heat, threshold=0.5, dilation=2)
    assert grown.sum() == 13  # a radius-2 disk: 1 + 4 + 4 + 4 pixels
    assert grown[10, 12] and grown[12, 10] and not grown[12, 12]
    assert inpainting_mask(heat, threshold=0.1, dilation=0, min_area=2).sum() == 0
    assert inpainting_mask(heat, threshold=0.5, dilation=0, output_size=(64, 64)).shape == (64, 64)


def test_select_finetuning_data() -> None:
    cands = [
        Candidate("a", "p1", {"plausibility": 0.9, "overall": 0.5}),
        Candidate("b", "p1", {"plausibility": 0.8, "overall": 0.9}),
        Candidate("c", "p1", {"plausibility": 0.4, "overall": 1.0}),
        Candidate("d", "p2", {"plausibility": 0.7, "overall": 0.1}),
        Candidate("e", "p3", {"plausibility": 0.1, "overall": 0.9}),
    ]
    chosen = select_finetuning_data(cands, thresholds={"plausibility": 0.6})
    assert [c.image_id for c in chosen] == ["b", "d"]
    every = select_finetuning_data(cands, thresholds={"plausibility": 0.6}, best_per_prompt=None)
    assert [c.image_id for c in every] == ["a", "b", "d"]
    with pytest.raises(ValueError, match="aesthetics"):
        select_finetuning_data(cands, thresholds={"aesthetics": 0.5})
