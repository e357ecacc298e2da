"""Tokenizer loading and input preprocessing (images, prompts, keyword targets)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from modeling.config import RAHFConfig

ImageInput = Image.Image | np.ndarray | str | Path


def load_tokenizer(name_or_path: str) -> Any:
    """``"byt5"`` gives the offline byte tokenizer (no files needed); anything else is loaded
    with ``AutoTokenizer.from_pretrained`` (a hub id for users with network, or a local dir)."""
    if name_or_path == "byt5":
        from transformers import ByT5Tokenizer

        return ByT5Tokenizer()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_path)


def load_image(image: ImageInput) -> Image.Image:
    """Open a path or wrap an array as an RGB PIL image, naming the file on failure."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, np.ndarray):
        array = image
        if array.dtype != np.uint8:
            array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
        return Image.fromarray(array).convert("RGB")
    try:
        with Image.open(image) as handle:
            return handle.convert("RGB")
    except (OSError, ValueError) as exc:
        raise ValueError(f"{image}: cannot read image: {exc}") from exc


def resize_heatmap(heatmap: np.ndarray, size: int) -> np.ndarray:
    """Resize a [0,1] heatmap to ``size`` x ``size`` (the head's output size).

    Box filtering when shrinking keeps small marked regions (an area average never drops a
    disk entirely, unlike point sampling); bilinear when enlarging.
    """
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.shape == (size, size):
        return heatmap
    resample = Image.Resampling.BOX if heatmap.shape[0] >= size else Image.Resampling.BILINEAR
    out = np.asarray(Image.fromarray(heatmap, mode="F").resize((size, size), resample))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


class RAHFProcessor:
    """Turns raw inputs into model tensors and generated ids back into text."""

    def __init__(self, config: RAHFConfig, tokenizer: Any):
        self.config = config
        self.tokenizer = tokenizer

    def image_tensor(self, image: ImageInput) -> torch.Tensor:
        """(3, S, S) float tensor, resized (bicubic) and normalised with the config's mean/std."""
        pil = load_image(image).resize((self.config.image_size, self.config.image_size), Image.Resampling.BICUBIC)
        array: np.ndarray = np.asarray(pil, dtype=np.float32) / 255.0
        array = (array - np.asarray(self.config.image_mean, dtype=np.float32)) / np.asarray(
            self.config.image_std, dtype=np.float32
        )
        return torch.from_numpy(array.transpose(2, 0, 1).copy())

    def images(self, images: Sequence[ImageInput]) -> torch.Tensor:
        """(B, 3, S, S) batch."""
        return torch.stack([self.image_tensor(image) for image in images])

    def prompts(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and mask of shape (T, B, L), T = encoder passes of the variant.

        Right padding: T5's relative positions of real tokens do not move, so padding leaves
        the real positions' outputs unchanged.
        """
        tasks = self.config.tasks()
        texts = [
            f"{self.config.task_prefix(task)}: {prompt}" if self.config.variant == "augmented" else prompt
            for task in tasks
            for prompt in prompts
        ]
        enc = self.tokenizer(
            texts,
            padding="longest",
            truncation=True,
            max_length=self.config.max_prompt_tokens,
            return_tensors="pt",
        )
        shape = (len(tasks), len(prompts), enc.input_ids.shape[-1])
        return enc.input_ids.reshape(shape), enc.attention_mask.reshape(shape)

    def targets(self, targets: Sequence[str]) -> torch.Tensor:
        """Teacher-forcing labels (B, L) with padding set to -100 (ignored by the loss)."""
        enc = self.tokenizer(
            list(targets),
            padding="longest",
            truncation=True,
            max_length=self.config.max_target_tokens,
            return_tensors="pt",
        )
        labels = enc.input_ids.clone()
        labels[enc.attention_mask == 0] = -100
        return labels

    def decode(self, ids: torch.Tensor | list[torch.Tensor]) -> list[str]:
        """Generated ids to text (special tokens dropped, spaces kept as generated)."""
        return [text.strip() for text in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
