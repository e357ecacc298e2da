"""The training loss reduction (docs/modeling.md "Losses"): each group sums its heads' MSEs,
and the total is the weighted sum of the groups, so a weight scales every head by its value."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from modeling.config import get_config
from modeling.model import RAHFModel, RAHFOutput
from modeling.processing import RAHFProcessor, load_tokenizer
from modeling.protocol import MAP_KINDS, SCORE_NAMES


def _forward(variant: str, **weights: float) -> tuple[RAHFModel, dict[str, torch.Tensor], RAHFOutput]:
    torch.manual_seed(0)
    tokenizer = load_tokenizer("byt5")
    config = get_config("tiny", variant, **weights)  # type: ignore[arg-type]
    model = RAHFModel(config, vocab_size=len(tokenizer)).eval()
    proc = RAHFProcessor(config, tokenizer)
    rng = np.random.default_rng(0)
    images = proc.images([rng.random((64, 64, 3)).astype(np.float32) for _ in range(3)])
    ids, mask = proc.prompts(["a red circle", "two blue squares", "a green triangle"])
    targets = {
        "labels": proc.targets(["a red_0 circle", "two blue squares", "a green triangle_0"]),
        "target_heatmaps": torch.from_numpy(rng.random((3, 2, 64, 64)).astype(np.float32)),
        "target_scores": torch.from_numpy(rng.random((3, 4)).astype(np.float32)),
    }
    out = model(images, ids, mask, **targets)
    return model, targets, out


@pytest.mark.parametrize("variant", ["multihead", "augmented"])
def test_groups_sum_their_heads_mse_and_weights_scale_groups(variant: str) -> None:
    _, targets, out = _forward(variant, heatmap_loss_weight=3.0, score_loss_weight=5.0, text_loss_weight=0.5)
    heat = [F.mse_loss(out.heatmaps[t], targets["target_heatmaps"][:, i]) for i, t in enumerate(MAP_KINDS)]
    score = [F.mse_loss(out.scores[t], targets["target_scores"][:, i]) for i, t in enumerate(SCORE_NAMES)]
    torch.testing.assert_close(out.losses["heatmap"], sum(heat))
    torch.testing.assert_close(out.losses["score"], sum(score))
    torch.testing.assert_close(out.head_losses["score/overall"], score[3].detach())
    expected = 3.0 * out.losses["heatmap"] + 5.0 * out.losses["score"] + 0.5 * out.losses["text"]
    torch.testing.assert_close(out.loss, expected)


def test_score_weight_is_each_heads_weight() -> None:
    """d loss / d prediction of one score head = weight * 2 (s - t) / batch, whatever the number
    of score heads: the weight's name means what it says."""
    _, targets, out = _forward("multihead", heatmap_loss_weight=0.0, score_loss_weight=2.0, text_loss_weight=0.0)
    pred = out.scores["aesthetics"]
    (grad,) = torch.autograd.grad(out.loss, pred)
    expected = 2.0 * 2 * (pred.detach() - targets["target_scores"][:, 2]) / pred.shape[0]
    torch.testing.assert_close(grad, expected)
