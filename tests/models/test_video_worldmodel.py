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


# --- text = true: the caption as the stream's prefix (GAIA-1 / DALL-E) ------------------------
TEXT_SPEC = "moving-shapes?size=16&n=16"
SMALL = {"n_layer": 2, "n_head": 2, "n_embd": 32, "dropout": 0.0, "codebook_size": 16,
         "vq_width": 8, "code_dim": 4}  # fmt: skip


def _text_model(**extra):
    cls = MODELS.get("video-worldmodel")
    config = cls.config_class.from_dict({**SMALL, "text": True, "text_len": 8, **extra})
    torch.manual_seed(0)
    model = cls(config, dataset_info(TEXT_SPEC))
    with torch.no_grad():  # peaked, context-dependent next-token distributions
        for p in model.gpt.parameters():
            p.normal_(0, 0.5)
    return model.eval()


def test_text_false_is_the_old_model_bit_for_bit() -> None:
    cls = MODELS.get("video-worldmodel")
    info = dataset_info(TEXT_SPEC)
    torch.manual_seed(0)
    old = cls(cls.config_class.from_dict(SMALL), info)
    torch.manual_seed(0)
    new = cls(cls.config_class.from_dict({**SMALL, "text": False, "caption_dropout": 0.5}), info)
    a, b = old.state_dict(), new.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert new.gpt.config.vocab_size == new.n_codes + 1  # no caption tokens in the vocabulary
    assert new.gpt.config.block_size == new.positions
    batch = {"x": torch.rand(2, 8, 3, 16, 16, generator=torch.Generator().manual_seed(4)) * 2 - 1}
    batch["text"] = torch.ones(2, 24, dtype=torch.long)  # captions in the batch are not read
    torch.manual_seed(1)
    la = old.loss({"x": batch["x"]}).loss
    torch.manual_seed(1)
    lb = new.loss(batch).loss
    assert torch.equal(la, lb)
    # the text model has more: the caption tokens in the vocabulary and the context
    text = _text_model()
    assert text.gpt.config.vocab_size == text.n_codes + 1 + text.text_vocab
    assert text.gpt.config.block_size == 8 + text.positions


def test_text_loss_is_the_cross_entropy_of_the_frame_codes_only() -> None:
    model = _text_model(caption_dropout=0.0)
    from genzoo.data import load_dataset

    data = load_dataset(TEXT_SPEC, "train")
    x = data.x[:2].float() / 255 * 2 - 1  # levels -> model range
    text = data.extras["text"][:2]
    codes = torch.randint(model.n_codes, (2, model.positions), generator=torch.Generator())
    prefix = model.caption_prefix(text, 2)
    assert prefix.shape == (2, 8) and bool((prefix > model.n_codes).all())
    bos = torch.full((2, 1), model.bos, dtype=torch.long)
    logits = model.gpt(torch.cat([prefix, bos, codes[:, :-1]], dim=1))  # (2, 8 + TP, K)
    # by hand: the CE of the TP code targets, read from the logits at BOS and after it
    lp = logits[:, 8:].log_softmax(-1).gather(2, codes[:, :, None])[..., 0]
    assert torch.allclose(model.code_token_log_probs(codes, text), lp, atol=1e-5)
    out = model.loss({"x": x, "text": text})
    vq = model.vqvae.loss({"x": x.flatten(0, 1)}).loss
    ce = -model.code_token_log_probs(model.encode_codes(x), text).mean()
    assert torch.allclose(out.loss, vq + ce, rtol=1e-5)
    # the caption's positions are not scored: their logits can be anything (a target there
    # changes nothing), but the caption itself conditions the codes (the test could fail)
    other = text.clone()
    other[:, 2] = text[1, 2] if text[0, 2] != text[1, 2] else (text[0, 2] + 1) % model.text_vocab
    assert not torch.allclose(model.code_token_log_probs(codes, other), lp, atol=1e-3)


