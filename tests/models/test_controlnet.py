"""ControlNet (arXiv:2302.05543) and DreamBooth (arXiv:2208.12242): a ControlNet starts as its base
bit for bit while its zero convolutions get a gradient; control scale 0 is the base under every
sampler, guided or not; classifier-free guidance adds the control in both branches; the shapes
control map is the renderer's exact mask and the edge map is the Sobel formula; DreamBooth with
lambda = 0 is plain fine-tuning; bad input is one sentence."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from tiny_t2i import INFO, tiny_t2i

from genzoo.core.errors import ConfigError
from genzoo.data import load_dataset
from genzoo.data.base import levels_to_model
from genzoo.data.captions import get_caption_tokenizer
from genzoo.data.control import EDGE_THRESHOLD, edge_map
from genzoo.data.images import DIGITS_INFO
from genzoo.data.shapes import make_scenes, object_masks, render
from genzoo.data.subjects import SubjectDataset, render_subject
from genzoo.diffusion.guidance import ClassifierFreeGuidance
from genzoo.diffusion.samplers import SAMPLERS
from genzoo.models.autoencoders import VAE, VAEConfig
from genzoo.models.diffusion import EDM, ControlNet, ControlNetConfig, DreamBooth, EDMConfig
from genzoo.models.diffusion.dreambooth import DreamBoothConfig
from genzoo.train.trainer import TrainConfig, Trainer


def tiny_base() -> torch.nn.Module:
    return tiny_t2i(text_width=16, text_layers=1, text_heads=2, sample_steps=2)


def tiny_edm() -> EDM:
    torch.manual_seed(0)
    cfg = EDMConfig.from_dict({"channels": 8, "class_conditional": True})
    m = EDM(cfg, DIGITS_INFO).eval()
    torch.nn.init.normal_(m.net.conv_out.weight, std=0.2)
    return m


def randomise_zero_convs(cn: ControlNet) -> None:
    """As after training: the zero convolutions (and the hint's last one) are no longer zero."""
    torch.manual_seed(5)
    for z in [*cn.zero_convs, cn.hint.out]:
        torch.nn.init.normal_(z.weight, std=0.3)
        torch.nn.init.normal_(z.bias, std=0.1)


def test_at_init_a_controlnet_is_its_base_bit_for_bit_and_zero_convs_get_gradient() -> None:
    g = torch.Generator().manual_seed(0)
    for base, info in ((tiny_base(), INFO), (tiny_edm(), DIGITS_INFO)):
        cn = ControlNet(ControlNetConfig(), info, base=base)
        b = 3
        x = torch.randn(b, *info.shape, generator=g)
        sigma = torch.tensor([0.05, 1.0, 20.0])
        if cn.is_t2i:
            cond = base.encode_prompts(["a red circle", "a blue square", "a green cross"])
        else:
            cond = torch.tensor([1, 7, 10])  # 10: the null class
        controls = [
            torch.rand(b, 1, *info.shape[1:], generator=g),
            torch.ones(b, 1, *info.shape[1:]),
        ]
        with torch.no_grad():
            want = base.denoise(x, sigma, cond)
            for c in controls:
                assert torch.equal(cn.denoise(x, sigma, cn.pack(cond, 1.0, c)), want)
        batch = {
            "x": torch.rand(4, *info.shape, generator=g) * 2 - 1,
            "y": torch.tensor([1, 2, 3, 4]),
            "control": (torch.rand(4, 1, *info.shape[1:], generator=g) > 0.5).float(),
        }
        if cn.is_t2i:
            batch["text"] = base.encode_prompts(["a red circle"] * 4)
        cn.train()
        cn.loss(batch).loss.backward()
        for z in cn.zero_convs:
            assert z.weight.grad is not None and z.weight.grad.abs().sum() > 0
        assert all(p.grad is None for p in cn.base.parameters())  # the base is locked
        assert all(not k.startswith("base.") for k in cn.state_dict())  # and not saved


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_control_scale_zero_is_the_base_under_every_sampler(sampler: str) -> None:
    """With trained (non-zero) zero convolutions, scale 0 gives the base's samples exactly, with
    classifier-free guidance (w = 3)."""
    base = tiny_base()
    cn = ControlNet(ControlNetConfig(), INFO, base=base).eval()
    randomise_zero_convs(cn)
    opts = {"steps": 2, "sampler": sampler, "guidance": 3.0, "prompts": ["a red circle"]}
    want = base.sample(2, generator=torch.Generator().manual_seed(1), **opts)
    control = torch.ones(1, 16, 16)
    g = torch.Generator().manual_seed(1)
    assert torch.equal(cn.sample(2, control=control, control_scale=0.0, generator=g, **opts), want)


def test_class_conditional_base_scale_zero_is_the_base_and_scale_one_is_not() -> None:
    base = tiny_edm()
    cn = ControlNet(ControlNetConfig(control="edges"), DIGITS_INFO, base=base).eval()
    randomise_zero_convs(cn)
    opts = {"steps": 3, "guidance": 2.0, "cond": torch.tensor([3, 4])}
    want = base.sample(2, generator=torch.Generator().manual_seed(1), **opts)
    control = torch.ones(1, 8, 8)
    g = torch.Generator().manual_seed(1)
    assert torch.equal(cn.sample(2, control=control, control_scale=0.0, generator=g, **opts), want)
    on = cn.sample(2, control=control, generator=torch.Generator().manual_seed(1), **opts)
    assert (on - want).abs().max() > 1e-3


def test_guidance_adds_the_control_in_both_branches() -> None:
    """``D_w = D_u + w (D_c - D_u)`` where both ``D_u`` (null caption) and ``D_c`` carry the
    control residuals; the null condition changes only the caption part."""
    base = tiny_base()
    cn = ControlNet(ControlNetConfig(), INFO, base=base).eval()
    randomise_zero_convs(cn)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 16, 16, generator=g)
    sigma = torch.tensor([0.5, 3.0])
    tok = base.encode_prompts(["a red circle", "a blue cross"])
    control = (torch.rand(2, 1, 16, 16, generator=g) > 0.5).float()
    packed = cn.pack(tok, 0.7, control)
    null = cn.null_condition(packed)
    assert torch.equal(null[:, cn.n_cond :], packed[:, cn.n_cond :])
    scale = torch.full((2,), 0.7)
    with torch.no_grad():
        d_c = cn.controlled_denoise(x, sigma, tok, control, scale)
        d_u = cn.controlled_denoise(x, sigma, base.null_tokens(2), control, scale)
        d_u_plain = cn.controlled_denoise(x, sigma, base.null_tokens(2), control, 0 * scale)
        d_w = ClassifierFreeGuidance(cn.denoise, 3.0, cn.null_condition)(x, sigma, packed)
    torch.testing.assert_close(d_w, d_u + 3.0 * (d_c - d_u), atol=1e-5, rtol=1e-5)
    assert (d_u - d_u_plain).abs().max() > 1e-3  # the unconditional branch is controlled too


