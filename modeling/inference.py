"""Batched prediction: the public API the web app and the CLIs call.

predictor = RAHFPredictor.from_checkpoint("runs/x/best")
results = predictor.predict(images, prompts)   # list[Prediction]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from modeling.checkpoint import load_checkpoint
from modeling.model import RAHFModel
from modeling.processing import ImageInput, RAHFProcessor
from modeling.protocol import MAP_KINDS, SCORE_NAMES
from modeling.text import parse_tagged


@dataclass
class Prediction:
    """Model output for one image-prompt pair.

    ``scores``: task -> [0,1] (plausibility, alignment, aesthetics, overall).
    ``heatmaps``: task -> float32 H x W in [0,1] at the head's output size.
    ``tagged_prompt``: the generated prompt with misaligned words suffixed "_0".
    ``misaligned_indices``: positions (in the tagged prompt's words) that carry "_0".
    """

    scores: dict[str, float]
    heatmaps: dict[str, np.ndarray]
    tagged_prompt: str
    misaligned_indices: list[int]
    misaligned_words: list[str]

    @classmethod
    def from_parts(cls, scores: dict[str, float], heatmaps: dict[str, np.ndarray], tagged_prompt: str) -> Prediction:
        """Derive the misaligned words from the tagged prompt."""
        words = parse_tagged(tagged_prompt)
        indices = [i for i, (_, bad) in enumerate(words) if bad]
        return cls(scores, heatmaps, tagged_prompt, indices, [words[i][0] for i in indices])


@torch.no_grad()
def predict_batch(
    model: RAHFModel,
    processor: RAHFProcessor,
    images: Sequence[ImageInput] | torch.Tensor,
    prompts: Sequence[str],
    *,
    device: str | torch.device = "cpu",
    generate: bool = True,
) -> list[Prediction]:
    """One forward pass (+ greedy decoding) for a batch; ``images`` may be preprocessed."""
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images for {len(prompts)} prompts")
    model.eval()
    pixel_values = images if isinstance(images, torch.Tensor) else processor.images(images)
    input_ids, attention_mask = processor.prompts(prompts)
    out = model(pixel_values.to(device), input_ids.to(device), attention_mask.to(device))
    if generate:
        # The target is the prompt plus "_0" suffixes, so it is never much longer than the
        # prompt: capping decoding there stops an untrained model from running to the limit.
        # Each sample is cut at its own limit, so results do not depend on the batch.
        limits = (2 * attention_mask[-1].sum(-1) + 8).clamp(max=model.config.max_target_tokens)
        tokens = model.generate_keywords(out.text_encoder_states, out.text_encoder_mask, int(limits.max()))
        # generate() prepends the decoder start token: keep it plus `limit` new tokens.
        tagged = processor.decode([row[: 1 + int(limit)] for row, limit in zip(tokens, limits, strict=True)])
    else:
        tagged = list(prompts)
    heat = {task: out.heatmaps[task].float().cpu().numpy() for task in MAP_KINDS}
    score = {task: out.scores[task].float().cpu().numpy() for task in SCORE_NAMES}
    return [
        Prediction.from_parts(
            {task: float(score[task][i]) for task in SCORE_NAMES},
            {task: heat[task][i] for task in MAP_KINDS},
            tagged[i],
        )
        for i in range(len(prompts))
    ]


class RAHFPredictor:
    """A loaded model + processor with a batched ``predict``."""

    def __init__(self, model: RAHFModel, processor: RAHFProcessor, device: str | torch.device = "cpu"):
        self.model = model.to(device).eval()
        self.processor = processor
        self.device = torch.device(device)

    @classmethod
    def from_checkpoint(
        cls, directory: str | os.PathLike[str], *, device: str | torch.device | None = None
    ) -> RAHFPredictor:
        """Load a checkpoint directory (``model.safetensors`` + ``config.json`` + ``tokenizer/``)."""
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, processor = load_checkpoint(directory, device=device)
        return cls(model, processor, device)

    def predict(
        self,
        images: Sequence[ImageInput],
        prompts: Sequence[str],
        *,
        batch_size: int = 16,
        generate: bool = True,
        progress: bool = False,
    ) -> list[Prediction]:
        """Predict every pair, ``batch_size`` at a time; order is preserved."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images for {len(prompts)} prompts")
        results: list[Prediction] = []
        for start in tqdm(range(0, len(prompts), batch_size), desc="predict", disable=not progress):
            results += predict_batch(
                self.model,
                self.processor,
                images[start : start + batch_size],
                prompts[start : start + batch_size],
                device=self.device,
                generate=generate,
            )
        return results
