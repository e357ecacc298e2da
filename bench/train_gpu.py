"""GPU figures for the RAHF model: training throughput in bf16 autocast against fp32 (the
same-process baseline), model FLOPs utilisation, peak memory, queue-prediction images/s, and an
explained profile when MFU is under 40%.

    .venv/bin/python bench/train_gpu.py                      # base config, cuda, ~3-5 minutes
    .venv/bin/python bench/train_gpu.py --config tiny --device cpu --steps 3   # CPU smoke test

Random-init weights and the offline byte tokenizer (no network). Inputs are a small pool of
examples from the synthetic generator (modeling/data/synthetic.py), preprocessed once and kept
on the device, so the training figures are the model's own; the CPU preprocessing the data
loader would do is timed separately and reported beside them. FLOPs per sample are counted
with torch.utils.flop_counter.FlopCounterMode on one forward + backward of a real batch
(matmuls, convolutions and attention; element-wise ops and the optimizer are not counted, as
usual for MFU). Writes JSON (--json) and prints a table; docs/performance-modeling.md holds
the figures.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import math
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from modeling.config import CONFIG_NAMES, get_config  # noqa: E402
from modeling.data.synthetic import generate_example  # noqa: E402
from modeling.heatmaps import encode_heatmap_png, heatmap_from_png  # noqa: E402
from modeling.inference import RAHFPredictor  # noqa: E402
from modeling.model import RAHFModel  # noqa: E402
from modeling.processing import RAHFProcessor, load_tokenizer, resize_heatmap  # noqa: E402
from modeling.text import labels_to_misaligned_indices, split_prompt_words, tagged_target  # noqa: E402

#: Dense (no sparsity) tensor-core peaks in TFLOP/s, from NVIDIA's data sheets: (name
#: fragment, bf16, tf32, fp32 without tensor cores). First match wins, so the more specific
#: names come first ("H100 PCIe" before "H100", "L40S" before "L4").
PEAK_TFLOPS: tuple[tuple[str, float, float, float], ...] = (
    ("H200", 989.0, 494.5, 67.0),
    ("GH200", 989.0, 494.5, 67.0),
    ("H100 PCIe", 756.0, 378.0, 51.0),
    ("H100 NVL", 835.0, 417.5, 60.0),
    ("H100", 989.0, 494.5, 67.0),  # SXM
    ("H800", 989.0, 494.5, 67.0),
    ("B200", 2250.0, 1100.0, 80.0),
    ("A100", 312.0, 156.0, 19.5),
    ("A800", 312.0, 156.0, 19.5),
    ("L40S", 362.0, 183.0, 91.6),
    ("L40", 181.0, 90.5, 90.5),
    ("L4", 121.0, 60.0, 30.3),
    ("A10G", 70.0, 35.0, 31.2),
    ("A10", 125.0, 62.5, 31.2),
    ("RTX 4090", 165.0, 82.6, 82.6),
    ("RTX 3090", 71.0, 35.6, 35.6),
)

MFU_TARGET = 0.40


@dataclass(frozen=True)
class Peak:
    """The chip's peaks (TFLOP/s) and where they came from."""

    bf16: float | None
    fp32: float | None
    source: str


def chip_peak(device_name: str, *, override: float | None, tf32: bool) -> Peak:
    """Peak by device name; ``override`` (--peak-tflops) is the bf16 peak and wins. The fp32
    baseline is compared with the TF32 tensor-core peak when TF32 matmuls are on."""
    if override is not None:
        return Peak(override, None, "--peak-tflops")
    for fragment, bf16, tf32_peak, fp32 in PEAK_TFLOPS:
        if fragment.lower() in device_name.lower():
            return Peak(bf16, tf32_peak if tf32 else fp32, f"table entry {fragment!r}")
    return Peak(None, None, f"no table entry for {device_name!r}: pass --peak-tflops")


# ---------------------------------------------------------------------------- inputs


@dataclass
class Pool:
    """Synthetic examples: raw images and prompts (for the predictor) and device tensors."""

    images: list[np.ndarray]
    prompts: list[str]
    targets: list[str]
    heatmaps: torch.Tensor  # (N, 2, H, W) at the head's size
    scores: torch.Tensor  # (N, 4)
    image_pngs: list[bytes]  # as files on disk, for the data-loading measurement
    map_pngs: list[list[bytes]]  # the release's 512 x 512 heatmap PNGs


