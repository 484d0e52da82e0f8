"""Single- and two-stream vision-language encoders (``visualbert``, ``vilbert``) and the hard
negatives of image-text matching."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

pytest.importorskip("tokenizers")

from genzoo.cli import main
from genzoo.core.errors import ConfigError
from genzoo.data import dataset_info, load_dataset
from genzoo.data.captions import caption_matches, get_caption_tokenizer, parse_caption
from genzoo.data.shapes import (
    COLOUR_NAMES,
    HELDOUT_PAIRS,
    ITM_NEGATIVES,
    SHAPES,
    ShapesDataset,
    make_scenes,
    swap_negative,
)
from genzoo.models.multimodal import (
    SingleStreamConfig,
    SingleStreamVL,
    TwoStreamConfig,
    TwoStreamVL,
)
from genzoo.nn.transformer import Transformer

DATA = "shapes?size=16&n=200"
TINY = {"width": 8, "dim": 16, "heads": 2}


@pytest.fixture(scope="module")
def data():
    return load_dataset(DATA, "train")


def _inputs(model, data, n: int = 6):
    b = data.get(torch.arange(n))
    return model.embed(b["x"], b["text"])


def test_single_stream_with_cross_modal_attention_masked_is_two_separate_encoders(data) -> None:
    torch.manual_seed(0)
    model = SingleStreamVL(SingleStreamConfig(layers=2, **TINY), data.info).eval()
    img, txt, mask = _inputs(model, data)
    assert (~mask).any()  # the captions are padded: the text encoder must mask its padding
    joint_img, joint_txt = model.streams(img, txt, mask, cross_modal=False)
    # two separate encoders with copies of the weights, each reading its modality alone
    image_encoder = Transformer(2, 16, 2, causal=False)
    text_encoder = Transformer(2, 16, 2, causal=False)
    image_encoder.load_state_dict(copy.deepcopy(model.transformer.state_dict()))
    text_encoder.load_state_dict(copy.deepcopy(model.transformer.state_dict()))
    assert torch.allclose(joint_img, image_encoder(img), atol=1e-5)
    assert torch.allclose(joint_txt, text_encoder(txt, key_mask=mask), atol=1e-5)
    # ... and without the mask the image tokens read the text (the mask is what made it equal)
    full_img, _ = model.streams(img, txt, mask)
    assert (full_img - joint_img).abs().max() > 1e-3


def _grad(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor | None:
    return torch.autograd.grad(y, x, retain_graph=True, allow_unused=True)[0]


@pytest.mark.parametrize("kind", ["single", "two"])
def test_each_stream_reads_the_other_only_through_cross_modal_attention(data, kind) -> None:
    torch.manual_seed(0)
    model = (
        SingleStreamVL(SingleStreamConfig(layers=2, **TINY), data.info)
        if kind == "single"
        else TwoStreamVL(TwoStreamConfig(co_layers=1, **TINY), data.info)
    )
    img, txt, mask = (t.detach() for t in _inputs(model, data, 3))
    w_img, w_txt = torch.randn_like(img), torch.randn_like(txt)  # (a sum after LayerNorm is flat)
    for cross in (True, False):
        txt_in = txt.clone().requires_grad_(True)
        img_in = img.clone().requires_grad_(True)
        out_img, out_txt = model.streams(img_in, txt_in, mask, cross_modal=cross)
        g_txt, g_img = (
            torch.zeros_like(t) if g is None else g  # None: not in the graph at all
            for t, g in (
                (txt_in, _grad((out_img * w_img).sum(), txt_in)),
                (img_in, _grad((out_txt * w_txt)[mask].sum(), img_in)),
            )
        )
        real = g_txt[mask].abs().amax()
        if cross:  # co-attention / joint attention: each stream depends on the other
            assert real > 1e-4 and g_img.abs().amax() > 1e-4
        else:
            assert real == 0 and g_img.abs().amax() == 0
        assert g_txt[~mask].abs().amax() == 0  # padding is never attended to


def test_equal_parameter_counts_at_the_defaults() -> None:
    info = dataset_info("shapes?size=16")
    single = SingleStreamVL(SingleStreamConfig(), info)
    two = TwoStreamVL(TwoStreamConfig(), info)
    ns, nt = (sum(p.numel() for p in m.parameters()) for m in (single, two))
    assert abs(ns - nt) / ns < 0.005, (ns, nt)


def _differences(pos: str, neg: str) -> list[str]:
    """Which attributes two captions state differently (objects' colours and shapes, relation)."""
    p, n = parse_caption(pos), parse_caption(neg)
    assert len(p.objects) == len(n.objects) and p.position == n.position
    diff = [f"{f}{i}" for i, (a, b) in enumerate(zip(p.objects, n.objects, strict=True))
            for f in ("colour", "shape", "size") if getattr(a, f) != getattr(b, f)]  # fmt: skip
    return diff + (["relation"] if p.relation != n.relation else [])


@pytest.mark.parametrize("split", ["train", "test"])
def test_hard_negatives_change_exactly_one_attribute_and_are_false(split) -> None:
    scenes = make_scenes(300, seed=5, split=split)
    rng = np.random.default_rng(0)
    counts = dict.fromkeys(ITM_NEGATIVES, 0)
    heldout = 0
    for s in scenes:
        attrs, pos = s.attributes(), s.caption()
        assert caption_matches(pos, attrs, s.relation)
        for kind in ITM_NEGATIVES:
            neg = swap_negative(s, kind, rng, split)
            if neg is None:
                assert kind == "relation"
                continue
            counts[kind] += 1
            text = neg.caption()
            d = _differences(pos, text)
            assert len(d) == 1 and d[0].rstrip("01") == kind, (pos, text)
            assert not caption_matches(text, attrs, s.relation), (pos, text)
            names = {(COLOUR_NAMES[o.colour], SHAPES[o.shape]) for o in neg.objects}
            heldout += bool(names & set(HELDOUT_PAIRS))
    assert min(counts.values()) > 30
    # a train negative never names a held-out pair (so no caption gives itself away as false)
    assert heldout == 0 if split == "train" else heldout > 0


def test_negatives_in_batches_are_deterministic(data) -> None:
    again = ShapesDataset(data.info, data.scenes, "train", seed=10_007)
    assert torch.equal(again.itm_text, data.itm_text)
    assert torch.equal(again.itm_valid, data.itm_valid)
    tok = get_caption_tokenizer()
    for i in range(20):
        for k in range(len(ITM_NEGATIVES)):
            text = tok.decode(data.itm_text[i, k].tolist())
            assert (text == data.captions[i]) == (not data.itm_valid[i, k])


def test_heads_and_losses(data) -> None:
    torch.manual_seed(0)
    b = data.get(torch.arange(8))
    vqa = SingleStreamVL(SingleStreamConfig(layers=1, **TINY), data.info).eval()
    logits = vqa(b["x"], b["question"])  # (B, Q, A)
    for j in range(4):  # one question at a time: the same logits
        assert torch.allclose(vqa(b["x"], b["question"][:, j]), logits[:, j], atol=1e-5)
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), b["answer"].flatten())
    assert vqa.loss(b).loss.item() == pytest.approx(ce.item(), rel=1e-5)
    itm = TwoStreamVL(TwoStreamConfig(task="itm", mlm=0.0, **TINY), data.info).eval()
    texts = torch.cat([b["text"][:, None], b["itm_text"]], 1)
    z = itm(b["x"], texts)[..., 0]  # (B, 4)
    bce = torch.nn.functional.softplus  # -log sigmoid(z) = softplus(-z); -log(1-sigmoid) = sp(z)
    v = b["itm_valid"].float()
    want = 0.5 * (bce(-z[:, 0]) + (bce(z[:, 1:]) * v).sum(1) / v.sum(1)).mean()
    assert itm.loss(b).loss.item() == pytest.approx(want.item(), rel=1e-5)
    # with masked language modelling the loss adds mlm x the cross-entropy of the masked words
    both = TwoStreamVL(TwoStreamConfig(task="itm", mlm=0.5, mask_prob=0.5, **TINY), data.info)
    both.load_state_dict(itm.state_dict(), strict=False)
    both.eval()
    torch.manual_seed(1)
    out = both.loss(b)
    assert out.loss.item() == pytest.approx(want.item() + 0.5 * out.logs["mlm"].item(), rel=1e-5)
    torch.manual_seed(1)
    masked, where = both.mask_words(b["text"])
    tok = get_caption_tokenizer()
    special = (b["text"] == tok.pad_id) | (b["text"] == tok.bos_id) | (b["text"] == tok.eos_id)
    assert where.any() and not (where & special).any()
    assert torch.equal(masked[where], torch.full_like(masked[where], tok.unk_id))
    assert torch.equal(masked[~where], b["text"][~where])
    ev = itm.eval_metrics(b)
    assert torch.equal(ev["acc_relation"].isnan(), ~b["itm_valid"][:, 2])
    assert ev["rank_colour"].tolist() == (z[:, 0] > z[:, 1]).float().tolist()


