"""CLIP: symmetric InfoNCE by hand, invariances, temperature, zero-shot after a short training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("tokenizers")

from genzoo.core.errors import CheckpointError
from genzoo.data import dataset_info, load_dataset
from genzoo.models.multimodal.clip import CLIP, CLIPConfig, class_prompts, clip_loss

TINY = {"embed_dim": 32, "width": 8, "text_width": 32, "text_layers": 1, "text_heads": 2}


def test_info_nce_by_hand() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 6, generator=g, dtype=torch.float64) * 3
    loss, li, lt = clip_loss(logits)
    lg = logits.numpy()

    def ce_rows(m: np.ndarray) -> float:  # -log softmax(m)_ii averaged over rows
        return float(np.mean([np.log(np.exp(r).sum()) - r[i] for i, r in enumerate(m)]))

    assert li.item() == pytest.approx(ce_rows(lg), abs=1e-12)
    assert lt.item() == pytest.approx(ce_rows(lg.T), abs=1e-12)
    assert loss.item() == pytest.approx((ce_rows(lg) + ce_rows(lg.T)) / 2, abs=1e-12)
    # perfectly separated pairs: loss -> 0; all logits equal: loss = log N (chance)
    assert clip_loss(torch.eye(4) * 100)[0].item() < 1e-30
    assert clip_loss(torch.zeros(5, 5))[0].item() == pytest.approx(math.log(5))


@pytest.fixture(scope="module")
def data():
    return load_dataset("shapes?n=200", "train")


def test_loss_invariant_to_batch_permutation(data) -> None:
    torch.manual_seed(0)
    model = CLIP(CLIPConfig(**TINY), data.info).eval()
    batch = data.get(torch.arange(32))
    perm = torch.randperm(32, generator=torch.Generator().manual_seed(1))
    shuffled = {k: v[perm] for k, v in batch.items()}
    a, b = model.loss(batch), model.loss(shuffled)
    assert a.loss.item() == pytest.approx(b.loss.item(), abs=1e-5)
    # the logits matrix is permuted on both axes, and forward is the scaled cosine similarity
    la = model(batch["x"], batch["text"])
    lb = model(shuffled["x"], shuffled["text"])
    assert torch.allclose(la[perm][:, perm], lb, atol=1e-5)
    cos = model.encode_image(batch["x"]) @ model.encode_text(batch["text"]).t()
    assert torch.allclose(la, cos / 0.07, atol=1e-4)
    assert cos.abs().max() <= 1 + 1e-5


def test_temperature_is_learned_and_clipped(data) -> None:
    model = CLIP(CLIPConfig(**TINY), data.info)
    assert model.logit_scale.requires_grad
    assert model.scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    assert model.scale().item() == pytest.approx(100.0, rel=1e-5)
    fixed = CLIP(CLIPConfig(**TINY, learn_temperature=False), data.info)
    assert not fixed.logit_scale.requires_grad
    assert all(p is not fixed.logit_scale for p in fixed.param_groups()["main"])


def test_digits_train_on_captions_from_labels() -> None:
    info = dataset_info("digits")
    model = CLIP(CLIPConfig(**TINY), info)
    prompts = class_prompts(info)
    assert prompts[7][0] == "the digit seven" and len(prompts) == 10
    batch = load_dataset("digits", "train").get(torch.arange(16))
    assert "text" not in batch
    out = model.loss(batch)
    assert math.isfinite(out.loss.item())
    assert model.zero_shot_logits(batch["x"]).shape == (16, 10)


def test_vocabulary_fingerprint_is_checked(data) -> None:
    model = CLIP(CLIPConfig(**TINY), data.info)
    state = model.state_dict()
    state["vocab_fingerprint"] = state["vocab_fingerprint"] + 1
    with pytest.raises(CheckpointError, match="vocabulary"):
        model.load_state_dict(state)


def test_short_training_zero_shot_well_above_chance(tmp_path, fast_train) -> None:
    """250 CPU steps on 16x16 single-object shapes: zero-shot colour+shape accuracy from prompts
    alone is far above the 1/30 of chance (colour is learned first, shape later)."""
    import genzoo
    from genzoo.runs.multimodal import retrieve, zeroshot

    run = genzoo.train(
        "clip",
        "shapes?size=16&n=2000&objects=1",
        steps=250,
        out=tmp_path / "clip",
        overrides={**TINY, "batch_size": 64, "lr": 2e-3, "warmup": 20, **fast_train},
    )
    res = zeroshot(run, n=600)
    assert res["n"] == 600 and res["n_classes"] == 30
    assert res["accuracy"] > 0.15, res  # chance is 1/30
    assert res["colour_accuracy"] > 0.8, res  # chance is 1/6
    rec = retrieve(run, n=200)
    for direction in ("image_to_text", "text_to_image"):
        r = rec[direction]
        assert r[1] <= r[5] <= r[10] and r[10] > 10 / 200
    ev = genzoo.evaluate(run, n=256)
    assert 0.0 <= ev["zeroshot_acc"] <= 1.0 and ev["loss"] > 0
    assert not (run / "samples").exists()  # CLIP draws no sample grids
