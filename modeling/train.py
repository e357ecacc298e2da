"""Training: ``train(TrainConfig(...))`` for library callers, and its CLI.

    python -m modeling.train --data EXPORT --config tiny --variant multihead --out runs/tiny

AdamW + warmup/cosine schedule, gradient accumulation, seeded, resumable (``--resume``),
mixed precision on GPU, multi-GPU through ``torchrun`` (DDP, detected from WORLD_SIZE).
Keeps ``OUT/last`` (weights + optimizer state, for resuming) and ``OUT/best`` (the best
checkpoint by the combined dev metric), and appends one JSON line per epoch to
``OUT/log.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm import tqdm

from modeling.checkpoint import load_checkpoint, save_checkpoint
from modeling.config import CONFIG_NAMES, Variant, get_config
from modeling.data.dataset import RichHFDataset, Sample, load_split, make_collate
from modeling.evaluate import evaluate_predictions, predict_samples
from modeling.metrics import format_report
from modeling.model import RAHFModel
from modeling.processing import RAHFProcessor, load_tokenizer

TRAIN_STATE = "train_state.pt"
VARIANTS = ("multihead", "augmented")
AMP_CHOICES = ("auto", "off", "bf16", "fp16")


@dataclass
class Distributed:
    """Process-group facts; a single process when not launched by torchrun."""

    enabled: bool
    rank: int
    local_rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, evaluates and writes checkpoints."""
        return self.rank == 0


