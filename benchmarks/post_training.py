"""Post-training a tiny GPT on held-out addition: pre-training, SFT, SFT + GRPO, SFT + DPO.

For each seed, on ``--digits``-digit addition (train, validation and test problems are disjoint
by construction):

1. ``base``: a GPT (2 layers, 128 wide) pre-trained by plain next-token prediction on the task's
   text (``task:addition?digits=D``: problems with their answers) for ``--pretrain`` steps, lr
   warm-up then cosine decay;
2. ``sft``: SFT from the base (response-only loss) for ``--sft`` steps, warm-up and cosine decay,
   on ``--sft-demos`` demonstrations (default: 20,000 training problems). With
   ``--sft-every K``, SFT is trained to convergence on the validation split instead: constant lr
   after the warm-up, validation exact match every K steps, stopped after ``--sft-patience``
   checks without a new best (or at ``--sft`` steps), and ``sft`` is the best checkpoint;
3. ``sft-longer``: the same SFT recipe for ``--sft-extra`` more steps (the peer that gets more
   supervised steps instead of GRPO: as many optimizer steps as GRPO's by default); with
   ``--sft-every``, the chosen ``sft`` checkpoint continued on the same demonstrations;
4. ``sft+grpo``: GRPO from the SFT run for ``--grpo`` steps (16 prompts x G = ``--group-size``
   answers drawn at ``--rollout-temperature``, ``--reward`` exact or partial credit, KL weight
   ``--kl-beta``, lr ``--grpo-lr`` after ``--grpo-warmup`` warm-up steps, 2 inner iterations
   per rollout); with ``--sft-demos N`` its problems are fresh: none is among SFT's N
   demonstrations (``finetune(..., skip_train=N)``), so the RL stage never sees a solved one;
5. ``sft+dpo``: DPO from the SFT run for ``--dpo`` steps on generated preference pairs
   (``--dpo-pairs policy``: the verified answer vs. the SFT policy's own wrong answer; ``task``:
   vs. a plausible wrong one, off by 1 or 10).

Each stage is measured on the same 300 validation and 300 test problems: greedy exact match, KL
to its own reference (nats per answer), and two preference accuracies (the policy gives the
verified answer a higher log-probability than the wrong one): ``pref_acc`` on task pairs
(off by 1 or 10) and ``own_pref_acc`` on the SFT policy's own mistakes on those problems (the
kind of pair DPO trains on with ``--dpo-pairs policy``). Settings are chosen on the validation
split (``val_*`` columns); the test columns are the held-out result.

    python benchmarks/post_training.py --threads 1 --seeds 0,1,2 --out /tmp/posttrain

Seeds can run as separate processes (``--seeds 0``, ``--seeds 1``, ... with one ``--out``); then
``--report-only`` prints the table of all of them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import torch

import genzoo
from genzoo.runs.load import open_run
from genzoo.runs.posttrain import (
    evaluate_task,
    finetune,
    policy_preference_pairs,
    resume_finetune,
)

QUIET = {"progress": False, "tensorboard": False, "log_every": 25}
GPT = {"n_layer": 2, "n_head": 4, "n_embd": 128, "dropout": 0.0}


def _stage(fn, *args, out: Path, **kw) -> tuple[Path, float]:
    """Run one stage into ``out``, or reuse it when a finished run of it is there (its training
    time kept in ``times.json`` beside it): seeds interrupted or run again go on where they were."""
    times_file = out.parent / "times.json"
    times = json.loads(times_file.read_text()) if times_file.exists() else {}
    if out.name in times and (out / "config.yaml").exists():
        return out, times[out.name]
    t = time.perf_counter()
    run = fn(*args, out=out, **kw)
    times = json.loads(times_file.read_text()) if times_file.exists() else {}
    times[out.name] = time.perf_counter() - t
    times_file.write_text(json.dumps(times, indent=1))
    return Path(run), times[out.name]


def base_stage(seed: int, out: Path, digits: int, steps: int) -> tuple[Path, float]:
    """The pre-trained base of one seed: next-token prediction on the task's text, lr warm-up
    then cosine decay to 0 (so the base does not end on a noisy high-lr iterate)."""
    return _stage(
        genzoo.train,
        "gpt",
        f"task:addition?digits={digits}",
        steps=steps,
        out=out / f"seed{seed}" / "base",
        overrides={
            **GPT,
            **QUIET,
            "seed": seed,
            "batch_size": 32,
            "lr": 3e-3,
            "warmup": 50,
            "lr_decay": "cosine",
            "n_samples": 8,
        },
    )


def sft_to_convergence(
    base: Path, sd: Path, args: argparse.Namespace, over: dict[str, object]
) -> tuple[Path, float]:
    """SFT on the few demonstrations until validation exact match stops improving: constant lr
    after the warm-up, measured every ``--sft-every`` steps on the validation split, stopped
    after ``--sft-patience`` checks without a new best or at ``--sft`` steps; ``sd/sft`` is a
    copy of the best checkpoint's run (its steps and the validation curve in
    ``sd/sft-select.json``). The time returned includes the validation checks."""
    out, work = sd / "sft", sd / "sft-select"
    times_file = sd / "times.json"
    times = json.loads(times_file.read_text()) if times_file.exists() else {}
    if "sft" in times and (out / "config.yaml").exists():
        return out, times["sft"]
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    curve: list[tuple[int, float]] = []
    best, since = -1.0, 0
    for steps in range(args.sft_every, args.sft + 1, args.sft_every):
        if steps == args.sft_every:
            finetune(base, "sft", steps=steps, out=work, n_train=args.sft_demos, overrides=over)
        else:
            resume_finetune(work, steps=steps)
        m = evaluate_task(open_run(work).model, n=args.n_test, seed=1000, split="val")  # type: ignore[arg-type]
        curve.append((steps, m["exact_match"]))
        print(f"{sd.name}: SFT step {steps}, validation exact match {m['exact_match']:.3f}")
        if m["exact_match"] > best:
            best, since = m["exact_match"], 0
            shutil.rmtree(out, ignore_errors=True)
            shutil.copytree(work, out)
        else:
            since += 1
            if since >= args.sft_patience:
                break
    chosen = max(curve, key=lambda c: c[1])[0]  # (the first of equal bests)
    (sd / "sft-select.json").write_text(json.dumps({"steps": chosen, "val_curve": curve}))
    times = json.loads(times_file.read_text()) if times_file.exists() else {}
    times["sft"] = time.perf_counter() - t
    times_file.write_text(json.dumps(times, indent=1))
    return out, times["sft"]


def sft_continued(sd: Path, extra: int) -> tuple[Path, float]:
    """The peer of ``--sft-every``: the chosen SFT checkpoint continued for ``extra`` steps on
    the same demonstrations (same constant lr)."""
    out = sd / "sft-longer"
    times_file = sd / "times.json"
    times = json.loads(times_file.read_text()) if times_file.exists() else {}
    if "sft-longer" in times and (out / "config.yaml").exists():
        return out, times["sft-longer"]
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(sd / "sft", out)
    chosen = json.loads((sd / "sft-select.json").read_text())["steps"]
    t = time.perf_counter()
    resume_finetune(out, steps=chosen + extra)
    times = json.loads(times_file.read_text()) if times_file.exists() else {}
    times["sft-longer"] = time.perf_counter() - t
    times_file.write_text(json.dumps(times, indent=1))
    return out, times["sft-longer"]


def run_seed(seed: int, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    out = Path(args.out)
    d = args.digits
    sd = out / f"seed{seed}"
    times: dict[str, float] = {}
    runs: dict[str, Path] = {}
    runs["base"], times["base"] = base_stage(seed, out, d, args.pretrain)
    # SFT: lr warm-up, then cosine decay to 0 over the run's own length
    ft = {"digits": d, **QUIET, "seed": seed}
    sft = {**ft, "lr": args.sft_lr, "warmup": 20, "lr_decay": "cosine"}
    if args.sft_every > 0:  # SFT to convergence on the validation split, constant lr
        sft["lr_decay"] = "none"
        runs["sft"], times["sft"] = sft_to_convergence(runs["base"], sd, args, sft)
    else:
        runs["sft"], times["sft"] = _stage(
            finetune,
            runs["base"],
            "sft",
            steps=args.sft,
            out=sd / "sft",
            n_train=args.sft_demos,
            overrides=sft,
        )
    if args.sft_extra > 0 and args.sft_every > 0:  # the chosen checkpoint, continued
        runs["sft-longer"], times["sft-longer"] = sft_continued(sd, args.sft_extra)
    elif args.sft_extra > 0:  # (0: leave the peer out of this invocation)
        runs["sft-longer"], times["sft-longer"] = _stage(
            finetune,
            runs["base"],
            "sft",
            steps=args.sft + args.sft_extra,
            out=sd / "sft-longer",
            n_train=args.sft_demos,
            overrides=sft,
        )
    if args.grpo > 0:  # (0: leave GRPO out of this invocation)
        runs["sft+grpo"], times["sft+grpo"] = _stage(
            finetune,
            runs["sft"],
            "grpo",
            steps=args.grpo,
            out=sd / "grpo",
            skip_train=args.sft_demos or 0,  # fresh problems: none of SFT's demonstrations
            overrides={
                **ft,
                "batch_size": 16,
                "group_size": args.group_size,
                "n_samples": 8,
                "lr": args.grpo_lr,
                "warmup": args.grpo_warmup,
                "kl_beta": args.kl_beta,
                "rollout_temperature": args.rollout_temperature,
                "reward": args.reward,
                "inner_iters": 2,
            },
        )
    if args.dpo > 0:  # (0: leave DPO out of this invocation)
        runs["sft+dpo"], times["sft+dpo"] = _stage(
            finetune,
            runs["sft"],
            "dpo",
            steps=args.dpo,
            out=sd / "dpo",
            pairs=args.dpo_pairs,
            overrides={**ft, "n_samples": 8, "beta": args.beta, "lr": args.dpo_lr},
        )
    if args.train_only:
        return {}
    from genzoo.data import tasks
    from genzoo.models.posttrain import SFT, PostTrainConfig

    # held-out pairs of the kind DPO trains on with --dpo-pairs policy: the verified answer vs.
    # the SFT policy's own wrong answer, on the val and test problems (fixed for every stage)
    sft_model = open_run(runs["sft"]).model
    own = {
        split: tasks.PairData(
            "own",
            policy_preference_pairs(
                sft_model,  # type: ignore[arg-type]
                "addition",
                tasks.problems("addition", d, split, args.n_test, seed=1000),
                seed=1000,
            ),
        ).all()
        for split in ("val", "test")
    }
    res = {}
    for name, run in runs.items():
        model = open_run(run).model
        if name == "base":  # a plain GPT: measured as the policy of an untrained SFT wrapper
            model = SFT(
                PostTrainConfig(base_run=str(run), digits=d), tasks.task_info("t", 64), model
            )
        row: dict[str, float] = {"train_s": times[name]}
        for split in ("val", "test"):
            m = evaluate_task(model, n=args.n_test, seed=1000, split=split)  # type: ignore[arg-type]
            m["own_pref_acc"] = float(model.eval_metrics(own[split])["pref_acc"].mean())
            m["own_pairs"] = len(own[split]["x"])
            row.update({(k if split == "test" else f"val_{k}"): v for k, v in m.items()})
        res[name] = row
    return res


def plot_curves(seed_dir: Path, path: Path) -> None:
    """GRPO's reward and KL, DPO's log-probabilities, margin and accuracy, per step (one seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def rows(run: str) -> list[dict[str, float]]:
        lines = (seed_dir / run / "metrics.jsonl").read_text().splitlines()
        return [r for r in map(json.loads, lines) if "step" in r and "event" not in r]

    has_dpo = (seed_dir / "dpo" / "metrics.jsonl").exists()
    fig, ax = plt.subplots(1, 3 if has_dpo else 1, figsize=(13, 3.4) if has_dpo else (5, 3.4))
    ax = ax if has_dpo else [ax]
    g = rows("grpo")
    ax[0].plot([r["step"] for r in g], [r["reward"] for r in g], label="rollout reward")
    ax[0].plot([r["step"] for r in g], [r["exact"] for r in g], label="rollouts exact")
    ax[0].set_xlabel("GRPO step")
    ax[0].legend(loc="upper left")
    kl = ax[0].twinx()
    kl.plot([r["step"] for r in g], [r["kl"] for r in g], color="C3", label="KL to reference (k3)")
    kl.legend(loc="lower right")
    if not has_dpo:  # GRPO alone (a run with --dpo 0)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        return
    d = rows("dpo")
    steps = [r["step"] for r in d]
    ax[1].plot(steps, [r["chosen_logp"] for r in d], label="log pi(chosen)")
    ax[1].plot(steps, [r["rejected_logp"] for r in d], label="log pi(rejected)")
    ax[1].set_xlabel("DPO step")
    ax[1].legend()
    ax[2].plot(steps, [r["margin"] for r in d], label="implied reward margin")
    ax[2].plot(steps, [r["reward_acc"] for r in d], label="reward accuracy")
    ax[2].set_xlabel("DPO step")
    ax[2].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0")
    p.add_argument("--digits", type=int, default=2)
    p.add_argument("--pretrain", type=int, default=400)
    p.add_argument("--sft", type=int, default=100)
    p.add_argument("--sft-lr", type=float, default=5e-4)
    p.add_argument("--sft-extra", type=int, default=200, help="sft-longer: SFT steps added")
    p.add_argument(
        "--sft-demos",
        type=int,
        help="SFT's demonstrations (training problems; default 20,000); GRPO then trains on "
        "fresh problems, none of them",
    )
    p.add_argument(
        "--sft-every",
        type=int,
        default=0,
        help="SFT to convergence: constant lr, validation exact match every this many steps, "
        "the best checkpoint kept (0: --sft steps with cosine decay)",
    )
    p.add_argument("--sft-patience", type=int, default=2, help="checks without a new best")
    p.add_argument("--grpo", type=int, default=200)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--grpo-lr", type=float, default=1e-4)
    p.add_argument("--grpo-warmup", type=int, default=0, help="GRPO's lr warm-up steps")
    p.add_argument("--rollout-temperature", type=float, default=1.0)
    p.add_argument("--kl-beta", type=float, default=0.04)
    p.add_argument("--reward", default="partial", choices=["exact", "partial"])
    p.add_argument("--dpo", type=int, default=60)
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--dpo-lr", type=float, default=3e-5)
    p.add_argument("--train-only", action="store_true", help="train the stages, measure nothing")
    p.add_argument(
        "--dpo-pairs",
        default="policy",
        choices=["task", "policy"],
        help="DPO's training pairs: task distractors, or the SFT policy's own wrong answers",
    )
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="/tmp/genzoo-posttrain")
    p.add_argument("--plot", help="also write the curves of the first seed to this .png")
    p.add_argument("--plot-seed", type=int, help="plot this seed's curves instead of the first")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: print the table of the results_seed*.json already in --out "
        "(seeds run as separate processes)",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import os

    os.environ["GENZOO_THREADS"] = str(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    out = Path(args.out)
    if args.report_only:
        files = sorted(out.glob("results_seed*.json"))
        per_seed = {int(f.stem[12:]): json.loads(f.read_text()) for f in files}
        seeds = sorted(per_seed)
    else:
        per_seed = {}
        for s in seeds:
            per_seed[s] = run_seed(s, args)
            if args.train_only:
                continue
            out.mkdir(parents=True, exist_ok=True)
            (out / f"results_seed{s}.json").write_text(json.dumps(per_seed[s], indent=1))
    total = time.perf_counter() - t0
    if args.train_only:
        return
    stages = ["base", "sft", "sft-longer", "sft+grpo", "sft+dpo"]
    stages = [st for st in stages if all(st in per_seed[s] for s in seeds)]
    keys = ["val_exact_match", "exact_match", "val_pref_acc", "pref_acc"]
    keys += ["val_own_pref_acc", "own_pref_acc", "kl_ref", "train_s"]
    print(f"\n{args.digits}-digit addition, {args.n_test} held-out problems, seeds {seeds}")
    print("| stage | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for st in stages:
        cells = []
        for k in keys:
            vals = [per_seed[s][st][k] for s in seeds]
            mean = statistics.mean(vals)
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{mean:.3f} ± {sd:.3f}" if k != "train_s" else f"{mean:.0f}")
        print(f"| {st} | " + " | ".join(cells) + " |")
    print(f"\nper seed ({seeds}), points; val = validation split, test = held-out test split")
    for what, a, b, k in (
        ("GRPO - SFT exact match", "sft+grpo", "sft", "exact_match"),
        ("sft-longer - SFT exact match", "sft-longer", "sft", "exact_match"),
        ("DPO - SFT preference accuracy", "sft+dpo", "sft", "pref_acc"),
        ("DPO - SFT own-mistake preference accuracy", "sft+dpo", "sft", "own_pref_acc"),
    ):
        for split, key in (("val", f"val_{k}"), ("test", k)) if a in stages else ():
            diff = [round(100 * (per_seed[s][a][key] - per_seed[s][b][key]), 1) for s in seeds]
            print(f"{what} ({split}): {diff}")
    print(f"total wall time {total:.0f} s")
    if args.plot:
        seed = seeds[0] if args.plot_seed is None else args.plot_seed
        plot_curves(Path(args.out) / f"seed{seed}", Path(args.plot))


if __name__ == "__main__":
    main()
