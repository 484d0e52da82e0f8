"""The genzoo command line: parses arguments, then calls the library.

User mistakes end with one sentence on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genzoo.core.errors import ConfigError, GenzooError, TrainingInterrupted

# The library (torch and every model) is imported inside the commands, not here: `genzoo --help`
# and argument errors then answer in a fraction of a second (benchmarks/RESULTS.md, "CLI").


def _cmd_list(args: argparse.Namespace) -> int:
    from genzoo.runs.catalog import catalog

    print("\n".join(catalog(args.what)))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    named = args.model is not None and "=" not in args.model and args.model != "controlnet"
    if args.base is not None and named and args.control is None:
        return _train_on_base(args)
    if args.base is not None or args.control is not None:
        return _train_controlnet(args)
    if not args.resume:  # before the library is imported: an instant answer
        if args.model is None:
            raise ConfigError("Name a model to train, e.g. `genzoo train ddpm --data digits`.")
        if args.data is None:
            raise ConfigError(
                f"Name a dataset with --data for model {args.model!r}, e.g. --data digits."
            )
    from genzoo.core.config import parse_overrides
    from genzoo.runs import train

    overrides = parse_overrides(args.overrides)
    if args.resume:
        model = args.model
        if model is not None and "=" in model:  # a setting in the model's place
            overrides, model = parse_overrides([model, *args.overrides]), None
        run = train(
            model,
            args.data,
            resume=args.resume,
            out=args.out,
            name=args.name,
            steps=args.steps,
            budget=args.budget,
            data_root=args.data_root,
            overrides=overrides,
        )
    else:
        run = train(
            args.model,
            args.data,
            steps=args.steps,
            budget=args.budget,
            out=args.out,
            name=args.name,
            data_root=args.data_root,
            download=args.download,
            overrides=overrides,
        )
    grids = sorted((Path(run) / "samples").glob("*.png"))
    print(f"run saved in {run}" + (f"; latest sample grid: {grids[-1]}" if grids else ""))
    return 0


def _train_on_base(args: argparse.Namespace) -> int:
    """`genzoo train ldm --base RUN`: the model's one sub-run (``autoencoder_run=``, ...) is RUN,
    and the data is the base run's unless --data names another."""
    if args.resume:
        raise ConfigError("--base starts a new run; resume with `genzoo train --resume RUN`.")
    from genzoo.core.config import parse_overrides
    from genzoo.runs import train
    from genzoo.runs.base import base_settings

    overrides, data = base_settings(args.model, args.base, parse_overrides(args.overrides))
    run = train(
        args.model,
        args.data or data,
        steps=args.steps,
        budget=args.budget,
        out=args.out,
        name=args.name,
        data_root=args.data_root,
        overrides=overrides,
    )
    print(f"run saved in {run}")
    return 0


def _train_controlnet(args: argparse.Namespace) -> int:
    """`genzoo train controlnet --base RUN --control mask`: the data is the base run's."""
    if args.model is not None and "=" in args.model:  # a setting in the model's place
        args.overrides, args.model = [args.model, *args.overrides], None
    if args.model not in (None, "controlnet") or args.resume or args.data:
        raise ConfigError(
            "--base and --control train a controlnet on the base run's data: "
            "`genzoo train controlnet --base RUN --control mask` (no --data, no --resume)."
        )
    if args.base is None:
        raise ConfigError("Name the trained diffusion run to control with --base RUN.")
    from genzoo.core.config import parse_overrides
    from genzoo.runs.controlnet import train_controlnet

    run = train_controlnet(
        args.base,
        args.control or "mask",
        steps=args.steps,
        budget=args.budget,
        out=args.out,
        name=args.name,
        overrides=parse_overrides(args.overrides),
    )
    print(f"run saved in {run}; try `genzoo sample {run} --control mask.png`")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from genzoo.core.config import parse_overrides
    from genzoo.runs.sample import sample_to_file

    if args.prompt:  # a post-trained language model answers its prompts as text
        from genzoo.core.runs import read_run_config
        from genzoo.models import MODELS
        from genzoo.models.posttrain import PostTrained

        if issubclass(MODELS.get(read_run_config(args.run)["model"]), PostTrained):
            from genzoo.runs.posttrain import complete

            temp = 0.0 if args.temperature is None else args.temperature
            answers = complete(args.run, args.prompt, temperature=temp, seed=args.seed)
            for p, a in zip(args.prompt, answers, strict=True):
                print(f"{p}{a}")
            return 0
    flags: dict[str, Any] = {
        "eta": args.eta,
        "temperature": args.temperature,
        "truncation": args.truncation,
    }
    if args.control is not None or args.control_scale is not None:
        if args.control is None:
            raise ConfigError("--control-scale needs --control cond.png (a controlnet run).")
        from genzoo.runs.controlnet import read_control_image

        flags["control"] = read_control_image(args.control, args.run)
        flags["control_scale"] = args.control_scale
    out = sample_to_file(
        args.run,
        args.n,
        args.out,
        seed=args.seed,
        sampler=args.sampler,
        steps=args.steps,
        label=args.label,
        prompts=args.prompt,
        guidance=args.guidance,
        options={
            **parse_overrides(args.options),
            **{k: v for k, v in flags.items() if v is not None},
        },
        vocoder=args.vocoder,
    )
    print(f"wrote {args.n} samples to {out}")
    return 0


