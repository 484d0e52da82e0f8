"""A tiny text-to-image diffusion model for tests (importable from any test: tests/ is on the path
through its conftest.py)."""

import torch

from genzoo.data.shapes import shapes_info
from genzoo.models.diffusion.t2i import T2IDiffusionConfig, TextToImageDiffusion

INFO = shapes_info("shapes?size=16")


def _no_runs(run: str, ema: bool) -> torch.nn.Module:
    raise AssertionError(f"tiny_t2i loads no runs (asked for {run!r})")


def tiny_t2i(seed: int = 0, **kw) -> TextToImageDiffusion:
    """8-channel U-Net; the zero-initialised projections of the cross-attention blocks and of the
    output are drawn at random, since zeros would hide the conditioning that tests look for. The
    parts (the frozen MiniLM with ``text_encoder="minilm"``) come from ``load_parts``, as in a
    run."""
    torch.manual_seed(seed)
    cfg = T2IDiffusionConfig.from_dict({"channels": 8, **kw})
    parts = TextToImageDiffusion.load_parts(cfg, _no_runs)
    m = TextToImageDiffusion(cfg, INFO, **parts).eval()
    for blk in m.net.modules():
        if type(blk).__name__ == "CrossAttnBlock":
            torch.nn.init.normal_(blk.proj.weight, std=0.2)
    torch.nn.init.normal_(m.net.conv_out.weight, std=0.2)
    return m
