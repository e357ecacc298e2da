"""The RAHF model: ViT image tokens + T5 encoder fusion, heatmap/score heads, T5 decoder.

Multi-head variant: one encoder pass, 2 heatmap heads + 4 score heads + the decoder.
Augmented-prompt variant: one encoder pass per task with the task written in front of the
prompt, a single heatmap head, a single score head and the decoder (spec rahf-model.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from transformers import T5Config, T5ForConditionalGeneration, ViTConfig, ViTModel
from transformers.modeling_outputs import BaseModelOutput

from modeling.config import KEYWORD_TASK, RAHFConfig
from modeling.protocol import MAP_KINDS, SCORE_NAMES


def _norm(channels: int) -> nn.Module:
    """GroupNorm keeps head activations bounded so the sigmoid output cannot saturate and
    stall (seen without it: a heatmap head collapsing to exact zeros at lr 3e-3); unlike
    BatchNorm it is independent of the batch size and needs no sync under DDP."""
    return nn.GroupNorm(min(8, channels), channels)


class HeatmapHead(nn.Module):
    """Convolutions, stride-2 transposed convolutions up to the output size, conv + sigmoid."""

    def __init__(self, in_channels: int, width: int, min_width: int, stages: int):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 3, padding=1),
            _norm(width),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=1),
            _norm(width),
            nn.GELU(),
        ]
        channels = width
        for _ in range(stages):
            out = max(channels // 2, min_width)
            # kernel 4, stride 2, padding 1 doubles the size exactly.
            layers += [
                nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1),
                _norm(out),
                nn.GELU(),
            ]
            channels = out
        final = nn.Conv2d(channels, 1, 3, padding=1)
        # Most ground-truth pixels are 0: start near a small prior instead of 0.5, and use
        # GELU (not ReLU) so a head pushed towards "all zero" early cannot die.
        assert final.bias is not None  # Conv2d's default bias=True
        nn.init.constant_(final.bias, -3.0)
        layers.append(final)
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, g, g) -> (N, H, W) in [0, 1]."""
        return torch.sigmoid(self.net(features)).squeeze(1)