I2I_UNITS = {  # image-to-image metrics: mean absolute pixel error, pixels in [-1, 1]
    "l1": "(|translation - target|, pixels in [-1, 1])",
    "l1_identity": "(|source - target|: the identity baseline)",
    "l1_reverse": "(|F(target) - source|)",
    "cycle_a": "(|F(G(a)) - a|, cycle error)",
    "cycle_b": "(|G(F(b)) - b|, cycle error)",
}
SAMPLE_UNITS = {  # eval --samples: scores of samples against the test split
    "sample_n": "samples drawn (--samples)",
    "sample_fd": "Fréchet distance to the test split (--features, else the classifier's; points: "
    "x, y)",
    "recognized": "share of samples the classifier gives a class with probability >= 0.9",
    "classes_covered": "classes holding >= 2% of the recognised samples",
    "modes_covered": "mixture modes covered by the samples",
    "hq_rate": "share of samples within 3 std of a mode",
}
VOCODER_UNITS = {  # hifigan: held-out clips resynthesised from their own log-mel
    "mel_l1": "(|log-mel of the resynthesis - log-mel of the clip|, nats)",
    "lsd": "dB (log-spectral distance of the |STFT|)",
    "sc": "dB (spectral convergence of the |STFT|; lower is better)",
}
CODE_UNITS = {  # vqvae-prior: the prior over VQ-VAE codes and its context-free baseline
    "code_log_prob": "nats/example (the prior's exact log-likelihood of the codes)",
    "unigram_log_prob": "nats/example (codes drawn from the VQ-VAE's usage frequencies)",
    "bits_per_code": "bits/code (the prior)",
    "unigram_bits_per_code": "bits/code (usage frequencies)",
}


def _cmd_info(args: argparse.Namespace) -> int:
    from genzoo.runs.info import format_info, run_info

    info = run_info(args.run)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    from genzoo.core.config import parse_overrides

    if args.dreambooth is not None:
        if args.method is not None or args.pairs or args.n_train:
            raise ConfigError("--dreambooth takes no --method, --pairs or --n-train.")
        if args.resume is not None or args.base_run is None:
            raise ConfigError(
                "--dreambooth needs the base run (a t2i-diffusion run) and takes no --resume."
            )
        from genzoo.runs.dreambooth import dreambooth

        run = dreambooth(
            args.base_run,
            args.dreambooth,
            token=args.token,
            class_noun=args.class_noun,
            prior_weight=args.prior_weight,
            lora=args.lora,
            n_prior=args.n_prior,
            steps=args.steps,
            budget=args.budget,
            out=args.out,
            overrides=parse_overrides(args.overrides),
        )
        print(f'run saved in {run}; try `genzoo sample {run} --prompt "a {args.token} ..."`')
        return 0
    if args.resume is not None:
        overrides = [args.base_run, *args.overrides] if args.base_run else args.overrides
        if (
            (args.base_run and "=" not in args.base_run)
            or args.method
            or args.out
            or args.pairs
            or args.pairs_from != "task"
        ):
            raise ConfigError(
                f"--resume {args.resume} continues that run with its own base, method, data and "
                "directory; give only --steps, --budget or training settings (key=value)."
            )
        from genzoo.runs.posttrain import resume_finetune

        run = resume_finetune(
            args.resume,
            steps=args.steps,
            budget=args.budget,
            overrides=parse_overrides(overrides),
        )
        print(f"run saved in {run}; try `genzoo eval {run}`")
        return 0
    if args.base_run is None:
        raise ConfigError("Name the base run: `genzoo finetune BASE_RUN --method sft ...`.")
    if args.method is None:
        raise ConfigError("Choose --method (sft, lora, prefix, dpo, grpo) or --dreambooth imgs/.")
    from genzoo.runs.posttrain import finetune

    run = finetune(
        args.base_run,
        args.method,
        args.task,
        steps=args.steps,
        budget=args.budget,
        out=args.out,
        n_train=args.n_train,
        pairs_file=args.pairs,
        pairs=args.pairs_from,
        overrides=parse_overrides(args.overrides),
    )
    print(f"run saved in {run}; try `genzoo eval {run}`")
    return 0


