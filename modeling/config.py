"""Named RAHF configurations (spec rahf-model.md) as plain dataclasses.

The config stores the full ViT and T5 config dicts, so a checkpoint can be rebuilt without the
model hub; ``vit_pretrained`` / ``t5_pretrained`` / ``tokenizer`` name hub ids or local paths
that are used only when the caller asks for pretrained weights.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from modeling.protocol import MAP_KINDS, SCORE_NAMES

# The model's heatmap and score tasks are the protocol's map kinds and score names
# (modeling.protocol.MAP_KINDS, SCORE_NAMES), in that order.

#: Task written in front of the prompt for the text (keywords) task of the augmented variant.
KEYWORD_TASK = "keywords"

Variant = Literal["multihead", "augmented"]


@dataclass
class RAHFConfig:
    """Architecture + training-relevant sizes of one RAHF model."""

    name: str = "tiny"
    variant: Variant = "multihead"
    image_size: int = 64
    patch_size: int = 8
    heatmap_size: int = 64
    vit: dict[str, Any] = field(default_factory=dict)
    t5: dict[str, Any] = field(default_factory=dict)
    vit_pretrained: str | None = None
    t5_pretrained: str | None = None
    #: "byt5" = the offline byte tokenizer; anything else is a hub id or local path.
    tokenizer: str = "byt5"
    heatmap_width: int = 64
    heatmap_min_width: int = 16
    score_channels: tuple[int, ...] = (32, 16)
    score_mlp: int = 64
    heatmap_loss_weight: float = 1.0
    score_loss_weight: float = 1.0
    text_loss_weight: float = 1.0
    max_prompt_tokens: int = 128
    max_target_tokens: int = 160
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    @property
    def grid(self) -> int:
        """Patches per side: the encoder's image feature map is grid x grid."""
        return self.image_size // self.patch_size

    @property
    def upsample_stages(self) -> int:
        """Stride-2 transposed convolutions taking the grid to the heatmap size."""
        ratio = self.heatmap_size / self.grid
        stages = round(math.log2(ratio)) if ratio >= 1 else -1
        if stages < 0 or self.grid * 2**stages != self.heatmap_size:
            raise ValueError(f"heatmap_size {self.heatmap_size} must be grid {self.grid} times a power of 2")
        return stages

    def tasks(self) -> list[str]:
        """Encoder passes per example: 1 (multi-head) or one per task (augmented prompt)."""
        if self.variant == "multihead":
            return ["all"]
        return [*MAP_KINDS, *SCORE_NAMES, KEYWORD_TASK]

    def task_prefix(self, task: str) -> str:
        """Text written in front of the prompt for ``task`` (augmented variant)."""
        if task in MAP_KINDS:
            return f"{task} heatmap"
        if task in SCORE_NAMES:
            return f"{task} score"
        if task == KEYWORD_TASK:
            return "misaligned keywords"
        return ""

    def validate(self) -> None:
        """Fail early with a clear message instead of a shape error deep in a forward pass."""
        if self.variant not in ("multihead", "augmented"):
            raise ValueError(f"variant must be multihead or augmented, not {self.variant!r}")
        if self.image_size % self.patch_size:
            raise ValueError("image_size must be a multiple of patch_size")
        _ = self.upsample_stages

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RAHFConfig:
        """Inverse of :meth:`to_dict` (tuples come back from JSON lists)."""
        data = dict(data)
        for key in ("score_channels", "image_mean", "image_std"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def save(self, path: str | Path) -> None:
        """Write as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: str | Path) -> RAHFConfig:
        """Read a JSON config written by :meth:`save`."""
        return cls.from_dict(json.loads(Path(path).read_text()))


_T5_COMMON: dict[str, Any] = {
    "decoder_start_token_id": 0,  # transformers 5 fails to train with labels without it
    "pad_token_id": 0,
    "eos_token_id": 1,
    "feed_forward_proj": "relu",
    "tie_word_embeddings": True,
}

# T5-base's encoder-decoder sizes: the paper found T5-large no better, so both the base and
# the large configuration use it.
_T5_BASE = {
    **_T5_COMMON,
    "d_model": 768,
    "d_kv": 64,
    "d_ff": 3072,
    "num_layers": 12,
    "num_decoder_layers": 12,
    "num_heads": 12,
    "dropout_rate": 0.1,
}


def _t5_base_config(*, name: str, image_size: int, vit: dict[str, Any], vit_pretrained: str) -> RAHFConfig:
    """A ViT/16 at ``image_size`` with T5-base and the paper's heads: base and large differ
    only in the ViT."""
    return RAHFConfig(
        name=name,
        image_size=image_size,
        patch_size=16,
        heatmap_size=image_size,
        vit=vit,
        t5=_T5_BASE,
        vit_pretrained=vit_pretrained,
        t5_pretrained="google-t5/t5-base",
        heatmap_width=384,
        heatmap_min_width=32,
        score_channels=(384, 128, 64, 16),
        score_mlp=256,
    )


_NAMED: dict[str, RAHFConfig] = {
    # Seconds on a CPU: tests and the synthetic benchmark.
    "tiny": RAHFConfig(
        name="tiny",
        image_size=64,
        patch_size=8,
        heatmap_size=64,
        vit={
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 128,
            "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0,
        },
        t5={
            **_T5_COMMON,
            "d_model": 64,
            "d_kv": 16,
            "d_ff": 128,
            "num_layers": 2,
            "num_decoder_layers": 2,
            "num_heads": 4,
            "relative_attention_num_buckets": 32,
            "dropout_rate": 0.0,
        },
        heatmap_width=64,
        heatmap_min_width=16,
        score_channels=(32, 16),
        score_mlp=64,
        max_prompt_tokens=96,
        max_target_tokens=128,
    ),
    # The paper's notes: ViT-B/16 at 224 + T5-base.
    "base": _t5_base_config(
        name="base",
        image_size=224,
        vit={"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
        vit_pretrained="google/vit-base-patch16-224-in21k",
    ),
    # The first author's reproduction: ViT-L/16 at 384 (24 x 24 grid) + T5-base.
    "large": _t5_base_config(
        name="large",
        image_size=384,
        vit={"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096},
        vit_pretrained="google/vit-large-patch16-384",
    ),
}

CONFIG_NAMES: tuple[str, ...] = tuple(_NAMED)


def get_config(name: str, variant: Variant = "multihead", **overrides: Any) -> RAHFConfig:
    """A fresh copy of a named configuration (tiny, base, large) with overrides applied."""
    if name not in _NAMED:
        raise ValueError(f"unknown config {name!r}; choose one of {', '.join(CONFIG_NAMES)}")
    config = copy.deepcopy(_NAMED[name])
    config.variant = variant
    for key, value in overrides.items():
        if not hasattr(config, key):
            raise ValueError(f"unknown config field {key!r}")
        setattr(config, key, value)
    config.validate()
    return config
