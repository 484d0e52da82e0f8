"""``genzoo compare``: every family on one dataset, one evaluation.

By default each model trains a fixed number of optimizer steps (:data:`QUICK_STEPS`, chosen so
that the digits line-up takes a few minutes on 2 CPU cores), so the table is the same on every
machine (a CPU run is reproducible bit for bit at a given thread count). ``steps`` gives every
model the same count instead, and ``budget`` the same wall-clock time (then the steps each model
reached are reported beside its numbers). Every model is then measured with the same code:
parameters, steps, training time, test NLL in bits/dim (exact, a bound, or none), Fréchet distance,
the share of samples the yardstick classifier recognises and precision/recall in the feature space
of one yardstick (genzoo's classifier for labelled image data, raw coordinates for points),
sampling throughput and network evaluations per sample, and stability (spread of the FD over seeds,
divergences). Finished runs are re-used when the command is run again, so an interrupted
comparison loses nothing already trained.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from genzoo.compare.report import write_reports
from genzoo.core.errors import ConfigError, GenzooError, TrainingDiverged, choices
from genzoo.core.io import read_json, write_json
from genzoo.core.protocol import GenerativeModel, Samples, likelihood_kind
from genzoo.core.seeding import make_generator
from genzoo.core.threads import default_threads
from genzoo.data import ToyDataset, load_dataset
from genzoo.data.base import DataInfo, Dataset
from genzoo.metrics import (
    FeatureExtractor,
    PixelFeatures,
    count_nfe,
    evaluate_samples,
    get_classifier,
    mode_stats,
)
from genzoo.models import MODELS
from genzoo.runs import evaluate, open_run, train
from genzoo.runs.yardstick import feature_extractor
from genzoo.train.trainer import parse_duration
from genzoo.viz import save_samples_png

QUICK_MODELS = {
    "images": ["ppca", "vae", "ddpm", "edm", "flow-matching", "realnvp", "pixelcnn", "dcgan"],
    "points": ["vae", "ddpm", "edm", "flow-matching", "realnvp", "wgan-gp"],
}
"""The default line-up: one or two models per family that fit a CPU budget."""

# Settings that make each model fit a short CPU budget (the models' own defaults are for real runs).
QUICK_OVERRIDES: dict[str, dict[str, Any]] = {
    "ddpm": {"schedule": "cosine", "lr": 1e-3, "sample_steps": 50, "sampler": "ddim"},
    "edm": {"lr": 1e-3},
    "flow-matching": {"lr": 1e-3},
    "vae": {"lr": 2e-3},
}


QUICK_STEPS: dict[str, dict[str, int]] = {
    "images": {
        "ppca": 1,
        "vae": 600,
        "ddpm": 150,
        "edm": 150,
        "flow-matching": 150,
        "realnvp": 50,
        "pixelcnn": 120,
        "dcgan": 600,
    },
    "points": {
        "vae": 2000,
        "ddpm": 2000,
        "edm": 2000,
        "flow-matching": 2000,
        "realnvp": 1000,
        "wgan-gp": 1000,
    },
}
"""Optimizer steps per model of the default line-up (measured: benchmarks/RESULTS.md, "README
main job"); a model outside it trains :data:`OTHER_STEPS` unless ``steps`` is given."""
OTHER_STEPS = 300


def _length(budget: str | None, steps: int | None) -> str | None:
    """Checks ``budget`` / ``steps``; returns the budget (None: train fixed steps)."""
    if budget is not None and steps is not None:
        raise ConfigError(
            f"Give compare --steps ({steps}) or --budget ({budget!r}), not both: fixed steps "
            "give the same table on every machine, a budget the same wall time per model."
        )
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps {steps} must be at least 1 (or leave it out).")
    if budget is not None and not parse_duration(budget) > 0:
        raise ConfigError(
            f"--budget {budget!r} must be a positive duration, e.g. '20s' or '5m' (or leave it "
            "out to train each model a fixed number of steps)."
        )
    return budget


def _feature_extractor(
    data: str, info: DataInfo, features: str | None = None, root: str | None = None
) -> FeatureExtractor:
    """The yardstick ``features`` names (:mod:`genzoo.runs.yardstick`); by default genzoo's
    classifier for labelled images, else the raw data."""
    if features is not None:
        return feature_extractor(features, data, info, root=root)
    if info.kind == "images" and info.n_classes > 0:
        try:
            return get_classifier(data)
        except GenzooError:
            pass
    return PixelFeatures()


def _draw(model: GenerativeModel, n: int, seed: int) -> tuple[Tensor, float, float]:
    """``n`` samples (drawn 500 at a time with a generator seeded ``seed``), the network
    evaluations per sample (forward calls of the busiest sub-network) and samples/s."""
    assert isinstance(model, Samples)
    kids = [m for m in model.children() if any(True for _ in m.parameters())]
    g = make_generator(seed, device=model.device)
    ctxs = [count_nfe(k) for k in kids]
    counters = [c.__enter__() for c in ctxs]
    t = time.perf_counter()
    try:
        with torch.no_grad():
            xs, batches = [], 0
            for i in range(0, n, 500):
                xs.append(model.sample(min(500, n - i), generator=g).cpu())
                batches += 1
        if model.device.type == "cuda":
            torch.cuda.synchronize()
    finally:
        dt = time.perf_counter() - t
        for c in ctxs:
            c.__exit__(None, None, None)
    calls = max((c.nfe for c in counters), default=1)  # containers (ModuleList) count 0
    return torch.cat(xs), float(max(calls // batches, 1)), n / max(dt, 1e-9)


def _nll(result: dict[str, Any], likelihood: str) -> tuple[float | None, str]:
    if likelihood == "exact" and "log_prob_bpd" in result:
        return result["log_prob_bpd"], "exact"
    for key in ("iwae64_bpd", "elbo_bpd", "ode_log_prob_bpd"):
        if key in result:
            return result[key], "ode" if key.startswith("ode") else "bound"
    return None, "none"


def _measure(
    run: Path,
    out: Path,
    name: str,
    seed: int,
    n_samples: int,
    extractor: FeatureExtractor,
    test: Dataset,
    metrics: tuple[str, ...],
    data_root: str | None,
) -> dict[str, Any]:
    """The numbers of one trained run: steps, parameters, NLL, sample scores (on ``n_samples``
    drawn with the run's ``seed``), speed, and a grid."""
    rec: dict[str, Any] = {}
    info = test.info
    ref = test.all()["x"]
    t1 = time.perf_counter()
    loaded = open_run(run, device="auto")
    model = loaded.model
    assert isinstance(model, Samples)  # checked by class above
    rec["steps"] = loaded.step
    rec["params"] = sum(p.numel() for p in model.parameters())
    ev = evaluate(run, data_root=data_root)
    rec["nll_bpd"], rec["nll_kind"] = _nll(ev, likelihood_kind(MODELS.get(name)))
    xs, rec["nfe"], rec["samples_per_s"] = _draw(model, n_samples, seed)
    scores = evaluate_samples(xs, ref, extractor, metrics=metrics)
    rec.update(scores["scores"])
    rec["eval_settings"] = scores["settings"]
    if isinstance(test, ToyDataset) and test.toy.modes is not None:
        rec.update(mode_stats(xs, test.toy.modes, test.toy.mode_std))
    grid = run / "compare-grid.png"
    pts = ref[:2000] if info.kind == "points" else None
    shown = xs[:1000] if info.kind == "points" else xs[:64]  # a scatter needs many points
    title = f"{name}, {loaded.step:,} steps"
    save_samples_png(shown, info, grid, reference=pts, title=title)
    rec["grid"] = str(grid.relative_to(out))
    rec["eval_time_s"] = time.perf_counter() - t1
    rec["status"] = "ok"
    return rec


SCORE_KEYS = ("fd", "kid", "kid_std", "is", "is_std", "precision", "recall", "density",
              "coverage", "recognized", "classes_covered", "n_classes")  # fmt: skip
"""What :func:`evaluate_samples` may put in a record: replaced when a run is re-scored."""


def _rescore(
    run: Path,
    rec: dict[str, Any],
    seed: int,
    n_samples: int,
    extractor: FeatureExtractor,
    ref: Tensor,
    metrics: tuple[str, ...],
) -> dict[str, Any]:
    """A finished run's record with its sample scores measured again by ``extractor``: the same
    ``n_samples`` drawn with the run's ``seed`` (as :func:`_measure` drew them)."""
    model = open_run(run, device="auto").model
    before = torch.get_num_threads()
    torch.set_num_threads(default_threads())
    try:
        xs, _, _ = _draw(model, n_samples, seed)
    finally:
        torch.set_num_threads(before)
    scores = evaluate_samples(xs, ref, extractor, metrics=metrics)
    new = {k: v for k, v in rec.items() if k not in SCORE_KEYS}
    new.update(scores["scores"])
    new["eval_settings"] = scores["settings"]
    return new


def compare(
    data: str = "digits",
    models: list[str] | None = None,
    *,
    steps: int | None = None,
    budget: str | None = None,
    seeds: int = 1,
    n_samples: int = 1000,
    out: str | Path = "runs/compare",
    data_root: str | None = None,
    progress: bool = True,
    features: str | None = None,
) -> dict[str, Any]:
    """Train and measure ``models`` on ``data``; write results.json, report.md and report.html.

    Each model trains its :data:`QUICK_STEPS` (``steps``: that many for every model), or for the
    same wall-clock ``budget`` per model and seed (e.g. ``"20s"``). ``features`` names the
    yardstick of the FD and precision / recall (:mod:`genzoo.runs.yardstick`; default: the
    dataset's classifier, raw coordinates for points); runs finished earlier and measured with
    another yardstick are not trained again: their samples are drawn again (same seed) and
    re-scored.
    """
    budget = _length(budget, steps)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; give a folder for the comparison.")
    test = load_dataset(data, "test", root=data_root)
    info = test.info
    if info.kind not in QUICK_MODELS:
        raise ConfigError(
            f"compare has no line-up for {info.kind} data such as {data!r} yet; choose "
            f"{choices(sorted(QUICK_MODELS))} data, or score {info.kind} runs one at a time "
            + (
                "with `genzoo eval RUN --samples N` (FAD and class accuracy by genzoo's audio "
                "classifier) and benchmarks/audio.py."
                if info.kind == "audio"
                else "with `genzoo eval RUN`."
            )
        )
    names = models or QUICK_MODELS[info.kind]
    for name in names:  # unknown names and models that draw no samples fail before training
        if not issubclass(MODELS.get(name), Samples):
            raise ConfigError(
                f"compare measures samples, and model {name!r} draws none; choose models that "
                "sample (see `genzoo list models`)."
            )
    if seeds < 1:
        raise ConfigError(f"seeds = {seeds} must be at least 1.")
    if n_samples < 6:  # before any training: precision/recall take each sample's 5 neighbours
        raise ConfigError(
            f"--n {n_samples} must be at least 6 (samples per model: precision and recall take "
            "each sample's 5 nearest neighbours)."
        )

    def length(name: str) -> str:  # what each run trains, recorded to re-use only like runs
        if budget is not None:
            return f"budget {budget}"
        return f"{steps or QUICK_STEPS.get(info.kind, {}).get(name, OTHER_STEPS)} steps"

    out.mkdir(parents=True, exist_ok=True)
    extractor = _feature_extractor(data, info, features, data_root)
    ref = test.all()["x"]
    metrics = ("fd", "prdc", "recognized")
    rows: list[dict[str, Any]] = []
    jobs = [(m, s) for m in names for s in range(seeds)]
    bar = None
    if progress:
        bar = tqdm(total=len(jobs), desc="compare", unit="run")
    per_run: dict[tuple[str, int], dict[str, Any]] = {}
    for name, seed in jobs:
        if bar is not None:
            bar.set_postfix_str(f"{name} seed {seed}, {length(name)}")
        run = out / "runs" / f"{name}-seed{seed}"
        rec_path = run / "compare.json"
        if rec_path.is_file():  # finished earlier: re-use
            old = read_json(rec_path)  # JSON only; a bad file is an error
            if old.get("length") != length(name):
                raise ConfigError(
                    f"{str(run)!r} was trained for {old.get('length', 'a 20s budget')!r}, not "
                    f"{length(name)!r}; choose another --out for this comparison."
                )
            measured_by = old.get("eval_settings", {}).get("extractor_hash")
            if old.get("status") == "ok" and measured_by != extractor.hash:
                old = _rescore(run, old, seed, n_samples, extractor, ref, metrics)
                write_json(rec_path, old)
            per_run[(name, seed)] = old
            if bar is not None:
                bar.update(1)
            continue
        cls = MODELS.get(name)
        rec: dict[str, Any] = {"model": name, "family": cls.family, "seed": seed}
        rec["length"] = length(name)
        over = {"progress": False, "tensorboard": False, "seed": seed, "ckpt_every_s": 0}
        over.update(QUICK_OVERRIDES.get(name, {}))
        n_steps = None if budget is not None else int(rec["length"].split()[0])
        t0 = time.perf_counter()
        try:
            if (run / "config.yaml").exists():
                train(resume=run, steps=n_steps, budget=budget, overrides={"progress": False})
            else:
                train(
                    name,
                    data,
                    steps=n_steps,
                    budget=budget,
                    out=run,
                    data_root=data_root,
                    overrides=over,
                )
        except TrainingDiverged as e:
            rec.update({"status": "diverged", "error": str(e)})
        except ConfigError as e:  # the model does not apply to this data (e.g. points)
            rec.update({"status": "skipped", "error": str(e)})
        rec["train_time_s"] = time.perf_counter() - t0
        if "status" not in rec:
            before = torch.get_num_threads()  # evaluate with the idle cores, as the Trainer
            torch.set_num_threads(default_threads())
            try:
                args = (seed, n_samples, extractor, test, metrics, data_root)
                rec.update(_measure(run, out, name, *args))
            finally:
                torch.set_num_threads(before)
        run.mkdir(parents=True, exist_ok=True)
        write_json(rec_path, rec)
        per_run[(name, seed)] = rec
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    for name in names:
        recs = [per_run[(name, s)] for s in range(seeds)]
        ok = [r for r in recs if r.get("status") == "ok"]
        row: dict[str, Any] = {
            "model": name,
            "family": MODELS.get(name).family,
            "seeds": seeds,
            "length": length(name),
            "diverged": sum(r.get("status") == "diverged" for r in recs),
            "status": "ok" if ok else recs[0].get("status"),
            "error": None if ok else recs[0].get("error"),
        }
        if ok:
            fds = [r["fd"] for r in ok]
            row.update(
                {
                    "params": ok[0]["params"],
                    "steps": statistics.mean(r["steps"] for r in ok),
                    "train_time_s": statistics.mean(r["train_time_s"] for r in ok),
                    "nll_bpd": ok[0]["nll_bpd"]
                    if ok[0]["nll_bpd"] is None
                    else statistics.mean(r["nll_bpd"] for r in ok),
                    "nll_kind": ok[0]["nll_kind"],
                    "fd": statistics.mean(fds),
                    "fd_std": statistics.stdev(fds) if len(fds) > 1 else 0.0,
                    "recognized": None
                    if ok[0].get("recognized") is None
                    else statistics.mean(r["recognized"] for r in ok),
                    "classes_covered": ok[0].get("classes_covered"),
                    "precision": statistics.mean(r["precision"] for r in ok),
                    "recall": statistics.mean(r["recall"] for r in ok),
                    "samples_per_s": statistics.mean(r["samples_per_s"] for r in ok),
                    "nfe": ok[0]["nfe"],
                    "grid": ok[0]["grid"],
                    "modes_covered": ok[0].get("modes_covered"),
                    "hq_rate": ok[0].get("hq_rate"),
                    "eval_settings": ok[0]["eval_settings"],
                }
            )
        rows.append(row)
    # The floor: the same metrics between the real training data and the test split.
    train_x = load_dataset(data, "train", root=data_root).all()["x"]
    n_floor = min(len(train_x), max(n_samples, 2))
    floor = evaluate_samples(train_x[:n_floor], ref, extractor, metrics=metrics)
    if "recognized" in floor["scores"]:  # the classifier learnt the training images: held-out
        held_out = evaluate_samples(ref, ref, extractor, metrics=("recognized",))["scores"]
        floor["scores"]["recognized"] = held_out["recognized"]
    results = {
        "data": data,
        "budget": budget,
        "steps": steps,
        "seeds": seeds,
        "n_samples": n_samples,
        "extractor": extractor.name,
        "extractor_hash": extractor.hash,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "date": time.strftime("%Y-%m-%d"),
        "floor": floor["scores"],
        "rows": rows,
    }
    write_json(out / "results.json", results)
    write_reports(results, out)
    return results