def make_pool(n: int, processor: RAHFProcessor, *, seed: int, image_size: int) -> Pool:
    """``n`` examples from the synthetic generator, with the targets the training loop uses."""
    rng = np.random.default_rng(seed)
    images, prompts, targets, maps, scores, image_pngs, map_pngs = [], [], [], [], [], [], []
    size = processor.config.heatmap_size
    for _ in range(n):
        image, truth, labels = generate_example(rng, image_size)
        words = split_prompt_words(truth.prompt)
        bad = labels_to_misaligned_indices(str(labels["prompt_misalignment_label"]), len(words))
        images.append(image)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        image_pngs.append(buffer.getvalue())
        map_pngs.append([encode_heatmap_png(labels[k]) for k in ("artifact_map", "misalignment_map")])  # type: ignore[arg-type]
        prompts.append(truth.prompt)
        targets.append(tagged_target(words, bad))
        maps.append(np.stack([resize_heatmap(labels[k], size) for k in ("artifact_map", "misalignment_map")]))  # type: ignore[arg-type]
        scores.append(
            [float(labels[k]) for k in ("artifact_score", "misalignment_score", "aesthetics_score", "overall_score")]  # type: ignore[arg-type]
        )
    return Pool(images, prompts, targets, torch.from_numpy(np.stack(maps)), torch.tensor(scores), image_pngs, map_pngs)


def make_batch(pool: Pool, processor: RAHFProcessor, start: int, batch_size: int) -> dict[str, torch.Tensor]:
    """What the training collate produces, for pool items start .. start+batch_size (wrapping)."""
    idx = [(start + i) % len(pool.prompts) for i in range(batch_size)]
    input_ids, attention_mask = processor.prompts([pool.prompts[i] for i in idx])
    return {
        "pixel_values": processor.images([pool.images[i] for i in idx]),
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": processor.targets([pool.targets[i] for i in idx]),
        "target_heatmaps": pool.heatmaps[idx],
        "target_scores": pool.scores[idx],
    }


# ---------------------------------------------------------------------------- timing


def sync(device: torch.device) -> None:
    """Wait for queued kernels, so a wall-clock reading covers the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str) -> AbstractContextManager[Any]:
    """bf16 autocast (also on CPU, where it is only a smoke test) or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def train_step_fn(
    model: RAHFModel, batches: list[dict[str, torch.Tensor]], device: torch.device, precision: str
) -> Callable[[int], None]:
    """One optimizer step as training does it: forward with losses, backward, clip, AdamW."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=2e-3)
    model.train()

    def step(i: int) -> None:
        batch = batches[i % len(batches)]
        with autocast(device, precision):
            output = model(**batch)
        assert output.loss is not None
        output.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def timed_steps(
    step: Callable[[int], None], device: torch.device, *, warmup: int, steps: int, seconds: float
) -> tuple[int, float]:
    """Run ``warmup`` untimed steps, then up to ``steps`` timed ones or ``seconds``; returns
    (timed steps, seconds). Steps queue without a sync, as in training; the clock is read
    after a sync at both ends, so on a GPU the ``seconds`` cap may overrun by the queue."""
    for i in range(warmup):
        step(i)
    sync(device)
    started = time.perf_counter()
    done = 0
    while done < steps:
        step(warmup + done)
        done += 1
        if seconds and time.perf_counter() - started >= seconds:
            break
    sync(device)
    return done, time.perf_counter() - started


def count_flops(model: RAHFModel, batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, Any]:
    """FLOPs of one training forward + backward (FlopCounterMode, fp32 shapes; autocast does
    not change the count), and the forward's split by part of the model."""
    model.train()
    counter = FlopCounterMode(display=False)
    with counter:
        output = model(**batch)
        assert output.loss is not None
        output.loss.backward()
    model.zero_grad(set_to_none=True)
    total = counter.get_total_flops()
    # Module attribution is reliable in the forward only (backward ops run outside the hooks).
    forward = FlopCounterMode(display=False, depth=3)
    with forward, torch.no_grad():
        model(**batch)
    by_module = {name: sum(counts.values()) for name, counts in forward.get_flop_counts().items()}
    parts = {part: sum(by_module.get(f"RAHFModel.{m}", 0) for m in modules) for part, modules in _parts(model).items()}
    batch_size = batch["pixel_values"].shape[0]
    return {
        "method": "torch.utils.flop_counter.FlopCounterMode, one forward + backward",
        "per_sample": total / batch_size,
        "forward_per_sample": forward.get_total_flops() / batch_size,
        "forward_share_by_part": {k: v / max(forward.get_total_flops(), 1) for k, v in parts.items()},
    }