TASK_UNITS = {  # post-trained language models on their task's held-out problems
    "exact_match": "(greedy answers, held-out problems)",
    "reward": "(rule-based reward of the greedy answers)",
    "kl_ref": "nats/answer (KL to the reference, sampled answers)",
    "pref_acc": "(held-out pairs: log pi(chosen) > log pi(rejected))",
    "reward_acc": "(held-out pairs: implied reward ranks the chosen first)",
    "chosen_logp": "nats/answer (log pi of the verified answers)",
}


FEATURES_HELP = (
    "yardstick of the FD and precision/recall: classifier (genzoo's classifier of the dataset, "
    "the default for labelled images), pixels, or ssl:RUN (a self-supervised run's features, "
    "label-free)"
)


def _cmd_eval(args: argparse.Namespace) -> int:
    from genzoo.runs import evaluate

    res = evaluate(
        args.run,
        n=args.n,
        seed=args.seed,
        data_root=args.data_root,
        ode=args.ode,
        ode_n=args.ode_n,
        progress=True,
        samples=args.samples,
        features=args.features,
    )
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"evaluation of {args.run} on {res['n']} test examples (step {res['step']}):")
    for k, v in res.items():
        if k in ("n", "seed", "step", "probe"):
            continue
        if isinstance(v, str):  # e.g. sample_features: the yardstick's name
            print(f"  {k:<14} {v}")
            continue
        likelihoods = ("elbo", "log_prob", "ode_log_prob", *(f"iwae{i}" for i in (1, 8, 64, 512)))
        unit = "bits/dim" if k.endswith("_bpd") else ("nats/example" if k in likelihoods else "")
        if k == "loss":
            unit = "(the training objective, test data)"
        elif k == "train_loss":
            unit = "(training objective on 512 training examples)"
        elif k == "ideal_train_loss":
            unit = "(the same for the ideal denoiser: the floor)"
        elif k in I2I_UNITS:
            unit = I2I_UNITS[k]
        elif k in CODE_UNITS:
            unit = CODE_UNITS[k]
        elif k in VOCODER_UNITS:
            unit = VOCODER_UNITS[k]
        elif k in SAMPLE_UNITS:
            unit = SAMPLE_UNITS[k]
        elif k in TASK_UNITS:
            unit = TASK_UNITS[k]
        print(f"  {k:<14} {v:12.4f}  {unit}")
    if "probe" in res:
        print("probes of the frozen features (test accuracy, %; train labels per class):")
        print(f"  {'target':<8} {'labels':>6} {'linear':>8} {'k-NN':>8}")
        for row in res["probe"]:
            knn = f"{100 * row['knn']:8.2f}" if "knn" in row else ""
            print(f"  {row['target']:<8} {row['labels']!s:>6} {100 * row['linear']:8.2f} {knn}")
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from genzoo.runs import embed

    path, shape = embed(args.run, args.out, split=args.split, data_root=args.data_root)
    print(f"wrote the features {shape} of the {args.split} split to {path}")
    return 0


def _cmd_interpolate(args: argparse.Namespace) -> int:
    from genzoo.runs import interpolate

    grid = interpolate(
        args.run,
        n=args.n,
        steps=args.steps,
        seed=args.seed,
        method=args.method,
        out=args.out,
        data_root=args.data_root,
    )
    print(f"wrote {grid.shape[0]} interpolations of {args.steps} steps to {args.out}")
    return 0


