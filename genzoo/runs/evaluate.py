"""``evaluate(run)``: test-set metrics of a run, likelihoods also in bits/dim."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from genzoo.core.errors import ConfigError, GenzooError
from genzoo.core.io import write_json
from genzoo.core.options import count as check_count
from genzoo.core.protocol import (
    Embeds,
    ExactLikelihood,
    GenerativeModel,
    LikelihoodBound,
    PromptConditioned,
    Samples,
    Translates,
)
from genzoo.core.seeding import check_seed, make_generator
from genzoo.data import ToyDataset, load_dataset
from genzoo.data.base import Dataset
from genzoo.diffusion.ideal import IdealDenoiser
from genzoo.metrics import evaluate_samples, get_classifier, mode_stats
from genzoo.metrics.features import FeatureExtractor, has_logits
from genzoo.metrics.likelihood import bits_per_dim
from genzoo.models.diffusion.base import DiffusionModel
from genzoo.models.diffusion.controlnet import ControlNet
from genzoo.models.diffusion.ldm import LatentDiffusion
from genzoo.models.posttrain import PostTrained
from genzoo.runs.load import open_run
from genzoo.runs.posttrain import evaluate_task
from genzoo.runs.yardstick import feature_extractor

SAMPLE_N = 500
"""Samples drawn by default to score a model that has no likelihood (a GAN)."""

LIKELIHOOD_KEYS = ("elbo", "log_prob", "ode_log_prob")
"""Result keys in nats per example that also get a ``<key>_bpd`` (and every ``iwae<k>``)."""


@torch.no_grad()
def evaluate(
    run: str | Path,
    *,
    n: int | None = None,
    seed: int = 0,
    data_root: str | None = None,
    batch_size: int = 256,
    progress: bool = False,
    ode: bool = False,
    ode_n: int = 256,
    ode_steps: int = 64,
    samples: int | None = None,
    features: str | None = None,
) -> dict[str, Any]:
    """Test-set metrics of a run, averaged per example; likelihoods also in bits/dim.

    Every model reports ``model.eval_metrics(batch)`` per test example (NaN where a metric does
    not apply to an example: it is averaged over the examples it applies to). ``ode`` adds, for
    diffusion models of images, the probability-flow ODE log-likelihood of ``ode_n`` uniformly
    dequantized test images (Hutchinson divergence, ``ode_steps`` Heun steps; arXiv:2011.13456
    App. D) as ``ode_log_prob`` and ``ode_log_prob_bpd``: an upper bound on the discrete
    bits/dim, comparable with the flows' numbers. (For points it is always computed.)

    ``samples`` (default: :data:`SAMPLE_N` for a model without a likelihood or bound, such as a
    GAN, else 0) draws that many samples and scores them against the test split
    (:func:`_sample_scores`): the Fréchet distance ``sample_fd``, and for labelled images the
    share the dataset's classifier recognises (``recognized``) and the classes it finds
    (``classes_covered``), for 2-D mixtures ``modes_covered`` and ``hq_rate``. ``features``
    chooses the yardstick of ``sample_fd`` (:mod:`genzoo.runs.yardstick`: ``classifier``,
    ``pixels``, or ``ssl:RUN``, a self-supervised run's features, which need no labels; named in
    ``sample_features``). Asking for samples or features of a model that draws none is a
    :class:`ConfigError`. A model
    with a representation (:class:`Embeds`) adds ``probe``: the rows of
    :func:`genzoo.runs.represent.probe` (a dataset without labels is an error). Results
    are written to ``<run>/eval.json`` and returned, with the checkpoint ``step`` they are of.
    ``progress`` shows a progress bar of each part (the test examples, the ODE's images).
    """
    if n is not None:
        n = check_count(n, "--n", "test examples to evaluate")
    batch_size = check_count(batch_size, "batch_size", "test examples per batch")
    if ode:
        ode_n = check_count(ode_n, "--ode-n", "test images for the ODE likelihood")
        ode_steps = check_count(ode_steps, "ode_steps", "Heun steps of the ODE")
    if samples is not None:
        samples = check_count(samples, "--samples", "0: draw none", least=0)
    check_seed(seed)
    loaded = open_run(run, device="auto")
    model, cfg = loaded.model, loaded.config
    if (samples or features is not None) and not isinstance(model, Samples):
        asked = f"--samples {samples}" if samples else f"--features {features}"
        raise ConfigError(
            f"{asked} scores samples, and run {str(run)!r} holds model {model.name!r}, which "
            "draws none; give a generative run (vae, ddpm, dcgan, ...)"
            + (
                ", or read this run's probe table with `genzoo eval RUN` alone."
                if isinstance(model, Embeds)
                else "."
            )
        )
    yardstick = None
    if features is not None:  # checked before the test loop: a bad name fails at once
        with torch.enable_grad():  # a classifier trained on first use needs gradients
            yardstick = feature_extractor(features, cfg["data"], model.info, root=data_root)
    if isinstance(model, PostTrained):  # a task's held-out problems, not a test split of text
        task_res: dict[str, Any] = dict(evaluate_task(model, n or 256, seed))
        task_res.update({"seed": seed, "step": loaded.step})
        write_json(Path(run) / "eval.json", task_res)
        return task_res
    test = load_dataset(cfg["data"], "test", root=data_root)
    count = len(test) if n is None else min(n, len(test))
    g = make_generator(seed, device=model.device)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    bar = tqdm(total=count, desc=f"eval {model.name}", unit="example", disable=not progress)
    with bar:
        for i in range(0, count, batch_size):
            idx = torch.arange(i, min(i + batch_size, count))
            batch = test.get(idx, dequantize=model.dequantize, generator=make_generator(seed + i))
            batch = {k: v.to(model.device) for k, v in batch.items()}
            vals = model.eval_metrics(batch, generator=g)
            for k, v in vals.items():  # NaN: the metric does not apply to that example
                v = v.double()
                sums[k] = sums.get(k, 0.0) + float(v.nansum())
                counts[k] = counts.get(k, 0) + int((~v.isnan()).sum())
            bar.update(len(idx))
    result: dict[str, Any] = {k: v / max(counts[k], 1) for k, v in sums.items()}
    result.update(_diffusion_floor(model, cfg, data_root, seed))
    if ode:
        ode_count = min(ode_n, len(test))
        result.update(_image_ode_log_prob(model, test, ode_count, ode_steps, seed, progress))
    likelihood = isinstance(model, (ExactLikelihood, LikelihoodBound))
    n_samples = samples if samples is not None else (0 if likelihood and not features else SAMPLE_N)
    if n_samples:
        result.update(
            _sample_scores(model, cfg["data"], test, n_samples, seed, data_root, yardstick)
        )
    for k in list(result):
        if k == "ode_log_prob":  # a density of dequantized data: always the data's L levels
            result[f"{k}_bpd"] = float(bits_per_dim(-result[k], model.info.dim, model.info.levels))
        elif likelihood and (k in LIKELIHOOD_KEYS or k.startswith("iwae")):
            levels = model.bpd_levels  # type: ignore[union-attr]
            result[f"{k}_bpd"] = float(bits_per_dim(-result[k], model.info.dim, levels))
    if isinstance(model, Embeds):  # self-supervised: the linear probe and k-NN table
        from genzoo.runs.represent import probe

        result["probe"] = probe(run, seed=seed, data_root=data_root)["rows"]
    result.update({"n": count, "seed": seed, "step": loaded.step})
    write_json(Path(run) / "eval.json", result)
    return result


def _sample_scores(
    model: GenerativeModel,
    data: str,
    test: Dataset,
    n: int,
    seed: int,
    root: str | None,
    yardstick: FeatureExtractor | None = None,
) -> dict[str, Any]:
    """Scores of ``n`` samples against the test split, where a yardstick exists: 2-D points
    (raw coordinates; modes of a mixture) and labelled images or audio (genzoo's classifier of
    the dataset, trained and cached on first use; for audio the FD is a Fréchet audio distance
    in its log-mel CNN features). Empty for other data and for models that draw no samples or
    need a prompt. ``yardstick``: another feature extractor (:mod:`genzoo.runs.yardstick`),
    for any data."""
    info = model.info
    labelled = info.kind in ("images", "audio") and info.n_classes > 0
    if not isinstance(model, Samples) or isinstance(model, (PromptConditioned, Translates)):
        return {}
    if yardstick is None and not (labelled or info.kind == "points"):
        return {}
    extractor = yardstick
    if yardstick is not None:
        labelled = has_logits(yardstick)  # only a classifier recognises samples
    elif labelled:
        try:
            with torch.enable_grad():  # evaluate() runs without gradients; training needs them
                extractor = get_classifier(data, root=root)
        except GenzooError:  # no classifier for this data: no yardstick
            return {}
    x = model.sample(n, generator=make_generator(seed + 11, device=model.device)).cpu()
    ref = test.all()["x"]
    metrics = ("fd", "recognized") if labelled else ("fd",)
    scores = evaluate_samples(x, ref, extractor, metrics=metrics)["scores"]
    out: dict[str, Any] = {"sample_n": float(n), "sample_fd": scores["fd"]}
    if yardstick is not None:
        out["sample_features"] = f"{yardstick.name} ({yardstick.hash[:12]})"
    out.update({k: v for k, v in scores.items() if k in ("recognized", "classes_covered")})
    if isinstance(test, ToyDataset) and test.toy.modes is not None:
        stats = mode_stats(x, test.toy.modes, test.toy.mode_std)
        out.update({k: stats[k] for k in ("modes_covered", "hq_rate")})
    return out


def _image_ode_log_prob(
    model: GenerativeModel,
    test: Dataset,
    n: int,
    steps: int,
    seed: int,
    progress: bool = False,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Mean probability-flow ODE log-likelihood of ``n`` dequantized test images (nats)."""
    if not isinstance(model, DiffusionModel):
        raise ConfigError(
            f"The ODE likelihood needs a diffusion model; {model.name!r} is a {model.family} "
            "model (its own likelihood or bound is reported without --ode)."
        )
    if model.info.kind != "images":
        return {}  # points: eval_metrics computes it with the exact divergence
    g = make_generator(seed + 7, device=model.device)
    total = 0.0
    desc = f"probability-flow ODE likelihood ({steps} Heun steps)"
    with tqdm(total=n, desc=desc, unit="image", disable=not progress) as bar:
        for i in range(0, n, batch_size):
            idx = torch.arange(i, min(i + batch_size, n))
            x = test.get(idx, dequantize=True, generator=make_generator(seed + 7 + i))["x"]
            lp = model.ode_log_prob(x.to(model.device), steps=steps, generator=g)
            total += float(lp.double().sum())
            bar.update(len(idx))
    return {"ode_log_prob": total / n, "ode_n": n, "ode_steps": steps}


@torch.no_grad()
def _diffusion_floor(
    model: GenerativeModel, cfg: dict[str, Any], data_root: str | None, seed: int, n: int = 512
) -> dict[str, float]:
    """For diffusion models: the denoising loss on training data beside the ideal denoiser's
    (the exact minimiser of the training loss, so its loss is the floor), same noise draws. Not
    for latent diffusion, whose denoiser is trained on latents, not on the data, nor for a
    ControlNet, whose denoiser is conditioned on a control image the ideal denoiser never sees."""
    if not isinstance(model, DiffusionModel) or isinstance(model, LatentDiffusion | ControlNet):
        return {}
    train_set = load_dataset(cfg["data"], "train", root=data_root)
    if train_set.x is None or len(train_set) > 200_000:
        return {}
    ideal = IdealDenoiser(train_set.all()["x"].to(model.device))
    idx = torch.randperm(len(train_set), generator=make_generator(seed))[:n]
    x0 = train_set.get(idx)["x"].to(model.device)
    ours = model.per_example_loss(x0, generator=make_generator(seed + 1, model.device))
    floor = model.per_example_loss(
        x0, generator=make_generator(seed + 1, model.device), denoiser=ideal
    )
    return {"train_loss": float(ours.mean()), "ideal_train_loss": float(floor.mean())}
