"""Text-conditioned video diffusion (``video-diffusion`` with ``text = true`` on moving-shapes):
with text off the model is the first-frame model unchanged; the caption reaches the denoiser only
through its conditioning (another caption, another output; a dropped caption is the null one);
classifier-free guidance's closed form (w = 1 is the conditional denoiser); prompts outside the
vocabulary and conditions the run cannot take are one warning or one sentence; ``genzoo sample
RUN --prompt P --out clip.gif`` draws the library's clips."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from genzoo.core.errors import ConfigError, GenzooWarning
from genzoo.data import dataset_info
from genzoo.data.captions import get_caption_tokenizer
from genzoo.data.video import load_video
from genzoo.diffusion.guidance import ClassifierFreeGuidance
from genzoo.diffusion.samplers import run_sampler
from genzoo.models import MODELS
from genzoo.nn.spacetime import SpaceTimeUNet
from genzoo.nn.unet import UNet

SPEC = "moving-shapes?size=16&n=16&frames=4"
SMALL = {"channels": 8, "channel_mult": [1, 2]}
TEXT = {"text": True, "context_prob": 0.0, "text_width": 16, "text_layers": 1, "text_heads": 2}


def _model(**cfg):
    cls = MODELS.get("video-diffusion")
    torch.manual_seed(0)
    return cls(cls.config_class.from_dict({**SMALL, **cfg}), dataset_info(SPEC))


def _text_model(**cfg):
    """Untrained, with the zero-initialised cross-attention, temporal and output projections
    drawn at random (zeros would hide the conditioning)."""
    m = _model(**TEXT, **cfg)
    with torch.no_grad():
        for blk in m.net.modules():
            if type(blk).__name__ == "CrossAttnBlock":
                blk.proj.weight.normal_(0, 0.2)
        for p in m.net.temporal.parameters():
            p.normal_(0, 0.2)
        m.net.spatial.conv_out.weight.normal_(0, 0.2)
    return m.eval()


def _inputs(b: int):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(b, 4, 3, 16, 16, generator=g)
    return x, torch.tensor([0.1, 0.7, 3.0, 20.0][:b])


def test_text_off_is_the_unchanged_model() -> None:
    """Without text the model holds exactly the space-time U-Net it always had (the same draws
    at the same seed, no text part) and its denoiser is EDM Eq. 7 on ``[c_in x, 0, 0]``."""
    m = _model().eval()
    torch.manual_seed(0)
    unet = UNet(in_channels=7, out_channels=3, resolution=16,
                **{**dataclasses.asdict(m.config.unet), **SMALL})  # fmt: skip
    ref = SpaceTimeUNet(unet)
    got, want = m.state_dict(), {f"net.{k}": v for k, v in ref.state_dict().items()}
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)
    with torch.no_grad():
        for p in ref.parameters():  # non-trivial: the zero-initialised layers drawn at random
            p.normal_(0, 0.1)
        m.net.load_state_dict(ref.state_dict())
        x, sigma = _inputs(2)
        c_skip, c_out, c_in, c_noise = m.precond(sigma)
        inp = torch.cat([c_in.view(-1, 1, 1, 1, 1) * x, torch.zeros(2, 4, 4, 16, 16)], 2)
        d = c_skip.view(-1, 1, 1, 1, 1) * x + c_out.view(-1, 1, 1, 1, 1) * ref(inp, c_noise)
        torch.testing.assert_close(m.denoise(x, sigma), d, rtol=0, atol=0)


def test_the_caption_reaches_the_output_only_through_its_conditioning() -> None:
    """Another caption, another denoiser output (on every frame); a caption dropped by caption
    dropout gives exactly the null caption's output, and no caption (None) is the null caption."""
    m = _text_model(caption_dropout=0.5)
    x, sigma = _inputs(4)
    prompts = ["a red circle moving left", "a blue square moving up"] * 2
    tok = m.encode_prompts(prompts)
    other = m.encode_prompts(["a green cross moving right", "a red circle moving down"] * 2)
    null = m.null_condition(tok)
    dropped = m.drop_captions(tok, generator=torch.Generator().manual_seed(1))
    gone = (dropped == m.pad_id).all(1)
    assert 0 < int(gone.sum()) < 4  # this draw drops some captions and keeps others
    with torch.no_grad():
        d_c, d_o = m.denoise(x, sigma, tok), m.denoise(x, sigma, other)
        d_u, d_none = m.denoise(x, sigma, null), m.denoise(x, sigma, None)
        d_drop = m.denoise(x, sigma, dropped)
    assert ((d_c - d_o).flatten(2).abs().amax(2) > 1e-3).all()  # (B, T): every frame of every clip
    torch.testing.assert_close(d_none, d_u, rtol=0, atol=0)
    torch.testing.assert_close(d_drop[gone], d_u[gone], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(d_drop[~gone], d_c[~gone], rtol=1e-6, atol=1e-6)


def test_guidance_w1_is_the_conditional_denoiser_and_sampling_is_the_template() -> None:
    """``D_w = D_u + w (D_c - D_u)``: w = 1 gives the conditional denoiser, w = 0 the null one,
    w = 3 the extrapolation; ``sample(prompts=..., guidance=1)`` is the sampler on the unguided
    conditional denoiser."""
    m = _text_model()
    x, sigma = _inputs(2)
    tok = m.encode_prompts(["a red circle moving left", "a purple triangle moving down"])
    with torch.no_grad():
        d_c, d_u = m.denoise(x, sigma, tok), m.denoise(x, sigma, m.null_condition(tok))
        for w, want in [(1.0, d_c), (0.0, d_u), (3.0, d_u + 3 * (d_c - d_u))]:
            got = ClassifierFreeGuidance(m.denoise, w, m.null_condition)(x, sigma, tok)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert (d_c - d_u).abs().max() > 1e-3
    prompts = ["a red circle moving left", "a purple triangle moving down"]
    out = m.sample(
        2, prompts=prompts, guidance=1.0, steps=2, generator=torch.Generator().manual_seed(4)
    )
    g = torch.Generator().manual_seed(4)
    sig = m.sampling_sigmas(2)
    x0 = torch.randn(2, 4, 3, 16, 16, generator=g) * m.prior_std(float(sig[0]))
    ref = run_sampler("heun", m.sampling_denoiser, x0, sig, cond=tok, generator=g).clamp(-1, 1)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_bad_prompts_and_conditions_are_one_warning_or_one_sentence() -> None:
    m = _text_model()
    with pytest.warns(GenzooWarning, match=r"\[UNK\]: 'zigzagging'"):
        m.sample(1, prompts="a red circle zigzagging left", steps=1)
    with pytest.raises(ConfigError, match="not first frames"):
        m.sample(1, cond=torch.zeros(1, 2, 3, 16, 16), steps=1)
    with pytest.raises(ConfigError, match="takes no prompt"):
        _model().sample(1, prompts="a red circle moving left", steps=1)
    cls = MODELS.get("video-diffusion")
    with pytest.raises(ConfigError, match="exclusive conditions; set context_prob=0"):
        cls.config_class.from_dict({"text": True})
    with pytest.raises(ConfigError, match="needs captioned clips"):
        cls(cls.config_class.from_dict(TEXT), dataset_info("moving-digits?size=16"))


def test_moving_shapes_batches_carry_their_caption_tokens() -> None:
    ds = load_video(SPEC)
    batch = ds.get(torch.arange(6))
    texts = get_caption_tokenizer(motion=True).decode_batch(batch["text"])
    assert texts == ds.captions[:6] and all(" moving " in t for t in texts)
    assert not get_caption_tokenizer(motion=True).unknown_words(ds.captions)


def test_cli_sample_with_a_prompt_writes_the_library_clips(tmp_path, capsys) -> None:
    import genzoo
    from genzoo.cli import main

    run = tmp_path / "run"
    args = ["train", "video-diffusion", "--data", SPEC, "--steps", "1", "--out", str(run),
            "channels=4", "channel_mult=[1]", "batch_size=2", "n_samples=2", "progress=false",
            "tensorboard=false", "text=true", "context_prob=0", "text_width=8", "text_layers=1",
            "text_heads=2"]  # fmt: skip
    assert main(args) == 0
    prompt = ["--prompt", "a red circle moving left", "--steps", "1", "--n", "2"]
    assert main(["sample", str(run), *prompt, "--out", str(tmp_path / "c.npy")]) == 0
    ref = genzoo.sample(run, 2, steps=1, prompts=["a red circle moving left"])
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), ref.numpy())
    pytest.importorskip("imageio")
    assert main(["sample", str(run), *prompt, "--out", str(tmp_path / "clip.gif")]) == 0
    assert (tmp_path / "clip.gif").stat().st_size > 0