def _cmd_inpaint(args: argparse.Namespace) -> int:
    from genzoo.runs.inpaint import inpaint
    from genzoo.viz import png_out, save_samples_png

    png_out(args.out)  # before the sampling
    res = inpaint(
        args.run,
        n=args.n,
        mask=args.mask,
        sampler=args.sampler,
        steps=args.steps,
        seed=args.seed,
        data_root=args.data_root,
    )
    n = res.original.shape[0]
    save_samples_png(res.grid(), res.info, args.out, nrow=n)
    print(f"wrote masked inputs, completions and originals ({n} each) to {args.out}")
    return 0


def _cmd_translate(args: argparse.Namespace) -> int:
    from genzoo.runs.translate import translate_file

    out, note = translate_file(args.run, args.image, args.out, reverse=args.reverse)
    print(f"wrote the translation of {args.image}" + (f" ({note})" if note else "") + f" to {out}")
    return 0


def _cmd_stylize(args: argparse.Namespace) -> int:
    from genzoo.runs.stylize import stylize

    res = stylize(
        args.content,
        args.style,
        args.out,
        method=args.method,
        steps=args.steps,
        weights=args.weights,
        features=args.features,
        style_weight=args.style_weight,
        run=args.run,
        alpha=args.alpha,
    )
    for note in res["notes"]:
        print(f"note: {note}")
    print(
        f"wrote {res['out']} ({res['method']}, features {res['features']}): style (Gram) loss "
        f"{res['style_before']:.4g} -> {res['style_after']:.4g} "
        f"(reduction {100 * res['style_reduction']:.1f}%), content-feature error "
        f"{res['content_error']:.3f}"
    )
    return 0


def _cmd_zeroshot(args: argparse.Namespace) -> int:
    from genzoo.runs.multimodal import zeroshot

    res = zeroshot(args.run, n=args.n, data_root=args.data_root)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"zero-shot classification by {args.run} on {res['n']} test images:")
    for k, v in res.items():
        if k.endswith("accuracy") and v is not None:
            print(f"  {k:<18} {100 * v:6.2f} %")
    return 0


def _cmd_retrieve(args: argparse.Namespace) -> int:
    from genzoo.runs.multimodal import query_images, retrieve
    from genzoo.viz import png_out, save_samples_png

    if args.query is not None:
        png_out(args.out)  # before the search
        x, scores, info = query_images(args.run, args.query, k=args.k, data_root=args.data_root)
        save_samples_png(x, info, args.out, nrow=len(x))
        print(
            f"wrote the {len(x)} test images closest to {args.query!r} to {args.out} "
            f"(cosine similarity {float(scores[0]):.3f} .. {float(scores[-1]):.3f})"
        )
        return 0
    res = retrieve(args.run, n=args.n, data_root=args.data_root)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"retrieval by {args.run} among {res['n']} test image-caption pairs (recall@k, %):")
    for direction in ("image_to_text", "text_to_image"):
        cells = "  ".join(f"R@{k} {100 * v:6.2f}" for k, v in res[direction].items())
        print(f"  {direction:<14} {cells}")
    return 0


def _cmd_caption(args: argparse.Namespace) -> int:
    import torch

    from genzoo.runs.multimodal import caption

    options = {"beam_size": args.beam_size, "top_k": args.top_k}
    if args.seed is not None:
        options["generator"] = torch.Generator().manual_seed(args.seed)
    texts = caption(args.run, args.images, args.method, **options)
    for path, text in zip(args.images, texts, strict=True):
        print(f"{path}: {text}" if len(args.images) > 1 else text)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from genzoo.compare import compare
    from genzoo.compare.report import markdown

    models = [m.strip() for m in args.models.split(",")] if args.models else None
    res = compare(
        args.data,
        models,
        steps=args.steps,
        budget=args.budget,
        seeds=args.seeds,
        n_samples=args.n,
        out=args.out,
        data_root=args.data_root,
        features=args.features,
    )
    print(markdown(res).split("\n\n![")[0])
    print(f"wrote {args.out}/results.json, report.md and report.html")
    return 0


