"""Checkpoints: ``model.safetensors`` + ``config.json`` + ``tokenizer/`` (+ ``metrics.json``).

A checkpoint holds everything needed to rebuild the model offline: the RAHF config embeds the
resolved ViT/T5 config dicts, and the tokenizer is saved beside the weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from modeling.config import RAHFConfig
from modeling.model import RAHFModel
from modeling.processing import RAHFProcessor, load_tokenizer

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TOKENIZER_DIR = "tokenizer"
METRICS = "metrics.json"


def save_checkpoint(
    directory: str | os.PathLike[str],
    model: RAHFModel | nn.parallel.DistributedDataParallel,
    tokenizer: Any,
    *,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint directory; returns its path.

    ``save_model`` (not ``save_file``) because T5 ties its embedding and LM-head weights and
    safetensors refuses to store shared tensors twice.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    module: RAHFModel = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    save_model(module, str(directory / WEIGHTS))
    module.config.save(directory / CONFIG)
    tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
    if metadata is not None:
        (directory / METRICS).write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str))
    return directory


def load_checkpoint(
    directory: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> tuple[RAHFModel, RAHFProcessor]:
    """Rebuild model (eval mode) and processor from :func:`save_checkpoint` output."""
    directory = Path(directory)
    for name in (WEIGHTS, CONFIG, TOKENIZER_DIR):
        if not (directory / name).exists():
            raise FileNotFoundError(f"{directory / name}: missing; not a RAHF checkpoint directory")
    config = RAHFConfig.load(directory / CONFIG)
    tokenizer = load_tokenizer(str(directory / TOKENIZER_DIR))
    model = RAHFModel(config, vocab_size=config.t5.get("vocab_size"))
    missing, unexpected = load_model(model, str(directory / WEIGHTS), strict=True)
    if missing or unexpected:  # pragma: no cover - strict=True raises first
        raise ValueError(f"{directory / WEIGHTS}: missing {missing}, unexpected {unexpected}")
    model.to(device).eval()
    return model, RAHFProcessor(config, tokenizer)