class ScoreHead(nn.Module):
    """Convolutions narrowing the channels, flatten, MLP, sigmoid -> one scalar in [0, 1]."""

    def __init__(self, in_channels: int, channels: tuple[int, ...], grid: int, mlp: int):
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for out in channels:
            layers += [nn.Conv2d(previous, out, 3, padding=1), nn.GELU()]
            previous = out
        self.convs = nn.Sequential(*layers)
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(previous * grid * grid, mlp), nn.GELU(), nn.Linear(mlp, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, C, g, g) -> (N,)."""
        return torch.sigmoid(self.mlp(self.convs(features))).squeeze(-1)


@dataclass
class RAHFOutput:
    """Predictions (and losses when targets were given) of one forward pass."""

    heatmaps: dict[str, torch.Tensor]
    scores: dict[str, torch.Tensor]
    #: Encoder states and mask used by the decoder (kept to generate without re-encoding).
    text_encoder_states: torch.Tensor
    text_encoder_mask: torch.Tensor
    logits: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    #: Per group ("text", "heatmap", "score"); the heatmap and score groups are the *sums*
    #: of their heads' MSEs, and ``loss`` is the weighted sum of the groups.
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    #: Each head's own (detached) MSE, e.g. "heatmap/implausibility", for logging only.
    head_losses: dict[str, torch.Tensor] = field(default_factory=dict)


class RAHFModel(nn.Module):
    """Rich automatic human feedback predictor (Liang et al., CVPR 2024)."""

    def __init__(self, config: RAHFConfig, *, vocab_size: int | None = None, pretrained: bool = False):
        """Build the model. ``pretrained`` loads ViT/T5 weights with ``from_pretrained`` from
        ``config.vit_pretrained`` / ``config.t5_pretrained`` (hub id or local path);
        otherwise everything is randomly initialised from the config dicts (offline)."""
        super().__init__()
        config.validate()
        self.config = config
        if pretrained and config.vit_pretrained:
            self.vit = ViTModel.from_pretrained(config.vit_pretrained, add_pooling_layer=False)
        else:
            # A named config leaves the ViT's size to the RAHF config; a checkpoint's config.vit
            # carries the size its position embeddings were trained at.
            vit_config = ViTConfig(**{"image_size": config.image_size, "patch_size": config.patch_size, **config.vit})
            self.vit = ViTModel(vit_config, add_pooling_layer=False)
        if pretrained and config.t5_pretrained:
            self.t5 = T5ForConditionalGeneration.from_pretrained(config.t5_pretrained)
            if vocab_size is not None and vocab_size > self.t5.config.vocab_size:
                self.t5.resize_token_embeddings(vocab_size)
        else:
            t5_kwargs = dict(config.t5)
            if vocab_size is not None:
                t5_kwargs["vocab_size"] = vocab_size
            self.t5 = T5ForConditionalGeneration(T5Config(**t5_kwargs))
        # Store the full resolved configs so a checkpoint rebuilds without the hub.
        if self.vit.config.patch_size != config.patch_size:
            raise ValueError(f"ViT patch size {self.vit.config.patch_size} != config patch_size {config.patch_size}")
        config.vit = {k: v for k, v in self.vit.config.to_dict().items() if k not in _HF_VOLATILE}
        config.t5 = {k: v for k, v in self.t5.config.to_dict().items() if k not in _HF_VOLATILE}
        d_model = self.t5.config.d_model
        self.project = nn.Linear(self.vit.config.hidden_size, d_model)
        grid, stages = config.grid, config.upsample_stages

        def heatmap_head() -> HeatmapHead:
            return HeatmapHead(d_model, config.heatmap_width, config.heatmap_min_width, stages)

        def score_head() -> ScoreHead:
            return ScoreHead(d_model, config.score_channels, grid, config.score_mlp)

        names_h = MAP_KINDS if config.variant == "multihead" else ("shared",)
        names_s = SCORE_NAMES if config.variant == "multihead" else ("shared",)
        self.heatmap_heads = nn.ModuleDict({name: heatmap_head() for name in names_h})
        self.score_heads = nn.ModuleDict({name: score_head() for name in names_s})

    # ------------------------------------------------------------------ encoder

    def encode(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fuse image and text: returns encoder states (T, B, 1+N+L, d) and mask (T, B, 1+N+L).

        The ViT runs once per image; its tokens are shared by the T task passes.
        """
        tasks, batch, length = input_ids.shape
        # Pretrained ViTs of another resolution get interpolated position embeddings.
        resize = pixel_values.shape[-1] != self.vit.config.image_size
        image = self.project(self.vit(pixel_values=pixel_values, interpolate_pos_encoding=resize).last_hidden_state)
        n_img = image.shape[1]
        image = image.unsqueeze(0).expand(tasks, -1, -1, -1).reshape(tasks * batch, n_img, -1)
        text = self.t5.get_input_embeddings()(input_ids.reshape(tasks * batch, length))
        mask = torch.cat(
            [
                torch.ones(tasks * batch, n_img, dtype=attention_mask.dtype, device=attention_mask.device),
                attention_mask.reshape(tasks * batch, length),
            ],
            dim=1,
        )
        states = self.t5.get_encoder()(
            inputs_embeds=torch.cat([image, text.to(image.dtype)], dim=1), attention_mask=mask
        ).last_hidden_state
        return states.reshape(tasks, batch, n_img + length, -1), mask.reshape(tasks, batch, -1)

    def _feature_map(self, states: torch.Tensor) -> torch.Tensor:
        """Image positions (CLS dropped) as a (B, d, g, g) map; patch tokens are row-major."""
        grid = self.config.grid
        patches = states[:, 1 : 1 + grid * grid]
        return patches.reshape(states.shape[0], grid, grid, -1).permute(0, 3, 1, 2).contiguous()

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        target_heatmaps: torch.Tensor | None = None,
        target_scores: torch.Tensor | None = None,
    ) -> RAHFOutput:
        """Predict heatmaps (B, H, W) and scores (B,) per task; with targets, the losses.

        ``input_ids``/``attention_mask``: (T, B, L) from :class:`RAHFProcessor`. ``labels``:
        (B, Lt) with -100 at padding. ``target_heatmaps``: (B, 2, H, W) in MAP_KINDS order;
        ``target_scores``: (B, 4) in SCORE_NAMES order.
        """
        states, mask = self.encode(pixel_values, input_ids, attention_mask)
        heatmaps: dict[str, torch.Tensor] = {}
        scores: dict[str, torch.Tensor] = {}
        if self.config.variant == "multihead":
            features = self._feature_map(states[0])
            for name in MAP_KINDS:
                heatmaps[name] = self.heatmap_heads[name](features)
            for name in SCORE_NAMES:
                scores[name] = self.score_heads[name](features)
            text_states, text_mask = states[0], mask[0]
        else:
            tasks = self.config.tasks()
            n_h, n_s = len(MAP_KINDS), len(SCORE_NAMES)
            batch = states.shape[1]
            h_maps = self.heatmap_heads["shared"](self._feature_map(states[:n_h].flatten(0, 1)))
            s_vals = self.score_heads["shared"](self._feature_map(states[n_h : n_h + n_s].flatten(0, 1)))
            for i, name in enumerate(MAP_KINDS):
                heatmaps[name] = h_maps[i * batch : (i + 1) * batch]
            for i, name in enumerate(SCORE_NAMES):
                scores[name] = s_vals[i * batch : (i + 1) * batch]
            k = tasks.index(KEYWORD_TASK)
            text_states, text_mask = states[k], mask[k]
        out = RAHFOutput(heatmaps, scores, text_states, text_mask)
        if labels is not None:
            seq = self.t5(
                encoder_outputs=BaseModelOutput(last_hidden_state=text_states),
                attention_mask=text_mask,  # cross-attention mask: padded prompt tokens hidden
                labels=labels,
            )
            out.logits = seq.logits
            out.losses["text"] = seq.loss
        if target_heatmaps is not None:
            out.losses["heatmap"], per_head = _summed_head_mse(heatmaps, target_heatmaps, MAP_KINDS)
            out.head_losses |= {f"heatmap/{name}": v for name, v in per_head.items()}
        if target_scores is not None:
            out.losses["score"], per_head = _summed_head_mse(scores, target_scores, SCORE_NAMES)
            out.head_losses |= {f"score/{name}": v for name, v in per_head.items()}
        if out.losses:
            weights = {
                "text": self.config.text_loss_weight,
                "heatmap": self.config.heatmap_loss_weight,
                "score": self.config.score_loss_weight,
            }
            out.loss = torch.stack([weights[k] * v.float() for k, v in out.losses.items()]).sum()
        return out

    @torch.no_grad()
    def generate_keywords(
        self, text_states: torch.Tensor, text_mask: torch.Tensor, max_new_tokens: int | None = None
    ) -> torch.Tensor:
        """Greedy decoding of the tagged prompt from encoder states (no re-encoding)."""
        return self.t5.generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=text_states),
            attention_mask=text_mask,
            max_new_tokens=max_new_tokens or self.config.max_target_tokens,
            do_sample=False,
            num_beams=1,
        )


def _summed_head_mse(
    predictions: dict[str, torch.Tensor], targets: torch.Tensor, names: tuple[str, ...]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The sum over heads of each head's MSE (mean over the batch and, for maps, the pixels),
    and each head's (detached) term for logging; see docs/modeling.md "Losses".

    Summed, not averaged over heads: averaging divided the heatmap group by 2 and the score
    group by 4, so ``score_loss_weight`` 1 gave each score head a quarter of the weight its
    name promised, and adding a head would have shrunk the others' gradients.
    """
    terms = {name: F.mse_loss(predictions[name].float(), targets[:, i].float()) for i, name in enumerate(names)}
    return torch.stack(list(terms.values())).sum(), {name: t.detach() for name, t in terms.items()}


# Keys of HF config dicts that describe the runtime, not the architecture.
_HF_VOLATILE = {"transformers_version", "_name_or_path", "architectures", "torch_dtype", "dtype"}