def test_shapes_control_map_is_the_renderers_mask() -> None:
    """The mask is 1 exactly where a pixel centre is inside an object: for circles the closed form
    ``|p - c| <= r``; for every shape, where the rendered colour is at least half the object's
    (coverage >= 1/2 up to 8-bit rounding); and the control dataset's batches carry it."""
    size = 16
    scenes = make_scenes(60, 4, "test", max_objects=1)
    masks = object_masks(scenes, size)
    img = render(scenes, size).float()
    p = torch.arange(size, dtype=torch.float64) + 0.5
    for i, s in enumerate(scenes):
        o = s.objects[0]
        ch = int(np.argmax(o.rgb))
        v, half = img[i, ch], o.rgb[ch] / 2
        m = masks[i, 0].bool()
        assert (v[m] >= half - 1).all() and (v[~m] <= half + 1).all()
        if o.shape == 0:  # circle
            d2 = (p[None, :] - o.cx * size) ** 2 + (p[:, None] - o.cy * size) ** 2
            closed = d2 <= (o.r * size) ** 2
            assert (closed != m).sum() <= 1  # float32 against float64 on the boundary
    data = load_dataset("control:mask:shapes?size=16&n=40", "train")
    idx = torch.tensor([0, 5, 39])
    want = object_masks([data.base.scenes[i] for i in idx.tolist()], 16)
    assert torch.equal(data.get(idx)["control"], want)


def test_edge_map_is_the_thresholded_sobel_magnitude() -> None:
    """Against the Sobel formula written out (half-sample symmetric borders, as SciPy's
    ``reflect``): ``|G| / 4 > threshold`` with ``G = (K_x * I, K_y * I)``."""
    x = levels_to_model(load_dataset("digits", "test").x[:5], 17)
    grey = ((x.mean(1) + 1) / 2).double().numpy()
    pad = np.pad(grey, ((0, 0), (1, 1), (1, 1)), mode="symmetric")
    kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
    h, w = grey.shape[1:]
    gx = sum(kx[i, j] * pad[:, i : i + h, j : j + w] for i in range(3) for j in range(3))
    gy = sum(kx.T[i, j] * pad[:, i : i + h, j : j + w] for i in range(3) for j in range(3))
    want = torch.from_numpy(np.hypot(gx, gy) / 4 > EDGE_THRESHOLD).float()[:, None]
    assert torch.equal(edge_map(x), want)