def test_text_cached_sampler_equals_uncached_with_a_caption_and_guidance() -> None:
    model = _text_model()
    text = model.encode_prompts(["a red circle moving left", "a blue square moving up"])
    for w in (1.0, 3.0):
        kw = {"text": text, "guidance": w}
        a = model.sample_codes(2, generator=torch.Generator().manual_seed(0), **kw)
        b = model.sample_codes(2, generator=torch.Generator().manual_seed(0), use_cache=False, **kw)
        assert a.shape == (2, model.positions) and torch.equal(a, b)
    # the caption steers the draws: another direction word, other codes
    other = model.encode_prompts(["a red circle moving right", "a blue square moving down"])
    c = model.sample_codes(2, text=other, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(a, c)
    out = model.sample(2, prompts=["a red circle moving left"], guidance=2.0)
    assert out.shape == (2, 8, 3, 16, 16) and out.min() >= -1 and out.max() <= 1


def test_text_bad_input_is_one_sentence() -> None:
    model = _text_model()
    long = "a red circle moving left " * 2  # 12 words + [BOS], [EOS]: more than text_len = 8
    cases = [
        (lambda: model.sample(1, prompts=[long]), "text_len = 8"),
        (lambda: model.sample(1, cond=torch.zeros(1, 2, 3, 16, 16)), "not first frames"),
        (lambda: _model().sample(1, prompts=["a red circle moving left"]), "text = false"),
    ]
    for call, needle in cases:
        with pytest.raises(ConfigError) as e:
            call()
        msg = str(e.value)
        assert needle in msg and msg.count(". ") == 0 and "\n" not in msg
    cls = MODELS.get("video-worldmodel")
    with pytest.raises(ConfigError) as e:  # a dataset without captions
        cls(cls.config_class.from_dict({**SMALL, "text": True}), dataset_info(SPEC))
    assert "moving-digits" in str(e.value) and "captioned" in str(e.value)


# --- decoder = diffusion: GAIA-1's video diffusion decoder, given the codes' VQ decoding ------
def _diffusion_model(**extra):
    cls = MODELS.get("video-worldmodel")
    config = cls.config_class.from_dict(
        {**SMALL, "decoder": "diffusion", "decoder_channels": 8, **extra}
    )
    torch.manual_seed(0)
    return cls(config, dataset_info(SPEC))


def test_both_decoders_decode_the_same_codes_and_keep_the_known_frames() -> None:
    model = _diffusion_model().eval()
    codes = model.sample_codes(2, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    model.sample_codes(2, generator=g)  # the codes are drawn first, then the decoder's noise
    expect = model.render_codes(codes, generator=g, steps=2)
    got = model.sample(2, generator=torch.Generator().manual_seed(0), decoder_steps=2)
    assert torch.equal(got, expect)
    vq = model.sample(2, generator=torch.Generator().manual_seed(0), decoder="vq")
    assert torch.equal(vq, model.decode_codes(codes))
    assert not torch.allclose(got, vq)  # the diffusion decoder draws its own frames
    context = torch.rand(2, 3, 1, 16, 16, generator=torch.Generator().manual_seed(4)) * 2 - 1
    pred = model.sample(2, cond=context, generator=g, decoder_steps=2)
    assert torch.equal(pred[:, :3], context) and pred.min() >= -1 and pred.max() <= 1
    # decoder = vq (the default): no parameter of a diffusion decoder exists
    assert not any(k.startswith("decoder.") for k in _model().state_dict())
    assert any(k.startswith("decoder.") for k in model.state_dict())


def test_the_loss_adds_the_decoders_edm_loss_given_the_codes_vq_decoding() -> None:
    model = _diffusion_model(decoder_weight=0.5).eval()  # eval: the codebook stays put
    x = torch.rand(2, 8, 1, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    torch.manual_seed(5)
    out = model.loss({"x": x})
    torch.manual_seed(5)  # the same draws of sigma and noise, in the same order
    vq = model.vqvae.loss({"x": x.flatten(0, 1)}).loss
    codes = model.encode_codes(x)
    ce = -model.code_log_prob(codes).sum() / (2 * model.positions)
    dec = model.decoder.per_example_loss(x, model.decode_codes(codes)).mean()
    assert torch.allclose(out.loss, vq + ce + 0.5 * dec, rtol=1e-5)
    assert torch.allclose(out.logs["decoder_loss"], dec)


def test_the_coarse_input_is_learnt() -> None:
    """A ``coarse_input`` decoder trained for a few steps on clips given their blurred version
    denoises a heavily noised clip far better given its own blurred clip than another clip's:
    the coarse clip reaches the network and is used (fails if it were dropped or misplaced)."""
    from genzoo.data import load_dataset
    from genzoo.data.base import levels_to_model
    from genzoo.models.diffusion.video import VideoDiffusion, VideoDiffusionConfig

    spec = "moving-digits?size=16&n=32&frames=4"
    clips = levels_to_model(load_dataset(spec, "train").x, 256)  # (32, 4, 1, 16, 16)
    config = VideoDiffusionConfig.from_dict(
        {"coarse_input": True, "context_prob": 0, "channels": 8, "channel_mult": [1, 2]}
    )
    torch.manual_seed(0)
    model = VideoDiffusion(config, dataset_info(spec))

    def blur(x: torch.Tensor) -> torch.Tensor:  # 2 x 2 means: about what 8 x 8 codes keep
        f = torch.nn.functional.avg_pool2d(x.flatten(0, 1), 2)
        return torch.nn.functional.interpolate(f, scale_factor=2).view(x.shape)

    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        batch = clips[torch.randint(0, clips.shape[0], (8,), generator=g)]
        opt.zero_grad()
        model.per_example_loss(batch, blur(batch)).mean().backward()
        opt.step()
    x = clips[:16]
    noisy = x + torch.randn(x.shape, generator=g)  # sigma = 1: twice the data's spread
    sigma, none = torch.ones(16), torch.zeros(16, 4)

    def error(y: torch.Tensor) -> float:
        with torch.no_grad():
            d = model.denoise(noisy, sigma, model.pack_context(x, none, y))
        return float(((d - x) ** 2).mean())

    own, other = error(blur(x)), error(blur(x).roll(1, 0))
    assert own < 0.6 * other, (own, other)


def test_the_coarse_input_is_refused_where_it_does_not_exist() -> None:
    from genzoo.models.diffusion.video import VideoDiffusion, VideoDiffusionConfig

    info = dataset_info(SPEC)
    alone = VideoDiffusion(VideoDiffusionConfig.from_dict({"coarse_input": True}), info)
    x = torch.zeros(2, 8, 1, 16, 16)
    for call in (lambda: alone.loss({"x": x}), lambda: alone.sample(2, steps=1)):
        with pytest.raises(ConfigError, match="give them") as e:
            call()
        assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"\(2, 8, 1, 16, 16\)"):
        alone.sample(2, steps=1, coarse=torch.zeros(2, 4, 1, 16, 16))
    plain = VideoDiffusion(VideoDiffusionConfig(), info)
    with pytest.raises(ConfigError, match="no coarse clips"):
        plain.sample(2, steps=1, coarse=x)
    with pytest.raises(ConfigError, match="no diffusion decoder"):
        _model().sample(2, decoder="diffusion")
    with pytest.raises(ConfigError, match="'dpmpp-2m'"):
        MODELS.get("video-worldmodel").config_class.from_dict({"decoder_sampler": "fast"})


def test_nan_context_frames_and_vq_decoder_steps_are_one_sentence() -> None:
    """NaN context frames are refused before their codes are drawn; ``decoder_steps`` /
    ``decoder_sampler`` with the VQ decoder (which decodes in one step) are not silently
    ignored."""
    model = _model()
    context = torch.zeros(1, 2, 1, 16, 16)
    context[0, 0, 0, 0, 0] = float("inf")
    with pytest.raises(ConfigError, match="NaN or infinite"):
        model.sample(1, cond=context)
    with pytest.raises(ConfigError, match="diffusion decoder"):
        model.sample(1, decoder_steps=0)
    with pytest.raises(ConfigError, match="diffusion decoder"):
        model.sample(1, decoder_sampler="heun")
