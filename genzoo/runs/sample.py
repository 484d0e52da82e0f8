"""``sample(run, n)``: draw samples from a trained run; ``sample_to_file`` also writes them (a
picture, raw ``.npy`` samples, or ``.txt`` for a text run) as ``genzoo sample`` does."""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genzoo.core.errors import ConfigError, choices
from genzoo.core.options import count, memory_bytes
from genzoo.core.protocol import PromptConditioned, Samples, Vocodes
from genzoo.core.runs import read_run_config
from genzoo.core.seeding import make_generator
from genzoo.data import load_dataset
from genzoo.data.base import DataInfo
from genzoo.data.melview import audio_info_of, is_mel_view_spec, mel_settings, view_to_audio
from genzoo.diffusion.guidance import check_guidance
from genzoo.diffusion.samplers import SAMPLERS
from genzoo.models import MODELS
from genzoo.models.diffusion.base import DiffusionModel
from genzoo.runs.load import load
from genzoo.viz import (
    VIDEO_SUFFIXES,
    check_video_backend,
    save_images_folder,
    save_samples_png,
    save_video,
)

_ALWAYS = ("n", "cond", "generator")  # the contract's own arguments of ``Samples.sample``

AUDIO_GAP = 0.25  # seconds of silence between the samples of one WAV file


def sample(
    run: str | Path,
    n: int = 64,
    *,
    seed: int = 0,
    sampler: str | None = None,
    steps: int | None = None,
    label: int | None = None,
    batch_size: int = 1000,
    **options: Any,
) -> torch.Tensor:
    """``n`` samples from a run, in the dataset's model range, on the CPU; ``label`` draws every
    sample of class ``label`` (class-conditional models); ``options`` go to the model's
    ``sample`` (``temperature``, ``top_k``, ``guidance``, ...; ``cond``: labels ``(n,)``, split
    with the batches)."""
    n = count(n, "--n")
    batch_size = count(batch_size, "batch_size", "samples per model call")
    check_steps(steps)
    info = DataInfo.from_dict(read_run_config(run)["data_info"])
    check_fits_in_memory(n, info)
    if options.get("guidance") is not None:  # every family's classifier-free guidance
        options["guidance"] = check_guidance(options["guidance"])
    if label is not None:
        options["cond"] = torch.full((n,), check_label(label, info, run), dtype=torch.long)
    model = load(run)
    if not isinstance(model, Samples):
        raise _no_samples(run, model.name, model.family)
    g = make_generator(seed, device=model.device)
    extra = dict(options)
    if sampler is not None:
        extra["sampler"] = sampler
    if steps is not None:
        extra["steps"] = steps
    cond = extra.pop("cond", None)
    out = []
    for i in range(0, n, batch_size):
        m = min(batch_size, n - i)
        part = cond[i : i + m] if cond is not None else None  # labels of this chunk
        if part is not None:
            extra["cond"] = part
        out.append(model.sample(m, generator=g, **extra).cpu())
    return torch.cat(out)


def check_label(label: int, info: DataInfo, run: str | Path) -> int:
    """``label`` if it is a class of the run's data, else one sentence naming the classes."""
    if info.n_classes < 1:
        raise ConfigError(
            f"--class {label}: the data of run {str(run)!r} ({info.name!r}) has no classes."
        )
    if isinstance(label, bool) or not isinstance(label, numbers.Integral):
        raise ConfigError(f"--class {label!r} must be a whole number, a class of {info.name!r}.")
    if not 0 <= label < info.n_classes:
        names = f" ({', '.join(info.class_names)})" if info.class_names else ""
        raise ConfigError(
            f"--class {label} is not a class of {info.name!r}; choose 0..{info.n_classes - 1}"
            f"{names}."
        )
    return label


def check_fits_in_memory(n: int, info: DataInfo) -> None:
    """One sentence when ``n`` samples of the data's shape (float32) would take more than half
    of this machine's memory: drawing them would run for long and then fail."""
    total = memory_bytes()  # 0 where it cannot be read (Windows): no check
    need = n * math.prod(int(s) for s in info.shape) * 4
    if total > 0 and need > total / 2:
        raise ConfigError(
            f"--n {n} samples of shape {tuple(info.shape)} would take {need / 2**30:,.1f} GiB, "
            f"more than half of this machine's {total / 2**30:,.0f} GiB of memory; draw fewer "
            "(several calls with other --seed values add up)."
        )


def check_steps(steps: Any) -> None:
    """A sampler's ``--steps``: a whole number >= 1, or ``None`` for the model's default (0
    would read as the default further down, so it is refused here)."""
    if steps is not None:
        count(steps, "--steps", "sampling steps; leave it out for the model's default")


def _no_samples(run: str | Path, model: str, family: str) -> ConfigError:
    return ConfigError(
        f"Run {str(run)!r} holds model {model!r}, which does not draw samples; "
        f"use `genzoo eval` (or the {family} commands) with it."
    )


def sample_keywords(model_cls: type) -> list[str]:
    """The named keywords of a model class's ``sample`` (its signature, beyond ``n``, ``cond``
    and ``generator``); options a model reads from ``**options`` it checks itself."""
    params = inspect.signature(model_cls.sample).parameters.values()
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in params if p.kind in named and p.name not in (*_ALWAYS, "self")]