class _HelpFormatter(argparse.HelpFormatter):
    """Help that shows each option's default (unless the help already says it, or there is
    none to show)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        nothing = default is None or default is False or default == [] or default == "==SUPPRESS=="
        if nothing or "default" in text or not text:
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return f"{text} (default: %(default)s)"
        return text


def _version() -> str:
    from genzoo import __version__  # the package itself imports nothing heavy

    return __version__


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genzoo",
        description="Train, sample and evaluate deep generative models of every family.",
        formatter_class=_HelpFormatter,
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="CPU threads for training (default: the cores idle when training starts; also "
        "the GENZOO_THREADS environment variable)",
    )
    p.add_argument("--version", action="version", version=f"genzoo {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    ls = sub.add_parser("list", help="list models, datasets or samplers")
    ls.add_argument(
        "what",
        nargs="?",
        default="all",
        choices=["all", "models", "datasets", "samplers"],
        help="what to list",
    )
    ls.set_defaults(fn=_cmd_list)

    tr = sub.add_parser("train", help="train a model (or resume a run)")
    tr.add_argument("model", nargs="?", help="model name (see `genzoo list models`)")
    tr.add_argument("overrides", nargs="*", metavar="key=value", help="model or training settings")
    tr.add_argument("--data", help="dataset, e.g. digits, mnist5k, toy2d:8gaussians")
    tr.add_argument("--steps", type=int, help="total optimizer steps")
    tr.add_argument("--budget", help="total training time, e.g. 90s, 5m, 1h")
    tr.add_argument("--out", help="run directory (default runs/<model>-<data>)")
    tr.add_argument("--name", help="run name under runs/")
    tr.add_argument("--resume", metavar="RUN", help="continue the run in this directory")
    tr.add_argument("--data-root", help="folder holding downloaded datasets")
    tr.add_argument("--download", action="store_true", help="download the dataset if missing")
    tr.add_argument(
        "--base",
        metavar="RUN",
        help="the trained run the model is built on: controlnet's diffusion run, ldm's "
        "autoencoder (autoencoder_run=), vqvae-prior's vqvae (vqvae_run=); data: the run's",
    )
    tr.add_argument(
        "--control", choices=["mask", "edges"], help="controlnet: the control map (default mask)"
    )
    tr.set_defaults(fn=_cmd_train)

    ft = sub.add_parser(
        "finetune", help="post-train a gpt run (sft, lora, prefix, dpo, grpo); dreambooth"
    )
    ft.add_argument(
        "base_run",
        nargs="?",
        help="run directory of a trained gpt over text, or t2i-diffusion (only read)",
    )
    ft.add_argument("overrides", nargs="*", metavar="key=value", help="model or training settings")
    ft.add_argument("--method", choices=["sft", "lora", "prefix", "dpo", "grpo"], help="method")
    ft.add_argument(
        "--dreambooth", metavar="DIR", help="fine-tune a t2i-diffusion run on these subject images"
    )
    ft.add_argument("--token", default="sks", help="dreambooth: the subject's identifier word")
    ft.add_argument("--class-noun", default="square", help="dreambooth: the subject's class")
    ft.add_argument(
        "--prior-weight", type=float, default=1.0, help="dreambooth: prior-preservation weight"
    )
    ft.add_argument("--lora", type=int, metavar="R", help="dreambooth: train LoRA of rank R")
    ft.add_argument(
        "--n-prior", type=int, default=64, help="dreambooth: class images drawn by the base"
    )
    ft.add_argument(
        "--task", default="addition", help="addition, subtraction, reverse, sort, count"
    )
    ft.add_argument("--steps", type=int, help="total optimizer steps")
    ft.add_argument("--budget", help="total training time, e.g. 90s, 5m")
    ft.add_argument("--out", help="run directory (default runs/<method>-<task>)")
    ft.add_argument("--n-train", type=int, help="training problems (default: per method)")
    ft.add_argument(
        "--pairs", help="dpo: preference pairs as JSON lines (prompt, chosen, rejected)"
    )
    ft.add_argument(
        "--pairs-from",
        default="task",
        choices=["task", "policy"],
        help="dpo: generated pairs prefer the verified answer to a plausible wrong one (task) "
        "or to the base policy's own wrong answers (policy)",
    )
    ft.add_argument(
        "--resume", metavar="RUN", help="continue this finetune run from its last checkpoint"
    )
    ft.set_defaults(fn=_cmd_finetune)

    sa = sub.add_parser("sample", help="draw samples from a trained run")
    sa.add_argument("run", help="run directory")
    sa.add_argument(
        "options",
        nargs="*",
        metavar="key=value",
        help="options of the model's sample, e.g. temperature=0.7 (flows, autoregressive), "
        "top_k=10",
    )
    sa.add_argument("--n", type=int, default=64, help="number of samples")
    sa.add_argument(
        "--out",
        help=".png picture or .npy raw samples; .txt for text runs, .wav for audio runs, .gif "
        "or .mp4 for video runs; a "
        "folder ending in / for one PNG per image (default: samples.png, samples.txt for text)",
    )
    sa.add_argument("--sampler", help="sampler for diffusion models (see `genzoo list samplers`)")
    sa.add_argument("--steps", type=int, help="sampling steps for diffusion models")
    sa.add_argument("--eta", type=float, help="DDIM eta")
    sa.add_argument("--seed", type=int, default=0, help="random seed")
    sa.add_argument(
        "--class",
        dest="label",
        type=int,
        metavar="K",
        help="class-conditional runs (cgan, class_conditional=true): draw class K only",
    )
    sa.add_argument(
        "--prompt",
        action="append",
        help="text-to-image runs: a prompt; post-trained runs: a question, e.g. 12+35= (repeat "
        "for several)",
    )
    sa.add_argument(
        "--temperature",
        type=float,
        help="sampling temperature (post-trained runs: 0, the default there, is greedy)",
    )
    sa.add_argument(
        "--guidance",
        type=float,
        help="classifier-free guidance w (1: none), with --prompt (text-to-image) or --class "
        "(class-conditional diffusion)",
    )
    sa.add_argument("--control", metavar="PNG", help="controlnet runs: the control image")
    sa.add_argument(
        "--control-scale", type=float, help="controlnet runs: scale of the control (default 1)"
    )
    sa.add_argument(
        "--truncation",
        type=float,
        metavar="T",
        help="truncation: stylegan2's psi in [0, 1] pulls each w towards the mean w (1: none); "
        "biggan's threshold t > 0 redraws every |z_i| > t",
    )
    sa.add_argument(
        "--vocoder",
        metavar="RUN",
        help="runs on a mel view (mel:speech-digits) written as .wav: decode with this hifigan "
        "run instead of fast Griffin-Lim",
    )
    sa.set_defaults(fn=_cmd_sample)

    ip = sub.add_parser("inpaint", help="fill in a masked region of test images (diffusion)")
    ip.add_argument("run", help="run directory of a diffusion model trained on images")
    ip.add_argument("--n", type=int, default=8, help="number of test images")
    ip.add_argument(
        "--mask", default="lower", choices=["lower", "upper", "left", "right", "center"]
    )
    ip.add_argument("--out", default="inpaint.png", help="output picture")
    ip.add_argument("--sampler", help="sampler (default: the model's)")
    ip.add_argument("--steps", type=int, help="sampling steps")
    ip.add_argument("--seed", type=int, default=0)
    ip.add_argument("--data-root", help="folder holding downloaded datasets")
    ip.set_defaults(fn=_cmd_inpaint)

    it = sub.add_parser("interpolate", help="decode paths between test examples in latent space")
    it.add_argument("run", help="run directory of a model with a latent space (vae, ae, flows...)")
    it.add_argument("--n", type=int, default=4, help="number of pairs of test examples (rows)")
    it.add_argument("--steps", type=int, default=8, help="decoded frames per pair")
    it.add_argument(
        "--method",
        default="auto",
        choices=["auto", "slerp", "lerp"],
        help="auto: slerp for a Gaussian prior (vae, ppca, flows), else lerp",
    )
    it.add_argument("--out", default="interpolate.png", help="output picture")
    it.add_argument("--seed", type=int, default=0, help="which test examples are paired")
    it.add_argument("--data-root", help="folder holding downloaded datasets")
    it.set_defaults(fn=_cmd_interpolate)

    tl = sub.add_parser("translate", help="translate an image file (pix2pix, CycleGAN)")
    tl.add_argument("run", help="run directory of an image-to-image model")
    tl.add_argument("image", help="input picture (resized if it has the model's aspect ratio)")
    tl.add_argument("--out", help="output .png (default: <image>-translated.png beside it)")
    tl.add_argument("--reverse", action="store_true", help="target -> source (CycleGAN)")
    tl.set_defaults(fn=_cmd_translate)

    st = sub.add_parser("stylize", help="neural style transfer (Gatys, AdaIN)")
    st.add_argument("content", help="image file, DATASET@INDEX (e.g. mnist5k@3) or texture:KIND")
    st.add_argument("style", help="image file, DATASET@INDEX or texture:KIND[@SEED]")
    st.add_argument("--out", default="stylized.png", help="output picture")
    st.add_argument("--method", default="gatys", choices=["gatys", "adain"], help="method")
    st.add_argument("--steps", type=int, default=300, help="gatys: optimisation steps")
    st.add_argument("--weights", help="gatys: VGG19 weights file (.safetensors, .pt/.pth)")
    st.add_argument(
        "--features", default="classifier:digits", help="gatys: genzoo's classifier:<dataset>"
    )
    st.add_argument("--style-weight", type=float, default=1e3, help="gatys: beta / alpha")
    st.add_argument("--run", help="adain: a trained adain run")
    st.add_argument("--alpha", type=float, default=1.0, help="adain: style strength in [0, 1]")
    st.set_defaults(fn=_cmd_stylize)

    cp = sub.add_parser("compare", help="train and measure every family on one dataset")
    cp.add_argument("--data", default="digits", help="dataset (default: digits)")
    cp.add_argument("--models", help="comma-separated models (default: one per family)")
    cp.add_argument(
        "--steps",
        type=int,
        help="optimizer steps for every model (default: each model's own fixed count)",
    )
    cp.add_argument(
        "--budget",
        help="the same training time for every model and seed instead, e.g. 20s (the table "
        "then depends on the machine)",
    )
    cp.add_argument("--seeds", type=int, default=1, help="seeds per model (stability)")
    cp.add_argument("--n", type=int, default=1000, help="samples per model for the metrics")
    cp.add_argument("--out", default="runs/compare", help="output folder")
    cp.add_argument("--features", help=FEATURES_HELP)
    cp.add_argument("--data-root", help="folder holding downloaded datasets")
    cp.set_defaults(fn=_cmd_compare)

    inf = sub.add_parser("info", help="what a run holds: model, data, settings, steps, metrics")
    inf.add_argument("run", help="run directory")
    inf.add_argument("--json", action="store_true", help="print JSON")
    inf.set_defaults(fn=_cmd_info)

    ev = sub.add_parser("eval", help="evaluate a run on its test split")
    ev.add_argument("run", help="run directory")
    ev.add_argument("--n", type=int, help="number of test examples (default: all)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--data-root", help="folder holding downloaded datasets")
    ev.add_argument("--json", action="store_true", help="print JSON")
    ev.add_argument(
        "--ode",
        action="store_true",
        help="diffusion on images: add the probability-flow ODE likelihood in bits/dim",
    )
    ev.add_argument("--ode-n", type=int, default=256, help="test images for --ode (default 256)")
    ev.add_argument(
        "--samples",
        type=int,
        metavar="N",
        help="score N samples against the test split: FD (for audio the FAD), and the share "
        "the classifier recognises (labelled images, audio) or modes covered (2-D mixtures); "
        "default 500 for models "
        "without a likelihood (GANs), else 0",
    )
    ev.add_argument("--features", help=FEATURES_HELP + " (implies --samples 500)")
    ev.set_defaults(fn=_cmd_eval)

    em = sub.add_parser("embed", help="save a self-supervised run's features of a split (.npy)")
    em.add_argument("run", help="run directory of a simclr, moco, byol or dino model")
    em.add_argument("--out", default="emb.npy", help="output .npy file (N, d), float32")
    em.add_argument("--split", choices=["train", "test"], default="test", help="data split")
    em.add_argument("--data-root", help="folder holding downloaded datasets")
    em.set_defaults(fn=_cmd_embed)

    zs = sub.add_parser("zeroshot", help="zero-shot classification by a clip run")
    zs.add_argument("run", help="run directory of a clip model")
    zs.add_argument("--n", type=int, help="number of test images (default: all)")
    zs.add_argument("--data-root", help="folder holding downloaded datasets")
    zs.add_argument("--json", action="store_true", help="print JSON")
    zs.set_defaults(fn=_cmd_zeroshot)

    rt = sub.add_parser("retrieve", help="image <-> text retrieval by a clip run")
    rt.add_argument("run", help="run directory of a clip model")
    rt.add_argument("--n", type=int, default=1000, help="test image-caption pairs searched")
    rt.add_argument("--query", help="a text: save the test images closest to it")
    rt.add_argument("--k", type=int, default=8, help="images shown for --query")
    rt.add_argument("--out", default="retrieved.png", help="picture for --query")
    rt.add_argument("--data-root", help="folder holding downloaded datasets")
    rt.add_argument("--json", action="store_true", help="print JSON")
    rt.set_defaults(fn=_cmd_retrieve)

    cap = sub.add_parser("caption", help="caption image files with a captioner run")
    cap.add_argument("run", help="run directory of a captioner model")
    cap.add_argument("images", nargs="+", help="image files (resized to the run's image size)")
    cap.add_argument("--method", choices=["greedy", "beam", "top_k"], help="decoding")
    cap.add_argument("--beam-size", type=int, help="beams of beam search")
    cap.add_argument("--top-k", type=int, help="candidates of top-k sampling")
    cap.add_argument("--seed", type=int, help="seed of top-k sampling")
    cap.set_defaults(fn=_cmd_caption)
    for command in sub.choices.values():
        command.formatter_class = _HelpFormatter
    return p


def _join_dash_values(argv: Sequence[str]) -> list[str]:
    """``--budget -5s`` -> ``--budget=-5s``: argparse would take a value that starts with "-"
    for an option and print a usage dump instead of genzoo's one sentence on the value."""
    out: list[str] = []
    it = iter(argv)
    for a in it:
        if a == "--budget":
            nxt = next(it, None)
            out.append(a if nxt is None else f"{a}={nxt}")
        else:
            out.append(a)
    return out


