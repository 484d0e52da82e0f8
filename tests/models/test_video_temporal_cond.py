"""A text-conditioned video-diffusion run fine-tuned with the caption steering its temporal layers
(``temporal_cond``: adaLN, DiT arXiv:2212.09748; ``frame_embedding``: TimeSformer
arXiv:2102.05095): given a trained video-diffusion run as ``image_run``, the new model takes all
its weights and, its new layers at their zero start, denoises exactly as that run does, for any
caption; a base run of other settings is one sentence naming the key."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genzoo.core.errors import ConfigError
from genzoo.data import dataset_info
from genzoo.models import MODELS
from genzoo.runs.build import build

SPEC = "moving-shapes?size=16&n=16&frames=4"
BASE = {"channels": 8, "channel_mult": [1, 2], "text": True, "context_prob": 0.0,
        "text_width": 16, "text_layers": 1, "text_heads": 2}  # fmt: skip
NEW = {"temporal_cond": True, "frame_embedding": True, "caption_words": True}


def _base(**cfg) -> torch.nn.Module:
    """A text run with every weight perturbed (the zero-initialised layers included)."""
    cls = MODELS.get("video-diffusion")
    torch.manual_seed(0)
    m = cls(cls.config_class.from_dict({**BASE, **cfg}), dataset_info(SPEC))
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return m.eval()


def _tuned(base: torch.nn.Module, **cfg) -> torch.nn.Module:
    cls = MODELS.get("video-diffusion")
    config = cls.config_class.from_dict({**BASE, **NEW, "image_run": "BASE_RUN", **cfg})
    torch.manual_seed(1)
    return build(cls, config, dataset_info(SPEC), lambda run, ema: base).eval()


@torch.no_grad()
def test_fine_tuned_from_a_video_run_it_starts_as_that_run() -> None:
    base = _base()
    tuned = _tuned(base)
    extra = set(tuned.state_dict()) - set(base.state_dict())
    assert extra and all(
        ".ada." in k or k.startswith(("net.frame_emb.", "word_proj.")) for k in extra
    )
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in tuned.state_dict().items()
               if k not in extra)  # fmt: skip
    assert not any(dataclasses.asdict(base.config)[k] for k in NEW)  # the base has neither
    g = torch.Generator().manual_seed(2)
    x, sigma = torch.randn(3, 4, 3, 16, 16, generator=g), torch.tensor([0.2, 1.5, 20.0])
    tok = base.encode_prompts(["a red circle moving left", "a blue cross moving up", "a"])
    for cond in (tok, None):
        torch.testing.assert_close(tuned.denoise(x, sigma, cond), base.denoise(x, sigma, cond),
                                   rtol=0, atol=0)  # fmt: skip
    for m in tuned.net.temporal:  # once trained, the caption steers the temporal layers too
        torch.nn.init.normal_(m.ada.weight, 0, 0.2)
    d = tuned.denoise(x, sigma, tok)
    assert not torch.allclose(d, base.denoise(x, sigma, tok), atol=1e-3)


@torch.no_grad()
def test_caption_words_add_the_mapped_mean_word_embedding() -> None:
    """``caption_words``: the clip's added embedding is the pooled one plus ``W mean_i e(w_i) +
    b`` over the caption's real tokens (the text transformer's input), so it does not depend on
    the order of the words."""
    tuned = _tuned(_base())
    assert tuned.word_proj is not None and tuned.pool_proj is not None
    torch.nn.init.normal_(tuned.word_proj.weight, 0, 0.2)
    tok = tuned.encode_prompts(["a red circle moving left", "a blue cross moving up"])
    _, _, got = tuned.context(tok)
    feats = tuned.text_encoder(tok)
    emb = tuned.text_encoder.tok_emb.weight
    bags = torch.stack([emb[row[row != tuned.pad_id]].mean(0) for row in tok])  # (B, C)
    want = tuned.pool_proj(feats.pooled) + tuned.word_proj(bags)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_a_base_run_of_other_settings_is_one_sentence() -> None:
    with pytest.raises(ConfigError, match=r"does not fit: 'net\..*' has shape"):
        _tuned(_base(), channels=16)
    with pytest.raises(ConfigError, match=r"does not fit: key '.*' is missing from"):
        _tuned(_base(text=False, context_prob=0.5, text_width=64, text_layers=2, text_heads=4))