def _check_diffusion_options(
    cls: type[DiffusionModel], sampler: str | None, options: dict[str, Any]
) -> None:
    """A diffusion model passes the options its ``sample`` does not name to its sampler: one
    sentence for an option that neither takes, listing both sets."""
    named = sample_keywords(cls)
    if sampler not in SAMPLERS:
        return  # an unknown sampler: the model's own sentence names the choices
    params = inspect.signature(SAMPLERS[sampler]).parameters
    takes = [p for p in params if p not in ("denoiser", "x", "sigmas", *_ALWAYS, "callback")]
    for key in options:
        if key not in named and key not in takes and key != "prompts":
            raise ConfigError(
                f"Unknown sampling option {key!r} for {cls.name!r}; it takes {choices(named)}, "
                f"and its sampler {sampler!r} takes {choices(takes) if takes else 'none'}."
            )


def sample_to_file(
    run: str | Path,
    n: int = 64,
    out: str | Path | None = None,
    *,
    seed: int = 0,
    sampler: str | None = None,
    steps: int | None = None,
    label: int | None = None,
    prompts: list[str] | None = None,
    guidance: float | None = None,
    options: dict[str, Any] | None = None,
    vocoder: str | Path | None = None,
) -> Path:
    """Draw ``n`` samples (:func:`sample`) and write them to ``out``: ``.png`` (an image grid or
    a scatter plot), ``.npy`` (raw samples, model range), for a text run ``.txt`` (the decoded
    texts; the default there), for an audio run ``.wav``, for a video run ``.gif`` or ``.mp4`` (an
    animation; ``.png`` is a grid of frames, one row per clip), and for images or audio a folder
    (``out`` ending in ``/`` or an existing folder: one PNG or one WAV per sample). Returns the
    path written. A run on a log-mel view (``mel:speech-digits``) writes ``.wav`` (or a folder
    of WAVs) by decoding its images with fast Griffin-Lim, or with the vocoder run ``vocoder``
    (HiFi-GAN). Settings the run's model cannot use are one sentence before anything is
    drawn."""
    cfg = read_run_config(run)
    info = DataInfo.from_dict(cfg["data_info"])
    cls = MODELS.get(cfg["model"])
    text = info.kind == "text"
    path = Path(out) if out is not None else Path("samples.txt" if text else "samples.png")
    mel_view = is_mel_view_spec(info.name) and (path.suffix == ".wav" or str(out).endswith("/"))
    if vocoder is not None and not mel_view:
        raise ConfigError(
            f"--vocoder needs a run on a mel view (e.g. mel:speech-digits) written as .wav; "
            f"{str(run)!r} is on {info.name!r}, writing {str(path)!r}."
        )
    image_info = info
    if mel_view:  # its images are decoded to audio below
        info = audio_info_of(info.name)
    audio = info.kind == "audio"
    video = info.kind == "video"
    kinds = (".txt", ".npy") if text else (".png", ".npy", ".wav") if audio else (".png", ".npy")
    if video:
        kinds = (".gif", ".mp4", ".png", ".npy")
    folder = info.kind in ("images", "audio") and (str(out).endswith("/") or path.is_dir())
    if not folder and path.suffix not in kinds:
        if text:
            what = (
                f"run {str(run)!r} draws text ({cfg['model']} on {cfg['data']!r}): --out must "
                "end in .txt (the texts) or .npy (token ids)"
            )
        elif audio:
            what = (
                "--out must end in .wav (audio), .png (spectrograms) or .npy (raw samples), or "
                "name a folder ending in / (one WAV per clip)"
            )
        elif video:
            what = (
                "--out must end in .gif or .mp4 (an animation), .png (a grid of frames, one row "
                "per clip) or .npy (raw clips)"
            )
        elif path.suffix in VIDEO_SUFFIXES:
            what = f"an animation needs a video run, and run {str(run)!r} draws {info.kind}"
        elif path.suffix == ".wav":
            what = f"a WAV file needs an audio run, and run {str(run)!r} draws {info.kind}"
        else:
            what = (
                "--out must end in .png (a picture) or .npy (raw samples), or name a folder "
                "ending in / (images: one PNG per sample)"
            )
        raise ConfigError(f"--out {str(path)!r}: {what}.")
    check_video_backend(path)  # before drawing: an MP4 without a writer is one sentence
    opts = dict(options or {})
    for key in ("cond", "generator", "n"):
        if key in opts:
            raise ConfigError(f"Sampling option {key!r} is set by genzoo sample itself; drop it.")
    prompted = issubclass(cls, PromptConditioned)
    if prompts and not prompted:
        raise ConfigError(
            f"--prompt needs a text-to-image run (t2i-diffusion, t2i-vq); {str(run)!r} is a "
            f"{cfg['model']!r} run."
        )
    if prompts:
        opts["prompts"] = prompts
    if not issubclass(cls, Samples):  # before any option is checked against its sample
        raise _no_samples(run, cfg["model"], cls.family)
    if guidance is not None:
        if not prompted and label is None:
            raise ConfigError(
                "--guidance needs --class K (a class-conditional diffusion run) or --prompt (a "
                f"text-to-image run); {str(run)!r} is a {cfg['model']!r} run."
            )
        opts["guidance"] = guidance
    if "guidance" in opts and "guidance" not in sample_keywords(cls) and not prompted:
        raise ConfigError(
            f"--guidance: model {cfg['model']!r} takes no guidance; its sample takes "
            f"{choices(sample_keywords(cls)) if sample_keywords(cls) else 'no named options'}."
        )
    if "truncation" in opts and "truncation" not in sample_keywords(cls):
        samplers = [m for m in MODELS.names() if issubclass(MODELS.get(m), Samples)]
        takes = [m for m in samplers if "truncation" in sample_keywords(MODELS.get(m))]
        raise ConfigError(
            f"--truncation: model {cfg['model']!r} has no truncation (no mean latent to pull "
            f"towards); models that take it: {choices(takes)}."
        )
    if issubclass(cls, DiffusionModel):
        _check_diffusion_options(cls, sampler or cfg["model_config"].get("sampler"), opts)
    vocode = mel_vocoder(vocoder, image_info.name) if vocoder is not None else None
    x = sample(run, n, seed=seed, sampler=sampler, steps=steps, label=label, **opts)
    if mel_view:  # log-mel images -> waveforms (frames * hop samples each)
        x = view_to_audio(x, image_info.name, vocode)
    if folder and audio:  # one WAV per clip
        save_audio_folder(x, info, path)
        return path
    if folder:  # one PNG per sample, at the data's resolution
        save_images_folder(x, info, path)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, x.numpy())
    elif path.suffix in VIDEO_SUFFIXES:  # an animation of the clips side by side
        save_video(x, info, path)
    elif audio:  # a WAV file, or a picture of the spectrograms
        save_audio_samples(x, info, path, title=f"{cfg['model']} on {cfg['data']}")
    else:  # a picture, or the texts of a text run
        ref = load_dataset(cfg["data"], "test").x[:2000] if info.kind == "points" else None
        save_samples_png(x, info, path, reference=ref, title=f"{cfg['model']} on {cfg['data']}")
    return path