def setup_distributed(device: str) -> Distributed:
    """Join the process group when torchrun set WORLD_SIZE > 1 (NCCL on GPU, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(False, 0, 0, 1)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return Distributed(True, rank, local_rank, world_size)


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch RNGs (data order uses its own seeded generators)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cosine_schedule(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    """LR multiplier: linear warmup, then cosine decay to ``min_ratio`` (the reproduction
    decays 2e-5 to 1e-5, i.e. min_ratio 0.5)."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class TrainConfig:
    """Every training option, typed; ``python -m modeling.train`` parses its argv into one and
    library callers (the learning service, the benches) build one directly."""

    data: Path  # export folder with train/dev splits
    out: Path  # run folder (last/, best/, log.jsonl)
    config_name: str = "tiny"  # one of modeling.config.CONFIG_NAMES
    variant: Variant = "multihead"
    pretrained: bool = False  # load the config's ViT/T5 weights (hub id or path)
    vit: str | None = None  # ViT weights name or path (implies pretrained for the ViT)
    t5: str | None = None  # T5 weights name or path (implies pretrained for T5)
    tokenizer: str | None = None  # "byt5" (offline) or a tokenizer name/path
    heatmap_loss_weight: float | None = None  # None keeps the model config's
    score_loss_weight: float | None = None
    text_loss_weight: float | None = None
    epochs: int = 30
    max_steps: int | None = None  # stop after this many optimizer steps (also sets the schedule's length)
    stop_at_step: int | None = None  # interrupt here without changing the schedule (as if preempted)
    max_minutes: float | None = None  # stop (and evaluate) after this long
    batch_size: int = 8  # per process
    grad_accum: int = 1
    lr: float = 2e-5
    min_lr: float = 1e-5
    weight_decay: float = 2e-3
    warmup_steps: int = 0
    seed: int = 0
    num_workers: int = 0
    threads: int = 0  # torch CPU threads (0 = torch's default)
    device: str = field(default_factory=lambda: "cuda" if torch.cuda.is_available() else "cpu")
    amp: str = "auto"  # auto = bf16 on GPUs that have it, fp16 otherwise; never on CPU
    limit_train: int | None = None  # use the first N training samples
    limit_dev: int | None = None  # use the first N dev samples
    eval_batch_size: int = 32
    save_every: int = 0  # also save OUT/last every N steps
    resume: bool = False  # continue from OUT/last
    progress: bool = True  # tqdm bars

    def __post_init__(self) -> None:
        # The CLI checks these through argparse choices; library callers get the same checks.
        for name, value, allowed in (
            ("config_name", self.config_name, CONFIG_NAMES),
            ("variant", self.variant, VARIANTS),
            ("amp", self.amp, AMP_CHOICES),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        object.__setattr__(self, "data", Path(self.data))
        object.__setattr__(self, "out", Path(self.out))


def _default(name: str) -> Any:
    """TrainConfig's default for one option, for the CLI's help."""
    return next(f.default for f in fields(TrainConfig) if f.name == name)


def build_parser() -> argparse.ArgumentParser:
    """The training CLI's arguments. An option left out stays out of the namespace
    (SUPPRESS), so TrainConfig's defaults are the only defaults."""
    p = argparse.ArgumentParser(
        description="Train a RAHF model on an export folder.", argument_default=argparse.SUPPRESS
    )
    p.add_argument("--data", required=True, type=Path, help="export folder with train/dev splits")
    p.add_argument("--out", required=True, type=Path, help="run folder (last/, best/, log.jsonl)")
    p.add_argument(
        "--config", dest="config_name", choices=CONFIG_NAMES, help=f"model size (default {_default('config_name')})"
    )
    p.add_argument("--variant", choices=VARIANTS, help=f"default {_default('variant')}")
    p.add_argument("--pretrained", action="store_true", help="load the config's ViT/T5 weights (hub id or path)")
    p.add_argument("--vit", help="ViT weights name or path (implies --pretrained for the ViT)")
    p.add_argument("--t5", help="T5 weights name or path (implies --pretrained for T5)")
    p.add_argument("--tokenizer", help='"byt5" (offline) or a tokenizer name/path')
    p.add_argument("--heatmap-loss-weight", type=float, help="override the config's (1.0)")
    p.add_argument("--score-loss-weight", type=float, help="override the config's (1.0)")
    p.add_argument("--text-loss-weight", type=float, help="override the config's (1.0)")
    p.add_argument("--epochs", type=int, help=f"default {_default('epochs')}")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    p.add_argument(
        "--stop-at-step",
        type=int,
        help="interrupt at this step without changing the schedule (as if preempted; resume later)",
    )
    p.add_argument("--max-minutes", type=float, help="stop (and evaluate) after this long")
    p.add_argument("--batch-size", type=int, help=f"per process (default {_default('batch_size')})")
    p.add_argument("--grad-accum", type=int, help=f"default {_default('grad_accum')}")
    p.add_argument("--lr", type=float, help=f"default {_default('lr')}")
    p.add_argument("--min-lr", type=float, help=f"default {_default('min_lr')}")
    p.add_argument("--weight-decay", type=float, help=f"default {_default('weight_decay')}")
    p.add_argument("--warmup-steps", type=int, help=f"default {_default('warmup_steps')}")
    p.add_argument("--seed", type=int, help=f"default {_default('seed')}")
    p.add_argument("--num-workers", type=int, help=f"default {_default('num_workers')}")
    p.add_argument("--threads", type=int, help="torch CPU threads (default 0 = torch's default)")
    p.add_argument("--device", help="default cuda when available, else cpu")
    p.add_argument(
        "--amp", choices=AMP_CHOICES, help="auto (default) = bf16 on GPUs that have it, fp16 otherwise; never on CPU"
    )
    p.add_argument("--limit-train", type=int, help="use the first N training samples")
    p.add_argument("--limit-dev", type=int, help="use the first N dev samples")
    p.add_argument("--eval-batch-size", type=int, help=f"default {_default('eval_batch_size')}")
    p.add_argument("--save-every", type=int, help="also save OUT/last every N steps")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def parse_train_config(argv: list[str] | None = None) -> TrainConfig:
    """The CLI's argv as a TrainConfig (argparse exits with status 2 on a bad option)."""
    return TrainConfig(**vars(build_parser().parse_args(argv)))


def _amp_dtype(choice: str, device: str) -> torch.dtype | None:
    if choice == "off" or not device.startswith("cuda"):
        return None
    if choice == "bf16" or (choice == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def _batches(loader: DataLoader, skip: int) -> Iterator[dict[str, Any]]:
    for i, batch in enumerate(loader):
        if i >= skip:
            yield batch


def train(config: TrainConfig) -> dict[str, Any]:
    """Run training; returns a summary (best metric, steps, throughput)."""
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    ddp = setup_distributed(config.device)
    device = f"cuda:{ddp.local_rank}" if config.device.startswith("cuda") and ddp.enabled else config.device
    seed_everything(config.seed + ddp.rank)
    out: Path = config.out
    last_dir, best_dir = out / "last", out / "best"

    train_samples: list[Sample] = load_split(config.data, "train")[: config.limit_train]
    dev_samples: list[Sample] = load_split(config.data, "dev")[: config.limit_dev]
    if not train_samples:
        raise ValueError(f"{config.data}: train split is empty")

    state: dict[str, Any] | None = None
    if config.resume and (last_dir / TRAIN_STATE).exists():
        model, processor = load_checkpoint(last_dir, device=device)
        state = torch.load(last_dir / TRAIN_STATE, map_location="cpu", weights_only=False)
    elif config.resume:
        raise FileNotFoundError(f"{last_dir / TRAIN_STATE}: nothing to resume")
    else:
        overrides: dict[str, Any] = {}
        if config.vit:
            overrides["vit_pretrained"] = config.vit
        if config.t5:
            overrides["t5_pretrained"] = config.t5
        for key in ("heatmap_loss_weight", "score_loss_weight", "text_loss_weight"):
            if getattr(config, key) is not None:
                overrides[key] = getattr(config, key)
        if config.tokenizer:
            overrides["tokenizer"] = config.tokenizer
        elif config.pretrained or config.t5:
            overrides["tokenizer"] = config.t5 or get_config(config.config_name).t5_pretrained
        model_config = get_config(config.config_name, config.variant, **overrides)
        tokenizer = load_tokenizer(model_config.tokenizer)
        pretrained = config.pretrained or bool(config.vit or config.t5)
        model = RAHFModel(model_config, vocab_size=len(tokenizer), pretrained=pretrained).to(device)
        processor = RAHFProcessor(model_config, tokenizer)

    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )
    dataset = RichHFDataset(train_samples, processor)
    if ddp.enabled:
        sampler: Any = DistributedSampler(dataset, num_replicas=ddp.world_size, rank=ddp.rank, seed=config.seed)
    else:
        sampler = None
    steps_per_epoch = math.ceil(math.ceil(len(dataset) / ddp.world_size / config.batch_size) / config.grad_accum)
    total_steps = config.max_steps or steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: cosine_schedule(
            step, warmup=config.warmup_steps, total=total_steps, min_ratio=config.min_lr / config.lr
        ),
    )
    amp_dtype = _amp_dtype(config.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    epoch, step, step_in_epoch, best = 0, 0, 0, -math.inf
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        epoch, step, step_in_epoch, best = state["epoch"], state["step"], state["step_in_epoch"], state["best"]
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])

    net: torch.nn.Module = model
    if ddp.enabled:
        net = DistributedDataParallel(model, device_ids=[ddp.local_rank] if device.startswith("cuda") else None)

    def save_last() -> None:
        if not ddp.is_main:
            return
        save_checkpoint(last_dir, model, processor.tokenizer, metadata={"epoch": epoch, "step": step})
        torch.save(
            {
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                "step": step,
                "step_in_epoch": step_in_epoch,
                "best": best,
                "torch_rng": torch.get_rng_state(),
                "numpy_rng": np.random.get_state(),
                "python_rng": random.getstate(),
                "args": {k: str(v) for k, v in asdict(config).items()},
            },
            last_dir / TRAIN_STATE,
        )

    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train_time = 0.0
    samples_seen = 0
    summary: dict[str, Any] = {}
    stop = False
    while epoch < config.epochs and not stop:
        if sampler is not None:
            sampler.set_epoch(epoch)
            epoch_sampler = sampler
        else:
            # The order depends only on (seed, epoch), so a resumed run skips the same batches.
            generator = torch.Generator().manual_seed(config.seed * 1000 + epoch)
            epoch_sampler = RandomSampler(dataset, generator=generator)
        loader = DataLoader(
            dataset,
            batch_size=config.batch_size,
            sampler=epoch_sampler,
            num_workers=config.num_workers,
            collate_fn=make_collate(processor),
            drop_last=False,
        )
        net.train()
        sums: dict[str, float] = {}
        count = 0
        bar = tqdm(
            total=steps_per_epoch,
            initial=step_in_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not config.progress or not ddp.is_main,
            leave=False,
        )
        micro = 0
        tick = time.perf_counter()
        for batch in _batches(loader, step_in_epoch * config.grad_accum):
            sync = (micro + 1) % config.grad_accum == 0
            ctx = net.no_sync() if ddp.enabled and not sync else nullcontext()  # type: ignore[operator]
            with ctx, torch.autocast("cuda", dtype=amp_dtype, enabled=amp_dtype is not None):
                output = net(
                    batch["pixel_values"].to(device),
                    batch["input_ids"].to(device),
                    batch["attention_mask"].to(device),
                    labels=batch["labels"].to(device),
                    target_heatmaps=batch["target_heatmaps"].to(device),
                    target_scores=batch["target_scores"].to(device),
                )
                scaler.scale(output.loss / config.grad_accum).backward()
            for key, value in output.losses.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            sums["loss"] = sums.get("loss", 0.0) + float(output.loss.detach())
            count += 1
            samples_seen += len(batch["prompts"]) * ddp.world_size
            micro += 1
            if not sync:
                continue
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
            step_in_epoch += 1
            bar.update(1)
            bar.set_postfix(loss=f"{sums['loss'] / count:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            if config.save_every and step % config.save_every == 0:
                save_last()
            elapsed = (time.perf_counter() - started) / 60
            if (
                (config.max_steps and step >= config.max_steps)
                or (config.stop_at_step and step >= config.stop_at_step)
                or (config.max_minutes and elapsed >= config.max_minutes)
            ):
                stop = True
                break
        bar.close()
        train_time += time.perf_counter() - tick
        epoch_done = not stop or step_in_epoch >= steps_per_epoch
        losses = {k: v / max(count, 1) for k, v in sums.items()}
        record: dict[str, Any] = {"epoch": epoch + 1, "step": step, "train": losses}
        if ddp.is_main and dev_samples:
            predictions = predict_samples(
                model,
                processor,
                dev_samples,
                batch_size=config.eval_batch_size,
                device=device,
                progress=config.progress,
            )
            report = evaluate_predictions(predictions, dev_samples)
            combined = report.combined()
            record["dev"] = report.to_dict()
            record["dev_combined"] = combined
            print(format_report({f"dev epoch {epoch + 1}": report}), flush=True)
            if combined > best:
                best = combined
                save_checkpoint(best_dir, model, processor.tokenizer, metadata=record)
        if epoch_done:
            epoch += 1
            step_in_epoch = 0
        if ddp.is_main:
            print(json.dumps({k: v for k, v in record.items() if k != "dev"}), flush=True)
            with open(out / "log.jsonl", "a", encoding="utf-8") as log:
                log.write(json.dumps(record, default=str) + "\n")
        save_last()
        if ddp.enabled:
            dist.barrier()
    summary = {
        "steps": step,
        "epochs": epoch,
        "best_dev_combined": best,
        "train_seconds": train_time,
        "steps_per_second": step / train_time if train_time else None,
        "train_samples_per_second": samples_seen / train_time if train_time else None,
    }
    if ddp.enabled:
        dist.destroy_process_group()
    return summary


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    config = parse_train_config(argv)
    try:
        summary = train(config)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({"summary": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