def test_bad_control_and_bad_base_are_one_sentence() -> None:
    base = tiny_base()
    cn = ControlNet(ControlNetConfig(), INFO, base=base)
    for bad in (torch.zeros(1, 3, 16, 16), torch.zeros(1, 1, 32, 32)):
        with pytest.raises(ConfigError, match=r"must be 16x16 with 1 channel") as e:
            cn.sample(1, control=bad, steps=1)
        assert "\n" not in str(e.value)
    nan_map = torch.full((1, 1, 16, 16), float("nan"))  # it sampled NaN images without a word
    with pytest.raises(ConfigError, match="holds NaN or infinite values"):
        cn.sample(1, control=nan_map, steps=1)
    for scale, needle in ((float("nan"), "finite"), (-1.0, ">= 0"), ("abc", "a number")):
        with pytest.raises(ConfigError, match=f"control_scale = .* must be.*{needle}"):
            cn.sample(1, control=torch.zeros(1, 1, 16, 16), control_scale=scale, steps=1)
    vae = VAE(VAEConfig(), DIGITS_INFO)
    with pytest.raises(ConfigError, match=r"t2i-diffusion, edm, ddpm.*holds 'vae'") as e:
        ControlNet(ControlNetConfig(), DIGITS_INFO, base=vae)
    with pytest.raises(ConfigError, match=r"'controlnet'"):
        ControlNet(ControlNetConfig(), INFO, base=cn)
    with pytest.raises(ConfigError, match="needs base_run"):
        ControlNet(ControlNetConfig(), INFO)
    with pytest.raises(ConfigError, match="choose 'mask' or 'edges'"):
        ControlNetConfig.from_dict({"control": "depth"})


def _fit(model: torch.nn.Module, data: SubjectDataset, run_dir, steps: int = 3) -> None:
    cfg = TrainConfig(steps=steps, batch_size=3, lr=1e-3, seed=4, n_samples=1, progress=False,
                      tensorboard=False, ckpt_every=0, ckpt_every_s=0.0)  # fmt: skip
    torch.manual_seed(cfg.seed)  # the global noise, as runs/train.py seeds it
    Trainer(model, data, cfg, run_dir).fit()


def test_dreambooth_without_prior_is_plain_finetuning(tmp_path) -> None:
    """lambda = 0: the same parameters, bit for bit, as fine-tuning the base t2i model on the
    subject images with the same seed and steps; lambda = 1 moves them elsewhere."""
    base = tiny_base()
    tok = get_caption_tokenizer()
    subject = render_subject("striped-square", 3, 16)
    prior = render_subject("star", 5, 16, seed=1)
    data = SubjectDataset(INFO, subject, tok.encode_batch(["a sks square"]), prior,
                          tok.encode_batch(["a square"]))  # fmt: skip
    plain = copy.deepcopy(base).train()
    _fit(plain, data, tmp_path / "plain")
    runs = {}
    for lam in (0.0, 1.0):
        db = DreamBooth(DreamBoothConfig(prior_weight=lam), INFO, base=copy.deepcopy(base))
        _fit(db, data, tmp_path / f"db{lam:g}")
        runs[lam] = db
    want = dict(plain.named_parameters())
    for name, p in runs[0.0].policy.named_parameters():
        assert torch.equal(p, want[name]), name
    moved = [n for n, p in runs[1.0].policy.named_parameters() if not torch.equal(p, want[n])]
    assert moved


def test_dreambooth_lora_trains_only_the_updates() -> None:
    base = tiny_base()
    db = DreamBooth(DreamBoothConfig(adapter="lora", lora_rank=2), INFO, base=base)
    trained = [n for n, p in db.named_parameters() if p.requires_grad]
    assert trained and all(n.endswith(("lora_A", "lora_B")) for n in trained)
    assert set(db.state_dict()) == set(trained)
    with pytest.raises(ConfigError, match="text-to-image diffusion run"):
        DreamBooth(DreamBoothConfig(), DIGITS_INFO, base=tiny_edm())
