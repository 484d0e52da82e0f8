"""LLaVA-style model: without the image it is its GPT; stages freeze what the paper freezes;
answers are greedy words from the KV cache; bad parts and shapes are one sentence."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("tokenizers")

from genzoo.core.errors import ConfigError
from genzoo.data import dataset_info, load_dataset
from genzoo.data.shapes import ANSWERS
from genzoo.models.multimodal.clip import CLIP, CLIPConfig
from genzoo.models.multimodal.llava import LLaVA, LLaVAConfig
from genzoo.models.multimodal.vqa import VQA, VQAConfig

TINY = {"width": 4, "projector_hidden": 16, "n_embd": 16, "n_layer": 1, "n_head": 2,
        "lora_rank": 2}  # fmt: skip
CLIP_TINY = {"width": 4, "embed_dim": 8, "text_width": 8, "text_layers": 1, "text_heads": 2}


@pytest.fixture(scope="module")
def data():
    return load_dataset("shapes?size=16&n=64", "train")


def _clip(info):
    torch.manual_seed(1)
    return CLIP(CLIPConfig(**CLIP_TINY), info)


def _train(model: LLaVA, data, steps: int = 3) -> None:
    """A few AdamW steps (with weight decay, which would move any parameter it is given)."""
    opt = torch.optim.AdamW(model.param_groups()["main"], lr=1e-2, weight_decay=0.1)
    for i in range(steps):
        batch = data.get(torch.arange(8 * i, 8 * i + 8))
        opt.zero_grad()
        model.loss(batch).loss.backward()
        opt.step()


def _randomize_lora(model: LLaVA) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)


def test_without_image_tokens_it_is_its_language_model(data) -> None:
    torch.manual_seed(0)
    model = LLaVA(LLaVAConfig(stage="instruct", lm="lora", **TINY), data.info).eval()
    _randomize_lora(model)  # the adapters are part of the language model
    batch = data.get(torch.arange(4))
    tokens = batch["question"][:, 0]  # (B, L)
    assert torch.equal(model(None, tokens), model.lm(tokens))  # GPT.forward, token ids in
    # the image tokens change what follows them
    with_img = model(batch["x"], tokens)
    assert with_img.shape == model.lm(tokens).shape
    assert not torch.allclose(with_img[0], with_img[1])
    # greedy answers with no image are the GPT's own greedy continuation (its KV cache)
    q = batch["question"][:1, 0]
    n = int((q[0] == model.eos_id).nonzero()[0])
    gpt = model.lm.generate(q[:, :n], 2, temperature=0.0)
    assert torch.equal(model.generate_answers(None, q)[:, :2], gpt)


def test_cached_greedy_answers_are_decoded_words(data) -> None:
    torch.manual_seed(0)
    model = LLaVA(LLaVAConfig(stage="instruct", lm="lora", **TINY), data.info).eval()
    _randomize_lora(model)
    batch = data.get(torch.arange(6))
    q = batch["question"].flatten(0, 1)  # (24, L): several question lengths
    x = batch["x"].repeat_interleave(4, 0)
    gen = model.generate_answers(x, q)  # (24, 3) with the KV cache
    # recompute each step on the whole sequence, no cache
    for i in range(q.shape[0]):
        n = int((q[i] == model.eos_id).nonzero()[0])
        seq = q[i : i + 1, :n]
        for j in range(2):
            nxt = model(x[i : i + 1], seq)[:, -1].argmax(-1)
            assert int(nxt) == int(gen[i, j])
            seq = torch.cat([seq, nxt[:, None]], 1)
    texts = [q for q, _, _ in data.qa[0]]
    answers = model.answer(batch["x"][:1].expand(4, -1, -1, -1), texts)
    assert all(isinstance(a, str) for a in answers)
    assert answers == model.tokenizer.decode_batch(gen[:4])
    # eval's exact match is string equality with the right answer word
    acc = model.eval_metrics(batch)["acc"]
    words = model.tokenizer.decode_batch(gen)
    right = [w == ANSWERS[int(a)] for w, a in zip(words, batch["answer"].flatten(), strict=True)]
    assert torch.allclose(acc, torch.tensor(right, dtype=torch.float32).view(6, 4).mean(1))


def test_stages_freeze_what_they_should(data) -> None:
    clip = _clip(data.info)
    torch.manual_seed(0)
    text = LLaVA(LLaVAConfig(stage="text", **TINY), data.info)  # stage 0: the GPT alone
    assert {n for n, p in text.named_parameters() if p.requires_grad} == {
        n for n, _ in text.named_parameters() if n.startswith("lm.")
    }
    align = LLaVA(LLaVAConfig(stage="align", **TINY), data.info, clip=clip, base=text)
    assert torch.equal(align.image_encoder.pos, clip.image_encoder.pos)
    assert torch.equal(align.lm.tok_emb.weight, text.lm.tok_emb.weight)
    before = {k: v.clone() for k, v in align.state_dict().items()}
    proj0 = [p.detach().clone() for p in align.projector.parameters()]
    batch = data.get(torch.arange(8))
    align.loss(batch).loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in align.projector.parameters())
    assert all(p.grad is None for p in align.lm.parameters())
    assert all(p.grad is None for p in align.image_encoder.parameters())
    align.zero_grad()
    _train(align, data)
    after = align.state_dict()
    for k, v in before.items():
        if not k.startswith("projector."):
            assert torch.equal(after[k], v), k  # bit-identical
    assert not any(
        torch.equal(p, q) for p, q in zip(align.projector.parameters(), proj0, strict=True)
    )
    # stage 2 with LoRA: projector and adapters move; encoder and GPT weights stay
    inst = LLaVA(LLaVAConfig(stage="instruct", lm="lora", **TINY), data.info, base=align)
    before = {k: v.clone() for k, v in inst.state_dict().items()}
    _train(inst, data)
    moved = {k for k, v in inst.state_dict().items() if not torch.equal(v, before[k])}
    assert moved and all(k.startswith("projector.") or ".lora_" in k for k in moved), moved
    assert any(".lora_B" in k for k in moved)
    for k in before:
        if k.startswith(("image_encoder.", "lm.")) and ".lora_" not in k:
            assert k not in moved


def test_overfits_answers_to_a_few_images(data) -> None:
    """The projector and the GPT learn to read the image: after 100 steps on 4 images it answers
    their 16 questions exactly, and the same model without the image does not."""
    torch.manual_seed(0)
    cfg = LLaVAConfig(stage="instruct", lm="full", **{**TINY, "n_embd": 32})
    model = LLaVA(cfg, data.info)
    opt = torch.optim.AdamW(model.param_groups()["main"], lr=3e-3)
    batch = data.get(torch.arange(4))
    for _ in range(100):
        opt.zero_grad()
        model.loss(batch).loss.backward()
        opt.step()
    ev = model.eval().eval_metrics(batch)
    assert ev["acc"].mean() == 1.0
    assert ev["blind_acc"].mean() <= 0.5


def test_bad_parts_and_shapes_are_one_sentence(data) -> None:
    clip = _clip(data.info)
    with pytest.raises(ConfigError, match=r"base_run must be a llava run.*'clip'"):
        LLaVA(LLaVAConfig(stage="align", **TINY), data.info, base=clip)
    vqa = VQA(VQAConfig(width=4, text_width=8, text_layers=1, text_heads=2), data.info)
    with pytest.raises(ConfigError, match=r"clip_run must be a trained clip run.*'vqa'"):
        LLaVA(LLaVAConfig(stage="align", **TINY), data.info, clip=vqa)
    other = load_dataset("shapes?size=32&n=8", "train")
    with pytest.raises(ConfigError, match=r"shape \(3, 16, 16\).*\(3, 32, 32\)"):
        LLaVA(LLaVAConfig(stage="align", **TINY), other.info, clip=clip)
    model = LLaVA(LLaVAConfig(stage="align", **TINY), data.info)
    with pytest.raises(ConfigError, match=r"\(3, 16, 16\); got \(3, 32, 32\)"):
        model.answer(other.get(torch.arange(1))["x"], ["what colour is the circle?"])
    with pytest.raises(ConfigError, match="shapes"):
        LLaVA(LLaVAConfig(**TINY), dataset_info("digits"))
    with pytest.raises(ConfigError, match="drop clip_run"):
        LLaVAConfig(stage="text", clip_run="a").validate()
