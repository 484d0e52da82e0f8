"""``dreambooth(base_run, images)``: fine-tune a trained t2i-diffusion run on a folder of subject
images (``genzoo finetune RUN --dreambooth imgs/ --token sks``; the model is
:mod:`genzoo.models.diffusion.dreambooth`).

Before anything is written: the folder is read (an empty folder, a file that is no image, an
image of another aspect ratio: one sentence each), the base run is checked (it must be a
t2i-diffusion run), the settings are checked and the model is built; then the base model draws the
class images for "a [class noun]" (the prior-preservation set, Sec. 3.3 of arXiv:2208.12242), and
only then is the run directory created and trained by the one Trainer.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import yaml

from genzoo.core.errors import ConfigError, DataError
from genzoo.core.io import atomic_write_text
from genzoo.core.runs import CONFIG_FILE, read_run_config
from genzoo.core.seeding import make_generator, seed_everything
from genzoo.data.base import DataInfo, model_to_levels
from genzoo.data.captions import get_caption_tokenizer
from genzoo.data.subjects import SubjectDataset
from genzoo.models import MODELS
from genzoo.models.diffusion.dreambooth import DreamBooth, DreamBoothConfig
from genzoo.models.diffusion.t2i import TextToImageDiffusion
from genzoo.runs.build import build_checked, split_overrides, train_config
from genzoo.runs.load import load_submodel
from genzoo.runs.translate import read_image
from genzoo.train.safety import RunLock, storage_error
from genzoo.train.trainer import Trainer

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def read_subject_images(folder: str | Path, info: DataInfo) -> tuple[torch.Tensor, list[str]]:
    """The images of ``folder`` as ``(k, C, H, W)`` uint8 levels of ``info``'s shape, and their
    file names (sorted); an empty folder or a broken image is one sentence."""
    path = Path(folder)
    if not path.is_dir():
        raise DataError(f"--dreambooth {str(folder)!r} is not a folder of subject images.")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(
            f"Folder {str(folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES[:3])}, ...); "
            "DreamBooth needs 3-5 images of the subject."
        )
    xs = [read_image(f, info, "the base run")[0] for f in files]  # (1, C, H, W) each
    levels = int(info.levels or 256)
    x = model_to_levels(torch.cat(xs), levels).to(torch.uint8)
    return x, [f.name for f in files]


def dreambooth(
    base_run: str | Path,
    images: str | Path,
    *,
    token: str = "sks",
    class_noun: str = "square",
    prior_weight: float = 1.0,
    lora: int | None = None,
    n_prior: int = 64,
    prior_steps: int | None = None,
    steps: int | None = None,
    budget: str | float | None = None,
    out: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Fine-tune the t2i-diffusion run ``base_run`` on the subject images in ``images`` bound to
    ``token`` ("a sks square"), with ``n_prior`` class images of the base weighted by
    ``prior_weight``; ``lora``: train LoRA updates of this rank instead of every weight. Returns
    the new run (default ``runs/dreambooth-<token>``)."""
    cfg = read_run_config(base_run)
    base_cls = MODELS.get(str(cfg.get("model")))
    if not issubclass(base_cls, TextToImageDiffusion):
        raise ConfigError(
            f"DreamBooth fine-tunes a text-to-image diffusion run (t2i-diffusion); "
            f"{str(base_run)!r} is a {cfg.get('model')!r} run."
        )
    if n_prior < 0:
        raise ConfigError(f"n_prior = {n_prior} must be at least 0.")
    info = DataInfo.from_dict(cfg["data_info"])
    subject, names = read_subject_images(images, info)
    cls = DreamBooth
    m_over, t_over = split_overrides(cls, dict(overrides or {}))
    for key in ("base_run", "token", "class_noun", "prior_weight"):
        if key in m_over:
            raise ConfigError(f"Give {key} with its command-line option, not as {key}=...")
    m_over.update(
        base_run=str(base_run), token=token, class_noun=class_noun, prior_weight=prior_weight
    )
    if lora is not None:
        m_over.update(adapter="lora", lora_rank=lora)
    mcfg = DreamBoothConfig.from_dict(m_over)
    train_dict = {**cls.default_train, **t_over}
    tcfg = train_config(train_dict, steps, budget)
    run_dir = Path(out) if out is not None else _new_dir(token)
    if (run_dir / CONFIG_FILE).exists():
        raise ConfigError(
            f"Run directory {str(run_dir)!r} already holds a run; choose another --out."
        )
    base = load_submodel(str(base_run), mcfg.base_ema)
    seed_everything(tcfg.seed)
    net = build_checked(cls, mcfg, info, m_over, str(cfg["data"]), lambda r, e: base)
    tok = get_caption_tokenizer()
    prior = prior_text = None
    if mcfg.prior_weight > 0 and n_prior > 0:  # the class images, drawn before any training
        assert isinstance(base, TextToImageDiffusion)
        g = make_generator(tcfg.seed + 7)
        x = base.sample(n_prior, prompts=[mcfg.class_prompt], generator=g, steps=prior_steps)
        prior = model_to_levels(x, int(info.levels or 256)).to(torch.uint8)
        prior_text = tok.encode_batch([mcfg.class_prompt])
    data = SubjectDataset(info, subject, tok.encode_batch([mcfg.subject_prompt]), prior, prior_text)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise storage_error("to run directory", run_dir, e) from None
    with RunLock(run_dir):
        doc = {
            "model": cls.name,
            "data": cfg["data"],
            "method": "dreambooth",
            "subject_images": names,
            "class_images": 0 if prior is None else int(prior.shape[0]),
            "model_config": mcfg.to_dict(),
            "train": tcfg.to_dict(),
            "data_info": info.to_dict(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(doc, sort_keys=False))
        Trainer(net, data, tcfg, run_dir).fit()
    return run_dir


def _new_dir(token: str) -> Path:
    stem = Path("runs") / f"dreambooth-{token}"
    path, i = stem, 1
    while path.exists():
        i += 1
        path = Path(f"{stem}-{i}")
    return path