def _run(args: argparse.Namespace) -> int:
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads {args.threads} must be at least 1.")
        os.environ["GENZOO_THREADS"] = str(args.threads)  # read by genzoo.core.threads
    return int(args.fn(args) or 0)


_PACKAGE = str(Path(__file__).resolve().parent)


def _one_line_warnings(others: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints genzoo's own warnings as one line on stderr
    (``genzoo: warning: ...``, without the source line Python adds) and hands the warnings of
    other libraries to ``others``."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        from genzoo.core.errors import GenzooWarning

        ours = str(Path(filename).resolve()).startswith(_PACKAGE)
        if issubclass(category, GenzooWarning) or ours:
            print(f"genzoo: warning: {' '.join(str(message).split())}", file=sys.stderr)
        else:
            others(message, category, filename, lineno, file, line)

    return show


def _out_of_memory(e: BaseException) -> str | None:
    """One sentence for an allocation that failed (CPU: a ``RuntimeError`` from the allocator,
    CUDA: ``torch.OutOfMemoryError``, or Python's ``MemoryError``), else ``None``."""
    import re

    text = str(e)
    cpu = isinstance(e, RuntimeError) and "can't allocate memory" in text
    if not (cpu or isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError"):
        return None
    asked = re.search(r"tried to allocate (\d+) bytes", text)
    size = f" ({int(asked.group(1)) / 2**30:,.1f} GiB at once)" if asked else ""
    return (
        f"Out of memory{size}; lower batch_size (training) or --n (sampling, evaluation). "
        "Checkpoints already written are kept."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = _join_dash_values(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    if extra:
        # key=value settings may come after options (argparse stops positionals at an option).
        stray = [e for e in extra if "=" not in e or e.startswith("-")]
        if stray or args.command not in ("train", "sample", "finetune"):
            parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
        if args.command in ("train", "finetune"):
            args.overrides = list(args.overrides) + extra
        else:
            args.options = list(args.options) + extra
    if args.command is None:
        parser.print_help()
        return 0
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warnings(warnings.showwarning)
            return _run(args)
    except TrainingInterrupted as e:
        print(f"genzoo: {e}", file=sys.stderr)
        return 130
    except GenzooError as e:
        print(f"genzoo: error: {e}", file=sys.stderr)
        return 2
    except (RuntimeError, MemoryError) as e:
        message = _out_of_memory(e)
        if message is None:
            raise
        print(f"genzoo: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genzoo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
