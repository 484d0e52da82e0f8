"""video-worldmodel (GAIA-1 arXiv:2309.17080 / TECO arXiv:2210.02396 route): the GPT's KV-cached
token sampler draws exactly the uncached tokens, codes map frame by frame through the VQ-VAE, and
the clips it draws lie in the data range with the known frames kept."""

from __future__ import annotations

import pytest
import torch

from genzoo.core.errors import ConfigError
from genzoo.data import dataset_info
from genzoo.models import MODELS

SPEC = "moving-digits?size=16&n=32"


def _model():
    cls = MODELS.get("video-worldmodel")
    config = cls.config_class.from_dict(
        {"n_layer": 2, "n_head": 2, "n_embd": 32, "dropout": 0.0, "codebook_size": 16,
         "vq_width": 8, "code_dim": 4}
    )  # fmt: skip
    torch.manual_seed(0)
    model = cls(config, dataset_info(SPEC))
    with torch.no_grad():  # peaked, context-dependent next-token distributions
        for p in model.gpt.parameters():
            p.normal_(0, 0.5)
        # codes spread over the encoder's outputs (as dead-code restarts do), so frames differ
        frames = torch.rand(64, 1, 16, 16, generator=torch.Generator().manual_seed(9)) * 2 - 1
        z = model.vqvae.encode_latent(frames).permute(0, 2, 3, 1).reshape(-1, 4)  # (N, d)
        model.vqvae.quantizer.codebook.copy_(z[torch.randperm(z.shape[0])[:16]])
    return model.eval()


def test_kv_cached_sampler_draws_the_uncached_tokens() -> None:
    model = _model()
    g = torch.Generator().manual_seed(3)
    context = torch.rand(2, 2, 1, 16, 16, generator=g) * 2 - 1
    for cond in (None, context):
        a = model.sample_codes(2, cond=cond, generator=torch.Generator().manual_seed(0))
        b = model.sample_codes(
            2, cond=cond, generator=torch.Generator().manual_seed(0), use_cache=False
        )
        assert a.shape == (2, 8 * model.per_frame)
        assert torch.equal(a, b)
    # the draws depend on the context (the test could fail): another context, other tokens
    other = torch.flip(context, dims=(-1,))
    assert not torch.equal(model.encode_codes(other), model.encode_codes(context))
    c = model.sample_codes(2, cond=other, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(c[:, 2 * model.per_frame :], a[:, 2 * model.per_frame :])
    # and the cached logits are the teacher-forced ones, position by position
    codes = a[:, :20]
    bos = torch.full((2, 1), model.bos, dtype=torch.long)
    full = model.gpt(torch.cat([bos, codes[:, :-1]], dim=1))  # (2, 20, K)
    cache = model.gpt.new_cache()
    steps = [model.gpt(bos, cache)[:, -1]]
    steps += [model.gpt(codes[:, i : i + 1], cache)[:, -1] for i in range(19)]
    assert torch.allclose(torch.stack(steps, dim=1), full, atol=1e-4)


def test_codes_are_per_frame_vqvae_codes_and_samples_lie_in_range() -> None:
    model = _model()
    x = torch.rand(2, 8, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    codes = model.encode_codes(x)  # (2, 8 P)
    p = model.per_frame
    for t in (0, 5):  # frame t's codes are the frame VQ-VAE's codes of x[:, t], in raster order
        assert torch.equal(
            codes[:, t * p : (t + 1) * p], model.vqvae.encode_codes(x[:, t]).flatten(1)
        )
    rec = model.decode_codes(codes)
    assert torch.allclose(rec[:, 5], model.vqvae(x[:, 5]).clamp(-1, 1), atol=1e-5)
    g = torch.Generator().manual_seed(0)
    out = model.sample(3, generator=g)
    assert out.shape == (3, 8, 1, 16, 16)
    assert out.min() >= -1 and out.max() <= 1
    context = torch.rand(3, 4, 1, 16, 16, generator=g) * 2 - 1
    pred = model.sample(3, cond=context, generator=g)
    assert pred.shape == (3, 8, 1, 16, 16)
    assert torch.equal(pred[:, :4], context)
    assert pred[:, 4:].min() >= -1 and pred[:, 4:].max() <= 1


def test_the_loss_is_vqvae_plus_code_cross_entropy() -> None:
    model = _model()  # eval mode: the codebook does not move between the evaluations
    x = torch.rand(2, 8, 1, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    out = model.loss({"x": x})
    vq = model.vqvae.loss({"x": x.flatten(0, 1)}).loss
    ce = -model.code_log_prob(model.encode_codes(x)).sum() / (2 * model.positions)
    assert torch.allclose(out.loss, vq + ce, rtol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"cond": torch.zeros(2, 3, 16, 16)}, "(2, k, 1, 16, 16)"),
        ({"cond": torch.zeros(2, 3, 1, 8, 8)}, "(2, k, 1, 16, 16)"),
        ({"cond": torch.zeros(2, 8, 1, 16, 16)}, "give 1 to 7"),
        ({"frames": 16}, "frames=16"),
        ({"size": 32}, "size=32"),
        ({"guidance": 2.0}, "'guidance'"),
    ],
)
def test_bad_input_is_one_sentence(kwargs, needle) -> None:
    with pytest.raises(ConfigError) as e:
        _model().sample(2, **kwargs)
    msg = str(e.value)
    assert needle in msg and msg.count(". ") == 0 and "\n" not in msg


def test_non_video_data_is_refused() -> None:
    cls = MODELS.get("video-worldmodel")
    with pytest.raises(ConfigError, match="video data"):
        cls(cls.config_class(), dataset_info("digits"))