def test_tracked_motion_direction_of_a_moving_square() -> None:
    """A 3 x 3 square moved by 1 px per frame along each of the 4 directions is read as that
    direction (left, right, up, down); a still square is no direction (-1); and prompt_match
    needs colour, shape and direction all right."""
    from genzoo.data.video import SHAPE_STEPS
    from genzoo.metrics.video import motion_directions, prompt_match

    clips = -torch.ones(5, 6, 3, 16, 16)
    for k, (dx, dy) in enumerate([*SHAPE_STEPS, (0, 0)]):
        for t in range(6):
            x, y = 6 + dx * t, 6 + dy * t
            clips[k, t, :, y : y + 3, x : x + 3] = 1.0
    assert motion_directions(clips).tolist() == [0, 1, 2, 3, -1]

    def read(frames):  # every frame read as colour 2, shape 1
        return {"colour": torch.full((frames.shape[0],), 2), "shape": torch.ones(frames.shape[0])}

    m = prompt_match(read, clips[:4], torch.tensor([2, 2, 0, 2]), torch.tensor([1, 1, 1, 3]),
                     torch.tensor([0, 2, 2, 3]))  # fmt: skip
    assert m["all"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert m["direction"].tolist() == [1.0, 0.0, 1.0, 1.0]


def test_motion_words_have_a_vocabulary_of_their_own():
    """moving-shapes adds its motion words in a vocabulary of its own: the caption vocabulary of
    every other caption model (and so the checkpoints trained with it) is left as it was."""
    base, motion = get_caption_tokenizer(), get_caption_tokenizer(motion=True)
    assert "moving" in base.unknown_words(["a red circle moving up"])
    assert motion.unknown_words(["a red circle moving up", "a blue square moving down"]) == []
    assert base.fingerprint() != motion.fingerprint()
    assert set(base.tok.get_vocab()) < set(motion.tok.get_vocab())
