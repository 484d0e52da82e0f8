"""VQA: every fusion answers each question of an image independently; training learns answers."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("tokenizers")

from genzoo.core.errors import ConfigError
from genzoo.data import dataset_info, load_dataset
from genzoo.data.shapes import ANSWERS
from genzoo.models.multimodal.vqa import VQA, VQAConfig

TINY = {"width": 8, "text_width": 32, "text_layers": 1, "text_heads": 2, "hidden": 32,
        "fusion_layers": 1}  # fmt: skip


@pytest.fixture(scope="module")
def data():
    return load_dataset("shapes?size=16&n=300", "train")


@pytest.mark.parametrize("fusion", ["early", "middle", "late"])
def test_questions_are_answered_independently(data, fusion: str) -> None:
    torch.manual_seed(0)
    model = VQA(VQAConfig(fusion=fusion, **TINY), data.info).eval()
    batch = data.get(torch.arange(5))
    logits = model(batch["x"], batch["question"])
    assert logits.shape == (5, 4, len(ANSWERS))
    for j in range(4):  # one question at a time gives the same logits
        assert torch.allclose(model(batch["x"], batch["question"][:, j]), logits[:, j], atol=1e-5)
    # the loss is the mean cross-entropy over all B*Q questions; eval_metrics agrees per image
    out = model.loss(batch)
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["answer"].flatten())
    assert out.loss.item() == pytest.approx(ce.item(), rel=1e-5)
    ev = model.eval_metrics(batch)
    assert ev["loss"].mean().item() == pytest.approx(ce.item(), rel=1e-5)
    assert ev["acc"].mean().item() == pytest.approx(float(out.logs["acc"]), abs=1e-6)
    texts = data.qa[0]
    answers = model.answer(batch["x"][:1].expand(4, -1, -1, -1), [q for q, _, _ in texts])
    assert answers == [ANSWERS[int(i)] for i in logits[0].argmax(-1)]


def test_late_fusion_model_has_no_image_question_interaction(data) -> None:
    torch.manual_seed(0)
    model = VQA(VQAConfig(fusion="late", **TINY), data.info).eval()
    b = data.get(torch.arange(2))
    q = b["question"][0]  # (Q, L): the same questions for both images
    la = model(b["x"][:1], q[None])[0]  # (Q, A)
    lb = model(b["x"][1:2], q[None])[0]
    diff = la - lb  # depends on the images only: the same for every question
    assert torch.allclose(diff, diff[:1].expand_as(diff), atol=1e-5)


def test_needs_questions() -> None:
    with pytest.raises(ConfigError, match="shapes"):
        VQA(VQAConfig(**TINY), dataset_info("digits"))


def test_short_training_learns_answers(tmp_path, fast_train) -> None:
    import genzoo
    from genzoo.train.multimodal import vqa_eval

    run = genzoo.train(
        "vqa",
        "shapes?size=16&n=1000",
        steps=120,
        out=tmp_path / "vqa",
        overrides={**TINY, "fusion": "early", "batch_size": 32, "lr": 2e-3, **fast_train},
    )
    res = vqa_eval(run, n=300)
    assert res["fusion"] == "early" and res["n_questions"] == 1200
    # it reads the question: uniform guessing gets 1/18, the best constant answer 0.19 here
    assert res["accuracy"] > 0.3, res
    ev = genzoo.evaluate(run, n=300)
    assert ev["acc"] == pytest.approx(res["accuracy"], abs=1e-6)