def test_bad_data_names_valid_datasets() -> None:
    with pytest.raises(ConfigError, match="--data shapes"):
        SingleStreamVL(SingleStreamConfig(**TINY), dataset_info("digits"))
    with pytest.raises(ConfigError, match="--data shapes"):
        TwoStreamVL(TwoStreamConfig(**TINY), dataset_info("mnist5k"))


def test_cli_train_and_eval_average_each_metric_over_the_images_it_applies_to(
    tmp_path, capsys
) -> None:
    run = tmp_path / "itm"
    args = ["train", "vilbert", "--data", DATA, "--out", str(run), "--steps", "2",
            "progress=false", "tensorboard=false", "batch_size=8", "task=itm",
            *(f"{k}={v}" for k, v in TINY.items())]  # fmt: skip
    assert main(args) == 0
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "visualbert" in listed and "vilbert" in listed
    assert main(["eval", str(run), "--n", "64", "--samples", "0", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    from genzoo.runs.load import load

    model = load(run, device="cpu")
    test = load_dataset(DATA, "test")
    ev = model.eval_metrics(test.get(torch.arange(64)))
    for key in ("acc", "acc_positive", "acc_colour", "rank_relation"):
        assert res[key] == pytest.approx(float(ev[key].nanmean()), abs=1e-6)