def _parts(model: RAHFModel) -> dict[str, list[str]]:
    """Non-overlapping top-level parts of the model, by module path."""
    return {
        "vit": ["vit", "project"],
        "t5 encoder": ["t5.encoder"],
        "t5 decoder": ["t5.decoder", "t5.lm_head"],
        "heatmap heads": [f"heatmap_heads.{n}" for n in model.heatmap_heads],
        "score heads": [f"score_heads.{n}" for n in model.score_heads],
    }


@contextmanager
def part_timer(model: RAHFModel, device: torch.device, totals: dict[str, float]) -> Iterator[None]:
    """Forward time per part (syncing around each: for the profile only, never for throughput)."""
    handles = []
    for part, modules in _parts(model).items():
        for path in modules:
            module = model.get_submodule(path)

            def pre(_m: torch.nn.Module, _a: Any, part: str = part) -> None:
                sync(device)
                totals[f"_start {part}"] = time.perf_counter()

            def post(_m: torch.nn.Module, _a: Any, _o: Any, part: str = part) -> None:
                sync(device)
                totals[part] = totals.get(part, 0.0) + time.perf_counter() - totals.pop(f"_start {part}")

            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


# ---------------------------------------------------------------------------- phases


def bench_training(
    base_state: dict[str, torch.Tensor],
    model: RAHFModel,
    batches: list[dict[str, torch.Tensor]],
    device: torch.device,
    precision: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Steps/s, samples/s and peak memory of one precision, from the same initial weights."""
    model.load_state_dict(base_state)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    step = train_step_fn(model, batches, device, precision)
    done, seconds = timed_steps(step, device, warmup=args.warmup, steps=args.steps, seconds=args.seconds)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {
        "precision": precision,
        "steps": done,
        "seconds": seconds,
        "steps_per_second": done / seconds,
        "samples_per_second": done * args.batch_size / seconds,
        "peak_memory_bytes": peak,
    }


def bench_data(pool: Pool, processor: RAHFProcessor, batch_size: int, repeats: int) -> dict[str, Any]:
    """CPU work a data loader does per batch, single process: decode the image PNG and the two
    release-size (512 x 512) heatmap PNGs, resize and normalise, tokenise. The samples/s one
    loader worker can feed; file reads are left out (page cache on a training machine)."""
    size = processor.config.heatmap_size
    started = time.perf_counter()
    for i in range(repeats):
        idx = [(i * batch_size + j) % len(pool.image_pngs) for j in range(batch_size)]
        batch = make_batch(pool, processor, i * batch_size, batch_size)
        batch["pixel_values"] = processor.images([Image.open(io.BytesIO(pool.image_pngs[j])) for j in idx])
        batch["target_heatmaps"] = torch.stack(
            [
                torch.from_numpy(np.stack([resize_heatmap(heatmap_from_png(m), size) for m in pool.map_pngs[j]]))
                for j in idx
            ]
        )
    seconds = time.perf_counter() - started
    return {
        "batches": repeats,
        "seconds_per_batch": seconds / repeats,
        "samples_per_second": repeats * batch_size / seconds,
    }


def bench_inference(
    model: RAHFModel, processor: RAHFProcessor, pool: Pool, device: torch.device, args: argparse.Namespace
) -> dict[str, Any]:
    """Queue predictions through RAHFPredictor.predict (preprocessing, heads, greedy decoding,
    as the web app's predict task runs it, in fp32) at each batch size of the sweep."""
    predictor = RAHFPredictor(model, processor, device)
    sweep: list[dict[str, Any]] = []

    def measure(batch_size: int, *, generate: bool, precision: str) -> dict[str, Any]:
        n = batch_size
        images = [pool.images[i % len(pool.images)] for i in range(n)]
        prompts = [pool.prompts[i % len(pool.prompts)] for i in range(n)]
        with autocast(device, precision):
            predictor.predict(images, prompts, batch_size=batch_size, generate=generate)  # warm-up
            sync(device)
            started, calls = time.perf_counter(), 0
            while calls < args.infer_repeats:
                predictor.predict(images, prompts, batch_size=batch_size, generate=generate)
                calls += 1
                if time.perf_counter() - started >= args.infer_seconds:
                    break
            sync(device)
        seconds = time.perf_counter() - started
        return {
            "batch_size": batch_size,
            "generate": generate,
            "precision": precision,
            "images_per_second": calls * n / seconds,
            "seconds_per_batch": seconds / calls,
        }

    for batch_size in args.infer_batches:
        try:
            sweep.append(measure(batch_size, generate=True, precision="fp32"))
        except torch.OutOfMemoryError:
            sweep.append({"batch_size": batch_size, "error": "out of memory"})
            break
    ok = [row for row in sweep if "images_per_second" in row]
    best = max(ok, key=lambda row: row["images_per_second"])
    batch1 = next((row for row in ok if row["batch_size"] == 1), None)
    extra = [
        measure(best["batch_size"], generate=False, precision="fp32"),
        measure(best["batch_size"], generate=True, precision="bf16"),
    ]
    return {
        "path": "modeling.inference.RAHFPredictor.predict (uint8 images + prompts in, Predictions out)",
        "sweep": sweep,
        "batch_1": batch1,
        "best": best,
        "at_best_batch": extra,
        "note": "random-init weights rarely emit EOS, so greedy decoding runs to its cap "
        "(2 x prompt tokens + 8): the worst case of a trained model",
    }


def bench_profile(
    model: RAHFModel,
    base_state: dict[str, torch.Tensor],
    batches: list[dict[str, torch.Tensor]],
    device: torch.device,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Where a bf16 training step's time goes: forward / backward / optimizer, forward by part
    of the model, and the top kernels (torch.profiler) with the launch count per step."""
    model.load_state_dict(base_state)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()
    phases = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    part_seconds: dict[str, float] = {}
    steps = args.profile_steps
    for i in range(args.warmup + steps):
        batch = batches[i % len(batches)]
        timing = i >= args.warmup
        sync(device)
        t0 = time.perf_counter()
        with part_timer(model, device, part_seconds) if timing else nullcontext(), autocast(device, "bf16"):
            output = model(**batch)
        sync(device)
        t1 = time.perf_counter()
        assert output.loss is not None
        output.loss.backward()
        sync(device)
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        t3 = time.perf_counter()
        if timing:
            phases["forward"] += t1 - t0
            phases["backward"] += t2 - t1
            phases["optimizer"] += t3 - t2
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for i in range(steps):
            batch = batches[i % len(batches)]
            with autocast(device, "bf16"):
                output = model(**batch)
            assert output.loss is not None
            output.loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        sync(device)
    events = list(prof.key_averages())
    if device.type == "cuda":
        # The kernels themselves: an aten op's self device time would count them a second time.
        key = "self_device_time_total"
        events = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    else:
        key = "self_cpu_time_total"
    total_us = sum(getattr(e, key) for e in events) or 1.0
    top = sorted(events, key=lambda e: getattr(e, key), reverse=True)[: args.profile_rows]
    kernels = events if device.type == "cuda" else []
    launches = sum(e.count for e in kernels)
    kernel_us = sum(e.self_device_time_total for e in kernels)
    per_step = {k: v / steps for k, v in phases.items()}
    return {
        "steps": steps,
        "seconds_per_step": per_step,
        "forward_seconds_by_part_per_step": {k: v / steps for k, v in part_seconds.items()},
        "kernel_launches_per_step": launches / steps if kernels else None,
        "mean_kernel_microseconds": kernel_us / launches if launches else None,
        "top_ops": [
            {
                "name": e.key,
                "calls_per_step": e.count / steps,
                "self_ms_per_step": getattr(e, key) / 1000 / steps,
                "share": getattr(e, key) / total_us,
            }
            for e in top
        ],
        "time_column": key,
    }


# ---------------------------------------------------------------------------- report


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}{unit}"


def explain(results: dict[str, Any]) -> list[str]:
    """Plain-language reading of the profile: what stops the MFU, in order of weight."""
    lines: list[str] = []
    profile = results.get("profile")
    if not profile:
        return lines
    train = results["training"]["bf16"]
    step_s = 1 / train["steps_per_second"]
    data = results["data"]
    loader_step = results["batch_size"] / data["samples_per_second"]
    lines.append(
        f"data loading: one loader process needs {loader_step:.3f} s to preprocess a batch against a "
        f"{step_s:.3f} s training step ({loader_step / step_s:.2f} steps' worth); "
        + (
            "it would be the bottleneck unless num_workers >= that ratio"
            if loader_step > step_s
            else "one worker keeps up"
        )
    )
    phases = profile["seconds_per_step"]
    total = sum(phases.values()) or 1.0
    lines.append(
        "step split (synced): " + ", ".join(f"{k} {v * 1000:.1f} ms ({v / total:.0%})" for k, v in phases.items())
    )
    parts = profile["forward_seconds_by_part_per_step"]
    shares = results["flops"]["forward_share_by_part"]
    part_total = sum(parts.values()) or 1.0
    for part, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
        lines.append(
            f"forward {part}: {seconds / part_total:.0%} of the forward time for {shares.get(part, 0):.0%} of its FLOPs"
        )
    if profile["kernel_launches_per_step"]:
        lines.append(
            f"kernels: {profile['kernel_launches_per_step']:.0f} launches per step, mean "
            f"{profile['mean_kernel_microseconds']:.1f} us each (under ~20 us means launch-bound small kernels)"
        )
    return lines


def render(results: dict[str, Any]) -> str:
    """The readable table."""
    out = [
        f"RAHF {results['config']} ({results['variant']}), batch {results['batch_size']}, "
        f"device {results['device_name']}",
        f"FLOPs per training sample (fwd+bwd): {results['flops']['per_sample'] / 1e9:,.2f} GFLOP "
        f"[{results['flops']['method']}]",
        f"peak: bf16 {_fmt(results['peak']['bf16'], ' TFLOP/s', 0)}, fp32 {_fmt(results['peak']['fp32'], ' TFLOP/s', 1)}"
        f" ({results['peak']['source']})",
        "",
        f"{'precision':<10}{'steps/s':>10}{'samples/s':>12}{'TFLOP/s':>10}{'MFU':>8}{'peak mem':>12}",
    ]
    for precision in ("fp32", "bf16"):
        row = results["training"][precision]
        mem = row["peak_memory_bytes"]
        mfu = row["mfu"]
        out.append(
            f"{precision:<10}{row['steps_per_second']:>10.3f}{row['samples_per_second']:>12.2f}"
            f"{row['achieved_tflops']:>10.2f}{'n/a' if mfu is None else f'{mfu:.1%}':>8}"
            f"{'n/a' if mem is None else f'{mem / 2**30:.2f} GiB':>12}"
        )
    out.append(f"bf16 / fp32 samples/s: {results['training']['bf16_over_fp32']:.2f}x")
    out.append(f"data preprocessing (1 process): {results['data']['samples_per_second']:.1f} samples/s")
    inf = results["inference"]
    out += ["", "queue predictions (RAHFPredictor.predict, fp32, greedy decoding):"]
    out.append(f"{'batch':>6}{'images/s':>12}{'s/batch':>10}")
    for row in inf["sweep"]:
        if "error" in row:
            out.append(f"{row['batch_size']:>6}  {row['error']}")
        else:
            out.append(f"{row['batch_size']:>6}{row['images_per_second']:>12.2f}{row['seconds_per_batch']:>10.3f}")
    best = inf["best"]
    out.append(f"best batch {best['batch_size']}: {best['images_per_second']:.2f} images/s")
    for row in inf["at_best_batch"]:
        what = "heads only (no decoding)" if not row["generate"] else f"{row['precision']} autocast"
        out.append(f"  at batch {row['batch_size']}, {what}: {row['images_per_second']:.2f} images/s")
    profile = results.get("profile")
    if profile:
        out += ["", f"profile ({profile['steps']} bf16 steps; {profile['time_column']}):"]
        out.append(f"{'op / kernel':<70}{'calls/step':>11}{'ms/step':>10}{'share':>8}")
        for row in profile["top_ops"]:
            out.append(
                f"{row['name'][:69]:<70}{row['calls_per_step']:>11.1f}{row['self_ms_per_step']:>10.2f}{row['share']:>8.1%}"
            )
        out += ["", "why:"] + [f"  - {line}" for line in results["explanation"]]
    if results["device"] == "cpu":
        out += ["", "CPU run: a smoke test of the script; speed, bf16 ratio and MFU are not meaningful here."]
    return "\n".join(out)


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=CONFIG_NAMES, default="base")
    parser.add_argument("--variant", choices=("multihead", "augmented"), default="multihead")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=32, help="training batch (default 32)")
    parser.add_argument("--steps", type=int, default=40, help="timed training steps per precision")
    parser.add_argument("--seconds", type=float, default=60.0, help="cap on each precision's timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before each measurement")
    parser.add_argument("--pool", type=int, default=64, help="synthetic examples generated (cycled)")
    parser.add_argument("--image-size", type=int, default=256, help="synthetic image side before resizing")
    parser.add_argument(
        "--infer-batches",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 4, 16, 32, 64, 128],
        help="inference sweep (comma-separated)",
    )
    parser.add_argument("--infer-repeats", type=int, default=3, help="timed predict calls per batch size")
    parser.add_argument("--infer-seconds", type=float, default=15.0, help="cap per batch size")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto", help="auto = if MFU < 40%%")
    parser.add_argument("--profile-steps", type=int, default=5)
    parser.add_argument("--profile-rows", type=int, default=15)
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="the chip's bf16 dense peak, overriding the table"
    )
    parser.add_argument("--tf32", action="store_true", help="allow TF32 matmuls in the fp32 baseline (off by default)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="default build/bench-gpu/train_gpu-CONFIG-DEVICE.json")
    args = parser.parse_args(argv)
    for name in ("batch_size", "steps", "pool", "profile_steps", "infer_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if any(b < 1 for b in args.infer_batches):
        parser.error("--infer-batches must be positive integers")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    torch.manual_seed(args.seed)
    started = time.perf_counter()

    tokenizer = load_tokenizer("byt5")
    config = get_config(args.config, args.variant)
    model = RAHFModel(config, vocab_size=len(tokenizer)).to(device)
    processor = RAHFProcessor(config, tokenizer)
    base_state = copy.deepcopy(model.state_dict())
    pool = make_pool(args.pool, processor, seed=args.seed, image_size=args.image_size)
    n_batches = max(1, math.ceil(args.pool / args.batch_size))
    batches = [
        {k: v.to(device) for k, v in make_batch(pool, processor, i * args.batch_size, args.batch_size).items()}
        for i in range(n_batches)
    ]
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "cpu")
    peak = chip_peak(device_name, override=args.peak_tflops, tf32=args.tf32) if device.type == "cuda" else None
    if peak is None:
        peak = Peak(args.peak_tflops, None, "--peak-tflops" if args.peak_tflops else "CPU: no peak, MFU n/a")

    flops = count_flops(model, batches[0], device)
    training = {p: bench_training(base_state, model, batches, device, p, args) for p in ("fp32", "bf16")}
    for precision, row in training.items():
        row["achieved_tflops"] = flops["per_sample"] * row["samples_per_second"] / 1e12
        chip = peak.bf16 if precision == "bf16" else peak.fp32
        row["mfu"] = row["achieved_tflops"] / chip if chip else None
    training["bf16_over_fp32"] = training["bf16"]["samples_per_second"] / training["fp32"]["samples_per_second"]
    results: dict[str, Any] = {
        "config": args.config,
        "variant": args.variant,
        "device": device.type,
        "device_name": device_name,
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "tf32": args.tf32,
        "peak": {"bf16": peak.bf16, "fp32": peak.fp32, "source": peak.source},
        "parameters": sum(p.numel() for p in model.parameters()),
        "flops": flops,
        "training": training,
        "data": bench_data(pool, processor, args.batch_size, repeats=max(2, args.profile_steps)),
    }
    model.load_state_dict(base_state)
    results["inference"] = bench_inference(model, processor, pool, device, args)
    mfu = training["bf16"]["mfu"]
    if args.profile == "always" or (args.profile == "auto" and (mfu is None or mfu < MFU_TARGET)):
        results["profile"] = bench_profile(model, base_state, batches, device, args)
        results["explanation"] = explain(results)
    results["mfu_target"] = MFU_TARGET
    results["wall_seconds"] = time.perf_counter() - started
    results["command"] = "bench/train_gpu.py " + " ".join(sys.argv[1:] if argv is None else argv)
    path = args.json or ROOT / "build" / "bench-gpu" / f"train_gpu-{args.config}-{device.type}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))
    print(render(results))
    print(f"\nJSON: {path} (wall {results['wall_seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
