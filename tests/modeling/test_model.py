"""Model tests: shapes for both variants, padding invariance, overfitting to the exact "_0"
sequence, and checkpoint round trip. Tiny random-init configs only: no hub, no downloads."""

from pathlib import Path

import numpy as np
import pytest
import torch

from modeling.checkpoint import load_checkpoint, save_checkpoint
from modeling.config import RAHFConfig, get_config
from modeling.model import RAHFModel
from modeling.processing import RAHFProcessor, load_tokenizer
from modeling.protocol import MAP_KINDS, SCORE_NAMES


def _images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((72, 72, 3)).astype(np.float32) for _ in range(n)]


def _build(variant: str, seed: int = 0) -> tuple[RAHFModel, RAHFProcessor]:
    torch.manual_seed(seed)
    tokenizer = load_tokenizer("byt5")
    config = get_config("tiny", variant)  # type: ignore[arg-type]
    model = RAHFModel(config, vocab_size=len(tokenizer)).eval()
    return model, RAHFProcessor(config, tokenizer)


@pytest.mark.parametrize("variant", ["multihead", "augmented"])
def test_output_shapes_and_loss(variant: str) -> None:
    model, proc = _build(variant)
    prompts = ["a red circle", "two blue squares on a striped background"]
    ids, mask = proc.prompts(prompts)
    assert ids.shape[0] == (1 if variant == "multihead" else 7)
    labels = proc.targets(["a red_0 circle", "two blue squares on a striped background"])
    out = model(
        proc.images(_images(2)),
        ids,
        mask,
        labels=labels,
        target_heatmaps=torch.zeros(2, 2, 64, 64),
        target_scores=torch.full((2, 4), 0.5),
    )
    assert set(out.heatmaps) == set(MAP_KINDS) and set(out.scores) == set(SCORE_NAMES)
    for heatmap in out.heatmaps.values():
        assert heatmap.shape == (2, 64, 64)
        assert float(heatmap.min()) >= 0.0 and float(heatmap.max()) <= 1.0
    for score in out.scores.values():
        assert score.shape == (2,)
    assert out.logits is not None and out.logits.shape[:2] == labels.shape
    assert set(out.losses) == {"text", "heatmap", "score"}
    assert out.loss is not None and torch.isfinite(out.loss)
    n_heat = len(model.heatmap_heads)
    n_score = len(model.score_heads)
    assert (n_heat, n_score) == ((2, 4) if variant == "multihead" else (1, 1))


def test_heatmap_stages_follow_grid_and_output_size() -> None:
    assert get_config("tiny").upsample_stages == 3  # 8 -> 64
    assert get_config("base").upsample_stages == 4  # 14 -> 224
    assert get_config("large").upsample_stages == 4  # 24 -> 384
    with pytest.raises(ValueError, match="power of 2"):
        get_config("tiny", heatmap_size=48)


@pytest.mark.parametrize("variant", ["multihead", "augmented"])
def test_padding_does_not_change_outputs(variant: str) -> None:
    model, proc = _build(variant, seed=1)
    images = proc.images(_images(2, seed=1))
    short, long = "a cat", "a very long prompt that forces padding of the short one"
    ids_alone, mask_alone = proc.prompts([short])
    ids_pair, mask_pair = proc.prompts([short, long])
    assert ids_pair.shape[-1] > ids_alone.shape[-1]
    labels = proc.targets(["a cat_0"])
    with torch.no_grad():
        alone = model(images[:1], ids_alone, mask_alone, labels=labels)
        padded = model(images, ids_pair, mask_pair, labels=labels.repeat(2, 1))
    for task in MAP_KINDS:
        torch.testing.assert_close(padded.heatmaps[task][:1], alone.heatmaps[task], atol=1e-5, rtol=1e-4)
    for task in SCORE_NAMES:
        torch.testing.assert_close(padded.scores[task][:1], alone.scores[task], atol=1e-5, rtol=1e-4)
    assert alone.logits is not None and padded.logits is not None
    torch.testing.assert_close(padded.logits[:1], alone.logits, atol=1e-4, rtol=1e-4)
    gen_alone = model.generate_keywords(alone.text_encoder_states, alone.text_encoder_mask, 12)
    gen_pair = model.generate_keywords(padded.text_encoder_states, padded.text_encoder_mask, 12)
    assert gen_pair[0, : gen_alone.shape[1]].tolist() == gen_alone[0].tolist()


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["multihead", "augmented"])
def test_tiny_model_overfits_and_generates_exact_tagged_prompt(variant: str) -> None:
    model, proc = _build(variant, seed=2)
    model.train()
    prompts = ["a red circle", "two blue squares", "a green triangle"]
    targets = ["a red_0 circle", "two blue squares", "a green triangle_0"]
    images = proc.images(_images(3, seed=2))
    ids, mask = proc.prompts(prompts)
    labels = proc.targets(targets)
    heat = torch.zeros(3, 2, 64, 64)
    heat[0, 0, 8:24, 8:24] = 1.0
    scores = torch.tensor([[0.2, 0.8, 0.5, 0.4], [0.9, 0.3, 0.6, 0.7], [0.5, 0.5, 0.1, 0.9]])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    generated: list[str] = []
    for step in range(200):
        model.train()
        out = model(images, ids, mask, labels=labels, target_heatmaps=heat, target_scores=scores)
        assert out.loss is not None
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        first = first if first is not None else float(out.loss)
        # Greedy decoding is checked only once teacher forcing is nearly exact (cheap budget).
        if step % 10 == 9 and float(out.losses["text"]) < 0.15:
            model.eval()
            with torch.no_grad():
                out = model(images, ids, mask, labels=labels, target_heatmaps=heat, target_scores=scores)
                tokens = model.generate_keywords(out.text_encoder_states, out.text_encoder_mask)
            generated = proc.decode(tokens)
            converged = float(out.losses["heatmap"]) < 1e-3 and float(out.losses["score"]) < 3e-4
            if generated == targets and converged:
                break
    assert generated == targets
    assert float(out.loss) < first / 20
    pred = torch.stack([out.scores[t] for t in SCORE_NAMES], dim=1)
    torch.testing.assert_close(pred, scores, atol=0.05, rtol=0)