def mel_vocoder(run: str | Path, spec: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The ``vocode`` of the vocoder run ``run``, checked to take the mel view ``spec``'s log-mel
    (same rate, FFT size, hop and bands), else one sentence."""
    cfg = read_run_config(run)
    if not issubclass(MODELS.get(cfg["model"]), Vocodes):
        vocoders = [m for m in MODELS.names() if issubclass(MODELS.get(m), Vocodes)]
        raise ConfigError(
            f"--vocoder {str(run)!r} is a {cfg['model']!r} run; it must be a vocoder run "
            f"({choices(vocoders)})."
        )
    want = mel_settings(spec)
    mc = cfg["model_config"]
    got = {
        "sample_rate": int(cfg["data_info"].get("sample_rate", 0)),
        "n_fft": int(mc["n_fft"]),
        "hop": int(mc["hop"]),
        "n_mels": int(mc["n_mels"]),
    }
    bad = [k for k in got if got[k] != want[k]]
    if bad:
        raise ConfigError(
            f"--vocoder {str(run)!r} takes log-mels with {', '.join(f'{k}={got[k]}' for k in bad)}"
            f", but {spec!r} has {', '.join(f'{k}={want[k]}' for k in bad)}; train the vocoder "
            f"with those settings."
        )
    model = load(run, device="cpu")
    assert isinstance(model, Vocodes)
    return model.vocode


def save_audio_folder(x: torch.Tensor, info: DataInfo, folder: str | Path) -> list[Path]:
    """One WAV file per clip (16-bit PCM at the dataset's rate): ``folder/sample_0000.wav``, ...
    Returns the files."""
    from genzoo.audio import write_wav

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, wave in enumerate(x.detach().float().cpu().reshape(x.shape[0], -1)):  # (n, T)
        paths.append(folder / f"sample_{i:04d}.wav")
        write_wav(paths[-1], wave, info.sample_rate)
    return paths


def save_audio_samples(x: torch.Tensor, info: DataInfo, out: str | Path, title: str = "") -> None:
    """Audio samples ``(n, T)`` to ``out``: a ``.wav`` file (16-bit PCM at the dataset's rate;
    the samples one after another, :data:`AUDIO_GAP` seconds of silence between them) or a
    ``.png`` picture of their spectrograms."""
    from genzoo.audio import write_wav
    from genzoo.viz import save_spectrograms_png

    out = Path(out)
    if info.kind != "audio":
        raise ConfigError(f"--out {str(out)!r}: a WAV file needs an audio run, not {info.kind}.")
    if out.suffix == ".png":
        save_spectrograms_png(x, info, out, title=title)
        return
    gap = torch.zeros(int(AUDIO_GAP * info.sample_rate))
    parts = [p for wave in x.detach().float().cpu().reshape(x.shape[0], -1) for p in (wave, gap)]
    write_wav(out, torch.cat(parts[:-1]), info.sample_rate)