@pytest.mark.parametrize("variant", ["multihead", "augmented"])
def test_checkpoint_round_trip_is_exact(tmp_path: Path, variant: str) -> None:
    model, proc = _build(variant, seed=3)
    images = proc.images(_images(2, seed=3))
    ids, mask = proc.prompts(["a red circle", "a blue square"])
    labels = proc.targets(["a red_0 circle", "a blue square"])
    with torch.no_grad():
        before = model(images, ids, mask, labels=labels)
    save_checkpoint(tmp_path / "ckpt", model, proc.tokenizer, metadata={"step": 1})
    loaded, loaded_proc = load_checkpoint(tmp_path / "ckpt")
    assert loaded.config.to_dict() == model.config.to_dict()
    ids2, mask2 = loaded_proc.prompts(["a red circle", "a blue square"])
    assert torch.equal(ids, ids2) and torch.equal(mask, mask2)
    with torch.no_grad():
        after = loaded(images, ids2, mask2, labels=labels)
    for task in MAP_KINDS:
        assert torch.equal(before.heatmaps[task], after.heatmaps[task])
    for task in SCORE_NAMES:
        assert torch.equal(before.scores[task], after.scores[task])
    assert before.logits is not None and after.logits is not None
    assert torch.equal(before.logits, after.logits)
    state_a, state_b = model.state_dict(), loaded.state_dict()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_load_checkpoint_names_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_checkpoint(tmp_path)


def test_config_json_round_trip(tmp_path: Path) -> None:
    config = get_config("large", "augmented")
    config.save(tmp_path / "c.json")
    assert RAHFConfig.load(tmp_path / "c.json") == config
    with pytest.raises(ValueError, match="unknown config"):
        get_config("huge")


def test_pretrained_weights_load_from_local_paths(tmp_path: Path) -> None:
    """The from_pretrained path, offline: weights saved to local folders load unchanged."""
    tokenizer = load_tokenizer("byt5")
    torch.manual_seed(4)
    donor = RAHFModel(get_config("tiny"), vocab_size=len(tokenizer))
    donor.vit.save_pretrained(tmp_path / "vit")
    donor.t5.save_pretrained(tmp_path / "t5")
    config = get_config("tiny", vit_pretrained=str(tmp_path / "vit"), t5_pretrained=str(tmp_path / "t5"))
    model = RAHFModel(config, vocab_size=len(tokenizer), pretrained=True)
    for name, tensor in donor.vit.state_dict().items():
        assert torch.equal(model.vit.state_dict()[name], tensor), name
    for name, tensor in donor.t5.state_dict().items():
        assert torch.equal(model.t5.state_dict()[name], tensor), name
    # A ViT pretrained at 64 px used at 96 px: position embeddings are interpolated.
    wide = RAHFModel(
        get_config("tiny", image_size=96, heatmap_size=96, vit_pretrained=str(tmp_path / "vit")),
        vocab_size=len(tokenizer),
        pretrained=True,
    ).eval()
    processor = RAHFProcessor(wide.config, tokenizer)
    ids, mask = processor.prompts(["a cat"])
    with torch.no_grad():
        out = wide(processor.images(_images(1)), ids, mask)
    assert out.heatmaps["implausibility"].shape == (1, 96, 96)
    save_checkpoint(tmp_path / "ckpt", wide, tokenizer)
    loaded, _ = load_checkpoint(tmp_path / "ckpt")
    with torch.no_grad():
        again = loaded(processor.images(_images(1)), ids, mask)
    assert torch.equal(again.heatmaps["implausibility"], out.heatmaps["implausibility"])
